import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { ApprovalCodeKey, ApprovalPlatformKey, TASK_QUEUE } from '../workflows/definitions';
import type { ForwardRoute, ForwardSubscriber } from './config';
import {
  FORWARD_WORKFLOW_TYPE,
  forwardWorkflowId,
  type ForwardedEvent,
  type ForwardEventInput,
  type ForwardRetry,
} from './model';
import { webhookIdFor } from './signing';

/** What `forward list` reads back without fetching histories. */
export interface ForwardMemo {
  subscriber: string;
  url: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  instanceId?: string;
  status?: string;
  resendOf?: string;
}

/** The event as forwarded: the normalised fields only (the raw platform body travels separately, on request). */
export function forwardedEvent(event: ForwardedEvent & { raw?: unknown }): ForwardedEvent {
  const { raw: _raw, ...rest } = event;
  const out: ForwardedEvent = { ...rest };
  for (const k of Object.keys(out) as (keyof ForwardedEvent)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/** One input per subscriber of the matching routes; a subscriber on two matching routes gets the event once. */
export function forwardInputs(
  routes: readonly ForwardRoute[],
  event: ForwardedEvent & { raw?: unknown },
  retry: ForwardRetry,
  receivedAt: Date
): ForwardEventInput[] {
  const bySub = new Map<string, { sub: ForwardSubscriber; raw: boolean }>();
  for (const r of routes) {
    for (const sub of r.subscribers) {
      const seen = bySub.get(sub.name);
      bySub.set(sub.name, { sub, raw: (seen?.raw ?? false) || r.includeRaw });
    }
  }
  const normalised = forwardedEvent(event);
  return [...bySub.values()].map(({ sub, raw }) => ({
    event: normalised,
    ...(raw && event.raw !== undefined ? { raw: event.raw } : {}),
    receivedAt: receivedAt.toISOString(),
    subscriber: sub.name,
    url: sub.url,
    webhookId: webhookIdFor(event.platform, event.eventId, sub.name),
    retry,
  }));
}

export function forwardStartOptions(input: ForwardEventInput, workflowId?: string) {
  const e = input.event;
  const id = workflowId ?? forwardWorkflowId(e.platform, e.eventId, input.subscriber);
  const what = e.kind === 'approval-status' ? `${e.approvalCode} ${e.instanceId} ${e.status}` : e.eventType;
  const memo: ForwardMemo = {
    subscriber: input.subscriber,
    url: input.url,
    webhookId: input.webhookId,
    eventId: e.eventId,
    eventType: e.eventType,
    ...(e.instanceId ? { instanceId: e.instanceId } : {}),
    ...(e.status ? { status: e.status } : {}),
    ...(input.resendOf ? { resendOf: input.resendOf } : {}),
  };
  const typedSearchAttributes = [
    { key: ApprovalPlatformKey, value: e.platform },
    ...(e.approvalCode ? [{ key: ApprovalCodeKey, value: e.approvalCode }] : []),
  ];
  return {
    workflowId: id,
    taskQueue: TASK_QUEUE,
    args: [input] as [ForwardEventInput],
    // One delivery run per event and subscriber, ever: a redelivered event finds this id taken, running or closed.
    workflowIdReusePolicy: 'REJECT_DUPLICATE' as const,
    workflowIdConflictPolicy: 'FAIL' as const,
    staticSummary: `${input.resendOf ? 'Re-send' : 'Forward'} ${e.platform} ${what} → ${input.subscriber}`.slice(
      0,
      200
    ),
    staticDetails: [
      `**Automation:** forward${input.resendOf ? ` (re-send of \`${input.resendOf}\`)` : ''}`,
      `**Subscriber:** \`${input.subscriber}\` — ${input.url}`,
      `**Event:** ${e.platform} \`${e.eventType}\` \`${e.eventId}\` (${e.kind})`,
      ...(e.approvalCode ? [`**Approval:** ${e.approvalCode} · instance ${e.instanceId} · ${e.status}`] : []),
      `**webhook-id:** \`${input.webhookId}\` (the receiver's dedupe key)`,
      `**Received:** ${input.receivedAt}${input.raw !== undefined ? ' · raw event included' : ''}`,
    ].join('\n\n'),
    memo: memo as unknown as Record<string, unknown>,
    typedSearchAttributes,
  };
}

/** Start one forward run; a taken id (the event was forwarded to this subscriber before) is a duplicate, not an error. */
export async function startForward(
  client: Client,
  input: ForwardEventInput,
  workflowId?: string
): Promise<{ workflowId: string; outcome: 'started' | 'duplicate' }> {
  const opts = forwardStartOptions(input, workflowId);
  try {
    await client.workflow.start(FORWARD_WORKFLOW_TYPE, opts);
    return { workflowId: opts.workflowId, outcome: 'started' };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      return { workflowId: opts.workflowId, outcome: 'duplicate' };
    throw err;
  }
}
