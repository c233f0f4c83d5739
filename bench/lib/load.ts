import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import type { SignedRequest } from '../../simulators/feishu/event-signer';
import { sleep, summarize, type Summary } from './stats';

/**
 * An in-process HTTP load generator (undici pools, no external tools). Open loop: requests are sent on a fixed
 * schedule whatever the answers do, and each latency is measured from the moment the request was due (so a server
 * that falls behind shows it in its latency, no coordinated omission). Closed loop: N clients back to back, for the
 * maximum throughput.
 */

export interface LoadResult {
  mode: 'open' | 'closed';
  targetRate?: number;
  concurrency?: number;
  sent: number;
  ok: number;
  statuses: Record<string, number>;
  outcomes: Record<string, number>;
  elapsedMs: number;
  /** 200s per second over the whole step (first send to last answer). */
  throughput: number;
  latencyMs: Summary;
}

export class LoadTarget {
  private readonly pools: Pool[];
  private rr = 0;

  constructor(
    urls: string[],
    private readonly path: string,
    connections = 64
  ) {
    this.pools = urls.map((u) => new Pool(u, { connections, pipelining: 1, keepAliveTimeout: 10_000 }));
  }

  /** One request; resolves with the status and (for 200) the outcome field of the JSON answer. */
  async send(req: SignedRequest): Promise<{ status: number; outcome?: string }> {
    const pool = this.pools[this.rr++ % this.pools.length]!;
    try {
      const res = await pool.request({
        method: 'POST',
        path: this.path,
        headers: req.headers,
        body: req.rawBody,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      const text = await res.body.text();
      let outcome: string | undefined;
      if (res.statusCode === 200) {
        try {
          outcome = (JSON.parse(text) as { outcome?: string }).outcome;
        } catch {
          outcome = undefined;
        }
      }
      return { status: res.statusCode, outcome };
    } catch {
      return { status: 0 };
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.close()));
  }
}

function tally(into: Record<string, number>, key: string | undefined): void {
  if (key === undefined) return;
  into[key] = (into[key] ?? 0) + 1;
}

/** Send `rate` requests per second for `durationMs`; body(i) gives the i-th request (prebuilt). */
export async function openLoop(
  target: LoadTarget,
  opts: { rate: number; durationMs: number; body: (i: number) => SignedRequest }
): Promise<LoadResult> {
  const total = Math.max(1, Math.round((opts.rate * opts.durationMs) / 1000));
  const interval = 1000 / opts.rate;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const outcomes: Record<string, number> = {};
  const inflight: Promise<void>[] = [];
  let ok = 0;
  let lastDone = 0;
  const t0 = performance.now();
  for (let i = 0; i < total;) {
    const now = performance.now();
    while (i < total && t0 + i * interval <= now) {
      const due = t0 + i * interval;
      const req = opts.body(i);
      inflight.push(
        target.send(req).then((r) => {
          const done = performance.now();
          lastDone = Math.max(lastDone, done);
          latencies.push(done - due);
          tally(statuses, String(r.status));
          tally(outcomes, r.outcome);
          if (r.status === 200) ok++;
        })
      );
      i++;
    }
    if (i < total) await sleep(Math.max(0, t0 + i * interval - performance.now()));
  }
  await Promise.all(inflight);
  const elapsedMs = Math.max(lastDone - t0, opts.durationMs);
  return {
    mode: 'open',
    targetRate: opts.rate,
    sent: total,
    ok,
    statuses,
    outcomes,
    elapsedMs,
    throughput: (ok * 1000) / elapsedMs,
    latencyMs: summarize(latencies),
  };
}

/** `concurrency` clients, each sending its next request as soon as the last one is answered, for `durationMs`. */
export async function closedLoop(
  target: LoadTarget,
  opts: { concurrency: number; durationMs: number; body: (i: number) => SignedRequest; maxRequests?: number }
): Promise<LoadResult> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const outcomes: Record<string, number> = {};
  let ok = 0;
  let next = 0;
  const t0 = performance.now();
  const end = t0 + opts.durationMs;
  const max = opts.maxRequests ?? Number.POSITIVE_INFINITY;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (performance.now() < end && next < max) {
        const req = opts.body(next++);
        const started = performance.now();
        const r = await target.send(req);
        latencies.push(performance.now() - started);
        tally(statuses, String(r.status));
        tally(outcomes, r.outcome);
        if (r.status === 200) ok++;
      }
    })
  );
  const elapsedMs = performance.now() - t0;
  return {
    mode: 'closed',
    concurrency: opts.concurrency,
    sent: next,
    ok,
    statuses,
    outcomes,
    elapsedMs,
    throughput: (ok * 1000) / elapsedMs,
    latencyMs: summarize(latencies),
  };
}
