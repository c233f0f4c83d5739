import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { startFeishuSimulator, type FeishuSimulator } from '../simulators/feishu/server';
import { startNacSimulator, type NacSimulator } from '../simulators/nac/server';
import { normalizeMac } from '../simulators/nac/store';
import { freePort } from '../temporal/dev-server';
import { startPostgresTemporal, validateDynamicConfig, type PostgresTemporal } from '../temporal/postgres-server';
import { NAC_TASK_QUEUE, statusQuery, TASK_QUEUE, workflowIdFor, type GrantStatus } from '../workflows/definitions';
import type { NacWhitelistResult } from '../workflows/nac-whitelist.workflow';
import { APPROVAL_CODE, ROOT, until } from './support/harness';

/**
 * The production topology against a real Temporal server (v1.29.1, built with Go) on a throw-away local PostgreSQL
 * (temporal/postgres-server.ts): two worker processes and two ingress processes (`approval-plus worker|ingress`),
 * behind a round-robin balancer that the Feishu simulator delivers to, as Feishu would reach a load balancer.
 * Runs only with TEMPORAL_POSTGRES=1: the first run builds temporal-server with Go, many minutes on two cores.
 */

const SKIP =
  process.env.TEMPORAL_POSTGRES === '1'
    ? false
    : 'set TEMPORAL_POSTGRES=1 to run against a real Temporal server on PostgreSQL (first run builds temporal-server ' +
      'with Go into ~/.cache/approval-plus: many minutes; needs PostgreSQL server binaries)';

const BIN = path.join(ROOT, 'bin', 'approval-plus.mjs');
const SECRETS = {
  FEISHU_APP_ID: 'cli_pg0a1b2c3d4e5f6a',
  FEISHU_APP_SECRET: 'pg-app-secret',
  FEISHU_ENCRYPT_KEY: 'pg-encrypt-key',
  FEISHU_VERIFICATION_TOKEN: 'pg-verification-token',
  NAC_USERNAME: 'ers-pg',
  NAC_PASSWORD: 'ers-pg-password',
};

interface Proc {
  role: string;
  child: ChildProcess;
  url?: string;
  log: string;
}

/** A round-robin HTTP balancer in front of the ingress replicas (what Feishu's request URL points at). */
async function startBalancer(upstreams: string[]): Promise<{ url: string; close(): Promise<void> }> {
  let next = 0;
  const server = http.createServer((req, res) => {
    const target = new URL(req.url ?? '/', upstreams[next++ % upstreams.length]);
    const up = http.request(target, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('real Temporal server on PostgreSQL: two workers, two ingress replicas', { skip: SKIP }, () => {
  let pt: PostgresTemporal;
  let feishuSim: FeishuSimulator;
  let nacSim: NacSimulator;
  let balancer: { url: string; close(): Promise<void> };
  let connection: Connection;
  let client: Client;
  let env: Record<string, string>;
  let dir: string;
  const procs: Proc[] = [];
  const say = (line: string) => process.stderr.write(`# ${line}\n`);

  function spawnRole(role: 'worker' | 'ingress', index: number, extra: Record<string, string> = {}): Proc {
    const log = path.join(dir, `${role}-${index}.log`);
    const out = createWriteStream(log);
    const child = spawn(process.execPath, [BIN, role], {
      cwd: ROOT,
      env: { ...process.env, ...env, ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    const p: Proc = { role: `${role}-${index}`, child, log, url: extra.PORT && `http://127.0.0.1:${extra.PORT}` };
    procs.push(p);
    return p;
  }
  const logsOf = () =>
    procs.map((p) => `--- ${p.role}:\n${readFileSync(p.log, 'utf8').trim().split('\n').slice(-15).join('\n')}`);
  const ingresses = () => procs.filter((p) => p.role.startsWith('ingress'));

  async function pollerIdentities(queue: string, type: number): Promise<Set<string>> {
    const res = await client.workflowService.describeTaskQueue({
      namespace: pt.namespace,
      taskQueue: { name: queue },
      taskQueueType: type,
    });
    return new Set((res.pollers ?? []).map((p) => p.identity ?? ''));
  }

  const endpoint = (mac: string) => nacSim.store.byMac(normalizeMac(mac)!);

  async function status(instance: string): Promise<GrantStatus | undefined> {
    try {
      return await client.workflow.getHandle(workflowIdFor('feishu', instance)).query(statusQuery);
    } catch {
      return undefined;
    }
  }

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'approval-plus-pg-test-'));
    pt = await startPostgresTemporal({ say });
    nacSim = await startNacSimulator({
      port: 0,
      iseUsername: SECRETS.NAC_USERNAME,
      isePassword: SECRETS.NAC_PASSWORD,
      clientId: 'unused',
      clientSecret: 'unused',
      whitelistGroup: 'ApprovalPlus-WiFi',
    });
    const ports = [await freePort(), await freePort()];
    balancer = await startBalancer(ports.map((p) => `http://127.0.0.1:${p}`));
    feishuSim = await startFeishuSimulator({
      port: 0,
      appId: SECRETS.FEISHU_APP_ID,
      appSecret: SECRETS.FEISHU_APP_SECRET,
      encryptKey: SECRETS.FEISHU_ENCRYPT_KEY,
      verificationToken: SECRETS.FEISHU_VERIFICATION_TOKEN,
      webhookUrl: `${balancer.url}/webhook/feishu`,
      // Feishu redelivers after 15 s, 5 min, 1 h, 6 h: scaled to 0.15 s, 3 s, 36 s, 216 s, which covers a restart.
      redeliveryScale: 0.01,
    });
    const routesFile = path.join(dir, 'routes.yaml');
    writeFileSync(
      routesFile,
      `routes:\n  - platform: feishu\n    approval_code: ${APPROVAL_CODE}\n    automation: nac-whitelist\n` +
        `    fields:\n      macs: MAC地址\n      duration: 有效期\n`
    );
    // Production settings: no sandbox, the real ISE driver (pointed at the ISE-speaking simulator).
    env = {
      SANDBOX: 'false',
      ...SECRETS,
      FEISHU_BASE_URL: feishuSim.url,
      NAC_DRIVER: 'ise',
      NAC_BASE_URL: nacSim.url,
      NAC_ISE_GROUP: 'ApprovalPlus-WiFi',
      NAC_MAX_RPS: '50',
      NAC_TIMEOUT_MS: '5000',
      APPROVAL_PLUS_CONFIG: routesFile,
      TEMPORAL_ADDRESS: pt.address,
      TEMPORAL_NAMESPACE: pt.namespace,
      DATA_DIR: path.join(dir, 'data'),
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      HOST: '127.0.0.1',
    };
    spawnRole('worker', 1);
    spawnRole('worker', 2);
    spawnRole('ingress', 1, { PORT: String(ports[0]) });
    spawnRole('ingress', 2, { PORT: String(ports[1]) });
    connection = await Connection.connect({ address: pt.address });
    client = new Client({ connection, namespace: pt.namespace });
    try {
      await until(
        'two workers polling both task queues, both ingress replicas ready',
        async () => {
          for (const p of procs) if (p.child.exitCode !== null) throw new Error(`${p.role} exited`);
          const [wf, nac] = [await pollerIdentities(TASK_QUEUE, 1), await pollerIdentities(NAC_TASK_QUEUE, 2)];
          if (wf.size < 2 || nac.size < 2) return undefined;
          for (const p of ingresses())
            if ((await fetch(`${p.url}/readyz`).catch(() => null))?.status !== 200) return undefined;
          return true;
        },
        120_000
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${logsOf().join('\n')}`);
    }
  });

  async function stopProcs(): Promise<void> {
    const running = procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    for (const p of running) p.child.kill('SIGTERM');
    await Promise.all(
      running.map(
        (p) =>
          new Promise((r) => {
            const t = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
            p.child.once('exit', () => r(clearTimeout(t)));
          })
      )
    );
  }

  after(async () => {
    await stopProcs();
    await connection?.close();
    await feishuSim?.close();
    await nacSim?.close();
    await balancer?.close();
    await pt?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the compose file's dynamic config is valid for this server", async () => {
    assert.deepEqual(await validateDynamicConfig(pt.binaries.server), []);
  });

  it('end to end: a Feishu approval → NAC whitelisted → requester notified; cancel → the NAC restored', async () => {
    const fresh = '00:1B:44:88:00:01';
    const existing = '00:1B:44:88:00:02'; // already known to the NAC, in another group: must be put back, not deleted
    const before = nacSim.store.seed({ mac: existing, group: 'Profiled', description: 'printer lab' });
    const openId = 'ou_pg_e2e';
    const { instance_code: instance } = feishuSim.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: openId,
      form: [
        { id: 'widget_macs', name: 'MAC地址', type: 'textarea', value: `${fresh}\n${existing}` },
        { id: 'widget_duration', name: '有效期', type: 'radioV2', value: '7天' },
      ],
    });
    const s = await until(
      'grant active',
      async () => ((await status(instance))?.phase === 'active' ? await status(instance) : undefined),
      90_000
    );
    assert.deepEqual(
      s.macs.map((m) => m.state),
      ['granted', 'granted']
    );
    for (const mac of [fresh, existing]) assert.equal(endpoint(mac)?.groupId, nacSim.whitelistGroupId, mac);
    await until('requester notified', () =>
      feishuSim.messages().filter((m) => m.receive_id === openId).length === 1 ? true : undefined
    );
    assert.ok(
      feishuSim.comments().some((c) => c.instance_code === instance),
      'audit comment on the instance'
    );

    // The operator CLI against the same server.
    const cancel = await runCli(['cancel', instance, '--reason', 'left the project', '--by', 'netops'], env);
    assert.equal(cancel.code, 0, cancel.out);
    const result = (await client.workflow.getHandle(workflowIdFor('feishu', instance)).result()) as NacWhitelistResult;
    assert.equal(result.outcome, 'revoked');
    assert.equal(endpoint(fresh), undefined, 'the endpoint this grant created is gone');
    const restored = endpoint(existing);
    assert.equal(restored?.groupId, before.groupId, 'the existing endpoint is back in its group');
    assert.equal(restored?.description, 'printer lab');
    await until('requester told about the revocation', () =>
      feishuSim.messages().filter((m) => m.receive_id === openId).length === 2 ? true : undefined
    );
  });

  it('temporal-server stopped mid-burst: 503s, Feishu redelivers, after the restart every approval runs exactly once', async () => {
    const n = 24;
    const mac = (i: number) => `00:1B:44:99:00:${i.toString(16).padStart(2, '0').toUpperCase()}`;
    const openId = (i: number) => `ou_pg_burst_${i}`;
    const instances: string[] = [];
    nacSim.clearRequests();
    let stopping: Promise<void> | undefined;
    for (let i = 0; i < n; i++) {
      if (i === n / 3) stopping = pt.stopServer(); // mid-burst; the burst goes on while the server goes down
      instances.push(
        feishuSim.createInstance({
          approval_code: APPROVAL_CODE,
          open_id: openId(i),
          form: [{ id: 'widget_macs', name: 'MAC地址', type: 'textarea', value: mac(i) }],
        }).instance_code
      );
      await new Promise((r) => setTimeout(r, 100));
    }
    await stopping;
    const refused = await until('deliveries refused while Temporal is down', () => {
      const d = feishuSim.deliveries().filter((x) => instances.includes(x.instance_code ?? '') && !x.ok);
      return d.length >= 3 ? d : undefined;
    });
    assert.ok(
      refused.some((d) => d.status === 503),
      `the ingress answered 503 (got ${JSON.stringify(refused.map((d) => d.status ?? d.error))})`
    );
    for (const p of ingresses()) assert.equal((await fetch(`${p.url}/readyz`)).status, 503, `${p.role} not ready`);
    await new Promise((r) => setTimeout(r, 4000)); // down long enough for Feishu's second redelivery to fail too

    const restartedAt = Date.now();
    await pt.startServer();
    say(`temporal-server back in ${Date.now() - restartedAt} ms`);
    try {
      await until(
        `all ${n} grants active`,
        async () => {
          const phases = await Promise.all(instances.map(async (x) => (await status(x))?.phase));
          return phases.every((p) => p === 'active') ? true : undefined;
        },
        240_000
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${logsOf().join('\n')}`);
    }

    const all = feishuSim.deliveries().filter((d) => instances.includes(d.instance_code ?? ''));
    say(
      `burst of ${n}: ${all.length} deliveries, ${all.filter((d) => d.status === 503).length} answered 503, ` +
        `${all.filter((d) => !d.ok && d.status !== 503).length} other failures; all active ` +
        `${Math.round((Date.now() - restartedAt) / 1000)} s after the restart began`
    );
    for (const [i, instance] of instances.entries()) {
      const id = workflowIdFor('feishu', instance);
      const runs: string[] = [];
      for await (const wf of client.workflow.list({ query: `WorkflowId = '${id}'` })) runs.push(wf.runId);
      assert.equal(runs.length, 1, `${id}: one run`);
      const ep = endpoint(mac(i));
      assert.equal(ep?.groupId, nacSim.whitelistGroupId, `${mac(i)} whitelisted`);
      const writes = nacSim.requests({ mac: mac(i) }).filter((r) => r.write && r.status < 300);
      assert.equal(writes.length, 1, `${mac(i)}: written to the NAC exactly once (${JSON.stringify(writes)})`);
      const delivered = feishuSim.deliveries().filter((d) => d.instance_code === instance);
      assert.ok(
        delivered.some((d) => d.ok),
        `${instance}: delivered`
      );
      assert.ok(!delivered.some((d) => d.outcome === 'gave-up'), `${instance}: Feishu never gave up`);
    }
    await until(`every requester notified`, () =>
      Array.from({ length: n }, (_, i) => feishuSim.messages().filter((m) => m.receive_id === openId(i)).length).every(
        (c) => c >= 1
      )
        ? true
        : undefined
    );
    for (let i = 0; i < n; i++)
      assert.equal(
        feishuSim.messages().filter((m) => m.receive_id === openId(i)).length,
        1,
        `${openId(i)} notified exactly once`
      );
    for (const p of procs) assert.equal(p.child.exitCode, null, `${p.role} survived the server restart`);
  });

  it('the all-in-one sandbox (compose profile `sandbox`: `approval-plus start`) runs the demo against this server', async () => {
    // Its worker polls the same task queues: the two workers above (wired to other simulators) must be gone.
    await stopProcs();
    const [port, feishuSimPort, nacSimPort] = [await freePort(), await freePort(), await freePort()];
    const sandboxEnv = {
      SANDBOX: 'true',
      TEMPORAL_ADDRESS: pt.address,
      TEMPORAL_NAMESPACE: pt.namespace,
      PORT: String(port),
      FEISHU_SIM_PORT: String(feishuSimPort),
      NAC_SIM_PORT: String(nacSimPort),
      DATA_DIR: path.join(dir, 'sandbox'),
      LOG_LEVEL: 'warn',
    };
    const start = spawn(process.execPath, [BIN, 'start'], { cwd: ROOT, env: { ...process.env, ...sandboxEnv } });
    let out = '';
    start.stderr.on('data', (d: Buffer) => (out += d.toString()));
    start.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await until('sandbox running', () => (/is running/.test(out) ? true : undefined), 60_000).catch((err: Error) => {
        throw new Error(`${err.message}\n${out}`);
      });
      const demo = await runCli(['demo'], sandboxEnv);
      assert.equal(demo.code, 0, demo.out);
      assert.match(demo.out, /granted/);
    } finally {
      start.kill('SIGTERM');
      await new Promise((r) => start.once('exit', r));
    }
  });
});
