import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { checkIngress, checkWorker, workerIdentityPrefix } from '../deploy/healthcheck';
import { bundleWorkflows } from '../scripts/bundle-workflows';
import { ConfigError, ENV_VARIABLES, envSchema, loadConfig, PROCESS_ENV_VARIABLES } from '../config/config';
import { TEMPORAL_CLI_VERSION } from '../temporal/find-cli';
import { cliServerVersion, TEMPORAL_SERVER_VERSION } from '../temporal/postgres-server';
import { workflowIdFor } from '../workflows/definitions';
import { ROOT, startTestStack, until, type TestStack } from './support/harness';

/**
 * The production topology, checked statically (there is no Docker engine on the development machines, so
 * docker-compose.yml and the Dockerfile are never run here): structure, pinned images, health checks, start-up order,
 * volumes, the app's environment against config/config.ts, the image's user and workflow bundle. Then, against a
 * real Temporal dev server, the two pieces the image adds: the prebuilt workflow bundle and the health-check script.
 */

interface Healthcheck {
  test: string[] | string;
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
}
interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  entrypoint?: string[] | string;
  profiles?: string[];
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string | number | boolean>;
  volumes?: string[];
  ports?: string[];
  healthcheck?: Healthcheck;
  restart?: string;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const composeText = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
const compose = parseYaml(composeText, { merge: true }) as Compose;
const services = compose.services;
const APP_SERVICES = ['worker', 'ingress', 'sandbox'];
const LONG_RUNNING = ['postgresql', 'temporal', 'temporal-ui', 'worker', 'ingress', 'sandbox'];
const ONE_SHOT = ['temporal-schema', 'temporal-namespace'];

/** .env.example as compose reads a .env file: NAME=value lines. */
function readEnvFile(file: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) vars.set(m[1]!, m[2]!);
  }
  return vars;
}
const envExample = readEnvFile(path.join(ROOT, '.env.example'));

/** Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+a}, ${VAR+a}. */
function interpolate(value: string, vars: Map<string, string>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (all, braced?: string, op?: string, arg?: string, bare?: string) => {
      if (all === '$$') return '$';
      const name = (braced ?? bare)!;
      const set = vars.has(name);
      const val = vars.get(name) ?? '';
      const empty = !set || (op?.startsWith(':') && val === '');
      switch (op) {
        case ':-':
        case '-':
          return empty ? arg! : val;
        case ':?':
        case '?':
          if (empty) throw new Error(`${name}: ${arg}`);
          return val;
        case ':+':
        case '+':
          return empty ? '' : arg!;
        default:
          return val;
      }
    }
  );
}

/** Every variable name compose interpolates. */
function referencedVariables(text: string): Set<string> {
  const names = new Set<string>();
  const uncommented = text
    .split('\n')
    .map((l) => l.replace(/(^|\s)#.*$/, ''))
    .join('\n')
    .replace(/\$\$/g, '');
  for (const m of uncommented.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)/g))
    names.add(m[1] ?? m[2]!);
  return names;
}

/** A service's environment as the container gets it, for a given .env. */
function containerEnv(svc: Service, vars: Map<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(svc.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), vars)]));
}

/** Host path of the bind mount holding `containerPath`, for a given .env. */
function hostPathFor(svc: Service, containerPath: string, vars: Map<string, string>): string | undefined {
  for (const v of svc.volumes ?? []) {
    const [src, dst] = interpolate(v, vars).split(':');
    if (dst && (containerPath === dst || containerPath.startsWith(dst + '/')) && /^\.{0,2}\//.test(src!))
      return path.resolve(ROOT, src!) + containerPath.slice(dst.length);
  }
  return undefined;
}

function imageOf(name: string): string {
  const image = services[name]!.image;
  assert.ok(image, `${name} has an image`);
  return interpolate(image, new Map());
}

describe('docker-compose.yml (static)', () => {
  it('has the whole topology: PostgreSQL, schema job, Temporal, namespace job, UI, worker, ingress (+ sandbox)', () => {
    for (const s of [...LONG_RUNNING, ...ONE_SHOT]) assert.ok(services[s], `service ${s}`);
    assert.deepEqual(services.worker!.command, ['worker']);
    assert.deepEqual(services.ingress!.command, ['ingress']);
    assert.deepEqual(services.sandbox!.command, ['start']);
    const cli = readFileSync(path.join(ROOT, 'cli', 'main.ts'), 'utf8');
    for (const cmd of ['worker', 'ingress', 'start']) assert.match(cli, new RegExp(`\\.command\\('${cmd}'\\)`));
    assert.deepEqual(services.worker!.profiles, ['app']);
    assert.deepEqual(services.ingress!.profiles, ['app']);
    assert.deepEqual(services.sandbox!.profiles, ['sandbox']);
    for (const s of ['postgresql', 'temporal', 'temporal-ui', ...ONE_SHOT])
      assert.equal(services[s]!.profiles, undefined, `${s} runs in every profile`);
  });

  it('pins every image to an exact version: no latest, no bare major', () => {
    for (const [name, svc] of Object.entries(services)) {
      const image = imageOf(name);
      const m = /^([a-z0-9./_-]+):([\w.-]+)$/.exec(image);
      assert.ok(m, `${name}: ${image} has a tag`);
      const tag = m[2]!;
      assert.notEqual(tag, 'latest', `${name}: ${image}`);
      assert.match(tag, /^\d+\.\d+(\.\d+)?(-[\w.-]+)?$/, `${name}: ${image} is pinned to an exact version`);
      if (APP_SERVICES.includes(name)) assert.ok(svc.build, `${name} builds the image from this checkout`);
    }
  });

  it('runs the Temporal server, admin-tools and UI of the version the tests prove (server 1.29.1)', () => {
    const server = TEMPORAL_SERVER_VERSION.replace(/^v/, '');
    assert.equal(imageOf('temporal'), `temporalio/server:${server}`);
    for (const s of ONE_SHOT)
      assert.match(imageOf(s), new RegExp(`^temporalio/admin-tools:${server.replace(/\./g, '\\.')}-`));
    assert.match(imageOf('temporal-ui'), /^temporalio\/ui:2\.\d+\.\d+$/);
    assert.match(imageOf('postgresql'), /^postgres:1[2-7]\.\d+$/, 'the postgres12 plugin needs PostgreSQL ≥ 12');
    const fromCli = cliServerVersion();
    if (fromCli)
      assert.equal(fromCli, TEMPORAL_SERVER_VERSION, `the server version the CLI ${TEMPORAL_CLI_VERSION} embeds`);
  });

  it('has a health check on every long-running service, none on the one-shot jobs', () => {
    for (const s of LONG_RUNNING) {
      const hc = services[s]!.healthcheck;
      assert.ok(hc?.test && hc.interval && hc.timeout && hc.retries, `${s} has a complete healthcheck`);
    }
    for (const s of ONE_SHOT) {
      assert.equal(services[s]!.healthcheck, undefined, s);
      assert.match(services[s]!.restart ?? '', /^on-failure/, `${s} retries on failure, then stays done`);
    }
    assert.deepEqual(services.worker!.healthcheck!.test, [
      'CMD',
      'node',
      '--import',
      'tsx',
      'deploy/healthcheck.ts',
      'worker',
    ]);
    assert.deepEqual(services.ingress!.healthcheck!.test, [
      'CMD',
      'node',
      '--import',
      'tsx',
      'deploy/healthcheck.ts',
      'ingress',
    ]);
  });

  it('starts in order: PostgreSQL healthy → schema done → Temporal healthy → namespace done → worker healthy → ingress', () => {
    const dep = (s: string) =>
      Object.fromEntries(Object.entries(services[s]!.depends_on ?? {}).map(([k, v]) => [k, v.condition]));
    assert.deepEqual(dep('temporal-schema'), { postgresql: 'service_healthy' });
    assert.deepEqual(dep('temporal'), { 'temporal-schema': 'service_completed_successfully' });
    assert.deepEqual(dep('temporal-namespace'), { temporal: 'service_healthy' });
    assert.deepEqual(dep('temporal-ui'), { temporal: 'service_healthy' });
    assert.deepEqual(dep('worker'), { 'temporal-namespace': 'service_completed_successfully' });
    assert.deepEqual(dep('ingress'), { worker: 'service_healthy' });
    assert.deepEqual(dep('sandbox'), { 'temporal-namespace': 'service_completed_successfully' });
    // Every dependency is a service that exists, and every condition is one compose knows.
    for (const [name, svc] of Object.entries(services))
      for (const [d, { condition }] of Object.entries(svc.depends_on ?? {})) {
        assert.ok(services[d], `${name} depends on ${d}`);
        assert.ok(['service_started', 'service_healthy', 'service_completed_successfully'].includes(condition));
      }
  });

  it('keeps state in declared volumes and mounts files that exist', () => {
    const declared = Object.keys(compose.volumes ?? {});
    assert.ok(services.postgresql!.volumes!.includes('postgres-data:/var/lib/postgresql/data'));
    for (const [name, svc] of Object.entries(services)) {
      for (const v of svc.volumes ?? []) {
        const [src] = interpolate(v, envExample).split(':');
        if (/^\.{0,2}\//.test(src!)) assert.ok(existsSync(path.resolve(ROOT, src!)), `${name}: ${src} exists`);
        else assert.ok(declared.includes(src!), `${name}: volume ${src} is declared`);
      }
    }
    // The scripts and the dynamic config the Temporal services are given.
    for (const s of ONE_SHOT) {
      const script = [services[s]!.command].flat()[0]!;
      const host = hostPathFor(services[s]!, script, envExample);
      assert.ok(host && existsSync(host), `${s}: ${script} is mounted from the repo`);
      assert.match(readFileSync(host, 'utf8'), /^#!\/bin\/sh\n/);
      assert.match(readFileSync(host, 'utf8'), /^set -eu$/m);
    }
    const temporal = services.temporal!;
    const dc = `/etc/temporal/${String(temporal.environment!.DYNAMIC_CONFIG_FILE_PATH)}`;
    const dcHost = hostPathFor(temporal, dc, envExample);
    assert.ok(dcHost && existsSync(dcHost), `${dc} comes from the repo`);
    const dynamic = parseYaml(readFileSync(dcHost, 'utf8')) as Record<string, { value: unknown }[]>;
    for (const [key, values] of Object.entries(dynamic)) {
      assert.ok(Array.isArray(values) && values.every((v) => 'value' in v), `dynamic config ${key}: a list of values`);
    }
  });

  it('publishes the UI and Temporal gRPC on the loopback by default (no login on either)', () => {
    assert.deepEqual(
      services['temporal-ui']!.ports!.map((p) => interpolate(p, new Map())),
      ['127.0.0.1:8080:8080']
    );
    assert.deepEqual(
      services.temporal!.ports!.map((p) => interpolate(p, new Map())),
      ['127.0.0.1:7233:7233']
    );
    assert.equal(services.postgresql!.ports, undefined, 'PostgreSQL is not published');
  });

  it('sets only variables config/config.ts knows on the app services', () => {
    const known = new Set<string>([...ENV_VARIABLES, ...PROCESS_ENV_VARIABLES]);
    for (const s of APP_SERVICES)
      for (const name of Object.keys(services[s]!.environment ?? {}))
        assert.ok(known.has(name), `${s}: ${name} is not a variable the app reads (config/config.ts)`);
  });

  it('passes every production variable of the app through to the worker and ingress', () => {
    // Not for containers: the dev server's UI port, the simulators' ports and settings, the sandbox switch and data
    // folder (set per service), the ingress address (set on the ingress).
    const notPassed = (n: string) => /_SIM_/.test(n) || ['TEMPORAL_UI_PORT', 'DATA_DIR', 'PORT', 'HOST'].includes(n);
    const worker = Object.keys(services.worker!.environment!);
    const ingress = Object.keys(services.ingress!.environment!);
    for (const name of ENV_VARIABLES.filter((n) => !notPassed(n))) {
      assert.ok(worker.includes(name), `worker: ${name} missing from docker-compose.yml (and .env.example)`);
      assert.ok(ingress.includes(name), `ingress: ${name} missing from docker-compose.yml (and .env.example)`);
    }
    assert.equal(services.worker!.environment!.SANDBOX, 'false');
    assert.equal(services.ingress!.environment!.SANDBOX, 'false');
    assert.equal(services.ingress!.environment!.HOST, '0.0.0.0');
  });

  it("spells out the app's own defaults, so an empty .env gives what the app would", () => {
    // Deliberately different from the app's defaults (which suit a laptop, not a container).
    const deliberate = new Set([
      'SANDBOX',
      'HOST',
      'TEMPORAL_ADDRESS',
      'APPROVAL_PLUS_CONFIG',
      'FEISHU_BASE_URL',
      'PORT',
      'DATA_DIR',
    ]);
    const shape = envSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean; data?: unknown } }>;
    for (const s of APP_SERVICES) {
      for (const [name, value] of Object.entries(containerEnv(services[s]!, new Map()))) {
        if (deliberate.has(name) || !shape[name]) continue;
        const fromCompose = shape[name].safeParse(value);
        const fromApp = shape[name].safeParse(undefined);
        // No app default and nothing set: the app's own check names the variable (next tests).
        if (value === '' && fromApp.data === undefined) continue;
        assert.ok(fromCompose.success, `${s}: ${name}=${JSON.stringify(value)} with an empty .env is valid`);
        assert.deepEqual(fromCompose.data, fromApp.data, `${s}: ${name}'s compose default is the app's default`);
      }
    }
  });

  it('documents every variable it reads in .env.example, and .env.example holds nothing it does not read', () => {
    const referenced = referencedVariables(composeText);
    for (const name of referenced) assert.ok(envExample.has(name), `${name} is documented in .env.example`);
    for (const name of envExample.keys())
      assert.ok(
        referenced.has(name) || name === 'COMPOSE_PROFILES',
        `.env.example: ${name} is used by docker-compose.yml`
      );
    assert.equal(envExample.get('COMPOSE_PROFILES'), 'app');
  });

  it('with .env.example filled in, the worker and ingress environments are a valid production configuration', () => {
    for (const s of ['worker', 'ingress']) {
      const env = containerEnv(services[s]!, envExample);
      const routes = hostPathFor(services[s]!, env.APPROVAL_PLUS_CONFIG!, envExample);
      assert.ok(routes, `${s}: APPROVAL_PLUS_CONFIG is on a mounted folder`);
      const config = loadConfig({ ...env, APPROVAL_PLUS_CONFIG: routes });
      assert.equal(config.sandbox, false);
      assert.equal(config.temporal.address, 'temporal:7233');
      assert.equal(config.nac.driver, 'ise');
      assert.equal(config.feishu.baseUrl, 'https://open.feishu.cn');
      assert.ok(config.routes.length >= 1);
    }
  });

  it('with an empty .env, the app stops with one clear line naming what is missing (no invalid defaults)', () => {
    const env = containerEnv(services.worker!, new Map());
    const routes = hostPathFor(services.worker!, env.APPROVAL_PLUS_CONFIG!, new Map());
    assert.throws(
      () => loadConfig({ ...env, APPROVAL_PLUS_CONFIG: routes }),
      (err: unknown) =>
        err instanceof ConfigError && /^(missing|invalid) (FEISHU_APP_ID|NAC_DRIVER)\b/.test(err.message)
    );
    const sandbox = loadConfig(containerEnv(services.sandbox!, new Map()));
    assert.equal(sandbox.sandbox, true);
    assert.equal(sandbox.temporal.address, 'temporal:7233');
  });
});

describe('Dockerfile and .dockerignore (static)', () => {
  const lines = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const instr = lines.map((l) => {
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(l)!;
    return { op: op!.toUpperCase(), rest: rest! };
  });
  const args = new Map(
    instr.filter((i) => i.op === 'ARG' && i.rest.includes('=')).map((i) => i.rest.split('=') as [string, string])
  );
  const stages: { from: string; name?: string; body: typeof instr }[] = [];
  for (const i of instr) {
    if (i.op === 'FROM') {
      const [from, , name] = i.rest.split(/\s+/);
      stages.push({ from: interpolate(from!, args), name, body: [] });
    } else stages.at(-1)?.body.push(i);
  }
  const final = stages.at(-1)!;

  it('is multi-stage and builds FROM pinned images', () => {
    assert.ok(stages.length >= 3, 'deps, build and runtime stages');
    const names = stages.map((s) => s.name);
    for (const s of stages) {
      if (names.includes(s.from)) continue; // FROM an earlier stage
      assert.match(s.from, /^[a-z0-9./_-]+:\d+\.\d+\.\d+[\w.-]*$/, `${s.from} is pinned to an exact version`);
    }
    assert.match(final.from, /^node:20\./, 'Node 20, as package.json engines');
  });

  it('installs production dependencies only, from the lock file', () => {
    const npm = instr.filter((i) => i.op === 'RUN' && /\bnpm\b/.test(i.rest)).map((i) => i.rest);
    assert.ok(npm.length > 0);
    for (const r of npm) assert.match(r, /npm ci --omit=dev/);
  });

  it('runs as a non-root user', () => {
    const users = final.body.filter((i) => i.op === 'USER').map((i) => i.rest);
    assert.ok(users.length > 0, 'the runtime stage sets USER');
    assert.ok(!['root', '0', '0:0'].includes(users.at(-1)!), `USER ${users.at(-1)} is not root`);
    const ops = final.body.map((i) => i.op);
    const lastUser = ops.lastIndexOf('USER');
    assert.ok(lastUser < ops.lastIndexOf('ENTRYPOINT') && lastUser < ops.lastIndexOf('CMD'), 'USER before the start');
    // The node image's user `node` is uid 1000.
    assert.equal(users.at(-1), 'node');
  });

  it('builds the workflow bundle at build time and points WORKFLOW_BUNDLE at it', () => {
    const bundleRun = stages.flatMap((s) =>
      s.body.filter((i) => i.op === 'RUN' && i.rest.includes('scripts/bundle-workflows.ts')).map((i) => ({ s, i }))
    )[0];
    assert.ok(bundleRun, 'a RUN of scripts/bundle-workflows.ts');
    const out = /bundle-workflows\.ts\s+(\S+)/.exec(bundleRun.i.rest)?.[1];
    assert.ok(out?.startsWith('/'), 'the bundle is written to an absolute path');
    const env = final.body
      .filter((i) => i.op === 'ENV')
      .map((i) => i.rest)
      .join(' ');
    assert.match(env, new RegExp(`WORKFLOW_BUNDLE=${out!.replace(/\./g, '\\.')}(\\s|$)`));
    const copies = final.body.filter((i) => i.op === 'COPY' && i.rest.includes(`--from=${bundleRun.s.name}`));
    assert.ok(
      copies.some((c) => {
        const [src] = c.rest.replace(/--\S+\s+/g, '').split(/\s+/);
        return out!.startsWith(src!.replace(/\/?$/, '/')) || out === src;
      }),
      'the runtime stage copies the bundle from the stage that built it'
    );
    for (const name of env.match(/\b[A-Z_]+(?==)/g) ?? [])
      assert.ok(
        [...ENV_VARIABLES, ...PROCESS_ENV_VARIABLES, 'NODE_ENV'].includes(name as never),
        `ENV ${name} is a variable the app reads (or NODE_ENV)`
      );
  });

  it('starts the CLI, so the compose command picks the role', () => {
    const entry = final.body.filter((i) => i.op === 'ENTRYPOINT').at(-1)!.rest;
    assert.deepEqual(JSON.parse(entry), ['node', 'bin/approval-plus.mjs']);
    assert.ok(existsSync(path.join(ROOT, 'bin', 'approval-plus.mjs')));
  });

  it('keeps secrets, local state and node_modules out of the build context', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const p of ['node_modules', '.git', '.data', '.env', 'dist'])
      assert.ok(ignored.includes(p), `.dockerignore: ${p}`);
    for (const p of ['deploy', 'config', 'workflows', 'bin']) assert.ok(!ignored.includes(p), `${p} is in the image`);
  });

  it('leaves out nothing the image runs: no source reachable from the entry points is ignored', () => {
    const ignored = new Set(
      readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#') && !l.startsWith('!'))
    );
    const entries = ['cli/main.ts', 'deploy/healthcheck.ts', 'scripts/bundle-workflows.ts', 'workflows/index.ts'];
    const seen = new Set<string>();
    const queue = entries.map((e) => path.join(ROOT, e));
    while (queue.length) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const top = path.relative(ROOT, file).split(path.sep)[0]!;
      assert.ok(!ignored.has(top), `${path.relative(ROOT, file)} is needed at run time but .dockerignore drops ${top}`);
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/(?:from|import\(|require\()\s*'(\.{1,2}\/[^']+)'/g)) {
        const base = path.resolve(path.dirname(file), m[1]!);
        const hit = [base, `${base}.ts`, path.join(base, 'index.ts')].find(
          (p) => existsSync(p) && statSync(p).isFile()
        );
        if (hit && hit.endsWith('.ts')) queue.push(hit);
      }
    }
    assert.ok(seen.size > 30, `followed the imports (${seen.size} files)`);
  });
});

describe('the prebuilt workflow bundle and the container health checks (real Temporal dev server)', () => {
  let t: TestStack;
  let bundleDir: string;
  before(async () => {
    t = await startTestStack({ worker: false });
    bundleDir = mkdtempSync(path.join(os.tmpdir(), 'approval-plus-bundle-'));
  });
  after(async () => {
    await t?.close();
    if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
  });

  it('a worker process on WORKFLOW_BUNDLE runs an approval end to end; the health checks follow it', async () => {
    const env = { ...t.env, LOG_LEVEL: 'silent' };
    // No worker yet: the worker check says why; the ingress answers but is not ready.
    const noWorker = await checkWorker(env);
    assert.match(
      noWorker ?? '',
      new RegExp(`no poller of this worker \\(${workerIdentityPrefix().replace(/\./g, '\\.')}`)
    );
    assert.match((await checkIngress(env)) ?? '', /ingress not ready \(HTTP 503\)/);
    assert.match((await checkIngress({ PORT: '1' })) ?? '', /ingress not answering on port 1/);
    assert.match((await checkWorker({ ...env, TEMPORAL_ADDRESS: '127.0.0.1:1' })) ?? '', /Temporal unreachable/);

    // The worker honours WORKFLOW_BUNDLE (it does not quietly bundle from source instead): a missing file stops it.
    t.env.WORKFLOW_BUNDLE = path.join(bundleDir, 'missing.js');
    const broken = t.spawnWorker();
    const [code] = (await once(broken, 'exit')) as [number | null];
    assert.notEqual(code, 0, 'a worker with a missing WORKFLOW_BUNDLE exits with an error');

    const { path: bundle, bytes } = await bundleWorkflows(path.join(bundleDir, 'workflow-bundle.js'), { quiet: true });
    assert.ok(bytes > 10_000 && statSync(bundle).size === bytes);
    t.env.WORKFLOW_BUNDLE = bundle;
    const worker = t.spawnWorker();
    let stderr = '';
    worker.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    await until(
      'the worker polls',
      async () => ((await checkWorker(env)) === undefined ? true : undefined),
      60_000
    ).catch((err: Error) => {
      throw new Error(`${err.message}; worker stderr: ${stderr.slice(-2000)}`);
    });
    assert.equal(await checkIngress(env), undefined, 'ingress ready once a worker polls');

    const instance = t.createApproval('00:1B:44:77:00:01');
    const status = await t.waitForPhase(workflowIdFor('feishu', instance), ['active'], 90_000);
    assert.equal(status.macs[0]!.state, 'granted');
    assert.ok(await t.iseEndpoint('00:1B:44:77:00:01'));
    // The other host's worker would not make this one healthy.
    assert.match((await checkWorker(env, 'some-other-container')) ?? '', /no poller of this worker/);
  });
});
