import {
  isGrpcServiceError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionStatusName,
} from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import type { Route } from '../config/config';
import type { PlatformName } from '../domain/types';
import { startOptionsFor } from '../ingress/event-processor';
import type { CreateResult, EndpointSnapshot, NacAdapter } from '../nac/adapter';
import type { ApprovalPlatform } from '../platforms/platform';
import { queryRun } from '../temporal/query';
import { holdingsQuery, workflowIdFor, type AdoptPriorInput } from '../workflows/definitions';
import type { NacWhitelistInput } from '../workflows/nac-whitelist.workflow';

/**
 * Reconcile: what the event stream may have missed, found by looking at the systems themselves. Shared by the CLI
 * (`approval-plus reconcile`) and the `reconcileWorkflow` that a Temporal Schedule runs.
 *
 *  1. Approved instances of routed approval codes with no workflow are started, with the same start options as the
 *     webhook (REJECT_DUPLICATE: exactly once, and a second reconcile starts nothing).
 *  2. Whitelist entries tagged by ApprovalPlus whose grant is not live are reported; with `fix` each is restored to
 *     the state its grant recorded before writing: asked of the grant's last run (the holdings query, answered by a
 *     worker replaying that run), else read from that run's own history (the state Continue-As-New carried into it,
 *     then its events) — never from earlier runs, which may have aged out of retention. When the last run is gone
 *     too, an endpoint the grant created is removed; one that existed before the grant is never deleted (its prior
 *     state is unknown, so it is left as it is and reported for review).
 */
/** gRPC status NOT_FOUND (a closed run deleted, or aged out of retention). */
const GRPC_NOT_FOUND = 5;

export interface ReconcileDeps {
  client: Client;
  routes: Route[];
  platforms: Partial<Record<PlatformName, ApprovalPlatform>>;
  nac: NacAdapter;
  timing: { reminderLeadMs: number; nacStepTimeoutMs?: number };
  /** RECONCILE_APPROVAL_MAX_AGE: how long before its approval an instance may have been submitted. */
  approvalMaxAgeMs: number;
  /** Progress for long work: the CLI prints it, the activity heartbeats it. */
  progress?: (line: string) => void;
}

export interface MissedApprovalsReport {
  checked: number;
  started: string[];
  /** Routes whose platform cannot list instances (or is not configured here). */
  unlisted: string[];
}

export interface OrphanEntry {
  mac: string;
  grantId: string;
  /** What became of the grant: closed (and how), or never known to this Temporal namespace. */
  grant: WorkflowExecutionStatusName | 'NOT_FOUND';
  action: 'reported' | 'restored' | 'deleted' | 'skipped' | 'handed-back' | 'needs-review';
  /** Where the restored state came from. */
  prior?:
    | 'grant state'
    | 'grant history'
    | 'unknown (history gone): created by the grant, removed'
    | 'unknown (history gone): existed before the grant, left for review';
}

export interface WhitelistReport {
  checked: number;
  orphans: OrphanEntry[];
}

export type ExecutionState = WorkflowExecutionStatusName | 'NOT_FOUND';

export async function executionState(client: Client, workflowId: string): Promise<ExecutionState> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'NOT_FOUND';
    throw err;
  }
}

export async function reconcileMissedApprovals(
  deps: ReconcileDeps,
  window: { fromMs: number; toMs: number }
): Promise<MissedApprovalsReport> {
  const report: MissedApprovalsReport = { checked: 0, started: [], unlisted: [] };
  for (const route of deps.routes) {
    const platform = deps.platforms[route.platform];
    if (!platform?.listInstances) {
      report.unlisted.push(`${route.platform}:${route.approvalCode}`);
      continue;
    }
    const ids = await platform.listInstances(route.approvalCode, {
      ...window,
      submittedSinceMs: window.fromMs - deps.approvalMaxAgeMs,
    });
    deps.progress?.(`${route.platform} approval ${route.approvalCode}: ${ids.length} instance(s) in the window`);
    for (const [i, id] of ids.entries()) {
      report.checked++;
      if (ids.length > 20 && (i + 1) % 20 === 0) deps.progress?.(`  checked ${i + 1}/${ids.length}`);
      const workflowId = workflowIdFor(route.platform, id);
      if ((await executionState(deps.client, workflowId)) !== 'NOT_FOUND') continue;
      const instance = await platform.getInstance(id);
      if (instance.status !== 'APPROVED') continue;
      try {
        await deps.client.workflow.start(
          'nacWhitelistWorkflow',
          startOptionsFor(route, route.platform, id, deps.timing, { source: 'reconcile' })
        );
        report.started.push(workflowId);
        deps.progress?.(`  started ${workflowId} (approved, no workflow)`);
      } catch (err) {
        // A webhook (or another reconcile) started it in between: that is the exactly-once guarantee working.
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
    }
  }
  return report;
}

export async function reconcileWhitelist(deps: ReconcileDeps, opts: { fix: boolean }): Promise<WhitelistReport> {
  const tagged = await deps.nac.listTagged();
  deps.progress?.(`${tagged.length} whitelist entr${tagged.length === 1 ? 'y' : 'ies'} carry an ApprovalPlus tag`);
  const report: WhitelistReport = { checked: tagged.length, orphans: [] };
  for (const [i, entry] of tagged.entries()) {
    if (tagged.length > 50 && (i + 1) % 50 === 0) deps.progress?.(`  checked ${i + 1}/${tagged.length}`);
    const grantId = entry.tag!.grantId;
    const grant = await executionState(deps.client, grantId);
    if (grant === 'RUNNING') continue;
    const orphan: OrphanEntry = { mac: entry.mac, grantId, grant, action: 'reported' };
    report.orphans.push(orphan);
    if (opts.fix) await fixOrphan(deps, entry, orphan);
  }
  return report;
}

/** Put an orphaned entry back as its grant found it, following hand-overs between grants; never guesses. */
async function fixOrphan(deps: ReconcileDeps, entry: EndpointSnapshot, orphan: OrphanEntry): Promise<void> {
  let prior = await priorFromGrant(deps.client, orphan.grantId, entry.mac);
  // The prior state may itself be another grant's entry (overlapping grants): give it back if that grant is live,
  // otherwise look further back through that grant's own history.
  for (let depth = 0; prior.found && prior.snapshot?.tag && depth < 5; depth++) {
    const earlier = prior.snapshot.tag.grantId;
    if ((await executionState(deps.client, earlier)) === 'RUNNING') break;
    prior = await priorFromGrant(deps.client, earlier, entry.mac);
  }
  if (!prior.found) {
    // History gone (retention). An endpoint the grant created is removed: losing access is safe, keeping unowned
    // access is not. One that existed before the grant (or a tag too old to say) is never deleted: that would destroy
    // a device the network team had registered; without its prior state it is left for a person to review.
    if (entry.tag?.origin === 'created') {
      orphan.action = await deps.nac.restore(entry.mac, null, orphan.grantId);
      orphan.prior = 'unknown (history gone): created by the grant, removed';
    } else {
      orphan.action = 'needs-review';
      orphan.prior = 'unknown (history gone): existed before the grant, left for review';
    }
    return;
  }
  const done = await deps.nac.restore(entry.mac, prior.snapshot, orphan.grantId);
  orphan.action = done === 'restored' && prior.snapshot?.tag ? 'handed-back' : done;
  orphan.prior = prior.source;
}

interface GrantPrior {
  found: boolean;
  snapshot: EndpointSnapshot | null;
  source: 'grant state' | 'grant history';
}

/**
 * What a grant holds as the device's prior state. First its own answer (`holdingsQuery` on its last run, open or
 * closed: a worker replays the run and reports the undo it had left); when no worker answers or the device is not
 * among the holdings, the last run's history (priorFromHistory). `found: false` when that run is gone.
 */
export async function priorFromGrant(client: Client, grantId: string, mac: string): Promise<GrantPrior> {
  try {
    const held = (await queryRun(client, grantId, holdingsQuery)).find((h) => h.mac === mac);
    if (held) return { found: true, snapshot: held.prior, source: 'grant state' };
  } catch (err) {
    if (isNotFound(err)) return { found: false, snapshot: null, source: 'grant history' };
    // No worker polling, or a run from before the query existed that cannot replay: the history still says.
  }
  return priorFromHistory(client, grantId, mac);
}

function isNotFound(err: unknown): boolean {
  // fetchHistory passes the service's NOT_FOUND through as a gRPC error, not a WorkflowNotFoundError.
  return err instanceof WorkflowNotFoundError || (isGrpcServiceError(err) && err.code === GRPC_NOT_FOUND);
}

/**
 * What the grant's last run recorded as the device's prior state: the holding Continue-As-New carried into the run,
 * else the result of the run's first `lookupEndpoint` for that MAC (runs of 0.2 and before) or `createWhitelisted`
 * (`created`: nothing before; `exists`: what was there); then the prior a later `adoptPrior` hand-over gave it.
 * Only that run's history is read. `found: false` when it is not available.
 */
export async function priorFromHistory(client: Client, grantId: string, mac: string): Promise<GrantPrior> {
  let events: temporal.api.history.v1.IHistoryEvent[];
  try {
    events = (await client.workflow.getHandle(grantId).fetchHistory()).events ?? [];
  } catch (err) {
    if (isNotFound(err)) return { found: false, snapshot: null, source: 'grant history' };
    throw err;
  }
  const decode = (p: temporal.api.common.v1.IPayload | undefined | null): unknown =>
    p ? defaultPayloadConverter.fromPayload(p as never) : undefined;
  let lookupScheduled: { eventId: number; type: string } | undefined;
  let found: GrantPrior = { found: false, snapshot: null, source: 'grant history' };
  for (const e of events) {
    const started = e.workflowExecutionStartedEventAttributes;
    if (started) {
      const input = decode(started.input?.payloads?.[0]) as NacWhitelistInput | undefined;
      const carried = input?.carried?.holdings.find((h) => h.mac === mac);
      if (carried) found = { found: true, snapshot: carried.prior, source: 'grant history' };
    }
    const scheduled = e.activityTaskScheduledEventAttributes;
    const type = scheduled?.activityType?.name;
    if (
      lookupScheduled === undefined &&
      !found.found &&
      (type === 'lookupEndpoint' || type === 'createWhitelisted') &&
      decode(scheduled?.input?.payloads?.[0]) === mac
    ) {
      lookupScheduled = { eventId: Number(e.eventId), type };
    }
    const completed = e.activityTaskCompletedEventAttributes;
    if (
      completed &&
      lookupScheduled !== undefined &&
      Number(completed.scheduledEventId) === lookupScheduled.eventId &&
      !found.found
    ) {
      const result = decode(completed.result?.payloads?.[0]);
      found = { found: true, snapshot: priorOf(lookupScheduled.type, result), source: 'grant history' };
    }
    const signal = e.workflowExecutionSignaledEventAttributes;
    if (signal?.signalName === 'adoptPrior') {
      const input = decode(signal.input?.payloads?.[0]) as AdoptPriorInput | undefined;
      if (input?.mac === mac && found.found && found.snapshot?.tag?.grantId === input.from)
        found = { found: true, snapshot: input.prior, source: 'grant history' };
    }
  }
  return found;
}

/** The prior state an activity result records: a lookup's snapshot, or what a create-first step found. */
function priorOf(activityType: string, result: unknown): EndpointSnapshot | null {
  if (activityType === 'createWhitelisted') {
    const r = result as CreateResult | undefined;
    return r?.action === 'exists' ? r.endpoint : null;
  }
  return (result as EndpointSnapshot | null) ?? null;
}
