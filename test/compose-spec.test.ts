import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseDurationMs } from '../domain/duration';
import {
  findComposeValidator,
  validateCompose,
  type ComposeCase,
  type ResolvedService,
} from '../deploy/compose-validate/validator';
import { DEFAULT_SHUTDOWN_GRACE_MS, SHUTDOWN_FORCE_AFTER_GRACE_MS } from '../worker/worker';
import { ROOT } from './support/harness';

/**
 * docker-compose.yml as Docker Compose itself reads it: loaded by the Compose Specification's reference loader
 * (github.com/compose-spec/compose-go/v2, deploy/compose-validate), built here with the local Go, for every case a
 * user meets — no .env and `cp .env.example .env`; no profile, `app`, `sandbox` and all (`*`). Any load error or
 * warning fails. Then the resolved model (what `docker compose config` prints) is checked where the arithmetic
 * matters: the worker's shutdown inside its stop grace period, heaps inside memory limits, which services each
 * profile starts. test/compose.test.ts checks the file's content statically.
 */

/** A copy of what the compose file reads — never the checkout itself, whose own .env (if any) would leak in. */
function projectCopy(extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'compose-spec-'));
  for (const f of ['docker-compose.yml', '.env.example', 'Dockerfile']) cpSync(path.join(ROOT, f), path.join(dir, f));
  cpSync(path.join(ROOT, 'deploy'), path.join(dir, 'deploy'), { recursive: true });
  for (const [f, text] of Object.entries(extra)) writeFileSync(path.join(dir, f), text);
  return dir;
}

const label = (c: ComposeCase) => `${c.envFile || 'no .env'}, ${c.profiles.join(',') || 'no profile'}`;
const bytes = (s: string | undefined) => Number(s);
const seconds = (s: string | undefined) => parseDurationMs(String(s)) / 1000;

describe('docker-compose.yml through the Compose Specification loader (compose-go v2)', () => {
  let bin: string;
  let dir: string;
  let cases: ComposeCase[];
  const made: string[] = [];
  const caseFor = (envFile: string, profiles: string[]) =>
    cases.find((c) => c.envFile === envFile && c.profiles.join(',') === profiles.join(','))!;

  before(async () => {
    bin = await findComposeValidator(() => {});
    dir = projectCopy();
    made.push(dir);
    const run = validateCompose(bin, dir, { envFile: '.env.example', profiles: ['app', 'sandbox'] });
    assert.equal(
      run.status,
      0,
      `validator: ${run.stderr}\n${run.cases.map((c) => `${label(c)}: ${c.error ?? ''} ${c.warnings.join('; ')}`).join('\n')}`
    );
    cases = run.cases;
  });
  after(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });

  it('loads cleanly with and without .env, for no profile, each profile and all: no error, no warning', () => {
    assert.equal(cases.length, 8);
    for (const c of cases) {
      assert.equal(c.error, undefined, `${label(c)}: ${c.error}`);
      assert.deepEqual(c.warnings, [], `${label(c)}: ${c.warnings.join('; ')}`);
      assert.ok(c.project, label(c));
    }
  });

  it('starts what each profile promises: Temporal alone by default, the app with `app`, the sandbox with `sandbox`', () => {
    const infra = ['postgresql', 'temporal', 'temporal-namespace', 'temporal-schema', 'temporal-ui'];
    for (const env of ['', '.env.example']) {
      assert.deepEqual(caseFor(env, []).services, infra);
      assert.deepEqual(caseFor(env, ['app']).services, [...infra, 'ingress', 'worker'].sort());
      assert.deepEqual(caseFor(env, ['sandbox']).services, [...infra, 'sandbox'].sort());
      assert.deepEqual(caseFor(env, ['*']).services, [...infra, 'ingress', 'sandbox', 'worker'].sort());
    }
  });

  it("lets the worker's running activities finish on SIGTERM: grace + force inside stop_grace_period", () => {
    for (const c of cases.filter((c) => c.services.includes('worker') || c.services.includes('sandbox'))) {
      for (const name of ['worker', 'sandbox'].filter((n) => c.services.includes(n))) {
        const svc = c.project!.services[name]!;
        // shutdownForceTime is the grace + SHUTDOWN_FORCE_AFTER_GRACE_MS (worker/worker.ts); the sandbox runs the default.
        const grace = svc.environment?.WORKER_SHUTDOWN_GRACE
          ? seconds(svc.environment.WORKER_SHUTDOWN_GRACE)
          : DEFAULT_SHUTDOWN_GRACE_MS / 1000;
        const force = grace + SHUTDOWN_FORCE_AFTER_GRACE_MS / 1000;
        const stop = seconds(svc.stop_grace_period);
        assert.ok(
          force < stop,
          `${label(c)} ${name}: ${grace} s grace, forced at ${force} s < stop_grace_period ${stop} s`
        );
      }
    }
  });

  it('gives every long-running service a memory limit, and each Node heap ~75 % of its container', () => {
    const c = caseFor('.env.example', ['*']);
    for (const [name, svc] of Object.entries(c.project!.services)) {
      assert.ok(bytes(svc.mem_limit) > 0, `${name}: mem_limit`);
      const heap = /--max-old-space-size=(\d+)/.exec(svc.environment?.NODE_OPTIONS ?? '');
      if (!['worker', 'ingress', 'sandbox'].includes(name)) continue;
      assert.ok(heap, `${name}: NODE_OPTIONS sets the heap`);
      const ratio = (Number(heap[1]) * 1024 * 1024) / bytes(svc.mem_limit);
      assert.ok(
        ratio >= 0.6 && ratio <= 0.8,
        `${name}: heap ${heap[1]} MiB is ${Math.round(ratio * 100)} % of mem_limit`
      );
    }
    const temporal = c.project!.services.temporal!;
    const goLimit = /^(\d+)MiB$/.exec(temporal.environment?.GOMEMLIMIT ?? '');
    assert.ok(goLimit && Number(goLimit[1]) * 1024 * 1024 < bytes(temporal.mem_limit), 'GOMEMLIMIT < mem_limit');
  });

  it('resolves the app environment the same from an empty .env and from .env.example where .env.example is silent', () => {
    const bare = caseFor('', ['app']).project!.services;
    const filled = caseFor('.env.example', ['app']).project!.services;
    const example = new Map(
      readFileSync(path.join(ROOT, '.env.example'), 'utf8')
        .split('\n')
        .map((l) => /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(l))
        .filter((m): m is RegExpExecArray => !!m)
        .map((m) => [m[1]!, m[2]!])
    );
    for (const s of ['worker', 'ingress']) {
      const a = bare[s]!.environment ?? {};
      const b = filled[s]!.environment ?? {};
      assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), `${s}: the same variables either way`);
      for (const [k, v] of Object.entries(a)) if (!example.has(k)) assert.equal(b[k], v, `${s}: ${k}`);
    }
  });

  it('health checks as resolved: Temporal asked over gRPC, the app by deploy/healthcheck.sh, no Node started', () => {
    const svcs = caseFor('.env.example', ['*']).project!.services;
    const test = (s: ResolvedService) => s.healthcheck?.test ?? [];
    assert.deepEqual(test(svcs.temporal!).slice(1, 5), ['temporal', 'operator', 'cluster', 'health']);
    for (const s of ['worker', 'ingress', 'sandbox']) assert.equal(test(svcs[s]!)[2], '/app/deploy/healthcheck.sh');
    for (const [name, s] of Object.entries(svcs)) assert.ok(!test(s).includes('node'), `${name}: no node in its check`);
  });

  it('is not a rubber stamp: a broken file, an unset variable and an obsolete key each fail, by name', () => {
    const text = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    const broken: [string, string, RegExp][] = [
      [
        'depends on a service that does not exist',
        text.replace(
          'condition: service_completed_successfully',
          'condition: service_completed_successfully\n      nosuch:\n        condition: service_started'
        ),
        /nosuch/,
      ],
      ['an unknown key', text.replace('    mem_limit: 1g\n', '    mem_limt: 1g\n'), /mem_limt/],
      [
        'a variable with no default',
        text.replace('${TEMPORAL_NAMESPACE:-default}', '${APPROVAL_PLUS_UNSET_FOR_TEST}'),
        /APPROVAL_PLUS_UNSET_FOR_TEST/,
      ],
      ['the obsolete top-level version', `version: '3.8'\n${text}`, /version/],
    ];
    for (const [what, file] of broken) {
      const d = projectCopy({ 'docker-compose.yml': file });
      made.push(d);
      const run = validateCompose(bin, d, { profiles: ['app'] });
      assert.equal(run.status, 1, `${what}: refused`);
      const reported = run.cases.flatMap((c) => [c.error ?? '', ...c.warnings]).join('\n');
      assert.match(reported, broken.find((b) => b[0] === what)![2], `${what}: ${reported}`);
    }
  });
});
