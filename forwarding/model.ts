/**
 * Forwarding, as data: what the EventProcessor hands a `forwardEventWorkflow`, and the body a subscriber receives.
 * Pure (imported by workflow code): no I/O, no Node built-ins.
 */
import type { PlatformName } from '../domain/types';

export const FORWARD_WORKFLOW_TYPE = 'forwardEventWorkflow';

/** The platform-neutral event as the ingress normalised it (an InboundEvent without the raw platform body). */
export interface ForwardedEvent {
  kind: string;
  platform: PlatformName;
  eventId: string;
  eventType: string;
  approvalCode?: string;
  instanceId?: string;
  status?: string;
  userId?: string;
}

export interface ForwardRetry {
  initialIntervalMs: number;
  backoffCoefficient: number;
  maximumIntervalMs: number;
  /** How long delivery is retried in all (the activity's schedule-to-close time-out). */
  retryForMs: number;
  /** One HTTP attempt's time-out. */
  requestTimeoutMs: number;
}

export interface ForwardEventInput {
  event: ForwardedEvent;
  /** The decrypted platform event (secrets stripped), only for subscribers of an `include_raw: true` route. */
  raw?: unknown;
  /** When ApprovalPlus accepted the event (ISO 8601): the payload's `timestamp`. */
  receivedAt: string;
  subscriber: string;
  /** The subscriber's URL when the run started; the worker posts to the URL it has configured for the name now. */
  url: string;
  webhookId: string;
  retry: ForwardRetry;
  /** The workflow id of the failed run this one re-sends. */
  resendOf?: string;
}

export interface ForwardDelivery {
  webhookId: string;
  url: string;
  status: number;
  attempt: number;
  deliveredAt: string;
}

/** `forward-<platform>-<eventId>-<subscriber>`: one run per event and subscriber, ever (REJECT_DUPLICATE). */
export function forwardWorkflowId(platform: PlatformName, eventId: string, subscriber: string): string {
  return `forward-${platform}-${eventId}-${subscriber}`;
}

/** Standard Webhooks event type (`[a-zA-Z0-9_]` identifiers, full-stop delimited) of a normalised event. */
export function forwardEventType(event: ForwardedEvent): string {
  switch (event.kind) {
    case 'approval-status':
      return 'approval.status_changed';
    case 'user-left':
      return 'contact.user_left';
    default:
      return 'platform.event';
  }
}

/** The JSON body: Standard Webhooks' recommended `{ type, timestamp, data }`. */
export function forwardBody(input: Pick<ForwardEventInput, 'event' | 'raw' | 'receivedAt'>): string {
  const data: Record<string, unknown> = { ...input.event };
  if (input.raw !== undefined) data.raw = input.raw;
  return JSON.stringify({ type: forwardEventType(input.event), timestamp: input.receivedAt, data });
}
