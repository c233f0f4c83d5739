import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Connection } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { parse as parseYaml } from 'yaml';
import { bundleWorkflows } from '../scripts/bundle-workflows';
import { ConfigError, ENV_VARIABLES, envSchema, loadConfig, PROCESS_ENV_VARIABLES } from '../config/config';
import { TEMPORAL_CLI_VERSION } from '../temporal/find-cli';
import { checkSearchAttributes, freePort, searchAttributeFlags } from '../temporal/dev-server';
import { cliServerVersion, TEMPORAL_SERVER_VERSION } from '../temporal/postgres-server';
import { SEARCH_ATTRIBUTES, workflowIdFor } from '../workflows/definitions';
import { ROOT, startTestStack, until, type TestStack } from './support/harness';

/**
 * The production topology, checked statically (there is no Docker engine on the development machines, so
 * docker-compose.yml and the Dockerfile are never run here): structure, pinned images, health checks, start-up order,
 * volumes, the app's environment against config/config.ts, the image's stages, user and entry point. Then, for real,
 * the pieces the image and the compose file run: the compiled JavaScript (`npm run build`) with the prebuilt workflow
 * bundle, against a Temporal dev server; deploy/healthcheck.sh against live endpoints; and the namespace job
 * (deploy/temporal/create-namespace.sh) against a fresh server. test/compose-spec.test.ts loads the file with the
 * Compose Specification's own parser.
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
  expose?: string[];
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
/** Set on the worker alone, with the shared contract's values (not from .env). */
const WORKER_ONLY = [
  'WORKER_HTTP_PORT',
  'TEMPORAL_METRICS_ADDRESS',
  'WORKER_SHUTDOWN_GRACE',
  'WORKER_MAX_CACHED_WORKFLOWS',
];

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

  it('runs the 1.29 line the tests prove, at a patch release no older than theirs; admin-tools of the same release', () => {
    const tested = TEMPORAL_SERVER_VERSION.replace(/^v/, '').split('.').map(Number);
    const server = /^temporalio\/server:(\d+)\.(\d+)\.(\d+)$/.exec(imageOf('temporal'));
    assert.ok(server, imageOf('temporal'));
    const [major, minor, patch] = server.slice(1).map(Number);
    assert.deepEqual(
      [major, minor],
      tested.slice(0, 2),
      `the server's minor is the tested ${TEMPORAL_SERVER_VERSION}'s`
    );
    assert.ok(patch! >= tested[2]!, `patch ${patch} ≥ the tested ${tested[2]}`);
    // The schema jobs' tools and schema files: admin-tools of the same minor, no newer than the server. The schema and
    // docker/config_template.yaml are byte-identical from v1.29.1 to v1.29.7 (git diff in temporalio/temporal), so the
    // 1.29.1 image (tag as Temporal's samples-server pins it) applies the 1.29.7 schema.
    for (const s of ONE_SHOT) {
      const tools = /^temporalio\/admin-tools:(\d+)\.(\d+)\.(\d+)-tctl-[\d.]+-cli-[\d.]+$/.exec(imageOf(s));
      assert.ok(tools, `${s}: ${imageOf(s)}`);
      assert.deepEqual(tools.slice(1, 3).map(Number), [major, minor], `${s}: admin-tools of the server's minor`);
      assert.ok(Number(tools[3]) <= patch!, `${s}: admin-tools no newer than the server`);
    }
    assert.match(imageOf('temporal-ui'), /^temporalio\/ui:2\.\d+\.\d+$/);
    assert.match(imageOf('postgresql'), /^postgres:16\.\d+$/, 'PostgreSQL 16 (the postgres12 plugin needs ≥ 12)');
    const fromCli = cliServerVersion();
    if (fromCli)
      assert.equal(fromCli, TEMPORAL_SERVER_VERSION, `the server version the CLI ${TEMPORAL_CLI_VERSION} embeds`);
  });

  it('has a health check on every long-running service, none starting Node; none on the one-shot jobs', () => {
    for (const s of LONG_RUNNING) {
      const hc = services[s]!.healthcheck;
      assert.ok(
        hc?.test && hc.interval && hc.timeout && hc.retries && hc.start_period,
        `${s} has a complete healthcheck`
      );
      assert.ok(![hc.test].flat().some((w) => /\bnode\b/.test(w)), `${s}: the health check starts no Node process`);
    }
    for (const s of ONE_SHOT) {
      assert.equal(services[s]!.healthcheck, undefined, s);
      assert.match(services[s]!.restart ?? '', /^on-failure/, `${s} retries on failure, then stays done`);
    }
    // The worker's liveness and the ingress's readiness, by bash's /dev/tcp (run for real below).
    assert.deepEqual(services.worker!.healthcheck!.test, ['CMD', 'bash', '/app/deploy/healthcheck.sh', 'worker']);
    assert.deepEqual(services.ingress!.healthcheck!.test, ['CMD', 'bash', '/app/deploy/healthcheck.sh', 'ingress']);
    assert.deepEqual(services.sandbox!.healthcheck!.test, ['CMD', 'bash', '/app/deploy/healthcheck.sh', 'ingress']);
    // Temporal is asked over gRPC, not probed for an open port.
    assert.deepEqual(services.temporal!.healthcheck!.test, [
      'CMD',
      'temporal',
      'operator',
      'cluster',
      'health',
      '--address',
      '127.0.0.1:7233',
    ]);
  });

  it('starts in order: PostgreSQL healthy → schema done → Temporal healthy → namespace done → worker, ingress', () => {
    const dep = (s: string) =>
      Object.fromEntries(Object.entries(services[s]!.depends_on ?? {}).map(([k, v]) => [k, v.condition]));
    assert.deepEqual(dep('temporal-schema'), { postgresql: 'service_healthy' });
    assert.deepEqual(dep('temporal'), { 'temporal-schema': 'service_completed_successfully' });
    assert.deepEqual(dep('temporal-namespace'), { temporal: 'service_healthy' });
    assert.deepEqual(dep('temporal-ui'), { temporal: 'service_healthy' });
    assert.deepEqual(dep('worker'), { 'temporal-namespace': 'service_completed_successfully' });
    // The ingress does not wait for a worker: its readiness is Temporal accepting starts.
    assert.deepEqual(dep('ingress'), { 'temporal-namespace': 'service_completed_successfully' });
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
      assert.equal(spawnSync('sh', ['-n', host]).status, 0, `${s}: ${script} parses (sh -n)`);
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

  it('publishes the UI and Temporal gRPC on the loopback by default; metrics and the worker endpoint not at all', () => {
    assert.deepEqual(
      services['temporal-ui']!.ports!.map((p) => interpolate(p, new Map())),
      ['127.0.0.1:8080:8080']
    );
    assert.deepEqual(
      services.temporal!.ports!.map((p) => interpolate(p, new Map())),
      ['127.0.0.1:7233:7233']
    );
    assert.equal(services.postgresql!.ports, undefined, 'PostgreSQL is not published');
    assert.equal(services.worker!.ports, undefined, 'the worker publishes nothing');
    for (const [name, svc] of Object.entries(services))
      for (const p of svc.ports ?? [])
        assert.ok(!/:(3001|8000|9464)$/.test(interpolate(p, new Map())), `${name}: ${p} publishes a metrics port`);
    // On the compose network, for a Prometheus attached to it.
    assert.equal(services.temporal!.environment!.PROMETHEUS_ENDPOINT, '0.0.0.0:8000');
    assert.deepEqual(services.temporal!.expose, ['8000']);
    assert.deepEqual(services.worker!.expose, ['3001', '9464']);
  });

  it("sets the shared contract's worker endpoint and SDK metrics on the worker, and a stop grace above its shutdown", () => {
    const w = services.worker!.environment!;
    assert.equal(w.WORKER_HTTP_PORT, '3001');
    assert.equal(w.TEMPORAL_METRICS_ADDRESS, '0.0.0.0:9464');
    assert.equal(w.HOST, '0.0.0.0', 'the endpoint listens beyond the loopback (the health check uses 127.0.0.1)');
    // The parsed values and the grace arithmetic against stop_grace_period: test/compose-spec.test.ts.
    assert.equal(envSchema.shape.WORKER_HTTP_PORT.parse(w.WORKER_HTTP_PORT), 3001);
    assert.equal(envSchema.shape.TEMPORAL_METRICS_ADDRESS.parse(w.TEMPORAL_METRICS_ADDRESS), '0.0.0.0:9464');
  });

  it('sets only variables config/config.ts knows on the app services (and Node’s NODE_OPTIONS)', () => {
    const known = new Set<string>([...ENV_VARIABLES, ...PROCESS_ENV_VARIABLES, 'NODE_OPTIONS']);
    for (const s of APP_SERVICES)
      for (const name of Object.keys(services[s]!.environment ?? {}))
        assert.ok(known.has(name), `${s}: ${name} is not a variable the app reads (config/config.ts)`);
    for (const s of APP_SERVICES) assert.match(String(services[s]!.environment!.NODE_OPTIONS), /--max-old-space-size=/);
  });

  it('passes every production variable of the app through to the worker and ingress', () => {
    // Not for containers: the dev server's UI port, the simulators' ports and settings, the sandbox switch and data
    // folder (set per service), the ingress address (set on the ingress), the worker's own settings (on the worker).
    const notPassed = (n: string) =>
      /_SIM_/.test(n) || ['TEMPORAL_UI_PORT', 'DATA_DIR', 'PORT', 'HOST', ...WORKER_ONLY].includes(n);
    const worker = Object.keys(services.worker!.environment!);
    const ingress = Object.keys(services.ingress!.environment!);
    for (const name of ENV_VARIABLES.filter((n) => !notPassed(n))) {
      assert.ok(worker.includes(name), `worker: ${name} missing from docker-compose.yml (and .env.example)`);
      assert.ok(ingress.includes(name), `ingress: ${name} missing from docker-compose.yml (and .env.example)`);
    }
    for (const name of WORKER_ONLY) {
      assert.ok(ENV_VARIABLES.includes(name as never), `${name} is a variable of config/config.ts`);
      assert.ok(worker.includes(name), `worker: ${name}`);
      assert.ok(!ingress.includes(name), `ingress: ${name} is the worker's alone`);
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
      'WORKER_HTTP_PORT',
      'TEMPORAL_METRICS_ADDRESS',
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
      if (s === 'worker') {
        assert.equal(config.worker.httpPort, 3001);
        assert.equal(config.worker.temporalMetricsAddress, '0.0.0.0:9464');
      }
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

  it('registers, in the namespace job, exactly the search attributes the workflows set', () => {
    const pairs = String(services['temporal-namespace']!.environment!.SEARCH_ATTRIBUTES).trim().split(/\s+/);
    // searchAttributeFlags(): --search-attribute Name=Type pairs, in the CLI's type names, from SEARCH_ATTRIBUTES.
    const expected = searchAttributeFlags().filter((_, i) => i % 2 === 1);
    assert.equal(expected.length, SEARCH_ATTRIBUTES.length);
    assert.deepEqual([...pairs].sort(), [...expected].sort());
  });

  it('gives PostgreSQL room for every Temporal pool twice over (max_connections)', () => {
    // Server v1.29.x docker/config_template.yaml: each of the 4 services in the server process opens its own pools of
    // SQL_MAX_CONNS (default 20) + SQL_VIS_MAX_CONNS (default 10), kept open (maxIdleConns the same).
    const env = services.temporal!.environment!;
    const perService = Number(env.SQL_MAX_CONNS ?? 20) + Number(env.SQL_VIS_MAX_CONNS ?? 10);
    const temporalServices = String(env.SERVICES ?? 'frontend,history,matching,worker').split(',').length;
    const peak = temporalServices * perService;
    const cmd = [services.postgresql!.command].flat().join(' ');
    const max = Number(/max_connections=(\d+)/.exec(cmd)?.[1]);
    assert.equal(peak, 120);
    assert.ok(max >= 2 * peak + 3 + 10, `max_connections=${max} ≥ two servers' ${2 * peak} + 3 reserved + jobs`);
    assert.ok(max <= 500, `max_connections=${max}: not so many that idle backends eat the memory limit`);
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
  const stage = (name: string) => stages.find((s) => s.name === name);
  /** The stage a runtime COPY --from=<stage> takes `src` from. */
  const copiedFrom = (src: string) =>
    final.body
      .filter((i) => i.op === 'COPY' && /--from=/.test(i.rest))
      .map((i) => ({ from: /--from=(\S+)/.exec(i.rest)![1]!, src: i.rest.replace(/--\S+\s+/g, '').split(/\s+/)[0]! }))
      .find((c) => c.src === src || src.startsWith(c.src.replace(/\/?$/, '/')))?.from;

  it('is multi-stage and builds FROM pinned images: Node 24 LTS, glibc (bookworm-slim)', () => {
    assert.ok(stages.length >= 3, 'deps, build and runtime stages');
    const names = stages.map((s) => s.name);
    for (const s of stages) {
      if (names.includes(s.from)) continue; // FROM an earlier stage
      assert.match(s.from, /^[a-z0-9./_-]+:\d+\.\d+\.\d+[\w.-]*$/, `${s.from} is pinned to an exact version`);
    }
    // The Temporal SDK 1.24 supports Node 20, 22 and 24; 20 reached end of life on 2026-04-30.
    assert.match(final.from, /^node:24\.\d+\.\d+-bookworm-slim$/);
    const engines = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } })
      .engines.node;
    assert.ok(24 >= Number(/\d+/.exec(engines)![0]), `package.json engines ${engines} admits Node 24`);
  });

  it('keeps the CA bundle in the runtime image (the Rust core reads the OS roots for TLS)', () => {
    const runs = final.body.filter((i) => i.op === 'RUN').map((i) => i.rest);
    assert.ok(
      runs.some((r) => /apt-get install\b[^&]*\bca-certificates\b/.test(r)),
      'the runtime stage installs ca-certificates'
    );
    assert.ok(!runs.some((r) => /(purge|remove)\b[^&]*ca-certificates/.test(r)), 'and does not remove it again');
  });

  it('ships production node modules only; the dev dependencies (tsc) stay in the build stage', () => {
    const modulesFrom = copiedFrom('/app/node_modules');
    assert.ok(modulesFrom, 'the runtime copies node_modules from an earlier stage');
    const npm = stage(modulesFrom)!.body.filter((i) => i.op === 'RUN' && /\bnpm\b/.test(i.rest));
    assert.ok(
      npm.length > 0 && npm.every((i) => /npm ci --omit=dev/.test(i.rest)),
      `${modulesFrom}: npm ci --omit=dev`
    );
    for (const s of stages)
      for (const i of s.body.filter((x) => x.op === 'RUN' && /\bnpm (install|i)\b/.test(x.rest)))
        assert.fail(`${s.name}: ${i.rest} (npm ci keeps to the lock file)`);
  });

  it('runs compiled JavaScript: dist/ from npm run build, the CLI entry point, no tsx at run time', () => {
    const build = stages.flatMap((s) =>
      s.body.filter((i) => i.op === 'RUN' && /scripts\/build\.mjs/.test(i.rest)).map((i) => ({ s, i }))
    )[0];
    assert.ok(build, 'a RUN of scripts/build.mjs (npm run build)');
    const out = /build\.mjs\s+(\S+)/.exec(build.i.rest)?.[1];
    assert.equal(out, '/app/dist');
    assert.equal(copiedFrom('/app/dist'), build.s.name, 'the runtime copies dist/ from the stage that compiled it');
    const entry = JSON.parse(final.body.filter((i) => i.op === 'ENTRYPOINT').at(-1)!.rest) as string[];
    assert.deepEqual(entry, ['node', 'dist/cli/main.js']);
    for (const i of final.body.filter((x) => ['ENTRYPOINT', 'CMD', 'ENV'].includes(x.op)))
      assert.doesNotMatch(i.rest, /tsx/, `${i.op} ${i.rest}`);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    assert.equal(pkg.scripts.build, 'node scripts/build.mjs');
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
    assert.equal(
      copiedFrom(out!),
      bundleRun.s.name,
      'the runtime stage copies the bundle from the stage that built it'
    );
    for (const name of env.match(/\b[A-Z_]+(?==)/g) ?? [])
      assert.ok(
        [...ENV_VARIABLES, ...PROCESS_ENV_VARIABLES, 'NODE_ENV'].includes(name as never),
        `ENV ${name} is a variable the app reads (or NODE_ENV)`
      );
  });

  it('ships the health-check script where compose runs it', () => {
    const copy = final.body.find((i) => i.op === 'COPY' && i.rest.startsWith('deploy/healthcheck.sh'));
    assert.ok(copy, 'COPY deploy/healthcheck.sh');
    assert.equal(path.posix.join('/app', copy.rest.split(/\s+/)[1]!), '/app/deploy/healthcheck.sh');
    assert.ok(!existsSync(path.join(ROOT, 'deploy', 'healthcheck.ts')), 'the Node health check is retired');
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

  it('keeps secrets, local overrides, local state and node_modules out of the build context', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const p of ['node_modules', '.git', '.data', '.env', 'dist', 'docker-compose.override.yml'])
      assert.ok(ignored.includes(p), `.dockerignore: ${p}`);
    for (const p of ['deploy', 'config', 'workflows', 'scripts'])
      assert.ok(!ignored.includes(p), `${p} is in the image`);
  });

  it('leaves out nothing the build uses: no source reachable from the entry points is ignored', () => {
    const ignored = new Set(
      readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#') && !l.startsWith('!'))
    );
    const isIgnored = (rel: string) => {
      const parts = rel.split(path.sep);
      return parts.some((_, i) => ignored.has(parts.slice(0, i + 1).join('/')));
    };
    for (const f of [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'scripts/build.mjs',
      'config/routes.sandbox.yaml',
      'deploy/healthcheck.sh',
    ])
      assert.ok(!isIgnored(f) && existsSync(path.join(ROOT, f)), `${f} is in the build context`);
    const tsconfigBuild = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8')) as {
      files: string[];
    };
    const entries = [...tsconfigBuild.files, 'scripts/bundle-workflows.ts'];
    const seen = new Set<string>();
    const queue = entries.map((e) => path.join(ROOT, e));
    while (queue.length) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const rel = path.relative(ROOT, file);
      assert.ok(!isIgnored(rel), `${rel} is needed at build or run time but .dockerignore drops it`);
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

/** SIGTERM a child and wait until it has exited (at once if it already has). */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

/**
 * deploy/healthcheck.sh as Docker runs it: the exit code and its one line. Asynchronous: the endpoints it probes are
 * served by this very process, whose event loop a spawnSync would block.
 */
async function healthcheck(
  args: string[],
  env: Record<string, string | undefined> = {}
): Promise<{ code: number; line: string }> {
  const child = spawn('bash', [path.join(ROOT, 'deploy', 'healthcheck.sh'), ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 20_000,
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code: code ?? -1, line: out.trim() };
}

describe('deploy/healthcheck.sh (bash /dev/tcp, no Node)', () => {
  let server: http.Server;
  let silent: net.Server;
  let port = 0;
  let silentPort = 0;
  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/healthz') return void res.end('{"status":"ok"}');
      if (req.url === '/readyz') {
        res.writeHead(503, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ status: 'not ready', checks: { nac: 'NAC unreachable' } }));
      }
      res.writeHead(404).end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
    // Accepts connections and never answers.
    silent = net.createServer(() => {});
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    silentPort = (silent.address() as AddressInfo).port;
  });
  after(() => {
    server?.closeAllConnections();
    server?.close();
    silent?.close();
  });

  it('healthy on 200; the roles read WORKER_HTTP_PORT (/healthz) and PORT (/readyz)', async () => {
    assert.deepEqual(await healthcheck([String(port)]), { code: 0, line: '' });
    assert.equal((await healthcheck(['worker'], { WORKER_HTTP_PORT: String(port) })).code, 0);
    const ingress = await healthcheck(['ingress'], { PORT: String(port) });
    assert.equal(ingress.code, 1, 'the ingress role asks /readyz');
  });

  it('unhealthy with the reason: another status (with the body), a refused port, a silent one, no port', async () => {
    const notReady = await healthcheck([String(port), '/readyz']);
    assert.equal(notReady.code, 1);
    assert.match(
      notReady.line,
      /^unhealthy: GET \/readyz on port \d+: HTTP\/1\.1 503 Service Unavailable — \{"status"/
    );
    assert.match(notReady.line, /NAC unreachable/);
    assert.match((await healthcheck([String(port), '/nope'])).line, /HTTP\/1\.1 404/);
    const closed = await freePort();
    assert.deepEqual(await healthcheck([String(closed)]), {
      code: 1,
      line: `unhealthy: nothing answers on port ${closed}`,
    });
    assert.deepEqual(await healthcheck([String(silentPort)]), {
      code: 1,
      line: `unhealthy: GET /healthz on port ${silentPort}: no answer`,
    });
    assert.deepEqual(await healthcheck(['worker']), {
      code: 1,
      line: 'unhealthy: WORKER_HTTP_PORT=0 is no port to check (0 turns the endpoint off)',
    });
    assert.equal((await healthcheck([])).code, 2);
    assert.equal((await healthcheck(['sideways'])).code, 2);
  });
});

describe("the image's runtime pieces, run for real (compiled JS, workflow bundle, health checks, namespace job)", () => {
  let t: TestStack;
  let buildDir: string;
  let dist: string;
  let bundle: string;
  before(async () => {
    t = await startTestStack({ worker: false });
    // Inside the checkout (git-ignored .data/), so the compiled files resolve node_modules as in the image's /app.
    mkdirSync(path.join(ROOT, '.data'), { recursive: true });
    buildDir = mkdtempSync(path.join(ROOT, '.data', 'image-build-'));
    dist = path.join(buildDir, 'dist');
    const built = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs'), dist], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(built.status, 0, `npm run build: ${built.stderr}${built.stdout}`);
    bundle = (await bundleWorkflows(path.join(dist, 'workflow-bundle.js'), { quiet: true })).path;
  });
  after(async () => {
    await t?.close();
    if (buildDir) rmSync(buildDir, { recursive: true, force: true });
  });

  it('npm run build: plain JavaScript beside the files it reads at run time, with no tsx anywhere', () => {
    const files = readdirSync(dist, { recursive: true }).map(String);
    assert.ok(files.filter((f) => f.endsWith('.js')).length > 50, 'the sources are compiled');
    assert.ok(!files.some((f) => f.endsWith('.ts')), 'no TypeScript in dist/');
    assert.ok(
      files.includes(path.join('workflows', 'index.js')),
      'the workflows, for a worker without WORKFLOW_BUNDLE'
    );
    for (const f of files.filter((x) => x.endsWith('.js') && x !== 'workflow-bundle.js'))
      assert.doesNotMatch(readFileSync(path.join(dist, f), 'utf8'), /require\("tsx|from 'tsx/, `${f} loads no tsx`);
    // config/config.ts resolves the sandbox routes next to itself: the build copied it there.
    const routes = spawnSync(
      process.execPath,
      ['-p', `require(${JSON.stringify(path.join(dist, 'config', 'config.js'))}).SANDBOX_ROUTES_FILE`],
      { encoding: 'utf8', env: { PATH: process.env.PATH } }
    );
    assert.equal(routes.stdout.trim(), path.join(dist, 'config', 'routes.sandbox.yaml'), routes.stderr);
    assert.ok(existsSync(routes.stdout.trim()));
    // The image's entry point, with Node alone (no --import tsx).
    const help = spawnSync(process.execPath, [path.join(dist, 'cli', 'main.js'), '--help'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: approval-plus/);
  });

  it('the compiled worker on the prebuilt bundle runs an approval end to end; the health checks follow it', async () => {
    const workerPort = await freePort();
    const env = {
      PATH: process.env.PATH,
      ...t.env,
      LOG_LEVEL: 'silent',
      HOST: '127.0.0.1',
      WORKER_HTTP_PORT: String(workerPort),
      NODE_OPTIONS: '--max-old-space-size=768',
    };
    const spawnWorker = (bundlePath: string): ChildProcess => {
      const child = spawn(process.execPath, [path.join(dist, 'cli', 'main.js'), 'worker'], {
        cwd: buildDir,
        env: { ...env, WORKFLOW_BUNDLE: bundlePath },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      return child;
    };
    let stderr = '';
    assert.equal((await healthcheck(['worker'], env)).line, `unhealthy: nothing answers on port ${workerPort}`);

    // The worker honours WORKFLOW_BUNDLE (it does not quietly bundle from source instead): a missing file stops it.
    const broken = spawnWorker(path.join(buildDir, 'missing.js'));
    const [code] = (await once(broken, 'exit')) as [number | null];
    assert.notEqual(code, 0, 'a worker with a missing WORKFLOW_BUNDLE exits with an error');

    stderr = '';
    const worker = spawnWorker(bundle);
    try {
      await until(
        'the worker answers its health check',
        async () => (await healthcheck(['worker'], env)).code === 0,
        60_000
      );
      await until(
        'the worker is ready (it polls)',
        async () => (await fetch(`http://127.0.0.1:${workerPort}/readyz`)).status === 200,
        60_000
      ).catch((err: Error) => {
        throw new Error(`${err.message}; worker stderr: ${stderr.slice(-2000)}`);
      });
      assert.equal((await healthcheck([String(workerPort), '/readyz'], env)).code, 0);
      assert.deepEqual(
        await healthcheck(['ingress'], { PORT: t.env.PORT }),
        { code: 0, line: '' },
        'the ingress is ready'
      );

      const instance = t.createApproval('00:1B:44:77:00:01');
      const status = await t.waitForPhase(workflowIdFor('feishu', instance), ['active'], 90_000);
      assert.equal(status.macs[0]!.state, 'granted');
      assert.ok(await t.iseEndpoint('00:1B:44:77:00:01'));
    } finally {
      await stop(worker);
    }
    assert.equal((await healthcheck(['worker'], env)).code, 1, 'a stopped worker is unhealthy');
  });

  it('the namespace job on a fresh server: namespace and search attributes once; re-runs skip; a clash fails', async () => {
    const cli = process.env.TEMPORAL_CLI_PATH;
    assert.ok(cli, 'npm test resolves the temporal CLI (TEMPORAL_CLI_PATH)');
    // The admin-tools image has `temporal` on PATH; here a folder with just that name.
    const bin = path.join(buildDir, 'bin');
    mkdirSync(bin, { recursive: true });
    symlinkSync(cli, path.join(bin, 'temporal'));
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    // A bare dev server: no search attributes registered, only the `default` namespace.
    const server = spawn(cli, ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port)], {
      stdio: 'ignore',
    });
    const connection = await until(
      'the bare dev server answers',
      async () => {
        try {
          const c = await Connection.connect({ address, connectTimeout: 1000 });
          await c.withDeadline(Date.now() + 2000, () => c.workflowService.getSystemInfo({}));
          return c;
        } catch {
          return undefined;
        }
      },
      60_000
    );
    const job = (namespace: string) =>
      spawnSync('sh', [path.join(ROOT, 'deploy', 'temporal', 'create-namespace.sh')], {
        encoding: 'utf8',
        timeout: 120_000,
        env: {
          PATH: `${bin}${path.delimiter}${process.env.PATH}`,
          // The CLI looks for its config file under HOME (set in any container); an empty one here.
          HOME: buildDir,
          ...containerEnv(services['temporal-namespace']!, envExample),
          TEMPORAL_ADDRESS: address,
          NAMESPACE: namespace,
        },
      });
    try {
      const first = job('approval-plus-job');
      assert.equal(first.status, 0, first.stderr);
      assert.match(first.stdout, /namespace approval-plus-job created \(closed workflows kept 30d\)/);
      assert.match(first.stdout, /search attributes registered: ApprovalCode \(Keyword\)/);
      const ns = await connection.workflowService.describeNamespace({ namespace: 'approval-plus-job' });
      assert.equal(Number(ns.config?.workflowExecutionRetentionTtl?.seconds), 30 * 24 * 3600);
      const custom = (await connection.operatorService.listSearchAttributes({ namespace: 'approval-plus-job' }))
        .customAttributes!;
      for (const k of SEARCH_ATTRIBUTES) assert.equal(custom[k.name], encodeSearchAttributeIndexedValueType(k.type));
      // What a worker then does: check, and find everything there.
      assert.deepEqual(await checkSearchAttributes(connection, 'approval-plus-job'), []);

      const again = job('approval-plus-job');
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stdout, /namespace approval-plus-job exists/);
      assert.equal((again.stdout.match(/search attribute \w+ \(\w+\) exists/g) ?? []).length, SEARCH_ATTRIBUTES.length);
      assert.doesNotMatch(again.stdout, /registered/);

      // An attribute of the same name and another type cannot be fixed in place: the job stops and says so.
      const clash = 'approval-plus-clash';
      const mk = spawnSync(cli, ['operator', 'namespace', 'create', '--address', address, '--namespace', clash]);
      assert.equal(mk.status, 0, String(mk.stderr));
      const sa = ['operator', 'search-attribute', 'create', '--address', address, '--namespace', clash];
      assert.equal(spawnSync(cli, [...sa, '--name', 'ApprovalCode', '--type', 'Text']).status, 0);
      const failed = job(clash);
      assert.notEqual(failed.status, 0);
      assert.match(
        failed.stderr,
        /search attribute ApprovalCode exists in namespace approval-plus-clash with another type/
      );
    } finally {
      await connection.close();
      await stop(server);
    }
  });
});
