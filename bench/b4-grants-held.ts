import { contactUserDeletedV2 } from '../simulators/feishu/event-signer';
import { submitApprovals, waitNotified } from './lib/approvals';
import { RssSampler } from './lib/proc';
import type { BenchContext, BenchReport } from './lib/report';
import { mib, r, sleep, table, waitFor } from './lib/stats';
import { Topology } from './lib/topology';

/**
 * B4 — grants held: 5,000 live grants, each an open workflow waiting on its expiry timer (有效期 30天). Reports the
 * worker's RSS while it holds them, the dev server's database size (its sqlite file), and the time to revoke every
 * grant of one leaver: a requester holding 20 of the grants leaves the company (`contact.user.deleted_v3`, signed and
 * encrypted, posted to the ingress), timed until every one of the leaver's MACs is gone from the NAC simulator.
 */
export async function runB4(ctx: BenchContext): Promise<BenchReport> {
  const n = ctx.n ?? (ctx.quick ? 30 : 5000);
  const leaverGrants = Number(ctx.args['leaver-grants'] ?? (ctx.quick ? 5 : 20));
  const concurrency = Number(ctx.args.concurrency ?? 16);
  const settleMs = Number(ctx.args['settle-seconds'] ?? (ctx.quick ? 1 : 15)) * 1000;
  const leaver = 'ou_b4_leaver';
  const topo = new Topology({
    name: 'b4',
    childEnv: { NAC_MAX_RPS: String(ctx.args['nac-rps'] ?? 200) },
    say: ctx.say,
  });
  try {
    await topo.start();
    const sampler = new RssSampler(() => ({
      ...Object.fromEntries(topo.workers.map((w) => [`worker${w.index}`, w.pid])),
      ...Object.fromEntries(topo.ingresses.map((w) => [`ingress${w.index}`, w.pid])),
      ...(topo.devServer ? { temporal: topo.devServer.pid } : {}),
    })).start(2000);
    const salt = Math.floor(Math.random() * 200);
    // The leaver's grants are spread through the run, not all first.
    const stride = Math.max(1, Math.floor(n / leaverGrants));
    const isLeavers = (i: number) => i % stride === 0 && i / stride < leaverGrants;
    const specs = Array.from({ length: n }, (_, i) => ({
      openId: isLeavers(i) ? leaver : `ou_b4_${i}`,
      macs: [Topology.mac(i, salt)],
      duration: '30天',
    }));
    const leaverMacs = specs.filter((s) => s.openId === leaver).flatMap((s) => s.macs);
    ctx.say(
      `Establishing ${n} grants (≤ ${concurrency} events in flight), ${leaverMacs.length} of them the leaver's …`
    );
    const t0 = Date.now();
    await submitApprovals(topo, specs, { concurrency });
    const perRequester = new Map([[leaver, leaverMacs.length]]);
    await waitNotified(
      topo,
      specs.map((s) => s.openId),
      { timeoutMs: 300_000 + n * 500, say: ctx.say, perRequester }
    );
    const establishSec = (Date.now() - t0) / 1000;
    ctx.say(`  ${n} grants active after ${r(establishSec)} s; settling ${settleMs / 1000} s`);
    let running = 0;
    await waitFor(
      'visibility to list every grant as running',
      async () => (running = await topo.countWorkflows("ExecutionStatus = 'Running'")) >= n,
      60_000,
      1000
    ).catch(() => undefined);
    await sleep(settleMs);
    const held = { memory: topo.memory(), dbBytes: topo.dbBytes(), runningWorkflows: running };
    const nacBefore = topo.nacCheck(specs.flatMap((s) => s.macs));

    // The leaver leaves.
    const event = contactUserDeletedV2({
      openId: leaver,
      token: topo.env.FEISHU_VERIFICATION_TOKEN!,
      appId: topo.env.FEISHU_APP_ID,
    });
    const leftAt = Date.now();
    const ack = await topo.post(event);
    const leaverSet = new Set(leaverMacs.map((m) => m.toLowerCase().replace(/[^0-9a-f]/g, '')));
    await waitFor(
      "every leaver's MAC removed from the NAC",
      () => !topo.nacSim.store.list().some((e) => leaverSet.has(e.mac)),
      120_000,
      50
    );
    const revokedSec = (Date.now() - leftAt) / 1000;
    perRequester.set(leaver, leaverMacs.length * 2); // granted + revoked message per grant
    await waitNotified(topo, [leaver], { timeoutMs: 60_000, say: ctx.say, perRequester });
    const toldSec = (Date.now() - leftAt) / 1000;
    await sleep(1000);
    sampler.stop();
    const others = specs.filter((s) => s.openId !== leaver).flatMap((s) => s.macs);
    const nacAfter = topo.nacCheck(others);
    const stillRunning = await topo.countWorkflows("ExecutionStatus = 'Running'");
    if (topo.external) await topo.terminateRun('benchmark B4 finished');

    const w = held.memory.workers;
    const results = {
      grants: n,
      establishSec: r(establishSec, 1),
      establishRatePerSec: r(n / establishSec, 1),
      held: {
        workerRssBytes: w.map((m) => m.rssBytes),
        workerHwmBytes: w.map((m) => m.hwmBytes),
        ingressRssBytes: held.memory.ingress.map((m) => m.rssBytes),
        temporalRssBytes: held.memory.temporal?.rssBytes ?? null,
        dbBytes: held.dbBytes,
        dbBytesPerGrant: held.dbBytes === null ? null : r(held.dbBytes / n, 0),
        runningWorkflows: held.runningWorkflows,
      },
      nacBeforeLeaver: nacBefore,
      leaver: {
        grants: leaverMacs.length,
        ack: { status: ack.status, outcome: ack.outcome, ms: ack.ackAt - ack.sentAt, attempts: ack.attempts },
        allRevokedInNacSec: r(revokedSec, 2),
        allToldSec: r(toldSec, 2),
      },
      nacAfterLeaver: nacAfter,
      runningAfterLeaver: stillRunning,
      rssTimeline: sampler.samples,
    };
    const tbl = table([
      ['measure', 'value'],
      ['live grants (open workflows, expiry timer 30 days)', `${n} (visibility: ${held.runningWorkflows} running)`],
      ['time to establish them', `${r(establishSec, 1)} s (${results.establishRatePerSec} grants/s)`],
      ['worker RSS holding them (VmRSS / VmHWM)', w.map((m) => `${mib(m.rssBytes)} / ${mib(m.hwmBytes)}`).join(', ')],
      ['ingress RSS', held.memory.ingress.map((m) => mib(m.rssBytes)).join(', ')],
      ['Temporal dev server RSS', mib(held.memory.temporal?.rssBytes)],
      [
        'dev server database (sqlite + WAL)',
        held.dbBytes === null
          ? 'n/a (external Temporal)'
          : `${mib(held.dbBytes)} (${results.held.dbBytesPerGrant} B/grant)`,
      ],
      ['NAC before the leaver: missing / duplicates', `${nacBefore.missing} / ${nacBefore.duplicates}`],
      [`leaver (${leaverMacs.length} grants): event acknowledged`, `${results.leaver.ack.ms} ms (${ack.outcome})`],
      ['leaver: all MACs removed from the NAC after', `${results.leaver.allRevokedInNacSec} s`],
      ['leaver: all revocation messages sent after', `${results.leaver.allToldSec} s`],
      [
        'others after: missing / unexpected / duplicates',
        `${nacAfter.missing} / ${nacAfter.unexpected} / ${nacAfter.duplicates}`,
      ],
      ['running workflows after', `${stillRunning} (expected ${n - leaverMacs.length})`],
    ]);
    return {
      topology: topo.info(),
      params: {
        grants: n,
        leaverGrants: leaverMacs.length,
        concurrency,
        settleSeconds: settleMs / 1000,
        duration: '30天',
      },
      results,
      table: tbl,
    };
  } finally {
    await topo.close();
  }
}
