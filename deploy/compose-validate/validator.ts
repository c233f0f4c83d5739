import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { cacheDir, goBinary, isExecutable } from '../../temporal/find-cli';

/**
 * The compose file validator (main.go beside this file): a tiny Go program on the Compose Specification's reference
 * loader, github.com/compose-spec/compose-go/v2 — the parser Docker Compose itself uses — built once with the local Go
 * toolchain and cached like the `temporal` CLI (temporal/find-cli.ts):
 *   ~/.cache/approval-plus/compose-validate-<hash of go.mod, go.sum, main.go>/compose-validate
 * A changed source gets a new hash, so a stale build is never used. Run directly it validates this checkout:
 *   node --import tsx deploy/compose-validate/validator.ts      (npm run compose:validate)
 */

export const VALIDATOR_DIR = __dirname;
const SOURCES = ['go.mod', 'go.sum', 'main.go'];

export class ComposeValidatorUnavailableError extends Error {
  override readonly name = 'ComposeValidatorUnavailableError';
}

/** Where the build for the current sources lives (it may not exist yet). */
export function validatorPath(): string {
  const hash = createHash('sha256');
  for (const f of SOURCES)
    hash
      .update(f)
      .update('\0')
      .update(readFileSync(path.join(VALIDATOR_DIR, f)));
  return path.join(cacheDir(), `compose-validate-${hash.digest('hex').slice(0, 16)}`, 'compose-validate');
}

type Say = (line: string) => void;

/**
 * The validator binary: the cached build, or a fresh `go build` (GOTOOLCHAIN=local: the Go that is installed, no
 * toolchain download; -mod=readonly: go.sum is complete, so a build never rewrites the checkout). Modules come from
 * the Go module proxy on the first build. Throws ComposeValidatorUnavailableError saying what is missing.
 */
export async function findComposeValidator(say: Say = (l) => process.stderr.write(l + '\n')): Promise<string> {
  const target = validatorPath();
  if (isExecutable(target)) return target;
  const go = goBinary();
  if (!go)
    throw new ComposeValidatorUnavailableError(
      `no Go toolchain (go on PATH or /usr/local/go/bin/go) to build the compose validator into ${path.dirname(target)}`
    );
  const staging = `${path.dirname(target)}.building-${process.pid}`;
  mkdirSync(staging, { recursive: true });
  say(`Building the compose validator (compose-spec/compose-go) into ${path.dirname(target)} (one time)…`);
  const started = Date.now();
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(go, ['build', '-trimpath', '-o', path.join(staging, 'compose-validate'), '.'], {
      cwd: VALIDATOR_DIR,
      env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly', GOWORK: 'off', CGO_ENABLED: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on('error', (e) => resolve({ code: -1, stderr: e.message }));
    child.on('close', (c) => resolve({ code: c, stderr: err }));
  });
  const built = path.join(staging, 'compose-validate');
  if (code !== 0 || !isExecutable(built)) {
    rmSync(staging, { recursive: true, force: true });
    throw new ComposeValidatorUnavailableError(
      `go build of the compose validator failed (exit ${code}): ${stderr.trim().split('\n').slice(-6).join(' | ')}`
    );
  }
  mkdirSync(path.dirname(target), { recursive: true });
  renameSync(built, target); // atomic: a concurrent build never leaves a half-written binary behind
  rmSync(staging, { recursive: true, force: true });
  say(`  built in ${Math.round((Date.now() - started) / 1000)} s: ${target}`);
  return target;
}

/** One load of the compose file, as the validator reports it with -json. */
export interface ComposeCase {
  /** '' = no .env; otherwise the env file, relative to the project directory. */
  envFile: string;
  /** [] = no profile; ['*'] = all. */
  profiles: string[];
  services: string[];
  error?: string;
  warnings: string[];
  /** The resolved model (what `docker compose config --format json` prints); absent when the load failed. */
  project?: ResolvedProject;
}

/** The parts of compose-go's resolved model the tests read (types.Project, JSON). */
export interface ResolvedProject {
  name: string;
  services: Record<string, ResolvedService>;
}
export interface ResolvedService {
  image?: string;
  command?: string[] | null;
  entrypoint?: string[] | null;
  environment?: Record<string, string | null>;
  /** Bytes, as a decimal string. */
  mem_limit?: string;
  /** A Go duration string, e.g. "30s". */
  stop_grace_period?: string;
  healthcheck?: { test?: string[]; interval?: string; timeout?: string; retries?: number; start_period?: string };
  depends_on?: Record<string, { condition: string; required?: boolean }>;
  ports?: { target: number; published?: string; host_ip?: string }[];
  expose?: string[];
  profiles?: string[];
}

export interface ValidationRun {
  status: number | null;
  cases: ComposeCase[];
  stderr: string;
}

/** Run the validator on a project directory (JSON mode). */
export function validateCompose(
  bin: string,
  projectDir: string,
  opts: { file?: string; envFile?: string; profiles?: string[] } = {}
): ValidationRun {
  const args = ['-json'];
  if (opts.file) args.push('-file', opts.file);
  if (opts.envFile) args.push('-env-file', opts.envFile);
  if (opts.profiles) args.push('-profiles', opts.profiles.join(','));
  const r = spawnSync(bin, [...args, projectDir], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  const parsed = r.stdout ? (JSON.parse(r.stdout) as { cases: ComposeCase[] }) : { cases: [] };
  return { status: r.status, cases: parsed.cases, stderr: r.stderr };
}

if (require.main === module) {
  findComposeValidator()
    .then((bin) => {
      const root = path.resolve(VALIDATOR_DIR, '..', '..');
      const r = spawnSync(bin, ['-env-file', '.env.example', root], { stdio: 'inherit' });
      process.exit(r.status ?? 1);
    })
    .catch((err: Error) => {
      console.error(err.message);
      process.exit(1);
    });
}
