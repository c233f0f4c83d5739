import { DEFAULT_MAX_CACHED_WORKFLOWS } from '../config/config';
import { grantsQuery, listGrants, MAX_PAGE_SIZE } from '../operator/grants';
import { contactUserDeletedV2 } from '../simulators/feishu/event-signer';
import { freePort } from '../temporal/dev-server';
import { submitApprovals, waitNotified } from './lib/approvals';
import { RssSampler } from './lib/proc';
import type { BenchContext, BenchReport } from './lib/report';
import { mib, r, sleep, table, waitFor } from './lib/stats';
import { Topology } from './lib/topology';

/**
 * B4 — grants held: 5,000 (or `--n 50000`) live grants, each an open workflow waiting on its expiry timer: one in ten
 * 有效期 7天, the rest 30天. The worker runs with WORKER_MAX_CACHED_WORKFLOWS (`--cache`, default the app's). Reports
 * the worker's RSS while it holds them, the dev server's database size (its sqlite file), the time to list the grants
 * expiring this week (`approval-plus grants --expiring 7d`: the first page, every page, and the bare visibility
 * count), and the time to revoke every grant of one leaver: a requester holding 20 of the grants leaves the company
 * (`contact.user.deleted_v3`, signed and encrypted, posted to the ingress), timed until every one of the leaver's MACs
 * is gone from the NAC simulator.
 */
export async function runB4(ctx: BenchContext): Promise<BenchReport> {
  const n = ctx.n ?? (ctx.quick ? 30 : 5000);
  const leaverGrants = Number(ctx.args['leaver-grants'] ?? (ctx.quick ? 5 : 20));
  const concurrency = Number(ctx.args.concurrency ?? 16);
  const settleMs = Number(ctx.args['settle-seconds'] ?? (ctx.quick ? 1 : 15)) * 1000;
  const cache = Number(ctx.args.cache ?? DEFAULT_MAX_CACHED_WORKFLOWS);
  const window = Number(ctx.args.window ?? Math.max(2, Math.floor(cache * 0.8)));
  const leaver = 'ou_b4_leaver';
  // The worker's memory is what B4 is about: by default measure it as production runs it (compiled, prebuilt bundle);
  // the --quick smoke run keeps to the sources (no build).
  const runtime = Topology.runtimeArg(ctx.args, ctx.quick ? 'tsx' : 'built');
  // The V8 heap limit docker-compose.yml gives the worker (NODE_OPTIONS); `--worker-heap 0` = Node's own default.
  const workerHeapMiB = Number(ctx.args['worker-heap'] ?? 768);
  // The SDK's own metrics, for its sticky-cache hits and misses (one worker: one port).
  const metricsPort = await freePort();
  const topo = new Topology({
    name: 'b4',
    runtime,
    workers: 1,
    workerEnv: {
      TEMPORAL_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      ...(workerHeapMiB > 0 ? { NODE_OPTIONS: `--max-old-space-size=${workerHeapMiB}` } : {}),
    },
    childEnv: { NAC_MAX_RPS: String(ctx.args['nac-rps'] ?? 200), WORKER_MAX_CACHED_WORKFLOWS: String(cache) },
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
    // One in ten expires this week: what `grants --expiring 7d` has to find among all of them.
    const expiresThisWeek = (i: number) => !isLeavers(i) && i % 10 === 5;
    const specs = Array.from({ length: n }, (_, i) => ({
      openId: isLeavers(i) ? leaver : `ou_b4_${i}`,
      macs: [Topology.mac(i, salt)],
      duration: expiresThisWeek(i) ? '7天' : '30天',
    }));
    const weekGrants = specs.filter((s) => s.duration === '7天').length;
    const leaverMacs = specs.filter((s) => s.openId === leaver).flatMap((s) => s.macs);
    ctx.say(
      `Establishing ${n} grants (≤ ${concurrency} events in flight, ≤ ${window} not yet notified), ` +
        `${leaverMacs.length} of them the leaver's …`
    );
    const t0 = Date.now();
    // At most `window` approvals between their event and the requester's message: a steady stream the stack keeps up
    // with, rather than a backlog of tens of thousands of new runs thrashing a worker cache of a few hundred.
    // The simulator's message list is copied on every read: read it once per 20 ms for all waiting submitters.
    let submitted = 0;
    let notified = 0;
    let readAt = 0;
    const gate = async () => {
      for (;;) {
        if (Date.now() - readAt >= 20) [notified, readAt] = [topo.feishuSim.messages().length, Date.now()];
        if (submitted - notified < window) break;
        await sleep(20);
      }
      submitted++;
    };
    await submitApprovals(topo, specs, { concurrency, gate });
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

    // The operator's question: which grants expire this week?
    const week = { expiringWithinMs: 7 * 86_400_000 };
    ctx.say(`Listing the ${weekGrants} grants expiring this week …`);
    let t = Date.now();
    const counted = (await topo.client.workflow.count(grantsQuery(week, Date.now()))).count;
    const countMs = Date.now() - t;
    t = Date.now();
    const first = await listGrants(topo.client, week);
    const firstPageMs = Date.now() - t;
    t = Date.now();
    let listed = 0;
    let unknown = 0;
    let pages = 0;
    let token: string | undefined;
    do {
      const page = await listGrants(topo.client, week, { pageSize: MAX_PAGE_SIZE, nextPageToken: token });
      pages++;
      listed += page.grants.length;
      unknown += page.grants.filter((g) => g.phase === 'unknown').length;
      token = page.nextPageToken;
    } while (token);
    const allPagesMs = Date.now() - t;
    // Every row's query is a workflow task: runs outside the cache are replayed, so memory may climb here.
    const afterListing = topo.memory().workers;
    const listing = {
      expected: weekGrants,
      counted,
      countMs,
      firstPage: { rows: first.grants.length, ms: firstPageMs },
      allPages: { rows: listed, pages, pageSize: MAX_PAGE_SIZE, ms: allPagesMs, unknownPhase: unknown },
      workerRssAfterBytes: afterListing.map((m) => m.rssBytes),
    };
    ctx.say(`  count ${counted} in ${countMs} ms; first page ${firstPageMs} ms; all ${listed} in ${allPagesMs} ms`);

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
    const cacheStats = await stickyCache(metricsPort);
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
      expiringThisWeek: listing,
      nacBeforeLeaver: nacBefore,
      leaver: {
        grants: leaverMacs.length,
        ack: { status: ack.status, outcome: ack.outcome, ms: ack.ackAt - ack.sentAt, attempts: ack.attempts },
        allRevokedInNacSec: r(revokedSec, 2),
        allToldSec: r(toldSec, 2),
      },
      nacAfterLeaver: nacAfter,
      runningAfterLeaver: stillRunning,
      stickyCache: cacheStats,
      rssTimeline: sampler.samples,
    };
    const tbl = table([
      ['measure', 'value'],
      ['live grants (open workflows: 7 or 30 days)', `${n} (visibility: ${held.runningWorkflows} running)`],
      ['worker cache (WORKER_MAX_CACHED_WORKFLOWS)', `${cache} runs`],
      [
        'worker runs as',
        `${runtime === 'built' ? 'compiled, prebuilt bundle (the image)' : 'sources through tsx'}, ` +
          (workerHeapMiB > 0 ? `--max-old-space-size=${workerHeapMiB}` : "Node's default heap limit"),
      ],
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
      [`expiring this week (${weekGrants}): visibility count`, `${counted} in ${countMs} ms`],
      [`  grants --expiring 7d: first page (${first.grants.length} rows)`, `${firstPageMs} ms`],
      [
        `  every page (${pages} × ≤ ${MAX_PAGE_SIZE}, status query per row)`,
        `${listed} rows in ${r(allPagesMs / 1000, 2)} s${unknown ? ` (${unknown} unknown)` : ''}`,
      ],
      ['  worker RSS after listing', afterListing.map((m) => mib(m.rssBytes)).join(', ')],
      [`leaver (${leaverMacs.length} grants): event acknowledged`, `${results.leaver.ack.ms} ms (${ack.outcome})`],
      ['leaver: all MACs removed from the NAC after', `${results.leaver.allRevokedInNacSec} s`],
      ['leaver: all revocation messages sent after', `${results.leaver.allToldSec} s`],
      [
        'others after: missing / unexpected / duplicates',
        `${nacAfter.missing} / ${nacAfter.unexpected} / ${nacAfter.duplicates}`,
      ],
      ['running workflows after', `${stillRunning} (expected ${n - leaverMacs.length})`],
      [
        "worker's sticky cache over the run: hits / misses",
        cacheStats ? `${cacheStats.hit} / ${cacheStats.miss} (size at the end ${cacheStats.size})` : 'n/a',
      ],
    ]);
    return {
      topology: topo.info(),
      params: {
        grants: n,
        leaverGrants: leaverMacs.length,
        concurrency,
        window,
        settleSeconds: settleMs / 1000,
        maxCachedWorkflows: cache,
        runtime,
        workerHeapMiB: workerHeapMiB || null,
        durations: { '7天': weekGrants, '30天': n - weekGrants },
      },
      results,
      table: tbl,
    };
  } finally {
    await topo.close();
  }
}

/** The worker's sticky-cache counters from the Temporal SDK's Prometheus endpoint (TEMPORAL_METRICS_ADDRESS). */
async function stickyCache(port: number): Promise<{ hit: number; miss: number; size: number } | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const sum = (name: string) =>
      text
        .split('\n')
        .filter((l) => new RegExp(`^${name}(_total)?[{ ]`).test(l))
        .reduce((acc, l) => acc + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    return {
      hit: sum('temporal_sticky_cache_hit'),
      miss: sum('temporal_sticky_cache_miss'),
      size: sum('temporal_sticky_cache_size'),
    };
  } catch {
    return null;
  }
}
