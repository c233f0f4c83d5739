import { Client } from 'pg';
import { submitApprovals, waitNotified } from './lib/approvals';
import { RssSampler } from './lib/proc';
import type { BenchContext, BenchReport } from './lib/report';
import { mib, r, sleep, table } from './lib/stats';
import { Topology } from './lib/topology';
import { createFreeRadiusDatabase } from '../test/support/freeradius';

/**
 * B3 for NAC_DRIVER=freeradius (`npm run bench -- b3 --nac freeradius`): the same onboarding burst (500 approvals × 3
 * MACs) with the whitelist written into FreeRADIUS's own tables, on a database of the bench's own in the local
 * PostgreSQL (the package's schema), NAC_MAX_RPS=20 transactions per second. The per-MAC cost is counted by
 * PostgreSQL itself (pg_stat_database: transactions committed and rolled back on that database during the run), and
 * the final rows are checked: exactly one radcheck and one radusergroup row per MAC, nothing else.
 */
export async function runB3FreeRadius(ctx: BenchContext): Promise<BenchReport> {
  const n = ctx.n ?? (ctx.quick ? 10 : 500);
  const macsPer = Number(ctx.args.macs ?? 3);
  const nacRps = Number(ctx.args['nac-rps'] ?? 20);
  const burstConcurrency = Number(ctx.args.concurrency ?? 16);
  const db = await createFreeRadiusDatabase();
  await db.sql.query(
    `INSERT INTO radgroupreply (groupname, attribute, op, value) VALUES
       ('wifi-staff', 'Tunnel-Type', ':=', 'VLAN'), ('wifi-staff', 'Tunnel-Medium-Type', ':=', 'IEEE-802'),
       ('wifi-staff', 'Tunnel-Private-Group-Id', ':=', '30')`
  );
  const topo = new Topology({
    name: 'b3-freeradius',
    childEnv: {
      NAC_DRIVER: 'freeradius',
      NAC_DATABASE_URL: db.url,
      NAC_FREERADIUS_GROUP: 'wifi-staff',
      NAC_MAX_RPS: String(nacRps),
      // CoA on, as in production: each new MAC also looks its session up in radacct (none here: no NAS packet).
      NAC_COA: 'disconnect',
      NAC_RADIUS_COA_SECRET: 'bench-coa-secret',
    },
    say: ctx.say,
  });
  const xacts = async () => {
    const q = await db.sql.query<{ c: string; r: string }>(
      'SELECT xact_commit AS c, xact_rollback AS r FROM pg_stat_database WHERE datname = current_database()'
    );
    return { commit: Number(q.rows[0]!.c), rollback: Number(q.rows[0]!.r) };
  };
  try {
    await topo.start();
    const sampler = new RssSampler(() =>
      Object.fromEntries(topo.workers.map((w) => [`worker${w.index}`, w.pid]))
    ).start(1000);
    const salt = Math.floor(Math.random() * 200);
    const specs = Array.from({ length: n }, (_, i) => ({
      openId: `ou_b3fr_${i}`,
      macs: Array.from({ length: macsPer }, (_, k) => Topology.mac(i * macsPer + k, salt)),
    }));
    const allMacs = specs.flatMap((s) => s.macs);
    const writesBoundSec = allMacs.length / nacRps;
    await sleep(1500); // the worker's start-up check (verify: the tag column) has run; its transactions are not counted
    const before = await xacts();
    ctx.say(
      `Submitting ${n} approvals × ${macsPer} MACs; FreeRADIUS SQL at ${nacRps} transactions/s; lower bound ${r(writesBoundSec)} s`
    );
    const t0 = Date.now();
    await submitApprovals(topo, specs, { concurrency: burstConcurrency });
    const byId = await waitNotified(
      topo,
      specs.map((s) => s.openId),
      { timeoutMs: 180_000 + writesBoundSec * 6000, say: ctx.say }
    );
    const totalSec = (Math.max(...specs.map((s) => byId.get(s.openId)!.firstAt)) - t0) / 1000;
    await sleep(2000);
    sampler.stop();
    // A backend's statistics reach pg_stat_database when it flushes them: at a transaction's end at most once a
    // second, and after 10 s idle (PostgreSQL 15's PGSTAT_MIN_INTERVAL / PGSTAT_IDLE_INTERVAL): wait the idle flush.
    await sleep(11_000);
    const afterX = await xacts();
    const committed = afterX.commit - before.commit - 1; // minus this query's own snapshot read
    const rolledBack = afterX.rollback - before.rollback;
    const sql = new Client({ connectionString: db.url });
    await sql.connect();
    const want = new Set(allMacs.map((m) => m.toLowerCase().replace(/[^0-9a-f]/g, '')));
    const check = (
      await sql.query<{ username: string; n: string }>('SELECT username, count(*) AS n FROM radcheck GROUP BY username')
    ).rows;
    const groups = (
      await sql.query<{ username: string; n: string }>(
        'SELECT username, count(*) AS n FROM radusergroup GROUP BY username'
      )
    ).rows;
    await sql.end();
    const missing = [...want].filter((m) => !check.some((c) => c.username === m)).length;
    const duplicates = check.filter((c) => Number(c.n) > 1).length + groups.filter((g) => Number(g.n) > 1).length;
    const unexpected = check.filter((c) => !want.has(c.username)).length;
    const messages = topo.messagesByOpenId();
    const notNotifiedOnce = specs.filter((s) => (messages.get(s.openId)?.count ?? 0) !== 1).length;
    const mem = topo.memory();
    const results = {
      approvals: n,
      macs: allMacs.length,
      totalSec: r(totalSec, 2),
      lowerBoundWritesSec: r(writesBoundSec, 2),
      ratioToWritesBound: r(totalSec / writesBoundSec, 3),
      transactionsCommitted: committed,
      transactionsRolledBack: rolledBack,
      transactionsPerMac: r(committed / allMacs.length, 3),
      missing,
      duplicates,
      unexpected,
      requestersNotNotifiedExactlyOnce: notNotifiedOnce,
      workerPeakRss: mem.workers.map((m) => m.hwmBytes),
    };
    const tbl = table([
      ['measure', 'value'],
      ['approvals × MACs', `${n} × ${macsPer} = ${allMacs.length}`],
      ['NAC_MAX_RPS (SQL transactions/s)', nacRps],
      ['total: first event → last requester notified', `${r(totalSec, 1)} s`],
      ['lower bound, one transaction per MAC', `${r(writesBoundSec, 1)} s (×${results.ratioToWritesBound})`],
      ['transactions per MAC (committed, pg_stat_database)', `${results.transactionsPerMac} (${committed} in all)`],
      ['transactions rolled back', rolledBack],
      ['missing / duplicate / unexpected rows', `${missing} / ${duplicates} / ${unexpected}`],
      ['requesters not notified exactly once', notNotifiedOnce],
      ['worker peak RSS (VmHWM)', mem.workers.map((m) => mib(m.hwmBytes)).join(', ')],
    ]);
    return {
      topology: topo.info(),
      params: { nac: 'freeradius', approvals: n, macsPerApproval: macsPer, nacMaxRps: nacRps, burstConcurrency },
      results,
      table: tbl,
      notes: [
        'a new MAC costs one transaction to whitelist (create-first: read, write and tag in one) and one read-only transaction for the CoA session lookup in radacct',
      ],
    };
  } finally {
    await topo.close();
    await db.drop();
  }
}
