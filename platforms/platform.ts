import type { ApprovalInstance, PlatformName, RequesterMessage } from '../domain/types';

/**
 * What an automation needs from an office platform. The workflow never knows which platform is behind it:
 * Feishu, DingTalk and WeCom each implement this once. Implementations throw `IntegrationError` (domain/errors)
 * so that activities can classify failures for Temporal.
 */
export interface ApprovalPlatform {
  readonly name: PlatformName;
  /** Fetch the instance from the platform's API (the webhook payload is never trusted alone). */
  getInstance(instanceId: string): Promise<ApprovalInstance>;
  /** Message the requester. Idempotent on `message.idempotencyKey`. */
  notifyRequester(requesterId: string, message: RequesterMessage): Promise<{ messageId: string }>;
  /** Leave an audit comment on the instance. Idempotent on `idempotencyKey`. */
  commentOnInstance(
    instance: Pick<ApprovalInstance, 'instanceId' | 'requesterId'>,
    text: string,
    idempotencyKey: string
  ): Promise<void>;
  /** Approved instances of `approvalCode` that ended in [fromMs, toMs) (reconcile). */
  listInstances?(approvalCode: string, fromMs: number, toMs: number): Promise<string[]>;
}
