import { WorkflowNotFoundError, type Client, type WorkflowExecutionStatusName } from '@temporalio/client';
import { formatMac, normaliseMac } from '../domain/mac';
import type { PlatformName } from '../domain/types';
import type { EndpointSnapshot, NacAdapter, NacDriver } from '../nac/adapter';
import { holdingsQuery, RequesterRefKey, type GrantPhase, type Holding } from '../workflows/definitions';
import { queryRun } from '../temporal/query';
import { firstLine, queryStatus, splitWorkflowId } from './grants';

/**
 * `approval-plus whois <mac>` / `GET /api/whois/:mac`: who holds a device on the NAC. The NAC's ApprovalPlus tag names
 * the grant (the workflow id); the run, when Temporal has it, says since when, until when and what the device
 * replaced (its `holdings` query: the undo it will run). Read-only: nothing is written anywhere.
 */

export type WhoisVerdict =
  /** No endpoint for this MAC on the NAC: nobody whitelisted it. */
  | 'not-on-nac'
  /** An endpoint without an ApprovalPlus tag: registered by someone else, or changed since a grant wrote it. */
  | 'not-ours'
  /** Tagged by a grant whose run is open: it holds the device. */
  | 'live'
  /** Tagged by a grant whose run has ended: an entry left behind (reconcile --fix restores it). */
  | 'orphan'
  /** Tagged by a grant Temporal has no run of (deleted, past retention, or another namespace). */
  | 'unknown-grant';

export interface WhoisAnswer {
  /** 12 hex digits. */
  mac: string;
  /** `AA:BB:CC:DD:EE:FF`. */
  display: string;
  verdict: WhoisVerdict;
  nac: NacDriver;
  /** What the NAC holds now (absent when it has no endpoint). */
  endpoint?: { id: string; group: string };
  grant?: {
    workflowId: string;
    platform: PlatformName;
    instanceId: string;
    approvalCode: string;
    /** Opaque requester hash (the tag's owner, the run's RequesterRef). */
    requesterRef?: string;
    /** The run's state in Temporal; absent when Temporal does not know it. */
    execution?: WorkflowExecutionStatusName;
    phase?: GrantPhase;
    /** Since when the access runs (the run's status; absent when it cannot be asked). */
    grantedAt?: string;
    /** Until when: the run's expiry, else the one written in the tag; absent = permanent. */
    expiresAt?: string;
    startTime?: string;
    closeTime?: string;
  };
  /**
   * What the grant replaced: `prior` null = nothing, the grant created the endpoint (undo deletes it); otherwise the
   * endpoint as it was (undo restores it). Absent when the run could not say (ended, unknown, or the query failed).
   */
  holding?: Holding;
  /** Where an answer is partial, and why (a query that failed, a device the run does not list). */
  notes: string[];
  /** What the operator can do next, for the answers that call for it. */
  advice?: string;
}

export class InvalidMacError extends Error {
  override readonly name = 'InvalidMacError';
}

/** A MAC in any notation → 12 hex digits; InvalidMacError (with the reason) otherwise. */
export function parseWhoisMac(text: string): string {
  const parsed = normaliseMac(text);
  if (!parsed.ok) throw new InvalidMacError(`"${text}" is not a MAC address: ${parsed.reason}`);
  return parsed.mac;
}

export async function whois(deps: { client: Client; nac: NacAdapter }, macText: string): Promise<WhoisAnswer> {
  const mac = parseWhoisMac(macText);
  const base = { mac, display: formatMac(mac, 'colon-upper'), nac: deps.nac.driver };

  const endpoint = await deps.nac.lookup(mac);
  if (!endpoint) return { ...base, verdict: 'not-on-nac', notes: [] };
  const summary = { id: endpoint.id, group: endpoint.group };
  const tag = endpoint.tag;
  if (!tag) return { ...base, verdict: 'not-ours', endpoint: summary, notes: [] };

  const answer: WhoisAnswer = {
    ...base,
    verdict: 'live',
    endpoint: summary,
    notes: [],
    grant: {
      workflowId: tag.grantId,
      ...splitWorkflowId(tag.grantId),
      approvalCode: tag.approvalCode,
      ...(tag.owner ? { requesterRef: tag.owner } : {}),
      ...(tag.expiresAt ? { expiresAt: tag.expiresAt } : {}),
    },
  };
  const grant = answer.grant!;
  const handle = deps.client.workflow.getHandle(tag.grantId);
  let description;
  try {
    description = await handle.describe();
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    return {
      ...answer,
      verdict: 'unknown-grant',
      advice:
        'run `approval-plus reconcile`: it lists the entry; with --fix it removes an endpoint the grant created, ' +
        'and leaves one that existed before for review',
    };
  }
  grant.execution = description.status.name;
  grant.startTime = description.startTime.toISOString();
  if (description.closeTime) grant.closeTime = description.closeTime.toISOString();
  const ref = description.typedSearchAttributes.get(RequesterRefKey);
  if (ref) grant.requesterRef = ref;
  if (description.status.name !== 'RUNNING') {
    return {
      ...answer,
      verdict: 'orphan',
      advice: 'run `approval-plus reconcile --fix` to restore this entry to the state its grant found',
    };
  }

  // Both queries at once: each is a workflow task on the worker; neither blocks the other's answer.
  const [status, holdings] = await Promise.allSettled([
    queryStatus(deps.client, tag.grantId),
    queryRun(deps.client, tag.grantId, holdingsQuery),
  ]);
  if (status.status === 'fulfilled') {
    grant.phase = status.value.phase;
    if (status.value.grantedAt) grant.grantedAt = status.value.grantedAt;
    if (status.value.expiresAt) grant.expiresAt = status.value.expiresAt;
    else delete grant.expiresAt; // the run is the authority: an extension to permanent leaves the old tag behind
  } else answer.notes.push(`status query failed: ${firstLine(status.reason)}`);
  if (holdings.status === 'fulfilled') {
    const held = holdings.value.find((h) => h.mac === mac);
    if (held) answer.holding = held;
    else answer.notes.push('the grant does not list this device among its holdings (handed over, or being undone)');
  } else answer.notes.push(`holdings query failed: ${firstLine(holdings.reason)}`);
  return answer;
}

/** One line for an endpoint state as an operator reads it: its group, and the grant that tagged it if any. */
export function describeEndpoint(e: Pick<EndpointSnapshot, 'group' | 'tag'>): string {
  return `group ${e.group || '(none)'}${e.tag ? `, tagged by grant ${e.tag.grantId}` : ', no ApprovalPlus tag'}`;
}

/** The answer as the CLI prints it: a headline that answers the question, then the details. */
export function formatWhois(a: WhoisAnswer): string[] {
  const g = a.grant;
  // The endpoint now: its tag is the grant the headline names (or none, for 'not-ours').
  const where = a.endpoint ? `endpoint ${a.endpoint.id}, group ${a.endpoint.group || '(none)'}` : '';
  switch (a.verdict) {
    case 'not-on-nac':
      return [`${a.display}: not on the NAC (${a.nac}): no endpoint, so no grant holds it.`];
    case 'not-ours':
      return [
        `${a.display}: on the NAC (${a.nac}) but not granted by ApprovalPlus — no ApprovalPlus tag.`,
        `  NAC now:   ${where}`,
        '  registered by someone else, or changed by someone since a grant wrote it.',
      ];
    case 'orphan':
    case 'unknown-grant': {
      const why =
        a.verdict === 'orphan'
          ? `which is no longer running (${g!.execution!.toLowerCase()}${g!.closeTime ? ` ${g!.closeTime}` : ''})`
          : 'which Temporal does not know (deleted, past retention, or another namespace)';
      return [
        `${a.display}: whitelisted by grant ${g!.workflowId}, ${why}: no live grant holds it.`,
        `  NAC now:   ${where}`,
        `  approval:  ${g!.approvalCode}, instance ${g!.instanceId} (${g!.platform})`,
        ...(a.advice ? [`  next:      ${a.advice}`] : []),
      ];
    }
    case 'live': {
      const replaced = !a.holding
        ? 'unknown (see notes)'
        : a.holding.prior === null
          ? 'nothing — the grant created this endpoint; undo deletes it'
          : `the endpoint as it was: ${describeEndpoint(a.holding.prior)}; undo restores it`;
      return [
        `${a.display}: held by grant ${g!.workflowId} (live${g!.phase ? `, phase ${g!.phase}` : ''}).`,
        `  approval:  ${g!.approvalCode}, instance ${g!.instanceId} (${g!.platform})`,
        `  requester: ${g!.requesterRef ?? '?'}`,
        `  since:     ${g!.grantedAt ?? `? (run started ${g!.startTime})`}`,
        `  until:     ${g!.expiresAt ?? 'permanent'}`,
        `  replaced:  ${replaced}`,
        `  NAC now:   ${where}`,
        ...a.notes.map((n) => `  note:      ${n}`),
        `  details:   npx approval-plus status ${g!.workflowId}`,
      ];
    }
  }
}
