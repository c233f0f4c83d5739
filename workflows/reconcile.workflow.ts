/**
 * `reconcile`: run by the `approval-plus-reconcile` Temporal Schedule (and startable by hand). Starts approved
 * instances that have no workflow, and reports (with `fix`: restores) whitelist entries whose grant is not live.
 */
import { proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { ReconcileActivities } from '../activities/reconcile';
import type { MissedApprovalsReport, WhitelistReport } from '../reconcile/reconciler';

export interface ReconcileInput {
  lookbackMs: number;
  fix: boolean;
}

export interface ReconcileResult {
  missed: MissedApprovalsReport;
  whitelist: WhitelistReport;
}

const steps = proxyActivities<ReconcileActivities>({
  startToCloseTimeout: '30 minutes',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumAttempts: 3 },
});

export async function reconcileWorkflow(input: ReconcileInput): Promise<ReconcileResult> {
  setCurrentDetails('**Reconcile:** looking for approved instances with no workflow');
  const missed = await steps.reconcileMissedApprovals.executeWithOptions(
    { summary: 'start approved instances that have no workflow' },
    [{ lookbackMs: input.lookbackMs }]
  );
  setCurrentDetails('**Reconcile:** checking whitelist entries against live grants');
  const whitelist = await steps.reconcileWhitelist.executeWithOptions(
    { summary: input.fix ? 'restore entries without a live grant' : 'report entries without a live grant' },
    [{ fix: input.fix }]
  );
  setCurrentDetails(
    [
      `**Approvals:** ${missed.checked} checked, ${missed.started.length} started`,
      ...missed.started.map((id) => `- started ${id}`),
      `**Whitelist:** ${whitelist.checked} tagged entries, ${whitelist.orphans.length} without a live grant` +
        (input.fix ? ' (fixed)' : ' (reported; set RECONCILE_FIX=true to restore them)'),
      ...whitelist.orphans.map((o) => `- ${o.grantId}: ${o.action}`),
    ].join('\n\n')
  );
  return { missed, whitelist };
}
