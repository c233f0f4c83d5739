import type Router from '@koa/router';
import type { Client } from '@temporalio/client';
import { TASK_QUEUE } from '../../workflows/definitions';
import type { IngressMetrics } from '../metrics';
import { namespaceAnswers } from '../../temporal/namespace-answers';

export interface ReadinessCheck {
  name: string;
  check(): Promise<string | undefined>; // undefined = ready, else why not
  /** Reported in /readyz's JSON but never failing it (default false): e.g. no worker polls the task queue. */
  advisory?: boolean;
}

/**
 * Ingress readiness = Temporal accepts starts: the frontend answers for the namespace. A start is durable without a
 * worker (the run waits for one), so a missing worker is not "ingress not ready" (field notes #11): `workerPresence`
 * reports it beside, as an advisory check.
 */
export function temporalReadiness(client: Client, namespace: string): ReadinessCheck {
  return {
    name: 'temporal',
    check: () => namespaceAnswers(client.connection, namespace, 1500),
  };
}

/**
 * Whether some worker polls the `approval-plus` task queue (workflow tasks), for alerting apart from readiness. The
 * server keeps a poller in the list for a few minutes after its last poll, so a worker that just died still counts.
 */
export function workerPresence(client: Client, namespace: string): ReadinessCheck {
  return {
    name: 'worker',
    advisory: true,
    async check() {
      try {
        const res = await client.connection.withDeadline(Date.now() + 1500, () =>
          client.workflowService.describeTaskQueue({
            namespace,
            taskQueue: { name: TASK_QUEUE },
            taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
          })
        );
        return res.pollers && res.pollers.length > 0 ? undefined : `no worker polls ${TASK_QUEUE}`;
      } catch (err) {
        return `cannot ask Temporal: ${(err as Error).message.split('\n')[0]}`;
      }
    },
  };
}

export function mountHealth(router: Router, deps: { checks: ReadinessCheck[]; metrics: IngressMetrics }): void {
  router.get('/healthz', function healthz(ctx) {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async function readyz(ctx) {
    const results = await Promise.all(deps.checks.map(async (c) => [c.name, await c.check(), c.advisory] as const));
    const failing = results.filter(([, why, advisory]) => why !== undefined && !advisory);
    ctx.status = failing.length ? 503 : 200;
    ctx.body = {
      status: failing.length ? 'not ready' : 'ready',
      checks: Object.fromEntries(results.map(([n, why]) => [n, why ?? 'ok'])),
    };
  });
  router.get('/metrics', async function metrics(ctx) {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
}
