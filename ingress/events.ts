import type { ApprovalStatus, PlatformName } from '../domain/types';

/**
 * Platform events, normalised. Every ingress path (Feishu webhook, Feishu long connection, DingTalk, WeCom) turns
 * what it received into one of these and hands it to the EventProcessor.
 */
export type InboundEvent = (
  | {
      kind: 'approval-status';
      platform: PlatformName;
      eventId: string;
      eventType: string;
      approvalCode: string;
      instanceId: string;
      status: ApprovalStatus | string;
    }
  | { kind: 'user-left'; platform: PlatformName; eventId: string; eventType: string; userId: string }
  | { kind: 'other'; platform: PlatformName; eventId: string; eventType: string }
) & {
  /**
   * The platform's event as received (decrypted, with verification tokens removed): sent to forward subscribers whose
   * route has `include_raw: true`. Optional: an ingress that does not set it forwards the normalised fields only.
   */
  raw?: unknown;
};

export type EventOutcome =
  'started' | 'duplicate' | 'signalled' | 'no-live-grant' | 'ignored-status' | 'unrouted' | 'ignored-type';

export interface EventResult {
  outcome: EventOutcome;
  workflowIds?: string[];
}
