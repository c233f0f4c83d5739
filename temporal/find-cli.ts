import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Finds the `temporal` CLI (which embeds the dev server), in the SPEC's order:
 *   1. $TEMPORAL_CLI_PATH   2. `temporal` on PATH   3. a cached build under ~/.cache/approval-plus/
 *   4. a build with Go (`go install …@v1.5.1`; later tags carry a `replace` directive `go install` refuses)
 *   5. the Temporal SDK's own cached download (needs internet access)
 * Run directly (`node --import tsx temporal/find-cli.ts`) it prints the path, which `npm test` uses.
 */

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
const GO_PACKAGE = `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`;

export function cacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'approval-plus');
}
const cachedBuildPath = () => path.join(cacheDir(), `temporal-${TEMPORAL_CLI_VERSION}`, 'temporal');

export class TemporalCliNotFoundError extends Error {
  override readonly name = 'TemporalCliNotFoundError';
}

export function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

type Say = (line: string) => void;

/** The `go` tool: on PATH, or where the official tarball installs it. */
export function goBinary(): string | undefined {
  return onPath('go') ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
}

/** Build the CLI with Go into the cache. Shows progress: it takes minutes. Returns undefined if Go is absent/fails. */
async function buildWithGo(say: Say): Promise<string | undefined> {
  const go = goBinary();
  if (!go) return undefined;
  const target = cachedBuildPath();
  const staging = `${path.dirname(target)}.building-${process.pid}`;
  mkdirSync(staging, { recursive: true });
  say(
    `Building the Temporal CLI ${TEMPORAL_CLI_VERSION} with Go into ${path.dirname(target)} (one time; takes a few minutes)…`
  );
  const started = Date.now();
  const ok = await new Promise<boolean>((resolve) => {
    const child = spawn(go, ['install', GO_PACKAGE], {
      env: { ...process.env, GOTOOLCHAIN: 'local', GOBIN: staging, GOFLAGS: process.env.GOFLAGS ?? '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const ticker = setInterval(() => say(`  …still building (${Math.round((Date.now() - started) / 1000)} s)`), 20_000);
    child.on('error', () => resolve(false));
    child.on('close', (code) => {
      clearInterval(ticker);
      if (code !== 0) say(`  go install failed (exit ${code}):\n${stderr.trim().split('\n').slice(-8).join('\n')}`);
      resolve(code === 0);
    });
  });
  const built = path.join(staging, 'temporal');
  if (!ok || !isExecutable(built)) {
    rmSync(staging, { recursive: true, force: true });
    return undefined;
  }
  mkdirSync(path.dirname(target), { recursive: true });
  renameSync(built, target); // atomic: a concurrent build never leaves a half-written binary behind
  rmSync(staging, { recursive: true, force: true });
  say(`  built in ${Math.round((Date.now() - started) / 1000)} s: ${target}`);
  return target;
}

/** Let the Temporal SDK download its dev-server build (what a user with internet access gets). */
async function sdkDownload(say: Say): Promise<string | undefined> {
  const downloadDir = path.join(cacheDir(), 'sdk-download');
  const existing = findDownloaded(downloadDir);
  if (existing) return existing;
  say('Trying the Temporal SDK download of the dev server (needs internet access)…');
  try {
    const { TestWorkflowEnvironment } = await import('@temporalio/testing');
    const env = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'cached-download', downloadDir, ttl: '3650d' }, ui: false },
    });
    await env.teardown();
  } catch {
    return undefined;
  }
  return findDownloaded(downloadDir);
}

function findDownloaded(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  const names = readdirSync(dir, { recursive: true }).map(String);
  const hit = names.find((n) => /(^|\/)temporal(-cli)?[^/]*$/.test(n) && !n.endsWith('.tar.gz') && !n.endsWith('.zip'));
  return hit && isExecutable(path.join(dir, hit)) ? path.join(dir, hit) : undefined;
}

function works(bin: string): boolean {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 && /temporal version/.test(r.stdout);
}

export async function findTemporalCli(say: Say = (l) => process.stderr.write(l + '\n')): Promise<string> {
  const tried: string[] = [];
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    if (isExecutable(fromEnv) && works(fromEnv)) return fromEnv;
    // An explicit setting that is wrong is a configuration error, not something to silently work around.
    throw new TemporalCliNotFoundError(`invalid TEMPORAL_CLI_PATH: ${fromEnv} is not a working temporal binary`);
  }
  const pathHit = onPath('temporal');
  if (pathHit && works(pathHit)) return pathHit;
  tried.push('no `temporal` on PATH');
  const cached = cachedBuildPath();
  if (isExecutable(cached) && works(cached)) return cached;
  tried.push(`no cached build at ${cached}`);
  const built = await buildWithGo(say);
  if (built) return built;
  tried.push('no Go toolchain, or the Go build failed');
  const downloaded = await sdkDownload(say);
  if (downloaded) return downloaded;
  tried.push('the SDK download failed (offline?)');
  throw new TemporalCliNotFoundError(
    `Cannot find the Temporal CLI (${tried.join('; ')}). Provide it one of these ways: ` +
      `set TEMPORAL_CLI_PATH=/path/to/temporal; put \`temporal\` on PATH (https://docs.temporal.io/cli); ` +
      `install Go ≥ 1.23 so it can be built (GOTOOLCHAIN=local go install ${GO_PACKAGE}) into ${path.dirname(cached)}; ` +
      `allow internet access for the SDK download; or set TEMPORAL_ADDRESS to use an existing Temporal server.`
  );
}

if (require.main === module) {
  findTemporalCli()
    .then((p) => console.log(p))
    .catch((err: Error) => {
      console.error(err.message);
      process.exit(1);
    });
}
