import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import {
  chownSync,
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { ensureSearchAttributes, freePort } from './dev-server';
import { cacheDir, findTemporalCli, goBinary, isExecutable, onPath, TEMPORAL_CLI_VERSION } from './find-cli';

/**
 * A real Temporal server on PostgreSQL, on this machine, for the tests and benches that must run against the
 * production topology rather than the dev server (test/postgres-temporal.test.ts, scripts/postgres-temporal.ts):
 *   1. `temporal-server` and `temporal-sql-tool` built with Go from go.temporal.io/server at the version the pinned
 *      CLI embeds, cached in ~/.cache/approval-plus/temporal-server-<version>/ with the PostgreSQL schema files;
 *   2. a throw-away PostgreSQL cluster (initdb into a temp dir, its own port; as the `postgres` user when run as root);
 *   3. databases `temporal` and `temporal_visibility` created and migrated with the sql tool (as docker-compose's
 *      temporal-schema service does), the server configured like the compose `temporal` service (postgres12 plugin
 *      for history and SQL advanced visibility, deploy/temporal/dynamicconfig/approval-plus.yaml);
 *   4. namespace created with the `temporal` CLI, the search attributes registered (ensureSearchAttributes);
 *   5. stopServer()/startServer() for fault tests; stop() tears everything down (also on process exit).
 */

/** go.temporal.io/server version that `temporal` CLI v1.5.1 embeds (its go.mod); the compose file pins the same. */
export const TEMPORAL_SERVER_VERSION = 'v1.29.1';
const SERVER_MODULE = 'go.temporal.io/server';
const ROOT = path.resolve(__dirname, '..');
export const DYNAMIC_CONFIG_FILE = path.join(ROOT, 'deploy', 'temporal', 'dynamicconfig', 'approval-plus.yaml');

type Say = (line: string) => void;
const defaultSay: Say = (line) => process.stderr.write(line + '\n');

// ---- small process helpers (async only: tests run simulators in-process) ----------------------------------------

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function runOk(what: string, cmd: string, args: string[], opts: SpawnOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const tail = (r.stderr || r.stdout).trim().split('\n').slice(-12).join('\n');
    throw new Error(`${what} failed (exit ${r.code}): ${path.basename(cmd)} ${args.join(' ')}\n${tail}`);
  }
  return r;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- 1. the server binaries ----------------------------------------------------------------------------------

export interface TemporalServerBinaries {
  version: string;
  dir: string;
  server: string;
  sqlTool: string;
  /** schema/postgresql/v12 (temporal/versioned, visibility/versioned). */
  schemaDir: string;
  /** From build-info.json: how long the Go build took. */
  buildSeconds?: number;
}

export function serverCacheDir(version = TEMPORAL_SERVER_VERSION): string {
  return path.join(cacheDir(), `temporal-server-${version}`);
}

function goModCache(): string {
  if (process.env.GOMODCACHE) return process.env.GOMODCACHE;
  const gopath = (process.env.GOPATH || path.join(os.homedir(), 'go')).split(path.delimiter)[0]!;
  return path.join(gopath, 'pkg', 'mod');
}

/** The server version the pinned CLI's go.mod requires, when the CLI's module is in the Go module cache. */
export function cliServerVersion(): string | undefined {
  const goMod = path.join(goModCache(), 'github.com', 'temporalio', `cli@${TEMPORAL_CLI_VERSION}`, 'go.mod');
  if (!existsSync(goMod)) return undefined;
  return /^\s*go\.temporal\.io\/server\s+(v\S+)/m.exec(readFileSync(goMod, 'utf8'))?.[1];
}

function cachedBinaries(dir: string, version: string): TemporalServerBinaries | undefined {
  const b = {
    version,
    dir,
    server: path.join(dir, 'temporal-server'),
    sqlTool: path.join(dir, 'temporal-sql-tool'),
    schemaDir: path.join(dir, 'schema', 'postgresql', 'v12'),
  };
  if (!isExecutable(b.server) || !isExecutable(b.sqlTool) || !existsSync(path.join(b.schemaDir, 'temporal')))
    return undefined;
  let buildSeconds: number | undefined;
  try {
    buildSeconds = (JSON.parse(readFileSync(path.join(dir, 'build-info.json'), 'utf8')) as { seconds?: number })
      .seconds;
  } catch {
    // built by hand: no timing recorded
  }
  return { ...b, buildSeconds };
}

/**
 * The cached `temporal-server` + `temporal-sql-tool`, or a Go build of them (`GOTOOLCHAIN=local go install
 * go.temporal.io/server/cmd/server@<v> …/cmd/tools/sql@<v>`), which takes many minutes on two cores: progress is
 * reported every 20 s and the time is recorded in build-info.json.
 */
export async function ensureTemporalServerBinaries(
  say: Say = defaultSay,
  version = TEMPORAL_SERVER_VERSION
): Promise<TemporalServerBinaries> {
  const dir = serverCacheDir(version);
  const cached = cachedBinaries(dir, version);
  if (cached) return cached;
  const go = goBinary();
  if (!go)
    throw new Error(
      `no cached Temporal server in ${dir} and no Go toolchain to build it: install Go ≥ 1.25 ` +
        `(GOTOOLCHAIN=local go install ${SERVER_MODULE}/cmd/server@${version} ${SERVER_MODULE}/cmd/tools/sql@${version})`
    );
  const staging = `${dir}.building-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(path.join(staging, 'bin'), { recursive: true });
  const pkgs = [`${SERVER_MODULE}/cmd/server@${version}`, `${SERVER_MODULE}/cmd/tools/sql@${version}`];
  say(`Building temporal-server and temporal-sql-tool ${version} with Go into ${dir} (one time; many minutes)…`);
  const started = Date.now();
  let compiled = 0;
  let stderrTail = '';
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(go, ['install', '-v', ...pkgs], {
      env: { ...process.env, GOTOOLCHAIN: 'local', GOBIN: path.join(staging, 'bin'), GOFLAGS: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (d: Buffer) => {
      const text = d.toString();
      // `go install -v` prints each package's import path as it is built; `go: …` lines are downloads.
      compiled += text.split('\n').filter((l) => l.trim() && !l.startsWith('go:') && !l.startsWith('#')).length;
      stderrTail = (stderrTail + text).slice(-4000);
    });
    const ticker = setInterval(
      () => say(`  …still building (${Math.round((Date.now() - started) / 1000)} s, ${compiled} packages compiled)`),
      20_000
    );
    child.once('error', (err) => {
      clearInterval(ticker);
      reject(err);
    });
    child.once('close', (c) => {
      clearInterval(ticker);
      resolve(c);
    });
  });
  const seconds = Math.round((Date.now() - started) / 1000);
  if (code !== 0) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(
      `go install failed after ${seconds} s (exit ${code}):\n${stderrTail.trim().split('\n').slice(-15).join('\n')}`
    );
  }
  renameSync(path.join(staging, 'bin', 'server'), path.join(staging, 'temporal-server'));
  renameSync(path.join(staging, 'bin', 'sql'), path.join(staging, 'temporal-sql-tool'));
  rmSync(path.join(staging, 'bin'), { recursive: true, force: true });
  // The schema files come from the same module version (now in the module cache); kept beside the binaries so a
  // later `go clean -modcache` does not break the cached build.
  const moduleSchema = path.join(goModCache(), `${SERVER_MODULE}@${version}`, 'schema', 'postgresql', 'v12');
  cpSync(moduleSchema, path.join(staging, 'schema', 'postgresql', 'v12'), { recursive: true });
  const goVersion = (await run(go, ['version'])).stdout.trim();
  writeFileSync(
    path.join(staging, 'build-info.json'),
    JSON.stringify(
      { version, seconds, go: goVersion, cpus: os.cpus().length, builtAt: new Date().toISOString() },
      null,
      2
    )
  );
  if (cachedBinaries(dir, version)) {
    rmSync(staging, { recursive: true, force: true }); // another process finished first
  } else {
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
  }
  say(`  built in ${seconds} s: ${dir}`);
  return cachedBinaries(dir, version)!;
}

// ---- 2. a throw-away PostgreSQL cluster -------------------------------------------------------------------------

export interface PostgresCluster {
  port: number;
  user: string;
  dir: string;
  stop(): Promise<void>;
  /** Stop the server (fast shutdown), stay down `downMs` (connections refused), start it again on the same data. */
  restart(downMs?: number): Promise<void>;
}

/** initdb, postgres, pg_isready: $PG_BIN_DIR, else on PATH, else the newest /usr/lib/postgresql/<major>/bin. */
export function findPostgresBinDir(): string | undefined {
  const has = (d: string) => ['initdb', 'postgres', 'pg_isready'].every((b) => isExecutable(path.join(d, b)));
  if (process.env.PG_BIN_DIR) return has(process.env.PG_BIN_DIR) ? process.env.PG_BIN_DIR : undefined;
  const initdb = onPath('initdb');
  if (initdb) {
    const d = path.dirname(realpathSync(initdb));
    if (has(d)) return d;
  }
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const majors = readdirSync(base)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const m of majors) if (has(path.join(base, m, 'bin'))) return path.join(base, m, 'bin');
  return undefined;
}

/** initdb refuses root: as root, the cluster runs as the `postgres` system user (Debian's package creates it). */
function clusterOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root and there is no `postgres` user for the throw-away PostgreSQL cluster');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export async function startPostgresCluster(opts: { port?: number; say?: Say } = {}): Promise<PostgresCluster> {
  const say = opts.say ?? defaultSay;
  const bin = findPostgresBinDir();
  if (!bin)
    throw new Error(
      'PostgreSQL server binaries (initdb, postgres) not found: `apt-get install postgresql` (Debian), ' +
        'or set PG_BIN_DIR to the folder that holds them'
    );
  const owner = clusterOwner();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'approval-plus-pg-'));
  const dataDir = path.join(dir, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    chownSync(dataDir, owner.uid, owner.gid);
  }
  const as: SpawnOptions = owner ? { uid: owner.uid, gid: owner.gid, cwd: dir } : { cwd: dir };
  const user = 'temporal';
  await runOk(
    'initdb',
    path.join(bin, 'initdb'),
    ['-D', dataDir, '-U', user, '--auth=trust', '-E', 'UTF8', '--no-locale'],
    as
  );
  const port = opts.port || (await freePort());
  const logFile = path.join(dir, 'postgres.log');
  let current: { exited: () => boolean; exit: Promise<void>; kill: (sig: NodeJS.Signals) => void } | undefined;
  /** Start `postgres` on the data directory, and wait until it accepts connections. */
  const launch = async () => {
    const logFd = openSync(logFile, 'a');
    if (owner) chownSync(logFile, owner.uid, owner.gid);
    const child = spawn(
      path.join(bin, 'postgres'),
      [
        '-D',
        dataDir,
        '-p',
        String(port),
        '-k',
        dir, // unix socket beside the data, not in /var/run/postgresql
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'max_connections=300', // each Temporal service keeps its own pools
        '-c',
        'shared_buffers=256MB',
      ],
      { ...as, stdio: ['ignore', logFd, logFd] }
    );
    let exited = false;
    const exit = new Promise<void>((resolve) =>
      child.once('exit', () => {
        exited = true;
        closeSync(logFd);
        resolve();
      })
    );
    current = { exited: () => exited, exit, kill: (sig) => child.kill(sig) };
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited) {
        const log = readFileSync(logFile, 'utf8').trim().split('\n').slice(-10).join('\n');
        throw new Error(`PostgreSQL exited at start-up:\n${log}`);
      }
      const r = await run(path.join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-U', user]);
      if (r.code === 0) return;
      if (Date.now() > deadline)
        throw new Error(`PostgreSQL did not accept connections on 127.0.0.1:${port} within 30 s`);
      await sleep(200);
    }
  };
  /** Fast shutdown (SIGINT: connections are cut, the data stays). */
  const halt = async () => {
    if (!current || current.exited()) return;
    current.kill('SIGINT');
    const t = setTimeout(() => current?.kill('SIGKILL'), 15_000);
    await current.exit;
    clearTimeout(t);
  };
  const killNow = () => {
    if (current && !current.exited()) current.kill('SIGKILL');
  };
  process.once('exit', killNow);
  const stop = async () => {
    process.off('exit', killNow);
    await halt();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await launch();
  } catch (err) {
    await stop();
    throw err;
  }
  say(`PostgreSQL ${path.basename(path.dirname(bin))} on 127.0.0.1:${port} (data in ${dataDir})`);
  return {
    port,
    user,
    dir,
    stop,
    async restart(downMs = 0) {
      await halt();
      if (downMs) await sleep(downMs); // connections are refused meanwhile
      await launch();
    },
  };
}

// ---- 3–5. the Temporal server on it ------------------------------------------------------------------------------

export interface PostgresTemporalOptions {
  namespace?: string;
  /** Frontend gRPC port; 0/undefined = a free one. */
  port?: number;
  /** Server log level (default warn). */
  logLevel?: string;
  say?: Say;
}

export interface PostgresTemporal {
  address: string;
  namespace: string;
  binaries: TemporalServerBinaries;
  postgres: PostgresCluster;
  /** Server config and log folder. */
  dir: string;
  logFile: string;
  /** SIGTERM the server (PostgreSQL keeps running), for fault tests. */
  stopServer(): Promise<void>;
  /** Start it again on the same ports and databases; resolves once the frontend serves the namespace. */
  startServer(): Promise<void>;
  stop(): Promise<void>;
}

/** `temporal-server validate-dynamic-config`: errors as lines (empty = valid). */
export async function validateDynamicConfig(serverBin: string, file = DYNAMIC_CONFIG_FILE): Promise<string[]> {
  const r = await run(serverBin, ['validate-dynamic-config', file]);
  const problems = r.stdout.split('\n').filter((l) => /^\s+(error|warning):/.test(l));
  if (r.code !== 0 && problems.length === 0) problems.push(`exit ${r.code}: ${r.stderr.trim()}`);
  return problems;
}

/**
 * A free port below 32768: Temporal stores membership ports in a PostgreSQL SMALLINT column (cluster_membership.rpc_port),
 * and the kernel's ephemeral range (what freePort() gets) starts above it ("value … is out of range for type smallint").
 */
export async function freeLowPort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const ok = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, host, () => srv.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port between 20000 and 32000');
}

interface Ports {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
}

/** The server config: what the 1.29 image renders from docker-compose.yml's environment, on loopback ports. */
export function serverConfigYaml(p: { pgPort: number; user: string; ports: Ports; logLevel: string }): string {
  const store = (db: string, maxConns: number) => `
      sql:
        pluginName: postgres12
        databaseName: ${db}
        connectAddr: "127.0.0.1:${p.pgPort}"
        connectProtocol: tcp
        user: ${p.user}
        password: ""
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: 1h`;
  const svc = (grpc: number, membership: number, http?: number) => `
    rpc:
      grpcPort: ${grpc}
      membershipPort: ${membership}
      bindOnIP: 127.0.0.1${http ? `\n      httpPort: ${http}` : ''}`;
  return `# Written by temporal/postgres-server.ts for a throw-away test server.
log:
  stdout: true
  level: ${p.logLevel}
persistence:
  numHistoryShards: 4
  defaultStore: default
  visibilityStore: visibility
  datastores:
    default:${store('temporal', 20)}
    visibility:${store('temporal_visibility', 10)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  pprof:
    port: 0
services:
  frontend:${svc(p.ports.frontend, p.ports.frontendMembership, p.ports.frontendHttp)}
  history:${svc(p.ports.history, p.ports.historyMembership)}
  matching:${svc(p.ports.matching, p.ports.matchingMembership)}
  worker:${svc(p.ports.worker, p.ports.workerMembership)}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:${p.ports.frontend}"
dcRedirectionPolicy:
  policy: noop
archival:
  history:
    state: disabled
  visibility:
    state: disabled
namespaceDefaults:
  archival:
    history:
      state: disabled
    visibility:
      state: disabled
dynamicConfigClient:
  filepath: ${JSON.stringify(DYNAMIC_CONFIG_FILE)}
  pollInterval: 10s
`;
}

async function waitForFrontend(address: string, namespace: string | undefined, isExited: () => boolean, log: string) {
  const deadline = Date.now() + 120_000;
  let last = '';
  for (;;) {
    if (isExited()) {
      const tail = existsSync(log)
        ? readFileSync(log, 'utf8')
            .trim()
            .split('\n')
            .slice(-8)
            .map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l))
            .join('\n')
        : '';
      throw new Error(`temporal-server exited at start-up:\n${tail}`);
    }
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.withDeadline(Date.now() + 3000, async () => {
          await conn.workflowService.getSystemInfo({});
          if (namespace) await conn.workflowService.describeNamespace({ namespace });
        });
        return;
      } finally {
        await conn.close();
      }
    } catch (err) {
      last = (err as Error).message.split('\n')[0] ?? '';
    }
    if (Date.now() > deadline) throw new Error(`temporal-server did not serve on ${address} within 120 s: ${last}`);
    await sleep(300);
  }
}

export async function startPostgresTemporal(opts: PostgresTemporalOptions = {}): Promise<PostgresTemporal> {
  const say = opts.say ?? defaultSay;
  const namespace = opts.namespace ?? 'default';
  const binaries = await ensureTemporalServerBinaries(say);
  const problems = await validateDynamicConfig(binaries.server);
  if (problems.length) throw new Error(`${DYNAMIC_CONFIG_FILE} is not valid dynamic config:\n${problems.join('\n')}`);
  const temporalCli = await findTemporalCli(say);

  const postgres = await startPostgresCluster({ say });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'approval-plus-temporal-pg-'));
  let child: ChildProcess | undefined;
  let exited = true;
  let exitPromise: Promise<void> = Promise.resolve();
  const logFile = path.join(dir, 'temporal-server.log');
  const killNow = () => {
    if (!exited) child?.kill('SIGKILL');
  };
  const stopServer = async () => {
    if (exited || !child) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child?.kill('SIGKILL'), 20_000);
    await exitPromise;
    clearTimeout(t);
  };
  const stop = async () => {
    process.off('exit', killNow);
    await stopServer();
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killNow);

  try {
    // Schema: exactly what docker-compose's temporal-schema service runs (deploy/temporal/setup-postgres.sh).
    const sqlArgs = ['--plugin', 'postgres12', '--ep', '127.0.0.1', '-p', String(postgres.port), '-u', postgres.user];
    for (const [db, kind] of [
      ['temporal', 'temporal'],
      ['temporal_visibility', 'visibility'],
    ] as const) {
      await runOk(`create database ${db}`, binaries.sqlTool, [...sqlArgs, '--db', db, 'create']);
      await runOk(`setup-schema ${db}`, binaries.sqlTool, [...sqlArgs, '--db', db, 'setup-schema', '-v', '0.0']);
      await runOk(`update-schema ${db}`, binaries.sqlTool, [
        ...sqlArgs,
        '--db',
        db,
        'update-schema',
        '-d',
        path.join(binaries.schemaDir, kind, 'versioned'),
      ]);
    }
    say(`Temporal schema applied (${binaries.schemaDir})`);

    const ports: Ports = {
      frontend: opts.port || (await freeLowPort()),
      frontendHttp: await freeLowPort(),
      frontendMembership: await freeLowPort(),
      history: await freeLowPort(),
      historyMembership: await freeLowPort(),
      matching: await freeLowPort(),
      matchingMembership: await freeLowPort(),
      worker: await freeLowPort(),
      workerMembership: await freeLowPort(),
    };
    mkdirSync(path.join(dir, 'config'));
    writeFileSync(
      path.join(dir, 'config', 'development.yaml'),
      serverConfigYaml({ pgPort: postgres.port, user: postgres.user, ports, logLevel: opts.logLevel ?? 'warn' })
    );
    const address = `127.0.0.1:${ports.frontend}`;

    const startServer = async (ns?: string) => {
      if (!exited) return;
      const fd = openSync(logFile, 'a');
      exited = false;
      child = spawn(
        binaries.server,
        ['--root', dir, '--config', 'config', '--env', 'development', '--allow-no-auth', 'start'],
        { cwd: dir, stdio: ['ignore', fd, fd] }
      );
      const c = child;
      exitPromise = new Promise<void>((resolve) =>
        c.once('exit', () => {
          exited = true;
          closeSync(fd);
          resolve();
        })
      );
      await waitForFrontend(address, ns, () => exited, logFile);
    };

    const t0 = Date.now();
    await startServer();
    say(`temporal-server ${binaries.version} serving on ${address} (${Date.now() - t0} ms; log ${logFile})`);
    await runOk('namespace create', temporalCli, [
      'operator',
      'namespace',
      'create',
      '--address',
      address,
      '--namespace',
      namespace,
      '--retention',
      '1d',
    ]);
    await waitForFrontend(address, namespace, () => exited, logFile);
    const connection = await Connection.connect({ address });
    try {
      await ensureSearchAttributes(connection, namespace);
      // Visibility accepts a query on the new attributes only once the namespace's mapping is visible here.
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          await connection.workflowService.listWorkflowExecutions({
            namespace,
            query: `ApprovalCode = 'probe' AND GrantPhase = 'active' AND RequesterRef = 'x'`,
            pageSize: 1,
          });
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await sleep(500);
        }
      }
    } finally {
      await connection.close();
    }
    say(`namespace ${namespace} ready, search attributes registered`);

    return {
      address,
      namespace,
      binaries,
      postgres,
      dir,
      logFile,
      stopServer,
      startServer: () => startServer(namespace),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
