import { mapLimit, sleep } from './stats';
import type { PostResult, Topology } from './topology';

/** Wi‑Fi approvals as the benchmarks submit them: created in the Feishu simulator, event posted through the ingress. */
export interface ApprovalSpec {
  openId: string;
  macs: string[];
  duration?: string;
}

export interface Submitted extends ApprovalSpec, PostResult {
  index: number;
  instance: string;
}

/**
 * Submit approvals either at a fixed arrival rate (`rate` per second, each one sent on schedule without waiting for
 * the others) or as a burst with at most `concurrency` requests in flight. With `gate`, each submission first waits
 * for it (e.g. until fewer than so many approvals are still on their way to the requester's message).
 */
export async function submitApprovals(
  topo: Topology,
  specs: ApprovalSpec[],
  mode: ({ rate: number } | { concurrency: number }) & { gate?: () => Promise<void> }
): Promise<Submitted[]> {
  const one = async (spec: ApprovalSpec, index: number): Promise<Submitted> => {
    await mode.gate?.();
    const instance = topo.createApproval(spec.openId, spec.macs, spec.duration);
    const res = await topo.post(topo.approvedEvent(instance));
    return { ...spec, ...res, index, instance };
  };
  if ('concurrency' in mode) return mapLimit(specs, mode.concurrency, one);
  const t0 = Date.now();
  const pending: Promise<Submitted>[] = [];
  for (const [i, spec] of specs.entries()) {
    const wait = t0 + (i * 1000) / mode.rate - Date.now();
    if (wait > 0) await sleep(wait);
    pending.push(one(spec, i));
  }
  return Promise.all(pending);
}

/**
 * Wait until every open id has received at least `perRequester` messages (the simulator's /_sim/messages), logging
 * progress. Returns the first-message time per open id.
 */
export async function waitNotified(
  topo: Topology,
  openIds: string[],
  opts: { timeoutMs: number; say: (line: string) => void; perRequester?: Map<string, number> }
): Promise<Map<string, { count: number; firstAt: number }>> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastLog = Date.now();
  const unique = [...new Set(openIds)];
  for (;;) {
    const byId = topo.messagesByOpenId();
    const done = unique.filter((id) => (byId.get(id)?.count ?? 0) >= (opts.perRequester?.get(id) ?? 1)).length;
    if (done === unique.length) return byId;
    if (Date.now() > deadline) {
      throw new Error(
        `only ${done}/${unique.length} requesters notified within ${Math.round(opts.timeoutMs / 1000)} s`
      );
    }
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      opts.say(`  … ${done}/${unique.length} requesters notified`);
    }
    await sleep(200);
  }
}
