import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { startPostgresCluster, type PostgresCluster } from '../temporal/postgres-server';
import { workflowIdFor } from '../workflows/definitions';
import { createFreeRadiusDatabase, freeradiusMissing, type TestDatabase } from './support/freeradius';
import { startTestStack, until, type TestStack } from './support/harness';

/**
 * Fault suite: a burst of approvals while something breaks — the worker SIGKILLed and restarted, the Temporal dev
 * server stopped and restarted (the ingress answers 503, the Feishu simulator redelivers), the NAC failing (5xx,
 * time-outs after the write committed, 429s). Each ends with the NAC simulator's state exactly as expected (every MAC
 * of every approval whitelisted exactly once, nothing else) and every requester told exactly once.
 * CI runs a burst of ~12 approvals per fault; `FAULTS_LONG=1` runs the long variants (more approvals, more faults).
 */
const LONG = process.env.FAULTS_LONG === '1';
const BURST = LONG ? 100 : 12;
const settleMs = LONG ? 600_000 : 150_000;

interface Approval {
  openId: string;
  macs: string[];
  instance?: string;
}

/** A burst's approvals: unique requester and 1–2 unique MACs each, in a MAC range of the test's own (`block`). */
function burst(block: number, n: number): Approval[] {
  const hex = (x: number) => x.toString(16).padStart(2, '0').toUpperCase();
  return Array.from({ length: n }, (_, i) => ({
    openId: `ou_fault_${block}_${i}`,
    macs: Array.from({ length: 1 + (i % 2) }, (_, k) => `00:1B:44:${hex(block)}:${hex(i)}:${hex(k)}`),
  }));
}

const bare = (mac: string) => mac.toLowerCase().replace(/[^0-9a-f]/g, '');

/** Wait until every requester of the burst has had a message (then a little longer, to catch a second one). */
async function allNotified(t: TestStack, approvals: Approval[], timeoutMs = settleMs): Promise<void> {
  const want = new Set(approvals.map((a) => a.openId));
  await until(
    `all ${want.size} requesters notified`,
    () => {
      const got = new Set(t.feishuSim!.messages().map((m) => m.receive_id));
      return [...want].every((id) => got.has(id)) ? true : undefined;
    },
    timeoutMs
  );
  await new Promise((r) => setTimeout(r, 1500));
}

/**
 * The NAC holds exactly these MACs, each once, whitelisted (ISE: in the whitelist group; ClearPass: status Known);
 * each requester got exactly one message.
 */
function assertExact(t: TestStack, approvals: Approval[], vendor: 'ise' | 'clearpass' = 'ise'): void {
  const expected = approvals.flatMap((a) => a.macs).map(bare);
  const endpoints = t.nacSim!.store.list();
  const seen = new Map<string, number>();
  for (const e of endpoints) seen.set(e.mac, (seen.get(e.mac) ?? 0) + 1);
  assert.deepEqual(
    expected.filter((m) => seen.get(m) !== 1),
    [],
    'every MAC of every approval whitelisted exactly once'
  );
  assert.deepEqual(
    endpoints.filter((e) => !expected.includes(e.mac)).map((e) => e.mac),
    [],
    'nothing else in the NAC'
  );
  assert.deepEqual(
    endpoints
      .filter((e) => (vendor === 'clearpass' ? e.status !== 'Known' : e.groupId !== t.nacSim!.whitelistGroupId))
      .map((e) => e.mac),
    [],
    'all whitelisted'
  );
  // Not one endpoint created twice (a create that committed, then another after a retry).
  const creates = new Map<string, number>();
  for (const r of t.nacSim!.requests())
    if (r.method === 'POST' && r.status === 201 && r.mac) creates.set(r.mac, (creates.get(r.mac) ?? 0) + 1);
  assert.deepEqual(
    [...creates].filter(([, n]) => n > 1),
    [],
    'no MAC created twice'
  );

  const perRequester = new Map<string, number>();
  for (const m of t.feishuSim!.messages()) perRequester.set(m.receive_id, (perRequester.get(m.receive_id) ?? 0) + 1);
  assert.deepEqual(
    approvals.filter((a) => perRequester.get(a.openId) !== 1).map((a) => [a.openId, perRequester.get(a.openId) ?? 0]),
    [],
    'every requester notified exactly once'
  );
  for (const a of approvals) {
    const text = t
      .feishuSim!.messages()
      .filter((m) => m.receive_id === a.openId)
      .map((m) => JSON.stringify(m.content))
      .join('');
    assert.match(text, /access granted/, `${a.openId} told the access is granted`);
    assert.ok(text.includes(a.instance!), `${a.openId}'s message is about its own approval`);
  }
}

async function assertOneRunEach(t: TestStack, approvals: Approval[]): Promise<void> {
  for (const a of approvals) {
    const runs: string[] = [];
    for await (const wf of t.client.workflow.list({ query: `WorkflowId = '${workflowIdFor('feishu', a.instance!)}'` }))
      runs.push(wf.runId);
    assert.equal(runs.length, 1, `one run for ${a.instance}`);
  }
}

describe('fault: the worker is SIGKILLed mid-burst and restarted', () => {
  let t: TestStack;
  before(async () => {
    t = await startTestStack({ worker: false });
  });
  after(async () => {
    await t?.close();
  });

  it('ends with the exact NAC state and one message per requester', async () => {
    let worker = t.spawnWorker();
    t.nacSim!.setFaults({ latencyMs: 150 }); // long enough that a kill lands mid-burst
    const approvals = burst(0x10, BURST);
    for (const a of approvals) a.instance = t.createApproval(a.macs.join(' '), { openId: a.openId });
    const total = approvals.flatMap((a) => a.macs).length;
    const kills = LONG ? 3 : 1;
    for (let k = 0; k < kills; k++) {
      const threshold = Math.ceil(((k + 1) * total) / (kills + 2));
      await until(
        `${threshold} MACs whitelisted`,
        () => (t.nacSim!.store.list().length >= threshold ? true : undefined),
        120_000
      );
      worker.kill('SIGKILL');
      await once(worker, 'exit');
      assert.ok(t.nacSim!.store.list().length < total, 'killed before the burst was done');
      worker = t.spawnWorker();
    }
    await allNotified(t, approvals);
    t.nacSim!.clearFaults();
    assertExact(t, approvals);
    await assertOneRunEach(t, approvals);
  });
});

describe('fault: the Temporal dev server is stopped mid-burst and restarted', () => {
  let t: TestStack;
  before(async () => {
    t = await startTestStack({ stoppableTemporal: true });
  });
  after(async () => {
    await t?.close();
  });

  it('the ingress answers 503, the simulator redelivers, every approval runs once', async () => {
    await until('ready', async () => ((await fetch(`${t.ingressUrl}/readyz`)).status === 200 ? true : undefined));
    const approvals = burst(0x20, BURST);
    const half = Math.floor(approvals.length / 2);
    for (const a of approvals.slice(0, half)) a.instance = t.createApproval(a.macs.join(' '), { openId: a.openId });
    await until(
      'the first approvals accepted',
      () => (t.feishuSim!.deliveries().filter((d) => d.ok).length >= Math.ceil(half / 2) ? true : undefined),
      60_000
    );
    await t.stopTemporal();
    // The rest of the burst arrives while Temporal is down.
    for (const a of approvals.slice(half)) a.instance = t.createApproval(a.macs.join(' '), { openId: a.openId });
    const refused = await until('deliveries refused with 503', () => {
      const d = t.feishuSim!.deliveries().filter((x) => x.status === 503);
      return d.length >= approvals.length - half ? d : undefined;
    });
    assert.ok(refused.length >= approvals.length - half);
    if (LONG) await new Promise((r) => setTimeout(r, 5000)); // a longer outage
    await t.startTemporal();

    await allNotified(t, approvals);
    assertExact(t, approvals);
    await assertOneRunEach(t, approvals);
    const deliveries = t.feishuSim!.deliveries();
    for (const a of approvals) {
      const ok = deliveries.filter((d) => d.instance_code === a.instance && d.ok);
      assert.equal(ok.length, 1, `${a.instance} acknowledged exactly once`);
    }
    assert.equal(deliveries.filter((d) => d.outcome === 'gave-up').length, 0, 'no event given up');
    for (const d of deliveries.filter((x) => !x.ok)) assert.equal(d.status, 503, 'refusals are 503, not 5xx/4xx');
  });
});

for (const vendor of [
  { driver: 'ise', profile: 'ise-3.3', block: 0x30 },
  { driver: 'clearpass', profile: 'clearpass-6.12', block: 0x31 },
] as const) {
  describe(`fault: the NAC (${vendor.profile}) answers 5xx, times out after committing, and rate-limits`, () => {
    let t: TestStack;
    before(async () => {
      t = await startTestStack({ env: { NAC_DRIVER: vendor.driver, NAC_SIM_PROFILE: vendor.profile } });
    });
    after(async () => {
      await t?.close();
    });

    it('ends with the exact NAC state and one message per requester', async () => {
      // NAC_TIMEOUT_MS is 1 s in the harness: a held answer of 1.5 s is a time-out after the write committed.
      const approvals = burst(vendor.block, BURST);
      // First one fault that surely happens: the first create of this MAC commits, then its answer comes too late.
      const first = approvals[0]!;
      t.nacSim!.setFaults({ rules: [{ mac: first.macs[0]!, method: 'POST', timeoutAfterCommit: true, times: 1 }] });
      first.instance = t.createApproval(first.macs.join(' '), { openId: first.openId });
      await until('the held create committed', () => (t.nacSim!.store.byMac(bare(first.macs[0]!)) ? true : undefined));
      // Then the rest of the burst with random faults.
      t.nacSim!.setFaults({ errorRate5xx: 0.2, timeoutAfterCommitRate: 0.1, hangMs: 1500, rateLimitRps: 8 });
      for (const a of approvals.slice(1)) a.instance = t.createApproval(a.macs.join(' '), { openId: a.openId });
      await allNotified(t, approvals);
      const statuses = t.nacSim!.requests().map((r) => r.status);
      t.nacSim!.clearFaults();
      assert.ok(
        statuses.some((s) => s >= 500),
        'some 5xx were injected'
      );
      assert.ok(
        statuses.some((s) => s === 429),
        'some 429s were answered'
      );
      assertExact(t, approvals, vendor.driver);
      await assertOneRunEach(t, approvals);
    });
  });
}

describe(
  "fault: FreeRADIUS's PostgreSQL is restarted mid-burst (connections refused while it is down)",
  {
    skip: process.env.CI === 'true' ? false : freeradiusMissing(),
  },
  () => {
    let pg: PostgresCluster;
    let db: TestDatabase;
    let t: TestStack;
    before(async () => {
      // A cluster of the test's own: restarting the machine's PostgreSQL would hit every other test.
      pg = await startPostgresCluster({ say: () => undefined });
      db = await createFreeRadiusDatabase(`postgres://${pg.user}@127.0.0.1:${pg.port}/postgres`);
      await db.sql.query(
        `INSERT INTO radgroupreply (groupname, attribute, op, value) VALUES ('wifi-staff', 'Tunnel-Private-Group-Id', ':=', '30')`
      );
      t = await startTestStack({
        env: {
          NAC_DRIVER: 'freeradius',
          NAC_DATABASE_URL: db.url,
          NAC_FREERADIUS_GROUP: 'wifi-staff',
          NAC_COA: 'off',
          NAC_TIMEOUT_MS: '2000',
        },
      });
    });
    after(async () => {
      await t?.close();
      await db?.drop().catch(() => undefined);
      await pg?.stop();
    });

    it('ends with exactly one whitelist row set per MAC and one message per requester', async () => {
      const approvals = burst(0x46, BURST);
      for (const [i, a] of approvals.entries()) {
        a.instance = t.createApproval(a.macs.join('\n'), { openId: a.openId });
        if (i === Math.floor(approvals.length / 2)) await pg.restart(3000);
      }
      await allNotified(t, approvals);
      const sql = new Client({ connectionString: db.url });
      await sql.connect();
      try {
        const check = await sql.query<{ username: string; attribute: string; value: string; tag: string | null }>(
          'SELECT username, attribute, value, approval_plus_tag AS tag FROM radcheck ORDER BY username'
        );
        const groups = await sql.query<{ username: string; groupname: string }>(
          'SELECT username, groupname FROM radusergroup ORDER BY username'
        );
        const expected = approvals
          .flatMap((a) => a.macs)
          .map(bare)
          .sort();
        assert.deepEqual(
          check.rows.map((r) => r.username),
          expected,
          'one radcheck row per MAC, nothing else'
        );
        assert.ok(check.rows.every((r) => r.attribute === 'Cleartext-Password' && r.value === r.username && r.tag));
        assert.deepEqual(
          groups.rows.map((r) => r.username),
          expected,
          'one radusergroup row per MAC'
        );
        assert.ok(groups.rows.every((r) => r.groupname === 'wifi-staff'));
        assert.equal((await sql.query('SELECT 1 FROM radreply')).rowCount, 0);
      } finally {
        await sql.end();
      }
      const perRequester = new Map<string, number>();
      for (const m of t.feishuSim!.messages())
        perRequester.set(m.receive_id, (perRequester.get(m.receive_id) ?? 0) + 1);
      assert.deepEqual(
        approvals.filter((a) => perRequester.get(a.openId) !== 1).map((a) => a.openId),
        [],
        'every requester notified exactly once'
      );
      await assertOneRunEach(t, approvals);
    });
  }
);
