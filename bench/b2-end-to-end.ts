import { submitApprovals, waitNotified } from './lib/approvals';
import { historyBreakdown } from './lib/history';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { RssSampler } from './lib/proc';
import type { BenchContext, BenchReport } from './lib/report';
import { mapLimit, mib, r, sleep, summarize, table, waitFor } from './lib/stats';
import { outDir, Topology } from './lib/topology';
import {
  breakdownTable,
  fetchHistories,
  historiesJson,
  kindTotals,
  segmentsOf,
  summariseSegments,
} from './lib/where-time-goes';

/**
 * B2 — end to end: from the approval event posted to the ingress (signed and encrypted, as Feishu posts it) to the
 * requester's message arriving in the Feishu simulator (its `create_time`). Approvals arrive at a fixed rate, one
 * MAC each by default, through the whole stack: ingress → Temporal → worker → Feishu API (fetch) → NAC (read, write)
 * → Feishu message. Honours BENCH_TEMPORAL_ADDRESS / BENCH_WORKERS / BENCH_INGRESS (bench-interface.md).
 */
export async function runB2(ctx: BenchContext): Promise<BenchReport> {
  const n = ctx.n ?? (ctx.quick ? 10 : 200);
  const rate = Number(ctx.args.rate ?? 5);
  const macsPer = Number(ctx.args.macs ?? 1);
  const topo = new Topology({
    name: 'b2',
    childEnv: { NAC_MAX_RPS: String(ctx.args['nac-rps'] ?? 200) },
    journal: Topology.journalArg(ctx.args),
    say: ctx.say,
  });
  try {
    await topo.start();
    const sampler = new RssSampler(() => ({
      ...Object.fromEntries(topo.workers.map((w) => [`worker${w.index}`, w.pid])),
      ...Object.fromEntries(topo.ingresses.map((w) => [`ingress${w.index}`, w.pid])),
    })).start();
    const salt = Math.floor(Math.random() * 200);
    const specs = Array.from({ length: n }, (_, i) => ({
      openId: `ou_b2_${i}`,
      macs: Array.from({ length: macsPer }, (_, k) => Topology.mac(i * macsPer + k, salt)),
    }));
    ctx.say(`Submitting ${n} approvals at ${rate}/s …`);
    const submitted = await submitApprovals(topo, specs, { rate });
    const byId = await waitNotified(
      topo,
      specs.map((s) => s.openId),
      { timeoutMs: 120_000 + n * 1000, say: ctx.say }
    );
    await sleep(1000); // let a duplicate message, if any, show up before counting
    sampler.stop();
    const messages = topo.messagesByOpenId();
    const e2e = submitted.map((s) => byId.get(s.openId)!.firstAt - s.sentAt);
    const ack = submitted.map((s) => s.ackAt - s.sentAt);
    const notifiedTwice = specs.filter((s) => (messages.get(s.openId)?.count ?? 0) !== 1).length;
    const nac = topo.nacCheck(specs.flatMap((s) => s.macs));
    let workflows = 0;
    await waitFor(
      'visibility to list every workflow',
      async () => (workflows = await topo.countWorkflows()) >= n,
      30_000,
      500
    ).catch(() => undefined);
    const mem = topo.memory();
    // Where the time went (after the measurement, from the histories): queue waits vs running, per approval.
    const breakdowns = await mapLimit(submitted, 8, (s) => historyBreakdown(topo.client, `feishu-${s.instance}`));
    const parts = {
      'event → workflow started': submitted.map((s, i) => breakdowns[i]!.startedAt - s.sentAt),
      'workflow tasks waiting': breakdowns.map((b) => b.workflowTaskQueueMs),
      'workflow tasks running': breakdowns.map((b) => b.workflowTaskRunMs),
      'activities waiting (incl. retries)': breakdowns.map((b) => b.activityQueueMs),
      'activities running': breakdowns.map((b) => Object.values(b.activityRunMs).reduce((x, y) => x + y, 0)),
    };
    // Step by step (bench/lib/where-time-goes.ts): each workflow task's and activity's queue wait and run, in path
    // order; the histories are kept in .bench-out/b2-histories.json for a second look.
    const histories = await fetchHistories(
      topo.client,
      submitted.map((s) => ({ workflowId: `feishu-${s.instance}`, sentAt: s.sentAt }))
    );
    const segments = histories.map((h) => segmentsOf(h.history, h.sentAt));
    const historiesFile = path.join(outDir(), 'b2-histories.json');
    writeFileSync(historiesFile, historiesJson(histories));
    const retriesTotal = breakdowns.reduce((acc, b) => acc + b.activityRetries, 0);
    const breakdown = Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, summarize(v)]));
    const e = summarize(e2e);
    const a = summarize(ack);
    const retries = submitted.reduce((acc, s) => acc + s.attempts - 1, 0);
    if (topo.external) await topo.terminateRun('benchmark B2 finished');

    const results = {
      approvals: n,
      endToEndMs: e,
      ackMs: a,
      ingressRetries: retries,
      outcomes: submitted.reduce<Record<string, number>>(
        (acc, s) => ((acc[s.outcome ?? '?'] = (acc[s.outcome ?? '?'] ?? 0) + 1), acc),
        {}
      ),
      requestersNotified: byId.size,
      requestersNotNotifiedExactlyOnce: notifiedTwice,
      workflows,
      nac,
      memory: mem,
      breakdownMs: breakdown,
      stepsMs: summariseSegments(segments),
      stepKindsMs: kindTotals(segments),
      activityRetries: retriesTotal,
      rssTimeline: sampler.samples,
      endToEndMsSorted: [...e2e].sort((x, y) => x - y),
    };
    const tbl = table([
      ['measure', 'count', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'mean ms'],
      ['event → requester notified', e.count, r(e.p50), r(e.p90), r(e.p99), r(e.max), r(e.mean)],
      ['event → ingress 200', a.count, r(a.p50), r(a.p90), r(a.p99), r(a.max), r(a.mean)],
    ]);
    const split = table([
      ['where the time went (from histories)', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
      ...Object.entries(breakdown).map(([k, v]) => [k, r(v.p50), r(v.p90), r(v.p99), r(v.max)]),
    ]);
    const checks = table([
      ['check', 'value'],
      ['approvals', n],
      ['workflows (visibility)', workflows],
      ['requesters not notified exactly once', notifiedTwice],
      ['NAC missing / duplicates / unexpected', `${nac.missing} / ${nac.duplicates} / ${nac.unexpected}`],
      ['NAC requests (writes)', `${nac.requests} (${nac.writes})`],
      ['ingress retries (non-200)', retries],
      ['activity retries', retriesTotal],
      ['worker VmHWM', mem.workers.map((m) => mib(m.hwmBytes)).join(', ')],
      ['ingress VmHWM', mem.ingress.map((m) => mib(m.hwmBytes)).join(', ')],
    ]);
    return {
      topology: topo.info(),
      params: { approvals: n, ratePerSec: rate, macsPerApproval: macsPer, nacMaxRps: Number(topo.env.NAC_MAX_RPS) },
      results,
      table: `${tbl}\n\n${split}\n\n${breakdownTable(segments)}\n\n${checks}`,
      notes: [
        `approvals arrive at ${rate}/s; latency from the first POST of the event to the message's create_time`,
        `histories in ${historiesFile} (node --import tsx bench/lib/where-time-goes.ts ${historiesFile})`,
      ],
    };
  } finally {
    await topo.close();
  }
}
