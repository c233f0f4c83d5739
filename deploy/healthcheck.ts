import os from 'node:os';
import { Connection } from '@temporalio/client';
import { loadConfig } from '../config/config';
import { NAC_TASK_QUEUE, TASK_QUEUE } from '../workflows/definitions';

/**
 * Container health checks (docker-compose.yml `healthcheck`, Kubernetes exec probes). Exit 0 = healthy, 1 = not,
 * with one line saying why:
 *   node --import tsx deploy/healthcheck.ts ingress   GET /readyz on this container's ingress answers 200
 *                                                     (Temporal reachable and a worker polls approval-plus)
 *   node --import tsx deploy/healthcheck.ts worker    Temporal answers, and a worker of *this* container (its
 *                                                     identity carries the hostname) polls both task queues
 * Reads the same environment as the process it checks.
 */

const TIMEOUT_MS = 4000;

/** The worker identity prefix for this host (worker/worker.ts: `approval-plus-worker@<hostname>/<pid>`). */
export function workerIdentityPrefix(hostname: string = os.hostname()): string {
  return `approval-plus-worker@${hostname}/`;
}

export async function checkIngress(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const port = env.PORT || '3000';
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (res.status === 200) return undefined;
    return `ingress not ready (HTTP ${res.status}): ${JSON.stringify(await res.json().catch(() => null))}`;
  } catch (err) {
    return `ingress not answering on port ${port}: ${(err as Error).message}`;
  }
}

export async function checkWorker(
  env: NodeJS.ProcessEnv = process.env,
  hostname: string = os.hostname()
): Promise<string | undefined> {
  const config = loadConfig(env);
  const address = config.temporal.address ?? '127.0.0.1:7233';
  const tls = config.temporal.tls || config.temporal.apiKey ? {} : undefined;
  let connection: Connection;
  try {
    connection = await Connection.connect({ address, tls, apiKey: config.temporal.apiKey, connectTimeout: TIMEOUT_MS });
  } catch (err) {
    return `Temporal unreachable at ${address}: ${(err as Error).message.split('\n')[0]}`;
  }
  try {
    const prefix = workerIdentityPrefix(hostname);
    const queues: [string, number][] = [
      [TASK_QUEUE, 1], // workflow tasks
      [TASK_QUEUE, 2], // approval activities
      [NAC_TASK_QUEUE, 2], // NAC activities
    ];
    for (const [name, taskQueueType] of queues) {
      const res = await connection.withDeadline(Date.now() + TIMEOUT_MS, () =>
        connection.workflowService.describeTaskQueue({
          namespace: config.temporal.namespace,
          taskQueue: { name },
          taskQueueType,
        })
      );
      const mine = (res.pollers ?? []).some((p) => (p.identity ?? '').startsWith(prefix));
      if (!mine)
        return `no poller of this worker (${prefix}…) on ${name} (${taskQueueType === 1 ? 'workflow' : 'activity'})`;
    }
    return undefined;
  } catch (err) {
    return `Temporal did not answer: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  const role = process.argv[2];
  const check = role === 'ingress' ? checkIngress() : role === 'worker' ? checkWorker() : undefined;
  if (!check) {
    console.error('usage: healthcheck.ts ingress|worker');
    process.exit(2);
  }
  check
    .then((why) => {
      if (why) console.error(`unhealthy: ${why}`);
      process.exit(why ? 1 : 0);
    })
    .catch((err: Error) => {
      console.error(`unhealthy: ${err.message}`);
      process.exit(1);
    });
}
