import os from 'node:os';
import { Context } from '@temporalio/activity';
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
  /**
   * WORKER_SHUTDOWN_GRACE: after shutdown() running activities get this long to finish before they are cancelled
   * (SDK default 0 = cancelled at once); the workers are forced down 5 s later. Default 20 s (+5 = 25 s, inside a 30 s
   * container stop grace period).
   */
  shutdownGraceMs?: number;
  /**
   * WORKER_MAX_CACHED_WORKFLOWS: how many workflow runs stay in the sticky cache (SDK `maxCachedWorkflows`); the rest are
   * replayed from history on their next task. This, not the number of live grants, bounds the worker's memory.
   */
  maxCachedWorkflows?: number;
}

/** Both workers, started together. */
export interface Workers {
  run(): Promise<void>;
  /** Stop polling; running activities get the shutdown grace to finish. `run()` settles when both have stopped. */
  shutdown(): void;
  /** undefined when both workers run (poll), else why not. */
  notRunning(): string | undefined;
}

/** Force time after the grace: the SDK then gives up waiting for activities (GracefulShutdownPeriodExpiredError). */
export const SHUTDOWN_FORCE_AFTER_GRACE_MS = 5000;
export const DEFAULT_SHUTDOWN_GRACE_MS = 20_000;

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** Seconds (the exporter runs with useSecondsForDurations). */
const SCHEDULE_TO_START_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

let runtimeInstalled = false;
/**
 * Route the SDK's and workflows' logs into pino and, with `metricsAddress` (TEMPORAL_METRICS_ADDRESS), serve the SDK's
 * own metrics there for Prometheus (GET /metrics). Once per process, before any connection or worker exists: a later
 * call changes nothing.
 */
export function installRuntimeLogger(logger: Logger, opts: { metricsAddress?: string } = {}): void {
  if (runtimeInstalled) return;
  const level = (logger.level === 'silent' ? 'ERROR' : logger.level.toUpperCase()) as LogLevel;
  try {
    installRuntime(logger, level, opts.metricsAddress);
  } catch (err) {
    // Core binds the exporter inside Runtime.install ("Address already in use (os error 98)"): name the variable.
    if (!opts.metricsAddress) throw err;
    throw new Error(
      `cannot serve the Temporal SDK metrics on TEMPORAL_METRICS_ADDRESS=${opts.metricsAddress}: ${(err as Error).message}`
    );
  }
  runtimeInstalled = true;
}

function installRuntime(logger: Logger, level: LogLevel, metricsAddress: string | undefined): void {
  Runtime.install({
    // The process owns shutdown (it also stops the ingress and the dev server), so the Runtime must not.
    shutdownSignals: [],
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: level in PINO_LEVEL ? level : 'INFO' }), forward: {} },
      // Prometheus conventions: durations in seconds with the unit in the name, counters ending in _total
      // (runtime-options.ts 1.24: all three default to false, i.e. milliseconds and bare names).
      ...(metricsAddress
        ? {
            metrics: {
              prometheus: {
                bindAddress: metricsAddress,
                useSecondsForDurations: true,
                unitSuffix: true,
                countersTotalSuffix: true,
                // Core's default buckets jump 10 s → 100 s; a rate-limited NAC queue's backlog lives in between.
                histogramBucketOverrides: {
                  activity_schedule_to_start_latency: SCHEDULE_TO_START_BUCKETS,
                  workflow_task_schedule_to_start_latency: SCHEDULE_TO_START_BUCKETS,
                },
              },
            },
          }
        : {}),
    },
    logger: new DefaultLogger(level in PINO_LEVEL ? level : 'INFO', (entry) => {
      if (logger.level === 'silent') return;
      logger[PINO_LEVEL[entry.level]]({ ...entry.meta, sdk: true }, entry.message);
    }),
  });
}

/**
 * The running activity's cancellation signal, or undefined outside an activity (start-up checks, the CLI). Given to
 * the NAC clients so that a request in flight when the shutdown grace ends is aborted, not left to hold the process
 * until the force time (the attempt is then retried elsewhere, as after a crash).
 */
export function activityCancellation(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

export async function createWorkers(deps: WorkerDeps): Promise<Workers> {
  // Carries the hostname and pid, so the Temporal UI's pollers list shows which container polls.
  const identity = deps.identity ?? `approval-plus-worker@${os.hostname()}/${process.pid}`;
  const workflowSource = deps.workflowBundlePath
    ? { workflowBundle: { codePath: deps.workflowBundlePath } }
    : { workflowsPath: require.resolve('../workflows') };
  // worker-options.ts 1.24: shutdownGraceTime (@default 0) is how long in-flight activities may run on after shutdown
  // was requested before Core cancels them; shutdownForceTime makes run() give up after that much longer.
  const graceMs = deps.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  const shutdown = { shutdownGraceTime: graceMs, shutdownForceTime: graceMs + SHUTDOWN_FORCE_AFTER_GRACE_MS };
  const main = await Worker.create({
    ...shutdown,
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue: TASK_QUEUE,
    identity,
    ...workflowSource,
    ...(deps.maxCachedWorkflows === undefined ? {} : { maxCachedWorkflows: deps.maxCachedWorkflows }),
    activities: {
      ...createApprovalActivities({ platforms: deps.platforms, timeZone: deps.timeZone }),
      ...createForwardActivities({ subscribers: deps.forwardSubscribers ?? [] }),
      ...(deps.reconcile ? createReconcileActivities(deps.reconcile) : {}),
      ...(deps.amendments ? createAmendmentActivities(deps.amendments) : {}),
    },
  });
  const nac = await Worker.create({
    ...shutdown,
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
    notRunning: () => {
      const states = [
        [TASK_QUEUE, main.getState()],
        [NAC_TASK_QUEUE, nac.getState()],
      ] as const;
      const down = states.filter(([, state]) => state !== 'RUNNING');
      return down.length ? down.map(([q, state]) => `worker for ${q} is ${state}`).join('; ') : undefined;
    },
  };
}
