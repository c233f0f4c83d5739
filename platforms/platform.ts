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
  /**
   * Instances of `approvalCode` that may have been approved in the window (reconcile): the caller checks each one's
   * status and workflow, so a platform may return more (e.g. every instance it lists by submission time) but never
   * fewer. Each platform queries as its API allows (time field, span per call) and pages through.
   */
  listInstances?(approvalCode: string, window: ReconcileWindow): Promise<string[]>;
}

/**
 * What reconcile asks about: approvals in [fromMs, toMs). The platforms list instances by when they were submitted
 * (Feishu: creation time; DingTalk: start time; WeCom: submission time), and an approval can pass days after it was
 * submitted, so instances submitted since `submittedSinceMs` (fromMs minus RECONCILE_APPROVAL_MAX_AGE) are listed.
 */
export interface ReconcileWindow {
  fromMs: number;
  toMs: number;
  submittedSinceMs: number;
}
