import os from 'node:os';
import {
  DefaultLogger,
  makeTelemetryFilterString,
  type NativeConnection,
  Runtime,
  Worker,
  type LogLevel,
} from '@temporalio/worker';
import { createApprovalActivities, createNacActivities } from '../activities';
import { createAmendmentActivities } from '../activities/amendments';
import { createReconcileActivities } from '../activities/reconcile';
import type { ReconcileDeps } from '../reconcile/reconciler';
import { createForwardActivities } from '../activities/forward';
import type { ForwardSubscriber } from '../forwarding/config';
import type { PlatformName } from '../domain/types';
import type { CoaMode, NacAdapter } from '../nac/adapter';
import type { ApprovalPlatform } from '../platforms/platform';
import { NAC_TASK_QUEUE, TASK_QUEUE } from '../workflows/definitions';
import type { Logger } from '../app/logger';

/**
 * The worker process: one Temporal Worker for workflows and platform activities on `approval-plus`, and one for NAC
 * activities on `approval-plus-nac`, whose activity rate is capped server-side at NAC_MAX_RPS across every worker.
 */
export interface WorkerDeps {
  connection: NativeConnection;
  namespace: string;
  platforms: Partial<Record<PlatformName, ApprovalPlatform>>;
  nac: NacAdapter;
  nacMaxRps: number;
  /** NAC_COA: what the CoA activity does to a device's live session after its access changed. */
  nacCoa: CoaMode;
  /** Reconcile activities (the scheduled `reconcileWorkflow`); they need a Temporal client of their own. */
  reconcile?: Omit<ReconcileDeps, 'progress'>;
  /** Applying an approved revoke / modify instance to its request's grant: a Temporal client too. */
  amendments?: Parameters<typeof createAmendmentActivities>[0];
  identity?: string;
  /** APPROVAL_PLUS_TIMEZONE: the zone messages and comments show times in (default: the host's). */
  timeZone?: string;
  /** A prebuilt bundle (production image); otherwise workflows are bundled from source at start. */
  workflowBundlePath?: string;
  /** Forward subscribers (routes file): the delivery activity signs with their secrets. */
  forwardSubscribers?: ForwardSubscriber[];
}

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

let runtimeInstalled = false;
/** Route the SDK's and workflows' logs into pino. Once per process, before any worker exists. */
export function installRuntimeLogger(logger: Logger): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const level = (logger.level === 'silent' ? 'ERROR' : logger.level.toUpperCase()) as LogLevel;
  Runtime.install({
    // The process owns shutdown (it also stops the ingress and the dev server), so the Runtime must not.
    shutdownSignals: [],
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: level in PINO_LEVEL ? level : 'INFO' }), forward: {} },
    },
    logger: new DefaultLogger(level in PINO_LEVEL ? level : 'INFO', (entry) => {
      if (logger.level === 'silent') return;
      logger[PINO_LEVEL[entry.level]]({ ...entry.meta, sdk: true }, entry.message);
    }),
  });
}

export async function createWorkers(deps: WorkerDeps): Promise<{ run(): Promise<void>; shutdown(): void }> {
  // Carries the hostname so a container's health check can find its own pollers (deploy/healthcheck.ts).
  const identity = deps.identity ?? `approval-plus-worker@${os.hostname()}/${process.pid}`;
  const workflowSource = deps.workflowBundlePath
    ? { workflowBundle: { codePath: deps.workflowBundlePath } }
    : { workflowsPath: require.resolve('../workflows') };
  const main = await Worker.create({
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue: TASK_QUEUE,
    identity,
    ...workflowSource,
    activities: {
      ...createApprovalActivities({ platforms: deps.platforms, timeZone: deps.timeZone }),
      ...createForwardActivities({ subscribers: deps.forwardSubscribers ?? [] }),
      ...(deps.reconcile ? createReconcileActivities(deps.reconcile) : {}),
      ...(deps.amendments ? createAmendmentActivities(deps.amendments) : {}),
    },
  });
  const nac = await Worker.create({
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue: NAC_TASK_QUEUE,
    identity,
    activities: createNacActivities({ nac: deps.nac, coa: deps.nacCoa }),
    maxTaskQueueActivitiesPerSecond: deps.nacMaxRps,
    // Enough in flight to keep the NAC at its rate limit, few enough that none waits long for a token.
    maxConcurrentActivityTaskExecutions: Math.max(4, Math.ceil(deps.nacMaxRps * 2)),
  });
  return {
    run: async () => {
      await Promise.all([main.run(), nac.run()]);
    },
    shutdown: () => {
      for (const w of [main, nac]) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}
