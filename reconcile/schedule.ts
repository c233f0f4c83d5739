import { ScheduleAlreadyRunning, ScheduleNotFoundError, type Client, type ScheduleOptions } from '@temporalio/client';
import type { AppConfig } from '../config/config';
import { parseDurationMs } from '../domain/duration';
import { TASK_QUEUE } from '../workflows/definitions';
import type { ReconcileInput } from '../workflows/reconcile.workflow';

export const RECONCILE_SCHEDULE_ID = 'approval-plus-reconcile';

/**
 * Create or update the reconcile Schedule from configuration (every worker does this at start; the last one's view
 * wins, and they all read the same configuration). RECONCILE_INTERVAL=off deletes it.
 */
export async function ensureReconcileSchedule(
  client: Client,
  config: Pick<AppConfig, 'reconcile'>
): Promise<'created' | 'updated' | 'deleted' | 'off'> {
  const handle = client.schedule.getHandle(RECONCILE_SCHEDULE_ID);
  if (config.reconcile.interval === 'off') {
    try {
      await handle.delete();
      return 'deleted';
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) return 'off';
      throw err;
    }
  }
  const input: ReconcileInput = {
    // The look-back always covers at least two intervals, so one missed run loses nothing.
    lookbackMs: Math.max(parseDurationMs(config.reconcile.lookback), 2 * parseDurationMs(config.reconcile.interval)),
    fix: config.reconcile.fix,
  };
  const options = {
    scheduleId: RECONCILE_SCHEDULE_ID,
    spec: { intervals: [{ every: config.reconcile.interval }] },
    action: {
      type: 'startWorkflow' as const,
      workflowType: 'reconcileWorkflow',
      workflowId: 'approval-plus-reconcile',
      taskQueue: TASK_QUEUE,
      args: [input],
      staticSummary: `Reconcile: approvals of the last ${config.reconcile.lookback}, whitelist ${input.fix ? 'fix' : 'report'}`,
    },
    policies: { overlap: 'SKIP' as const, catchupWindow: '10 minutes' },
    memo: { purpose: 'ApprovalPlus reconcile (see README, Operating)' },
  } satisfies ScheduleOptions;
  try {
    await client.schedule.create(options);
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await handle.update((prev) => ({
      ...prev,
      spec: options.spec,
      action: options.action,
      policies: options.policies,
    }));
    return 'updated';
  }
}
