import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of the ingress, on a registry of its own (tests create several apps in one process). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'approval_plus_' });
  return {
    registry,
    events: new Counter({
      name: 'approval_plus_events_total',
      help: 'Platform events received, by platform, event type and outcome',
      labelNames: ['platform', 'type', 'outcome'] as const,
      registers: [registry],
    }),
    webhookSeconds: new Histogram({
      name: 'approval_plus_webhook_duration_seconds',
      help: 'Time from request to answer on the webhook routes',
      labelNames: ['platform', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5],
      registers: [registry],
    }),
  };
}
export type IngressMetrics = ReturnType<typeof createMetrics>;
