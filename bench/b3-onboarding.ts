import { submitApprovals, waitNotified } from './lib/approvals';
import { historyBreakdown } from './lib/history';
import { RssSampler } from './lib/proc';
import type { BenchContext, BenchReport } from './lib/report';
import { mapLimit, mib, r, sleep, summarize, table } from './lib/stats';
import { Topology } from './lib/topology';
import { isNacSimProfileName, NAC_SIM_PROFILES } from '../simulators/nac/profiles';
import { runB3FreeRadius } from './b3-freeradius';

/**
 * B3 — onboarding day: a burst of approvals × 3 MACs (500 × 3 = 1,500 devices) with the NAC limited to 20 requests
 * per second — NAC_MAX_RPS=20 in the app and the NAC simulator's own rate limit (429 + Retry-After beyond it).
 * Reports the total time (first event posted → last requester notified) against the lower bound 1,500 / 20 = 75 s
 * (one write per MAC), and against the bound for the requests the adapter actually made; NAC requests per new and
 * per pre-existing MAC, endpoint API and sessions/CoA counted apart; duplicates and missing entries counted in the
 * NAC simulator (both must be zero); peak RSS (VmHWM) of the worker and ingress processes.
 * `--profile` picks the simulator's vendor version (and so the adapter), `--preexisting 0.1` seeds that share of the
 * MACs as endpoints the NAC already knows (profiled, not whitelisted). Honours BENCH_TEMPORAL_ADDRESS /
 * BENCH_WORKERS / BENCH_INGRESS (bench-interface.md). `--nac freeradius`: the same burst against FreeRADIUS's tables
 * (b3-freeradius.ts).
 */
export async function runB3(ctx: BenchContext): Promise<BenchReport> {
  if (ctx.args.nac === 'freeradius') return runB3FreeRadius(ctx);
  const n = ctx.n ?? (ctx.quick ? 10 : 500);
  const macsPer = Number(ctx.args.macs ?? 3);
  const nacRps = Number(ctx.args['nac-rps'] ?? 20);
  const simRps = Number(ctx.args['sim-rps'] ?? 20);
  const burstConcurrency = Number(ctx.args.concurrency ?? 16);
  const profile = String(ctx.args.profile ?? 'ise-3.3');
  if (!isNacSimProfileName(profile)) throw new Error(`--profile: one of ${NAC_SIM_PROFILES.join(', ')}`);
  const preexistingShare = Number(ctx.args.preexisting ?? 0);
  if (!(preexistingShare >= 0 && preexistingShare <= 1)) throw new Error('--preexisting: a share between 0 and 1');
  const topo = new Topology({
    name: 'b3',
    childEnv: { NAC_MAX_RPS: String(nacRps) },
    nacProfile: profile,
    say: ctx.say,
  });
  try {
    await topo.start();
    topo.nacSim.setFaults({ rateLimitRps: simRps });
    const sampler = new RssSampler(() => ({
      ...Object.fromEntries(topo.workers.map((w) => [`worker${w.index}`, w.pid])),
      ...Object.fromEntries(topo.ingresses.map((w) => [`ingress${w.index}`, w.pid])),
    })).start(1000);
    const salt = Math.floor(Math.random() * 200);
    const specs = Array.from({ length: n }, (_, i) => ({
      openId: `ou_b3_${i}`,
      macs: Array.from({ length: macsPer }, (_, k) => Topology.mac(i * macsPer + k, salt)),
    }));
    const allMacs = specs.flatMap((s) => s.macs);
    // Every k-th MAC is one the NAC already knows (a profiled device, not whitelisted): the exists path.
    const every = preexistingShare > 0 ? Math.round(1 / preexistingShare) : 0;
    const preexisting = every ? allMacs.filter((_, i) => i % every === every - 1) : [];
    for (const mac of preexisting) topo.nacSim.store.seed({ mac, group: 'Profiled', status: 'Unknown' });
    const norm = (m: string) => m.toLowerCase().replace(/[^0-9a-f]/g, '');
    const preSet = new Set(preexisting.map(norm));
    const writesBoundSec = allMacs.length / Math.min(nacRps, simRps);
    ctx.say(
      `Submitting ${n} approvals × ${macsPer} MACs as a burst (≤ ${burstConcurrency} in flight); NAC at ${simRps} req/s; ` +
        `lower bound ${r(writesBoundSec)} s`
    );
    const t0 = Date.now();
    const submitted = await submitApprovals(topo, specs, { concurrency: burstConcurrency });
    const acceptedAllSec = (Date.now() - t0) / 1000;
    ctx.say(`  all ${n} events accepted after ${r(acceptedAllSec)} s`);
    const byId = await waitNotified(
      topo,
      specs.map((s) => s.openId),
      { timeoutMs: 180_000 + writesBoundSec * 6000, say: ctx.say }
    );
    const lastNotified = Math.max(...specs.map((s) => byId.get(s.openId)!.firstAt));
    const totalSec = (lastNotified - t0) / 1000;
    await sleep(2000); // a duplicate message or a late NAC write would show up here
    sampler.stop();
    const messages = topo.messagesByOpenId();
    const notNotifiedOnce = specs.filter((s) => (messages.get(s.openId)?.count ?? 0) !== 1).length;
    const nac = topo.nacCheck(allMacs);
    const accepted = nac.requests - nac.rateLimited; // requests the NAC actually served
    const adapterBoundSec = accepted / simRps;
    // Requests the NAC served, per device kind and API area (endpoint API vs. sessions/CoA); requests about no one
    // MAC (token, groups, CSRF) are spread over all MACs.
    const served = topo.nacRequests().filter((q) => q.status !== 429);
    const isCoa = (q: { area: string }) => q.area === 'mnt' || q.area === 'session';
    const count = (pred: (q: (typeof served)[number]) => boolean) => served.filter(pred).length;
    const shared = count((q) => !q.mac && !isCoa(q));
    const newCount = allMacs.length - preexisting.length;
    const perMac = {
      newEndpoint: r(
        (count((q) => !!q.mac && !preSet.has(q.mac) && !isCoa(q)) + (shared * newCount) / allMacs.length) /
          Math.max(1, newCount),
        3
      ),
      newCoa: r(count((q) => !!q.mac && !preSet.has(q.mac) && isCoa(q)) / Math.max(1, newCount), 3),
      preexistingEndpoint: preexisting.length
        ? r(count((q) => !!q.mac && preSet.has(q.mac) && !isCoa(q)) / preexisting.length, 3)
        : null,
      preexistingCoa: preexisting.length
        ? r(count((q) => !!q.mac && preSet.has(q.mac) && isCoa(q)) / preexisting.length, 3)
        : null,
      sharedRequests: shared,
    };
    const mem = topo.memory();
    // From the histories (after the measurement): how long activities waited (queue + retry back-off) and retried.
    const breakdowns = await mapLimit(submitted, 8, (s) => historyBreakdown(topo.client, `feishu-${s.instance}`));
    const activityWaitMs = summarize(breakdowns.map((b) => b.activityQueueMs));
    const activityRetries = breakdowns.reduce((acc, b) => acc + b.activityRetries, 0);
    const peak = (prefix: string) =>
      Math.max(
        0,
        ...sampler.samples.flatMap((s) =>
          Object.entries(s)
            .filter(([k]) => k.startsWith(prefix))
            .map(([, v]) => v)
        )
      );
    if (topo.external) await topo.terminateRun('benchmark B3 finished');

    const results = {
      approvals: n,
      macs: allMacs.length,
      totalSec: r(totalSec, 2),
      allEventsAcceptedSec: r(acceptedAllSec, 2),
      lowerBoundWritesSec: r(writesBoundSec, 2),
      lowerBoundAdapterRequestsSec: r(adapterBoundSec, 2),
      ratioToWritesBound: r(totalSec / writesBoundSec, 3),
      ratioToAdapterBound: r(totalSec / adapterBoundSec, 3),
      nac,
      profile,
      preexisting: preexisting.length,
      nacRequestsPerMac: r(accepted / allMacs.length, 2),
      endpointRequestsPerMac: r((nac.endpointRequests - nac.rateLimited) / allMacs.length, 3),
      coaRequestsPerMac: r(nac.coaRequests / allMacs.length, 3),
      perMac,
      requestersNotNotifiedExactlyOnce: notNotifiedOnce,
      ingressRetries: submitted.reduce((a, s) => a + s.attempts - 1, 0),
      activityWaitMsPerApproval: activityWaitMs,
      activityRetries,
      memory: mem,
      peakRssSampled: { worker: peak('worker'), ingress: peak('ingress') },
      rssTimeline: sampler.samples,
      // For the plot: when each MAC's endpoint was created, and each requester told (seconds after the first event).
      whitelistedAtSec: topo
        .nacRequests()
        .filter((q) => q.method === 'POST' && q.status === 201)
        .map((q) => r((Date.parse(q.at) - t0) / 1000, 2))
        .sort((a, b) => a - b),
      notifiedAtSec: specs.map((s) => r((byId.get(s.openId)!.firstAt - t0) / 1000, 2)).sort((a, b) => a - b),
    };
    const tbl = table([
      ['measure', 'value'],
      ['NAC simulator profile (adapter)', profile],
      ['approvals × MACs', `${n} × ${macsPer} = ${allMacs.length}`],
      ['MACs the NAC knew before (exists path)', `${preexisting.length}`],
      ['NAC rate limit (app NAC_MAX_RPS / simulator)', `${nacRps} / ${simRps} req/s`],
      ['total: first event → last requester notified', `${r(totalSec, 1)} s`],
      ['lower bound, one write per MAC', `${r(writesBoundSec, 1)} s (×${results.ratioToWritesBound})`],
      [
        `lower bound, requests the adapter made (${results.nacRequestsPerMac}/MAC)`,
        `${r(adapterBoundSec, 1)} s (×${results.ratioToAdapterBound})`,
      ],
      ['all events acknowledged after', `${r(acceptedAllSec, 1)} s`],
      ['NAC missing entries', nac.missing],
      ['NAC duplicates', nac.duplicates],
      ['NAC unexpected entries / not in whitelist group', `${nac.unexpected} / ${nac.notInGroup}`],
      ['NAC requests served / 429 / 5xx', `${accepted} / ${nac.rateLimited} / ${nac.serverErrors}`],
      ['NAC requests per new MAC: endpoint API / CoA', `${perMac.newEndpoint} / ${perMac.newCoa}`],
      [
        'NAC requests per pre-existing MAC: endpoint API / CoA',
        preexisting.length ? `${perMac.preexistingEndpoint} / ${perMac.preexistingCoa}` : '—',
      ],
      ['requesters not notified exactly once', notNotifiedOnce],
      ['activity retries (all approvals)', activityRetries],
      [
        'activity wait per approval, p50 / p99 (queue + back-off)',
        `${r(activityWaitMs.p50 / 1000)} s / ${r(activityWaitMs.p99 / 1000)} s`,
      ],
      ['worker peak RSS (VmHWM)', mem.workers.map((m) => mib(m.hwmBytes)).join(', ')],
      ['ingress peak RSS (VmHWM)', mem.ingress.map((m) => mib(m.hwmBytes)).join(', ')],
    ]);
    return {
      topology: topo.info(),
      params: {
        approvals: n,
        macsPerApproval: macsPer,
        nacMaxRps: nacRps,
        simRateLimitRps: simRps,
        burstConcurrency,
        profile,
        preexistingShare,
      },
      results,
      table: tbl,
      notes: [
        'a new MAC costs one request (create-first); a MAC the NAC knew costs the refused create, a read (the prior state) and the write, plus a session lookup for the Change of Authorization',
      ],
    };
  } finally {
    await topo.close();
  }
}
