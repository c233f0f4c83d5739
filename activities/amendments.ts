import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { findRoute, type Route } from '../config/config';
import { IntegrationError } from '../domain/errors';
import type { Amendment, PlatformName } from '../domain/types';
import { startOptionsFor } from '../ingress/event-processor';
import type { ApprovalPlatform } from '../platforms/platform';
import { amendSignal, cancelSignal, workflowIdFor } from '../workflows/definitions';
import { classified } from './classify';

/**
 * Applying an approved 撤销 / 修改 (revoke / modify) instance to the grant of the request it changes. The grant of a
 * request is the run of its original instance; a change of a change points at the earlier change, so the chain is
 * followed back (through the platform's API, never the webhook) to find the one live grant:
 *  - revoke: every live grant along the chain gets `cancel` (there is at most one);
 *  - modify: the live grant gets `amend`; when no grant was ever started for the original (its event was missed),
 *    it is started now with the change queued, so the request still ends up with exactly one grant; when the
 *    original grant has already ended, nothing is granted (a change never grants on its own).
 */
export interface ApplyAmendmentInput {
  platform: PlatformName;
  /** The approved change (its own instance id) and what it changes. */
  byInstanceId: string;
  amends: Amendment;
}

export interface ApplyAmendmentResult {
  action: 'revoked' | 'amended' | 'started-with-change' | 'no-live-grant' | 'original-ended';
  /** The grant (workflow id) it acted on, or the original whose grant ended. */
  grantId?: string;
  /** The chain of instances followed, nearest first, ending at the original request. */
  chain: string[];
}

const MAX_CHAIN = 10;

export function createAmendmentActivities(deps: {
  client: Client;
  routes: Route[];
  platforms: Partial<Record<PlatformName, ApprovalPlatform>>;
  timing: { reminderLeadMs: number; nacStepTimeoutMs?: number };
}) {
  const running = async (workflowId: string): Promise<'RUNNING' | 'CLOSED' | 'NOT_FOUND'> => {
    try {
      return (await deps.client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING'
        ? 'RUNNING'
        : 'CLOSED';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return 'NOT_FOUND';
      throw err;
    }
  };

  return classified({
    async applyAmendment(input: ApplyAmendmentInput): Promise<ApplyAmendmentResult> {
      const platform = deps.platforms[input.platform];
      if (!platform) {
        throw new IntegrationError(`platform ${input.platform} is not configured on this worker`, 'invalid', {
          system: input.platform,
        });
      }
      // Follow the chain of changes back to the original request, through the platform's API.
      const chain = [input.amends.instanceId];
      let approvalCode = '';
      for (;;) {
        const instance = await platform.getInstance(chain[chain.length - 1]!);
        approvalCode = instance.approvalCode;
        if (!instance.amends || chain.length >= MAX_CHAIN || chain.includes(instance.amends.instanceId)) break;
        chain.push(instance.amends.instanceId);
      }
      const states = await Promise.all(chain.map((id) => running(workflowIdFor(input.platform, id))));
      const live = chain.filter((_, i) => states[i] === 'RUNNING').map((id) => workflowIdFor(input.platform, id));

      if (input.amends.kind === 'revoke') {
        for (const grantId of live) {
          await deps.client.workflow.getHandle(grantId).signal(cancelSignal, {
            reason: `withdrawn: the revoke approval ${input.byInstanceId} was approved`,
            by: `approval ${input.byInstanceId}`,
          });
        }
        return live.length ? { action: 'revoked', grantId: live[0], chain } : { action: 'no-live-grant', chain };
      }

      if (live.length) {
        await deps.client.workflow.getHandle(live[0]!).signal(amendSignal, { instanceId: input.byInstanceId });
        return { action: 'amended', grantId: live[0], chain };
      }
      const original = chain[chain.length - 1]!;
      const route = findRoute(deps.routes, input.platform, approvalCode);
      if (!route)
        throw new IntegrationError(`approval ${approvalCode} is not routed here`, 'invalid', { system: 'config' });
      const { workflowIdConflictPolicy: _fail, ...options } = startOptionsFor(
        route,
        input.platform,
        original,
        deps.timing,
        {
          source: 'amendment',
          eventId: input.byInstanceId,
        }
      );
      try {
        // Never started (its approval event was missed): start it with the change queued, in one call.
        await deps.client.workflow.signalWithStart('nacWhitelistWorkflow', {
          ...options,
          signal: amendSignal,
          signalArgs: [{ instanceId: input.byInstanceId }],
        });
        return { action: 'started-with-change', grantId: options.workflowId, chain };
      } catch (err) {
        // REJECT_DUPLICATE: the original's grant ran and ended; a change does not bring it back.
        if (err instanceof WorkflowExecutionAlreadyStartedError) {
          return { action: 'original-ended', grantId: options.workflowId, chain };
        }
        throw err;
      }
    },
  });
}

export type AmendmentActivities = ReturnType<typeof createAmendmentActivities>;
