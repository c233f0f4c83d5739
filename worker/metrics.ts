import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NacHttpObserver } from '../nac/http';

/**
 * The worker process's own Prometheus metrics (GET /metrics on WORKER_HTTP_PORT), on a registry of its own. The
 * Temporal SDK's metrics (task latencies, slots, sticky cache, the NAC queue's schedule-to-start) are not here: Core
 * serves them itself on TEMPORAL_METRICS_ADDRESS.
 */
export interface WorkerMetrics {
  registry: Registry;
  /** Feeds approval_plus_nac_requests_total and approval_plus_nac_request_duration_seconds (nac/http.ts). */
  nacObserver: NacHttpObserver;
  /** 1 while /readyz answers 200, and one series per start-up check (1 = passed). */
  setReadiness(ready: boolean, checks: Record<string, string>): void;
  /** Where the live-grant count comes from (a Temporal visibility count); unset = the gauge stays 0. */
  setGrantCounter(count: () => Promise<number>): void;
}

/** A scrape reuses a count younger than this: Prometheus scrapes every 15–60 s, often from two replicas. */
const GRANT_COUNT_MAX_AGE_MS = 10_000;

export function createWorkerMetrics(opts: { onCountError?: (err: unknown) => void } = {}): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'approval_plus_' });
  const nacRequests = new Counter({
    name: 'approval_plus_nac_requests_total',
    help: 'NAC API requests by system, API area, method and outcome (HTTP status class, 404, 429, timeout, network, cancelled)',
    labelNames: ['system', 'area', 'method', 'outcome'] as const,
    registers: [registry],
  });
  const nacSeconds = new Histogram({
    name: 'approval_plus_nac_request_duration_seconds',
    help: 'NAC API request latency (after the rate-limit slot), by system and API area',
    labelNames: ['system', 'area'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30],
    registers: [registry],
  });
  const ready = new Gauge({
    name: 'approval_plus_worker_ready',
    help: '1 when the workers poll and every start-up check passed (GET /readyz is 200), else 0',
    registers: [registry],
  });
  const checkOk = new Gauge({
    name: 'approval_plus_worker_check_ok',
    help: 'Per readiness check of the worker: 1 = ok, 0 = failing (GET /readyz says why)',
    labelNames: ['check'] as const,
    registers: [registry],
  });

  let counter: (() => Promise<number>) | undefined;
  let countedAt = 0;
  let last = 0;
  let refreshing: Promise<void> | undefined;
  const refresh = async () => {
    if (!counter || Date.now() - countedAt < GRANT_COUNT_MAX_AGE_MS) return;
    refreshing ??= counter()
      .then((n) => {
        last = n;
        countedAt = Date.now();
      })
      .catch((err: unknown) => opts.onCountError?.(err)) // keep the last count; the log says why
      .finally(() => (refreshing = undefined));
    await refreshing;
  };
  new Gauge({
    name: 'approval_plus_grants_active',
    help: 'Grants in phase active (devices whitelisted, running), from a Temporal visibility count; every worker reports the same number: aggregate with max()',
    registers: [registry],
    async collect() {
      await refresh();
      this.set(last);
    },
  });

  return {
    registry,
    nacObserver: {
      request(o) {
        nacRequests.inc({ system: o.system, area: o.area, method: o.method, outcome: o.outcome });
        nacSeconds.observe({ system: o.system, area: o.area }, o.seconds);
      },
    },
    setReadiness(isReady, checks) {
      ready.set(isReady ? 1 : 0);
      for (const [name, state] of Object.entries(checks)) checkOk.set({ check: name }, state === 'ok' ? 1 : 0);
    },
    setGrantCounter(count) {
      counter = count;
      countedAt = 0;
    },
  };
}
