import type Router from '@koa/router';
import type { Client } from '@temporalio/client';
import { TASK_QUEUE } from '../../workflows/definitions';
import type { IngressMetrics } from '../metrics';

export interface ReadinessCheck {
  name: string;
  check(): Promise<string | undefined>; // undefined = ready, else why not
}

/** Temporal reachable and some worker polling the `approval-plus` task queue. */
export function temporalReadiness(client: Client, namespace: string): ReadinessCheck {
  return {
    name: 'temporal',
    async check() {
      try {
        const res = await client.connection.withDeadline(Date.now() + 1500, () =>
          client.workflowService.describeTaskQueue({
            namespace,
            taskQueue: { name: TASK_QUEUE },
            taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
          })
        );
        return res.pollers && res.pollers.length > 0 ? undefined : `no worker polls the ${TASK_QUEUE} task queue`;
      } catch (err) {
        return `Temporal unreachable: ${(err as Error).message.split('\n')[0]}`;
      }
    },
  };
}

export function mountHealth(router: Router, deps: { checks: ReadinessCheck[]; metrics: IngressMetrics }): void {
  router.get('/healthz', function healthz(ctx) {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async function readyz(ctx) {
    const results = await Promise.all(deps.checks.map(async (c) => [c.name, await c.check()] as const));
    const failing = results.filter(([, why]) => why !== undefined);
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
