import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { createLogger } from '../app/logger';
import { IntegrationError } from '../domain/errors';
import { NacHttpClient, nacApiArea, type NacRequestObservation } from '../nac/http';
import { allTagAttributeNames } from '../nac/tag';
import { startNacSimulator, type NacSimulator } from '../simulators/nac/server';
import {
  checkSearchAttributes,
  freePort,
  missingSearchAttributesLine,
  MissingSearchAttributesError,
} from '../temporal/dev-server';
import { cancelSignal, SEARCH_ATTRIBUTES, workflowIdFor } from '../workflows/definitions';
import type { NacWhitelistResult } from '../workflows/nac-whitelist.workflow';
import { WorkerReadiness } from '../worker/readiness';
import { startTestStack, until, type TestStack } from './support/harness';

/**
 * The worker process in operation: graceful SIGTERM, start-up checks that degrade to not-ready instead of exiting,
 * search attributes checked (never registered) on a cluster of one's own, ingress readiness without a worker. The
 * worker runs as a child process (`approval-plus worker`, as in a container) against the harness's dev server.
 */

type Readyz = { status: string; checks: Record<string, string> };

async function readyz(url: string): Promise<{ code: number; body: Readyz } | undefined> {
  try {
    const res = await fetch(`${url}/readyz`);
    return { code: res.status, body: (await res.json()) as Readyz };
  } catch {
    return undefined; // not listening yet
  }
}

/** Until the worker's /readyz answers 200 (90 s at most); its answer. */
function untilReady(url: string, what: string): Promise<{ code: number; body: Readyz }> {
  return until(
    what,
    async () => {
      const r = await readyz(url);
      return r?.code === 200 ? r : undefined;
    },
    90_000
  );
}

/** SIGTERM the child, unless it has exited already, and wait until it has. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

/** The child's stdout and stderr, collected (both must be read: a full pipe blocks its log writes). */
function collect(child: ChildProcess): { out(): string } {
  let text = '';
  child.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (text += d.toString()));
  return { out: () => text };
}

const silent = createLogger('silent');
// npm test (scripts/run-tests.mjs) resolves the binary once and passes it on.
const cli = process.env.TEMPORAL_CLI_PATH ?? 'temporal';

describe('worker process operations (real Temporal dev server, worker as a child process)', () => {
  let t: TestStack;
  before(async () => {
    // NAC time-out above the simulator's injected latency, so a held request is slow, not failed.
    t = await startTestStack({ worker: false, env: { NAC_TIMEOUT_MS: '20000' } });
  });
  after(async () => {
    await t?.close();
  });

  // First, while no worker has ever polled (the server lists a poller for minutes after it leaves).
  it('the ingress is ready without a worker, and names the missing worker apart', async () => {
    const res = await fetch(`${t.ingressUrl}/readyz`);
    const body = (await res.json()) as Readyz;
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.status, 'ready');
    assert.equal(body.checks.temporal, 'ok');
    assert.equal(body.checks.worker, 'no worker polls approval-plus');
  });

  it('SIGTERM during a running NAC write lets it finish: completed on its first attempt, written once', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const worker = t.spawnWorker({ env: { WORKER_HTTP_PORT: String(port) } });
    const logs = collect(worker);
    await untilReady(url, 'worker ready').catch((err: Error) => {
      throw new Error(`${err.message}: ${logs.out().slice(-2000)}`);
    });
    assert.equal((await fetch(`${url}/healthz`)).status, 200);

    const mac = '00:1B:44:D0:00:01';
    t.nacSim!.setFaults({ latencyMs: 3000 }); // every NAC request is held 3 s
    const instance = t.createApproval(mac);
    const id = workflowIdFor('feishu', instance);
    const handle = t.client.workflow.getHandle(id);
    await until(
      'createWhitelisted running',
      async () => {
        const d = await handle.describe().catch(() => undefined);
        const pending = d?.raw.pendingActivities ?? [];
        return pending.some((a) => a.activityType?.name === 'createWhitelisted' && a.state === 2) ? true : undefined;
      },
      60_000
    );
    worker.kill('SIGTERM');
    const [code, signal] = (await once(worker, 'exit')) as [number | null, string | null];
    assert.equal(signal, null, 'the worker exited by itself, after draining');
    assert.equal(code, 0, logs.out().slice(-2000));
    t.nacSim!.clearFaults();

    // The write's activity completed on its first attempt: not cancelled by the shutdown, not retried.
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const scheduled = events.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'createWhitelisted'
    );
    assert.ok(scheduled, 'createWhitelisted was scheduled');
    const sid = Number(scheduled.eventId);
    const started = events.find((e) => Number(e.activityTaskStartedEventAttributes?.scheduledEventId) === sid);
    const completed = events.find((e) => Number(e.activityTaskCompletedEventAttributes?.scheduledEventId) === sid);
    assert.ok(completed, 'createWhitelisted completed before the worker exited');
    assert.equal(started?.activityTaskStartedEventAttributes?.attempt, 1, 'first attempt: no WORKER_SHUTDOWN cancel');
    const writes = () => t.nacSim!.requests({ mac }).filter((r) => r.write && r.method === 'POST');
    assert.equal(writes().length, 1, 'the endpoint was created once');

    // A new worker carries the grant on from there, without writing the endpoint again.
    const next = t.spawnWorker();
    try {
      const status = await t.waitForPhase(id, ['active'], 90_000);
      assert.equal(status.macs[0]!.state, 'granted');
      assert.equal(writes().length, 1);
      assert.ok(await t.iseEndpoint(mac));
      await handle.signal(cancelSignal, { reason: 'test over' });
      assert.equal(((await handle.result()) as NacWhitelistResult).outcome, 'revoked');
    } finally {
      // Gone before the next test, whose worker must be the only one polling.
      await stopChild(next);
    }
  });

  it('a NAC down at start: the worker runs, not ready with the reason, and ready once the NAC is back', async () => {
    const nacPort = await freePort(); // nothing listens here yet
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const worker = t.spawnWorker({
      env: {
        WORKER_HTTP_PORT: String(port),
        NAC_BASE_URL: `http://127.0.0.1:${nacPort}`,
        LOG_LEVEL: 'info',
        LOG_FORMAT: 'json',
      },
      stdout: true,
    });
    const logs = collect(worker);
    const down = await until(
      'not ready because of the NAC',
      async () => {
        const r = await readyz(url);
        // Once the workers run and the NAC check has failed at least once.
        return r && r.body.checks.workers === 'ok' && r.body.checks.nac !== 'checking' ? r : undefined;
      },
      90_000
    );
    assert.equal(down.code, 503);
    assert.equal(down.body.status, 'not ready');
    assert.match(down.body.checks.nac!, /ECONNREFUSED|not reachable/);
    assert.equal(down.body.checks.workers, 'ok', 'the workers run meanwhile');
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    await until('the reason in the log', () => (/not ready: nac: .*ECONNREFUSED/.test(logs.out()) ? true : undefined));
    assert.equal(worker.exitCode, null, 'still running');

    // Meanwhile the worker does everything that needs no NAC: this approval has no valid MAC, so its requester is
    // told so at once; and a valid one gets as far as the NAC, whose activity retries.
    const rejected = t.createApproval('not-a-mac');
    const rejectedHandle = t.client.workflow.getHandle(workflowIdFor('feishu', rejected));
    // The simulator delivers the event on its own schedule: wait for the workflow it starts.
    await until('the approval started', () =>
      rejectedHandle.describe().then(
        () => true,
        () => undefined
      )
    );
    const r = (await rejectedHandle.result()) as NacWhitelistResult;
    assert.equal(r.outcome, 'rejected-input');
    assert.ok(
      t.feishuSim!.messages().some((m) => JSON.stringify(m).includes(rejected)),
      'the requester was told'
    );
    const mac = '00:1B:44:D1:00:01';
    const instance = t.createApproval(mac);
    const id = workflowIdFor('feishu', instance);
    await t.waitForPhase(id, ['granting']);
    await until('the NAC activity retrying', async () => {
      const d = await t.client.workflow.getHandle(id).describe();
      return (d.raw.pendingActivities ?? []).some((a) => (a.attempt ?? 0) > 1) ? true : undefined;
    });

    let nac: NacSimulator | undefined;
    try {
      nac = await startNacSimulator({
        port: nacPort,
        iseUsername: t.env.NAC_USERNAME!,
        isePassword: t.env.NAC_PASSWORD!,
        clientId: '',
        clientSecret: '',
        whitelistGroup: 'ApprovalPlus-WiFi',
        iseCustomAttributes: allTagAttributeNames(''),
      });
      const up = await untilReady(url, 'ready once the NAC answers');
      assert.equal(up.body.checks.nac, 'ok');
      assert.match(logs.out(), /nac: check passed/);
      const status = await t.waitForPhase(id, ['active'], 120_000);
      assert.equal(status.macs[0]!.state, 'granted');
      assert.equal(nac.store.list().length, 1, 'granted on the NAC that came back');
      await t.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'test over' });
      await t.client.workflow.getHandle(id).result();
    } finally {
      await stopChild(worker);
      await nac?.close();
    }
  });

  it('search attributes missing on the cluster: one line naming them and the fix; ready once added', async () => {
    const namespace = 'no-attributes';
    const connection = await Connection.connect({ address: t.temporalAddress });
    try {
      const created = spawnSync(
        cli,
        ['operator', 'namespace', 'create', '--namespace', namespace, '--address', t.temporalAddress],
        {
          encoding: 'utf8',
        }
      );
      assert.equal(created.status, 0, created.stderr);
      await until(
        'namespace visible',
        async () =>
          await connection.workflowService
            .describeNamespace({ namespace })
            .then(() => true)
            .catch(() => undefined)
      );
      // The check itself: every attribute missing, named with its type, and the commands that add them.
      const err = await checkSearchAttributes(connection, namespace).then(
        () => assert.fail('expected missing attributes'),
        (e: unknown) => e
      );
      assert.ok(err instanceof MissingSearchAttributesError);
      const line = (err as Error).message;
      assert.doesNotMatch(line, /\n/);
      for (const k of SEARCH_ATTRIBUTES) assert.match(line, new RegExp(`\\b${k.name} \\((Keyword|Datetime)\\)`));
      assert.match(line, /tcld namespace search-attributes add --namespace no-attributes --sa ApprovalCode=Keyword/);

      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const worker = t.spawnWorker({
        env: { WORKER_HTTP_PORT: String(port), TEMPORAL_NAMESPACE: namespace, LOG_LEVEL: 'warn', LOG_FORMAT: 'json' },
        stdout: true,
      });
      const logs = collect(worker);
      try {
        const down = await until(
          'not ready: attributes missing',
          async () => {
            const r = await readyz(url);
            return r && r.code === 503 && r.body.checks['search-attributes'] !== 'checking' ? r : undefined;
          },
          90_000
        );
        assert.equal(down.body.checks['search-attributes'], line, 'readiness gives the same line');
        await until('the line in the log', () => (logs.out().includes('lacks search attributes') ? true : undefined));
        assert.equal(worker.exitCode, null, 'not fatal: the namespace job may still be adding them');

        // Run the command the line gives, as an operator would; the worker notices without a restart.
        const command = /`(temporal operator search-attribute create [^`]+)`/.exec(line)![1]!;
        const args = command.split(' ').slice(1);
        const run = spawnSync(cli, [...args, '--address', t.temporalAddress], { encoding: 'utf8' });
        assert.equal(run.status, 0, run.stderr);
        const up = await untilReady(url, 'ready once added');
        assert.equal(up.body.checks['search-attributes'], 'ok');
        assert.deepEqual(await checkSearchAttributes(connection, namespace), []);
      } finally {
        await stopChild(worker);
      }
    } finally {
      await connection.close();
    }
  });

  it('a configuration error stays fatal, in one line', async () => {
    const worker = t.spawnWorker({ env: { WORKER_SHUTDOWN_GRACE: 'soon' } });
    const logs = collect(worker);
    const [code] = (await once(worker, 'exit')) as [number | null];
    assert.equal(code, 2, 'exit code 2: configuration error (cli/common.ts)');
    assert.equal(
      logs.out().trim(),
      'approval-plus: invalid WORKER_SHUTDOWN_GRACE: must be a duration like 20s, 500ms, 1m (got "soon")'
    );
  });
});

describe('search-attribute check against stubbed servers', () => {
  const stub = (impl: () => Promise<{ customAttributes?: Record<string, unknown> }>) =>
    ({ operatorService: { listSearchAttributes: impl } }) as unknown as Parameters<typeof checkSearchAttributes>[0];
  const enc = (t: SearchAttributeType) => encodeSearchAttributeIndexedValueType(t);

  it('passes when all exist, names only the missing and the mistyped ones', async () => {
    const all = Object.fromEntries(SEARCH_ATTRIBUTES.map((k) => [k.name, enc(k.type)]));
    assert.deepEqual(
      await checkSearchAttributes(
        stub(async () => ({ customAttributes: all })),
        'ns'
      ),
      []
    );
    const some = { ...all, GrantExpiresAt: undefined, GrantPhase: enc(SearchAttributeType.TEXT) };
    delete some.GrantExpiresAt;
    await assert.rejects(
      checkSearchAttributes(
        stub(async () => ({ customAttributes: some })),
        'ns'
      ),
      (e: Error) => {
        assert.ok(e instanceof MissingSearchAttributesError);
        assert.match(
          e.message,
          /lacks search attributes GrantPhase \(exists with another type; needs Keyword\), GrantExpiresAt \(Datetime\)/
        );
        assert.match(e.message, /--name GrantPhase --type Keyword --name GrantExpiresAt --type Datetime/);
        assert.doesNotMatch(e.message, /ApprovalCode/);
        return true;
      }
    );
  });

  it('a server that does not let this identity list them: a warning, not a block', async () => {
    const denied = Object.assign(new Error('7 PERMISSION_DENIED: Request unauthorized.'), { code: 7 });
    const warnings = await checkSearchAttributes(
      stub(async () => {
        throw denied;
      }),
      'ns'
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /cannot list the search attributes of namespace "ns" \(7 PERMISSION_DENIED/);
    const down = Object.assign(new Error('14 UNAVAILABLE: connection refused'), { code: 14 });
    await assert.rejects(
      checkSearchAttributes(
        stub(async () => {
          throw down;
        }),
        'ns'
      ),
      /UNAVAILABLE/
    );
  });

  it('the line is one line', () => {
    assert.doesNotMatch(missingSearchAttributesLine('ns', SEARCH_ATTRIBUTES), /\n/);
  });
});

describe('WorkerReadiness', () => {
  const quiet = silent;
  const fast = { initialMs: 5, maxMs: 20, maxMsPermanent: 40 };

  it('not ready while a start-up check fails, retried until it passes; live checks asked each time', async () => {
    let failures = 3;
    let attempts = 0;
    const readiness = new WorkerReadiness(quiet, fast);
    readiness.startCheck({
      name: 'nac',
      run: async () => {
        attempts++;
        if (failures-- > 0) throw new IntegrationError('sim: network error (ECONNREFUSED)', 'transient');
        return ['a warning'];
      },
    });
    let live: string | undefined = 'worker for approval-plus is INITIALIZED';
    readiness.addLiveCheck({ name: 'workers', check: async () => live });
    const first = await readiness.report();
    assert.equal(first.ready, false);
    assert.equal(first.status, 'not ready');
    assert.equal(first.checks.workers, 'worker for approval-plus is INITIALIZED');
    await until('nac passes', async () => ((await readiness.report()).checks.nac === 'ok' ? true : undefined), 5000);
    assert.equal(attempts, 4);
    assert.equal((await readiness.report()).ready, false, 'workers not running yet');
    live = undefined;
    assert.deepEqual(await readiness.report(), { ready: true, status: 'ready', checks: { workers: 'ok', nac: 'ok' } });
    readiness.stop();
    const stopping = await readiness.report();
    assert.equal(stopping.ready, false);
    assert.match(stopping.checks.worker!, /stopping/);
  });

  it('a failing check reports its reason, and stop() ends the retries', async () => {
    let attempts = 0;
    const readiness = new WorkerReadiness(quiet, fast);
    readiness.startCheck({
      name: 'feishu-subscriptions',
      run: async () => {
        attempts++;
        throw new Error('feishu subscribe: HTTP 503\nsecond line');
      },
    });
    await until('two attempts', () => (attempts >= 2 ? true : undefined), 5000);
    assert.equal((await readiness.report()).checks['feishu-subscriptions'], 'feishu subscribe: HTTP 503');
    readiness.stop();
    const at = attempts;
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(attempts <= at + 1, 'no retries after stop');
  });
});

describe('NAC HTTP client hooks', () => {
  let server: http.Server;
  let base: string;
  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url?.startsWith('/ers/hang')) return; // never answers
      res.writeHead(req.url?.startsWith('/ers/missing') ? 404 : 200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('the observer sees each request with system, area, method and outcome', async () => {
    const seen: NacRequestObservation[] = [];
    const client = new NacHttpClient({
      system: 'ise',
      baseUrl: base,
      timeoutMs: 200,
      maxRps: 100,
      observer: { request: (o) => seen.push(o) },
    });
    await client.send({ method: 'GET', path: '/ers/config/endpoint/name/x', what: 'look up' });
    await client.send({ method: 'DELETE', path: '/ers/missing/1', what: 'delete' });
    await assert.rejects(client.send({ method: 'GET', path: '/ers/hang', what: 'hang' }), /no answer within 200 ms/);
    await client.close();
    assert.deepEqual(
      seen.map(({ seconds, ...o }) => (assert.ok(seconds >= 0), o)),
      [
        { system: 'ise', area: 'ers', method: 'GET', outcome: '2xx' },
        { system: 'ise', area: 'ers', method: 'DELETE', outcome: '404' },
        { system: 'ise', area: 'ers', method: 'GET', outcome: 'timeout' },
      ]
    );
  });

  it('an aborted cancellation ends a request at once with its reason', async () => {
    const controller = new AbortController();
    const seen: NacRequestObservation[] = [];
    const client = new NacHttpClient({
      system: 'sim',
      baseUrl: base,
      timeoutMs: 60_000,
      maxRps: 100,
      cancellation: () => controller.signal,
      observer: { request: (o) => seen.push(o) },
    });
    const reason = new Error('worker shutting down');
    const pending = client.send({ method: 'POST', path: '/ers/hang', what: 'create' });
    setTimeout(() => controller.abort(reason), 50);
    await assert.rejects(pending, (e) => e === reason);
    await assert.rejects(client.send({ method: 'GET', path: '/ers/x', what: 'read' }), (e) => e === reason);
    await client.close();
    assert.deepEqual(
      seen.map((o) => o.outcome),
      ['cancelled']
    );
  });

  it('areas follow the vendors’ APIs', () => {
    assert.equal(nacApiArea('/ers/config/endpoint'), 'ers');
    assert.equal(nacApiArea('/admin/API/mnt/Session/MACAddress/x'), 'mnt');
    assert.equal(nacApiArea('/api/v1/endpoint-custom-attribute'), 'openapi');
    assert.equal(nacApiArea('/api/oauth'), 'oauth');
    assert.equal(nacApiArea('/api/oauth/privileges'), 'oauth');
    assert.equal(nacApiArea('/api/session-action/disconnect/mac/x'), 'session');
    assert.equal(nacApiArea('/api/endpoint/mac-address/x'), 'endpoint');
    assert.equal(nacApiArea('/other'), 'other');
  });
});
