/**
 * Types shared by workflows, activities, platforms and the NAC adapters. Pure data: this module is imported by
 * workflow code, so it must stay free of I/O and Node built-ins.
 */

/** Every approval platform, in one list: config schemas, the operator's filters and workflow-id parsing use it. */
export const PLATFORM_NAMES = ['feishu', 'dingtalk', 'wecom'] as const;
export type PlatformName = (typeof PLATFORM_NAMES)[number];

/** Approval instance statuses, normalised to Feishu's vocabulary (DingTalk/WeCom map onto these). */
export type ApprovalStatus =
  'PENDING' | 'APPROVED' | 'REJECTED' | 'CANCELED' | 'DELETED' | 'REVERTED' | 'OVERTIME_CLOSE' | 'OVERTIME_RECOVER';

/** Statuses that withdraw a previously granted approval. */
export const REVOKING_STATUSES: readonly ApprovalStatus[] = ['REVERTED', 'CANCELED', 'DELETED'];

/**
 * One widget of an approval form, as Feishu's instance API returns it (`form` is a JSON string of these).
 * A detail table (`fieldList`) has `value` = array of rows, each row an array of FormWidget.
 */
export interface FormWidget {
  id: string;
  name: string;
  type: string;
  value: unknown;
  ext?: unknown;
  option?: unknown;
}

export interface ApprovalInstance {
  platform: PlatformName;
  /** Feishu instance_code, DingTalk processInstanceId, WeCom sp_no. */
  instanceId: string;
  approvalCode: string;
  /** Human-readable approval name, if the platform gives one. */
  approvalName?: string;
  status: ApprovalStatus;
  /** The requester's id on the platform (Feishu open_id), used to message them. */
  requesterId: string;
  /** Tenant-stable id of the requester where the platform has one (Feishu user_id). */
  requesterUserId?: string;
  form: FormWidget[];
  /** Epoch ms. */
  startTime?: number;
  endTime?: number;
  /**
   * This instance changes an earlier approval rather than standing alone: Feishu's 撤销 / 修改 instances
   * (`reverted_instance_code` / `modified_instance_code`), DingTalk's attached instances (`bizAction` REVOKE / MODIFY,
   * `mainProcessInstanceId`). Approved, it revokes or replaces the grant of `instanceId`; it never grants on its own.
   */
  amends?: Amendment;
}

export interface Amendment {
  kind: 'revoke' | 'modify';
  /** The instance it changes (which may itself have amended an earlier one). */
  instanceId: string;
}

/** A message to the requester. Platforms render it (Feishu: an interactive card). */
export interface RequesterMessage {
  kind:
    | 'granted'
    | 'partially-granted'
    | 'failed'
    | 'revoked'
    | 'expiry-reminder'
    | 'extended'
    | 'changed'
    | 'rejected-input';
  title: string;
  /** Markdown-ish lines, rendered as the card body. */
  lines: string[];
  /** Stable across retries: the platform dedupes on it (Feishu `uuid`, ≤ 50 chars). */
  idempotencyKey: string;
  /** Link back to the approval, when known. */
  instanceId?: string;
}
