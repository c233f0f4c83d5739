/**
 * Everything the outside world uses to talk to a workflow: names, messages, search-attribute keys.
 * Imported by workflows, the ingress, the CLI and the tests. No other imports here beyond Temporal's definers.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { PlatformName } from '../domain/types';
import type { EndpointSnapshot } from '../nac/adapter';

export const TASK_QUEUE = 'approval-plus';
/** NAC calls run on their own queue so they can be rate-limited server-side (NAC_MAX_RPS) across every worker. */
export const NAC_TASK_QUEUE = 'approval-plus-nac';

export function workflowIdFor(platform: PlatformName, instanceId: string): string {
  return `${platform}-${instanceId}`;
}

export interface CancelInput {
  reason: string;
  by?: string;
}
/** Stop, undo every effect of this run, tell the requester. Every revocation path ends here. */
export const cancelSignal = defineSignal<[CancelInput]>('cancel');

export interface ExtendInput {
  /** The new expiry, ISO-8601 with a time zone; null = permanent. Must be later than the current expiry. */
  expiresAt: string | null;
  by?: string;
  reason?: string;
}
/**
 * Extend an active grant (operator API / CLI `extend`). Validated before it is accepted (an update a validator
 * refuses never reaches history); answers with the grant's status once the new expiry is in force.
 */
export const extendUpdate = defineUpdate<GrantStatus, [ExtendInput]>('extend');

export interface AdoptPriorInput {
  /** Normalised MAC (12 hex digits). */
  mac: string;
  /** What the NAC held before the earlier grant wrote: what the last grant standing must restore. */
  prior: EndpointSnapshot | null;
  /** The earlier grant's workflow id. */
  from: string;
}
/**
 * Hand-over between overlapping grants of one device (a later approval for a MAC that a live grant already holds):
 * the earlier grant, ending, finds the endpoint tagged by the later one and passes its own prior state on, so that
 * the endpoint returns to the pre-approval state when the last grant ends — not to the earlier grant's tag.
 */
export const adoptPriorSignal = defineSignal<[AdoptPriorInput]>('adoptPrior');

/**
 * Continue as new at the next safe point: the grant carries its state into a fresh run on the deployed code, with an
 * empty history. Harmless at any time; an operator sends it to move grants started by older code onto the current one
 * before retiring a patch (README "Changing a workflow").
 */
export const refreshSignal = defineSignal<[]>('refresh');

export interface AmendInput {
  /** The approved 修改 (modify) instance whose form replaces this grant's devices and duration. */
  instanceId: string;
}
/**
 * A later approved modification of this grant's request (Feishu 修改, DingTalk MODIFY attached instance): the grant
 * fetches it and moves to its devices and duration — devices no longer listed are revoked, new ones granted,
 * unchanged ones untouched. Sent by the modification's own run, which never grants on its own.
 */
export const amendSignal = defineSignal<[AmendInput]>('amend');

export type GrantPhase =
  | 'fetching'
  | 'granting'
  | 'notifying'
  | 'active'
  | 'revoking'
  | 'revoked'
  | 'expired'
  | 'failed'
  | 'rejected'
  | 'ignored';

export type MacState =
  'pending' | 'granted' | 'failed' | 'skipped' | 'restored' | 'removed' | 'left-alone' | 'handed-over' | 'invalid';

/** What the Change of Authorization did to the device's live session after its access changed. */
export type CoaState = 'reauthenticated' | 'disconnected' | 'no-session' | 'not-needed' | 'off' | 'failed';

export interface MacStatus {
  mac: string;
  state: MacState;
  randomised?: boolean;
  detail?: string;
  /** The latest CoA for this device (after it was whitelisted, or after it was revoked). */
  coa?: CoaState;
  /** Why a CoA failed, or where it acted (ISE PSN, NAS address). */
  coaDetail?: string;
}

export interface GrantStatus {
  phase: GrantPhase;
  macs: MacStatus[];
  expiresAt?: string;
  /** When the access began (the granted message), ISO-8601; kept across Continue-As-New. Absent before granting. */
  grantedAt?: string;
  lastError?: string;
  revokedReason?: string;
}
export const statusQuery = defineQuery<GrantStatus>('status');

/** One device this grant holds on the NAC, with what undo puts back. */
export interface Holding {
  /** Normalised MAC (12 hex digits). */
  mac: string;
  /** The MAC as the requester wrote it (normalised notation `AA:BB:…`). */
  display: string;
  /** What the NAC held before this grant wrote (null: nothing, the grant created the endpoint). */
  prior: EndpointSnapshot | null;
}
/**
 * What the grant holds on the NAC right now and what each device replaced: the undo it will run. Read by `whois` and
 * by reconcile; the same list a Continue-As-New carries to the next run.
 */
export const holdingsQuery = defineQuery<Holding[]>('holdings');

/** Search attributes: ids and states only, never a MAC, a name or form content. */
export const ApprovalCodeKey = defineSearchAttributeKey('ApprovalCode', SearchAttributeType.KEYWORD);
export const ApprovalPlatformKey = defineSearchAttributeKey('ApprovalPlatform', SearchAttributeType.KEYWORD);
export const GrantPhaseKey = defineSearchAttributeKey('GrantPhase', SearchAttributeType.KEYWORD);
/** Opaque hash of the requester's platform id, to find a leaver's live grants. */
export const RequesterRefKey = defineSearchAttributeKey('RequesterRef', SearchAttributeType.KEYWORD);
export const GrantExpiresAtKey = defineSearchAttributeKey('GrantExpiresAt', SearchAttributeType.DATETIME);

export const SEARCH_ATTRIBUTES = [
  ApprovalCodeKey,
  ApprovalPlatformKey,
  GrantPhaseKey,
  RequesterRefKey,
  GrantExpiresAtKey,
];
