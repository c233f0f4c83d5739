import { heartbeat } from '@temporalio/activity';
import {
  reconcileMissedApprovals,
  reconcileWhitelist,
  type MissedApprovalsReport,
  type ReconcileDeps,
  type WhitelistReport,
} from '../reconcile/reconciler';
import { classified } from './classify';

/** Reconcile steps for the scheduled `reconcileWorkflow`; progress goes out as heartbeat details. */
export function createReconcileActivities(deps: Omit<ReconcileDeps, 'progress'>) {
  const withProgress = (): ReconcileDeps => ({ ...deps, progress: (line) => heartbeat(line) });
  return classified({
    async reconcileMissedApprovals(input: { lookbackMs: number }): Promise<MissedApprovalsReport> {
      const now = Date.now();
      return reconcileMissedApprovals(withProgress(), { fromMs: now - input.lookbackMs, toMs: now });
    },
    async reconcileWhitelist(input: { fix: boolean }): Promise<WhitelistReport> {
      return reconcileWhitelist(withProgress(), input);
    },
  });
}

export type ReconcileActivities = ReturnType<typeof createReconcileActivities>;
