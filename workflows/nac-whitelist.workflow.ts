/**
 * `nac-whitelist`: the Wi‑Fi access automation. One run per approval instance, alive as long as the access it granted.
 *
 *   fetch + check the approval ─► for each MAC: lookup (prior state) ─► register undo ─► whitelist
 *     ─► message requester + audit comment ─► active (expiry timer, reminder, `extend` update) ─► revoke ─► tell
 *
 * Every way out after a write (permanent failure, `cancel` signal, Temporal cancellation, expiry) runs the same undo:
 * the registered compensations, newest first, in a non-cancellable scope.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { AmendmentActivities, ApprovalActivities, ApprovalRequest, NacActivities } from '../activities';
import type { Amendment, PlatformName, RequesterMessage } from '../domain/types';
import type { ParsedMac } from '../domain/mac';
import type { GrantTag } from '../nac/adapter';
import {
  adoptPriorSignal,
  amendSignal,
  cancelSignal,
  extendUpdate,
  GrantExpiresAtKey,
  GrantPhaseKey,
  holdingsQuery,
  NAC_TASK_QUEUE,
  refreshSignal,
  RequesterRefKey,
  statusQuery,
  type AmendInput,
  type CancelInput,
  type ExtendInput,
  type GrantPhase,
  type GrantStatus,
  type Holding,
  type MacStatus,
} from './definitions';
import {
  amendedMessage,
  auditComment,
  changeNotAppliedMessage,
  extendedMessage,
  failedMessage,
  grantedMessage,
  rejectedInputMessage,
  reminderMessage,
  revokedMessage,
  type MessageContext,
} from './messages';

export interface NacWhitelistInput {
  platform: PlatformName;
  instanceId: string;
  /** The approval code the route was chosen by; the fetched instance must carry the same one. */
  approvalCode: string;
  macFields: string[];
  durationField?: string;
  /** How long before expiry the requester is reminded. */
  reminderLeadMs: number;
  /** Upper bound of one NAC activity (derived from NAC_TIMEOUT_MS); default 60 s. */
  nacStepTimeoutMs?: number;
  /** Where the start came from (webhook event id, reconcile, CLI) — for the audit trail only. */
  trigger?: { source: string; eventId?: string };
  /** An active run continues as new once its history holds this many events (default 1,000): replays stay short. */
  continueAsNewAfterEvents?: number;
  /**
   * An active run older than this continues as new at its next wake-up, idle or not (default 30 days), so that every
   * live grant moves onto the deployed code within that time and old patches can be retired (README "Changing a
   * workflow").
   */
  continueAsNewAfterMs?: number;
  /** Set by Continue-As-New: the grant's whole state from the previous run. Absent on a grant's first run. */
  carried?: CarriedGrant;
}

/**
 * An active grant's whole state, handed from one run to the next by Continue-As-New: everything the next run needs to
 * remind, extend, amend, expire, hand over and undo exactly as the first run would have. Nothing is read back from an
 * earlier run's history, so earlier runs may age out of retention.
 */
export interface CarriedGrant {
  requesterId: string;
  /** The tag written onto the NAC entries (its expiry is the grant's original one; amendments pass their own). */
  tag: GrantTag;
  status: GrantStatus;
  /** Every device the grant holds, newest first, with the prior state undo restores (the compensations). */
  holdings: Holding[];
  ctx: MessageContext;
  reminded: boolean;
  /** Extensions applied so far: numbers the next one's message and comment (their idempotency keys). */
  extensionsApplied: number;
  /** Runs before this one (1 after the first Continue-As-New). */
  generation: number;
}

const DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS = 1000;
const DEFAULT_CONTINUE_AS_NEW_AFTER_MS = 30 * 24 * 3600 * 1000;

export type NacWhitelistOutcome =
  | 'revoked'
  | 'expired'
  | 'failed'
  | 'rejected-input'
  | 'not-approved'
  | 'not-routed'
  /** An approved revoke / modify instance: applied to the grant of the request it changes (never a grant of its own). */
  | 'applied-to-original'
  /** An approved modification whose original grant had already ended: nothing granted. */
  | 'original-ended';

export interface NacWhitelistResult {
  outcome: NacWhitelistOutcome;
  macs: MacStatus[];
  reason?: string;
  expiresAt?: string;
}

const amendmentCalls = proxyActivities<AmendmentActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 12 },
});
const platformCalls = proxyActivities<ApprovalActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 12 },
});
/**
 * NAC proxies. The start-to-close time-out bounds how long a crashed worker's activity waits before it is retried
 * elsewhere, so it follows the NAC request time-out (an activity makes at most a few requests), not a fixed minute.
 */
function nacProxies(stepTimeoutMs: number) {
  // Writes: retried for up to 30 min through outages; permanent errors fail fast (non-retryable failures).
  const calls = proxyActivities<NacActivities>({
    taskQueue: NAC_TASK_QUEUE,
    startToCloseTimeout: stepTimeoutMs,
    scheduleToCloseTimeout: '30 minutes',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
  });
  // Undo must finish: it keeps retrying for a day, so an outage during revocation never leaves access behind.
  const undoCalls = proxyActivities<NacActivities>({
    taskQueue: NAC_TASK_QUEUE,
    startToCloseTimeout: stepTimeoutMs,
    scheduleToCloseTimeout: '24 hours',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
  });
  // Change of Authorization after a good write: retried briefly, then reported (the requester is told to reconnect);
  // a failed CoA never undoes the grant, and a late one would act on a session that has moved on.
  const coaCalls = proxyActivities<NacActivities>({
    taskQueue: NAC_TASK_QUEUE,
    startToCloseTimeout: stepTimeoutMs,
    scheduleToCloseTimeout: '2 minutes',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 4 },
  });
  return { calls, undoCalls, coaCalls };
}

/** A registered undo: the device and the state to put back (a Holding, as the holdings query shows it). */
type Compensation = Holding;

/** The reason a failure shows the requester: the innermost ApplicationFailure message. */
function reasonOf(err: unknown): string {
  let e: unknown = err;
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) return e.message;
  return e instanceof Error ? e.message : String(e);
}

export async function nacWhitelistWorkflow(input: NacWhitelistInput): Promise<NacWhitelistResult> {
  const grantId = workflowInfo().workflowId;
  const { calls: nacCalls, undoCalls: nacUndoCalls, coaCalls } = nacProxies(input.nacStepTimeoutMs ?? 60_000);
  // A run started by Continue-As-New holds the previous run's state from its first instruction: an update or query
  // delivered in the run's first activation is handled before the main body below has run.
  const carried = input.carried;
  const status: GrantStatus = carried ? { ...carried.status, phase: 'active' } : { phase: 'fetching', macs: [] };
  let cancelRequest: CancelInput | undefined;
  const compensations: Compensation[] = carried ? [...carried.holdings] : [];
  /** The requester's platform id, once the approval is fetched (or carried): whom messages go to. */
  let requesterId: string | undefined = carried?.requesterId;
  let ctx: MessageContext = carried?.ctx ?? { grantId, instanceId: input.instanceId, invalid: [], randomised: [] };

  setHandler(cancelSignal, (c) => {
    cancelRequest ??= { reason: c?.reason || 'cancelled', by: c?.by };
  });
  setHandler(statusQuery, () => status);
  setHandler(holdingsQuery, () => compensations);
  // Continue as new at the next safe point (read by the active loop).
  let refreshRequested = false;
  setHandler(refreshSignal, () => {
    refreshRequested = true;
  });
  // Read through a function: the signal handler sets it between awaits, which TypeScript's narrowing cannot see.
  const pendingCancel = (): CancelInput | undefined => cancelRequest;

  // A later grant of one of our devices hands its prior state over when it ends (see adoptPriorSignal).
  setHandler(adoptPriorSignal, ({ mac, prior, from }) => {
    const c = compensations.find((x) => x.mac === mac && x.prior?.tag?.grantId === from);
    if (c) c.prior = prior;
  });

  // Approved modifications of this request (Feishu 修改, DingTalk MODIFY), applied by the main loop in order.
  const amendments: AmendInput[] = [];
  setHandler(amendSignal, (a) => {
    if (a?.instanceId && !amendments.some((x) => x.instanceId === a.instanceId)) amendments.push(a);
  });

  // Extensions are applied by the main loop (it owns the timers); the update waits until its turn is done.
  const extensions: ExtendInput[] = [];
  let extensionsRequested = carried?.extensionsApplied ?? 0;
  let extensionsApplied = carried?.extensionsApplied ?? 0;
  setHandler(
    extendUpdate,
    async (req) => {
      const mine = ++extensionsRequested;
      extensions.push(req);
      await condition(() => extensionsApplied >= mine || status.phase !== 'active');
      if (extensionsApplied < mine) throw ApplicationFailure.nonRetryable(`the grant ended (${status.phase})`);
      return status;
    },
    {
      validator: (req) => {
        if (status.phase !== 'active' || pendingCancel())
          throw new Error(
            `only an active grant can be extended; this one is ${pendingCancel() ? 'revoking' : status.phase}`
          );
        const current = extensions.length ? extensions[extensions.length - 1]!.expiresAt : (status.expiresAt ?? null);
        if (req?.expiresAt === null) {
          if (current === null) throw new Error('the grant is already permanent');
          return;
        }
        const at = typeof req?.expiresAt === 'string' ? Date.parse(req.expiresAt) : NaN;
        if (Number.isNaN(at) || !/([zZ]|[+-]\d\d:?\d\d)$/.test(req.expiresAt as string))
          throw new Error('expiresAt must be an ISO-8601 date-time with a time zone, or null for permanent');
        if (at <= Date.now()) throw new Error(`expiresAt ${req.expiresAt} is in the past`);
        if (current === null) throw new Error('the grant is permanent; it cannot be shortened by an extension');
        if (at <= Date.parse(current))
          throw new Error(`expiresAt must be later than the current expiry ${current}; use cancel to end access early`);
      },
    }
  );

  const coaFailures = () =>
    status.macs.filter((m) => m.coa === 'failed').map((m) => `${m.mac} (${m.coaDetail ?? 'failed'})`);

  const setPhase = (phase: GrantPhase) => {
    status.phase = phase;
    upsertSearchAttributes([{ key: GrantPhaseKey, value: phase }]);
    const counts = status.macs.reduce<Record<string, number>>(
      (acc, m) => ((acc[m.state] = (acc[m.state] ?? 0) + 1), acc),
      {}
    );
    setCurrentDetails(
      [
        `**Phase:** ${phase}`,
        `**Devices:** ${
          Object.entries(counts)
            .map(([k, v]) => `${v} ${k}`)
            .join(', ') || 'none yet'
        }`,
        status.expiresAt ? `**Expires:** ${status.expiresAt}` : '**Expires:** never',
        coaFailures().length ? `**Change of Authorization failed:** ${coaFailures().join('; ')}` : '',
        status.lastError ? `**Last error:** ${status.lastError}` : '',
        status.revokedReason ? `**Revoked because:** ${status.revokedReason}` : '',
      ]
        .filter(Boolean)
        .join('\n\n')
    );
  };

  const tell = async (message: RequesterMessage) => {
    if (requesterId === undefined) return;
    try {
      await platformCalls.notifyRequester(input.platform, requesterId, message);
    } catch (err) {
      if (isCancellation(err)) throw err;
      status.lastError = `message to requester failed: ${reasonOf(err)}`;
      log.warn('requester message failed', { error: status.lastError });
    }
  };
  const comment = async (event: string, key: string, extra?: string, onInstance = input.instanceId) => {
    if (requesterId === undefined) return;
    try {
      await platformCalls.commentOnInstance(
        input.platform,
        onInstance,
        requesterId,
        auditComment(event, status.macs, extra),
        `${grantId}:${key}`
      );
    } catch (err) {
      if (isCancellation(err)) throw err;
      status.lastError = `audit comment failed: ${reasonOf(err)}`;
      log.warn('audit comment failed', { error: status.lastError });
    }
  };

  /**
   * The requester's message and the audit comment of one step. Independent (each has its own idempotency key and
   * neither throws), so they go out together: one round trip instead of two. Runs recorded before this replay them
   * one after the other, as they were.
   */
  const tellAndComment = async (message: RequesterMessage, ...note: Parameters<typeof comment>) => {
    if (patched('message-and-comment-together')) {
      await Promise.all([tell(message), comment(...note)]);
    } else {
      await tell(message);
      await comment(...note);
    }
  };

  /**
   * Change of Authorization for one device whose access just changed, so it takes effect now rather than at the
   * device's next re-authentication. Never throws: a failure is recorded on the device and shown in the UI.
   */
  const changeOfAuthorization = async (mac: string, display: string, after: 'grant' | 'revoke') => {
    const entry = status.macs.find((m) => m.mac === display);
    try {
      const done = await coaCalls.changeOfAuthorization.executeWithOptions(
        { summary: `CoA after ${after === 'grant' ? 'whitelisting' : 'revoking'} ${display}` },
        [mac]
      );
      if (entry) {
        entry.coa = done.outcome;
        entry.coaDetail = done.where;
      }
    } catch (err) {
      if (isCancellation(err)) throw err;
      const reason = reasonOf(err);
      if (entry) {
        entry.coa = 'failed';
        entry.coaDetail = reason;
      }
      status.lastError = `Change of Authorization failed for ${display}: ${reason}`;
      log.warn('change of authorization failed', { error: status.lastError });
    }
  };

  /** Undo one device's write (restore its prior state, or delete what the grant created), then its CoA. */
  const undoOne = async (c: Compensation, why?: string) => {
    const entry = status.macs.find((m) => m.mac === c.display);
    try {
      const done = await nacUndoCalls.restoreEndpoint.executeWithOptions(
        { summary: `undo ${c.prior ? 'restore prior state' : 'remove'}` },
        [c.mac, c.prior, grantId]
      );
      if (entry && entry.state !== 'failed')
        entry.state = done === 'skipped' ? 'left-alone' : done === 'deleted' ? 'removed' : 'restored';
      if (entry && done === 'skipped') entry.detail = 'changed by someone else since; left as it is';
      else if (entry && why) entry.detail = why;
      // Added with CoA: the device's live session loses the access now, not at its next re-authentication.
      if (done !== 'skipped' && patched('change-of-authorization')) {
        await changeOfAuthorization(c.mac, c.display, 'revoke');
      }
      // Added after the first release: runs that skipped an undo before it was deployed replay without it.
      if (done === 'skipped' && patched('handover-to-later-grant')) {
        const holder = await handOver(c);
        if (entry && holder) {
          entry.state = 'handed-over';
          entry.detail = `still granted by ${holder}`;
        }
      }
    } catch (err) {
      status.lastError = `undo failed for ${c.display}: ${reasonOf(err)}`;
      log.error('compensation failed', { error: status.lastError });
    }
  };

  /**
   * Run every registered compensation, newest first; never throws, never cancelled. Each leaves the list (and the
   * holdings query) once its undo has run, so a run terminated mid-undo still shows reconcile what is left.
   */
  const undo = () =>
    CancellationScope.nonCancellable(async () => {
      while (compensations.length > 0) {
        const next = compensations[0]!;
        await undoOne(next);
        if (compensations[0] === next) compensations.shift();
      }
    });

  /**
   * After a skipped undo: if a later grant of ours now holds the endpoint, pass our prior state on to it so that the
   * last grant standing restores the pre-approval state. Returns the holder's id, or undefined.
   */
  const handOver = async (c: Compensation): Promise<string | undefined> => {
    const now = await nacUndoCalls.lookupEndpoint.executeWithOptions({ summary: 'who holds the device now' }, [c.mac]);
    const holder = now?.tag?.grantId;
    if (!holder || holder === grantId) return undefined;
    try {
      await getExternalWorkflowHandle(holder).signal(adoptPriorSignal, { mac: c.mac, prior: c.prior, from: grantId });
      return holder;
    } catch (err) {
      // The holder has ended too: reconcile finds the entry (its grant is not live) and restores it from history.
      log.warn('hand-over to a later grant failed', { holder, error: reasonOf(err) });
      return undefined;
    }
  };

  /** Revocation: undo, tell the requester, leave the audit comment. */
  const revoke = (reason: string, expired: boolean) =>
    CancellationScope.nonCancellable(async () => {
      status.revokedReason = reason;
      setPhase('revoking');
      const held = status.macs.filter((m) => m.state === 'granted');
      await undo();
      await tellAndComment(
        revokedMessage(ctx, reason, expired, held),
        expired ? 'access expired' : 'access revoked',
        expired ? 'expired' : 'revoked',
        reason
      );
      setPhase(expired ? 'expired' : 'revoked');
    });

  /** Devices that existed on the NAC before this grant wrote them: they may have a live session to re-authorise. */
  const existed: { mac: string; display: string }[] = [];

  /**
   * Whitelist one device; answers the failure's reason, or undefined. Its undo is registered before the write. On a
   * failure the device is marked failed; undoing it (and the others) is the caller's decision.
   */
  const grantDevice = async (m: ParsedMac, n: string, tag: GrantTag): Promise<string | undefined> => {
    const entry = status.macs.find((s) => s.mac === m.display)!;
    try {
      if (patched('create-first')) {
        // One request for a device the NAC has never seen. Registered before the write: a create that commits but
        // never answers is still undone (restore deletes only an endpoint carrying this grant's tag).
        const compensation: Compensation = { mac: m.mac, display: m.display, prior: null };
        compensations.unshift(compensation);
        const first = await nacCalls.createWhitelisted.executeWithOptions({ summary: `whitelist device ${n}` }, [
          m.mac,
          tag,
        ]);
        if (first.action === 'exists') {
          // Nothing written yet: what is there is the prior state that undo must put back.
          compensation.prior = first.endpoint;
          const result = await nacCalls.whitelistEndpoint.executeWithOptions(
            { summary: `whitelist existing device ${n}` },
            [m.mac, tag, first.endpoint]
          );
          existed.push({ mac: m.mac, display: m.display });
          entry.detail = result.action === 'updated' ? 'existing endpoint moved into the whitelist' : undefined;
        } else if (first.sessionPossible) {
          // A NAC that keeps sessions apart from its entries (FreeRADIUS): the device may be online already. Read
          // from the recorded result, so runs whose results lack the field replay as before.
          existed.push({ mac: m.mac, display: m.display });
        } else {
          // The NAC had never seen the device, so it has no session there for a CoA to act on.
          entry.coa = 'not-needed';
        }
        entry.state = 'granted';
      } else {
        const prior = await nacCalls.lookupEndpoint.executeWithOptions({ summary: `read device ${n}` }, [m.mac]);
        // Registered before the write: a write that commits but never answers is still undone.
        compensations.unshift({ mac: m.mac, display: m.display, prior });
        const result = await nacCalls.whitelistEndpoint.executeWithOptions({ summary: `whitelist device ${n}` }, [
          m.mac,
          tag,
        ]);
        entry.state = 'granted';
        entry.detail = result.action === 'updated' ? 'existing endpoint moved into the whitelist' : undefined;
      }
      return undefined;
    } catch (err) {
      if (isCancellation(err)) throw err;
      const failure = reasonOf(err);
      entry.state = 'failed';
      entry.detail = failure;
      status.lastError = failure;
      return failure;
    }
  };

  /** CoA for the devices whitelisted since the last call that the NAC knew before: access starts now. */
  const reauthoriseExisted = async () => {
    const due = existed.splice(0, existed.length);
    if (due.length > 0 && patched('change-of-authorization')) {
      await Promise.all(due.map((d) => changeOfAuthorization(d.mac, d.display, 'grant')));
    }
  };

  /**
   * This instance is an approved 撤销 / 修改 of an earlier request: change that request's grant (revoke it, or move it
   * to this form's devices and duration) and end without granting anything of its own.
   */
  const applyToOriginal = async (req: ApprovalRequest, amends: Amendment): Promise<NacWhitelistResult> => {
    const applied = await amendmentCalls.applyAmendment.executeWithOptions(
      { summary: `${amends.kind === 'revoke' ? 'revoke' : 'modify'} the grant of ${amends.instanceId}` },
      [{ platform: input.platform, byInstanceId: input.instanceId, amends }]
    );
    setPhase('ignored');
    const on = applied.grantId ?? `the grant of ${amends.instanceId}`;
    if (applied.action === 'original-ended') {
      ctx = { ...ctx, approvalName: req.approvalName };
      await tell(changeNotAppliedMessage(ctx, amends.instanceId));
      return { outcome: 'original-ended', macs: [], reason: `${on} had already ended; nothing granted` };
    }
    const what: Record<Exclude<typeof applied.action, 'original-ended'>, string> = {
      revoked: `revoked ${on}`,
      amended: `sent the change to ${on}`,
      'started-with-change': `started ${on} with the change`,
      'no-live-grant': `no live grant of ${amends.instanceId} to revoke`,
    };
    return { outcome: 'applied-to-original', macs: [], reason: what[applied.action] };
  };

  /**
   * A grant's first run up to active: fetch and check the approval, whitelist each device, tell the requester.
   * Answers the run's result when it ends here (nothing granted, failed, revoked while granting), else the tag.
   */
  const begin = async (): Promise<NacWhitelistResult | { tag: GrantTag }> => {
    setPhase('fetching');
    const request = await platformCalls.fetchApprovalRequest.executeWithOptions(
      { summary: 'fetch approval instance' },
      [
        {
          platform: input.platform,
          instanceId: input.instanceId,
          macFields: input.macFields,
          durationField: input.durationField,
        },
      ]
    );
    requesterId = request.requesterId;
    upsertSearchAttributes([{ key: RequesterRefKey, value: request.requesterRef }]);
    if (request.approvalCode !== input.approvalCode) {
      setPhase('ignored');
      return { outcome: 'not-routed', macs: [], reason: `instance belongs to approval ${request.approvalCode}` };
    }
    if (request.status !== 'APPROVED') {
      setPhase('ignored');
      return { outcome: 'not-approved', macs: [], reason: `instance status is ${request.status}` };
    }
    if (request.amends) return await applyToOriginal(request, request.amends);

    if (request.expiry.kind === 'expires') {
      status.expiresAt = new Date(request.expiry.expiresAtMs).toISOString();
      upsertSearchAttributes([{ key: GrantExpiresAtKey, value: new Date(request.expiry.expiresAtMs) }]);
    }
    const invalid = [...request.invalid];
    if (request.expiry.kind === 'invalid') invalid.push({ input: '有效期 / duration', reason: request.expiry.reason });
    ctx = {
      grantId,
      instanceId: input.instanceId,
      approvalName: request.approvalName,
      invalid,
      randomised: request.macs.filter((m) => m.randomised).map((m) => m.display),
      expiresAt: status.expiresAt,
      expiryLabel: request.expiry.kind === 'expires' ? request.expiry.label : undefined,
    };
    status.macs = [
      ...request.macs.map((m): MacStatus => ({
        mac: m.display,
        state: 'pending',
        randomised: m.randomised || undefined,
      })),
      ...request.invalid.map((i): MacStatus => ({ mac: i.input, state: 'invalid', detail: i.reason })),
    ];

    // An unreadable duration is not guessed: granting "permanent" by mistake is worse than asking again.
    if (request.macs.length === 0 || request.expiry.kind === 'invalid') {
      setPhase('rejected');
      await tellAndComment(
        rejectedInputMessage(ctx, request.missingFields),
        'nothing granted: no valid MAC address or duration',
        'rejected'
      );
      return { outcome: 'rejected-input', macs: status.macs, reason: 'no valid MAC address or duration' };
    }

    setPhase('granting');
    const tag: GrantTag = {
      grantId,
      owner: request.requesterRef,
      approvalCode: request.approvalCode,
      expiresAt: status.expiresAt,
    };
    let failure: string | undefined;
    for (const [i, m] of request.macs.entries()) {
      if (pendingCancel()) break;
      failure = await grantDevice(m, `${i + 1}/${request.macs.length}`, tag);
      if (failure !== undefined) break;
      setPhase('granting');
    }

    if (failure !== undefined) {
      await CancellationScope.nonCancellable(async () => {
        await undo();
        await tellAndComment(
          failedMessage(ctx, failure, status.macs),
          'failed, every change undone',
          'failed',
          failure
        );
        setPhase('failed');
      });
      return { outcome: 'failed', macs: status.macs, reason: failure };
    }
    const cancelledWhileGranting = pendingCancel();
    if (cancelledWhileGranting) {
      await revoke(cancelledWhileGranting.reason, false);
      return { outcome: 'revoked', macs: status.macs, reason: cancelledWhileGranting.reason };
    }

    await reauthoriseExisted();

    status.grantedAt = new Date(Date.now()).toISOString();
    setPhase('notifying');
    await tellAndComment(
      grantedMessage(ctx, status.macs),
      'Wi‑Fi access granted',
      'granted',
      status.expiresAt ? `until ${status.expiresAt}` : 'permanent'
    );
    setPhase('active');
    return { tag };
  };

  try {
    let tag: GrantTag;
    let reminded = false;
    if (carried) {
      // State taken over above; the search attributes say active again.
      ({ tag, reminded } = carried);
      setPhase('active');
    } else {
      const begun = await begin();
      if ('outcome' in begun) return begun;
      tag = begun.tag;
    }

    // Active: wait for the reminder, the expiry, a revocation or an extension. The timers are the same commands, in
    // the same order, as before extensions existed, so runs started by older code replay unchanged.
    let expiresAtMs = status.expiresAt === undefined ? undefined : Date.parse(status.expiresAt);
    let noDevicesLeft = false;
    const work = () => pendingCancel() !== undefined || extensions.length > 0 || amendments.length > 0;
    // A refresh request wakes an idle grant too (a history without one replays the same).
    const wake = () => work() || refreshRequested;

    const maxEvents = input.continueAsNewAfterEvents ?? DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS;
    const maxAgeMs = input.continueAsNewAfterMs ?? DEFAULT_CONTINUE_AS_NEW_AFTER_MS;
    const runStartedMs = workflowInfo().runStartTime.getTime();
    const continueAsNewDue = () => {
      const info = workflowInfo();
      return (
        refreshRequested ||
        info.continueAsNewSuggested ||
        info.historyLength >= maxEvents ||
        Date.now() - runStartedMs >= maxAgeMs
      );
    };

    /**
     * Wait until `atMs` (for ever when undefined) or until woken. With Continue-As-New (patched in for runs that reach
     * this point on newer code) the wait also ends when the run is old enough to continue as new: `refresh`. Runs
     * recorded before it replay the very same timers.
     */
    const sleepUntil = async (atMs: number | undefined): Promise<'woken' | 'due' | 'refresh'> => {
      const refreshAtMs = runStartedMs + maxAgeMs;
      const early = refreshAtMs > Date.now() && (atMs === undefined || refreshAtMs < atMs);
      if (early && patched('continue-as-new')) {
        return (await condition(wake, refreshAtMs - Date.now())) ? 'woken' : 'refresh';
      }
      if (atMs === undefined) {
        await condition(wake);
        return 'woken';
      }
      return (await condition(wake, atMs - Date.now())) ? 'woken' : 'due';
    };

    /** The state the next run starts from (see CarriedGrant). */
    const carry = (): CarriedGrant => ({
      requesterId: requesterId!,
      tag,
      status: { ...status, phase: 'active' },
      holdings: compensations,
      ctx,
      reminded,
      extensionsApplied,
      generation: (input.carried?.generation ?? 0) + 1,
    });

    /**
     * An approved modification of this request: move the grant to its devices and duration. Devices it no longer
     * lists are revoked, new ones granted (a new one that fails is undone alone; the rest stands), unchanged ones are
     * untouched; the requester hears what changed. Answers whether any device is left.
     */
    const applyChange = async (change: AmendInput): Promise<{ applied: boolean; devicesLeft: boolean }> => {
      const next = await platformCalls.fetchApprovalRequest.executeWithOptions(
        { summary: `fetch the modification ${change.instanceId}` },
        [
          {
            platform: input.platform,
            instanceId: change.instanceId,
            macFields: input.macFields,
            durationField: input.durationField,
          },
        ]
      );
      if (next.status !== 'APPROVED' || next.approvalCode !== input.approvalCode || next.expiry.kind === 'invalid') {
        const why =
          next.expiry.kind === 'invalid'
            ? `its duration is unreadable (${next.expiry.reason})`
            : `it is ${next.status} under approval ${next.approvalCode}`;
        status.lastError = `modification ${change.instanceId} not applied: ${why}`;
        log.warn('modification not applied', { error: status.lastError });
        return { applied: false, devicesLeft: compensations.length > 0 };
      }
      setPhase('granting');
      const wanted = new Set(next.macs.map((m) => m.mac));
      const removed: string[] = [];
      for (const c of [...compensations]) {
        if (wanted.has(c.mac)) continue;
        compensations.splice(compensations.indexOf(c), 1);
        await undoOne(c, `no longer in the approval after modification ${change.instanceId}`);
        removed.push(c.display);
      }
      const expiresAt = next.expiry.kind === 'expires' ? new Date(next.expiry.expiresAtMs).toISOString() : undefined;
      const held = new Set(compensations.map((c) => c.mac));
      const added = next.macs.filter((m) => !held.has(m.mac));
      const failed: string[] = [];
      for (const [i, m] of added.entries()) {
        const entry = status.macs.find((x) => x.mac === m.display);
        if (entry) Object.assign(entry, { state: 'pending', detail: undefined, coa: undefined, coaDetail: undefined });
        else status.macs.push({ mac: m.display, state: 'pending', randomised: m.randomised || undefined });
        const failure = await grantDevice(m, `+${i + 1}/${added.length}`, { ...tag, expiresAt });
        if (failure === undefined) continue;
        failed.push(`${m.display}: ${failure}`);
        const c = compensations.find((x) => x.mac === m.mac);
        if (c) {
          compensations.splice(compensations.indexOf(c), 1);
          await undoOne(c);
        }
      }
      await reauthoriseExisted();
      status.expiresAt = expiresAt;
      upsertSearchAttributes([{ key: GrantExpiresAtKey, value: expiresAt ? new Date(expiresAt) : null }]);
      ctx = {
        ...ctx,
        expiresAt,
        expiryLabel: next.expiry.kind === 'expires' ? next.expiry.label : undefined,
        invalid: next.invalid,
        randomised: next.macs.filter((m) => m.randomised).map((m) => m.display),
      };
      const addedOk = added.map((m) => m.display).filter((d) => !failed.some((f) => f.startsWith(`${d}:`)));
      await tellAndComment(
        amendedMessage(ctx, change.instanceId, { added: addedOk, removed, failed }, status.macs),
        'access changed by the modification',
        `amended-${change.instanceId}`,
        expiresAt ? `until ${expiresAt}` : 'permanent',
        change.instanceId
      );
      return { applied: true, devicesLeft: compensations.length > 0 };
    };
    for (;;) {
      // A safe point: nothing queued, no handler mid-way (an extend update waits for this loop). The grant's whole
      // state goes to a fresh run on the deployed code; signals that arrive meanwhile are delivered to the new run.
      if (!work() && continueAsNewDue() && patched('continue-as-new')) {
        // An extend update whose extension was just applied finishes first (its caller gets its answer).
        await condition(() => allHandlersFinished() || work());
        if (!work()) {
          log.info('continuing as new', { historyLength: workflowInfo().historyLength, refresh: refreshRequested });
          await continueAsNew<typeof nacWhitelistWorkflow>({ ...input, carried: carry() });
        }
      }
      let woke: 'woken' | 'due' | 'refresh';
      if (expiresAtMs === undefined) {
        woke = await sleepUntil(undefined);
      } else if (!reminded && expiresAtMs - input.reminderLeadMs > Date.now()) {
        woke = await sleepUntil(expiresAtMs - input.reminderLeadMs);
        if (woke === 'due') {
          reminded = true;
          await tell(
            reminderMessage(
              ctx,
              status.macs.filter((m) => m.state === 'granted')
            )
          );
          continue;
        }
      } else if (expiresAtMs > Date.now()) {
        woke = await sleepUntil(expiresAtMs);
        if (woke === 'due') break;
      } else {
        break;
      }
      if (woke === 'refresh') continue;
      if (pendingCancel()) break;
      const change = amendments.shift();
      if (change) {
        const done = await applyChange(change);
        if (!done.devicesLeft) {
          noDevicesLeft = true;
          break;
        }
        if (done.applied) {
          expiresAtMs = status.expiresAt === undefined ? undefined : Date.parse(status.expiresAt);
          reminded = false;
        }
        setPhase('active');
        continue;
      }
      const ext = extensions.shift();
      if (!ext) continue;
      expiresAtMs = ext.expiresAt === null ? undefined : Date.parse(ext.expiresAt);
      status.expiresAt = expiresAtMs === undefined ? undefined : new Date(expiresAtMs).toISOString();
      reminded = false;
      upsertSearchAttributes([
        { key: GrantExpiresAtKey, value: expiresAtMs === undefined ? null : new Date(expiresAtMs) },
      ]);
      ctx = { ...ctx, expiresAt: status.expiresAt };
      const n = extensionsApplied + 1;
      const granted = status.macs.filter((m) => m.state === 'granted');
      await tellAndComment(
        extendedMessage(ctx, granted, n, ext.by, ext.reason),
        'access extended',
        `extended-${n}`,
        `${status.expiresAt ? `until ${status.expiresAt}` : 'permanent'}${ext.by ? `, by ${ext.by}` : ''}${ext.reason ? `: ${ext.reason}` : ''}`
      );
      extensionsApplied = n;
      setPhase('active');
    }
    const revokedBy = pendingCancel();
    const expired = revokedBy === undefined && !noDevicesLeft;
    const reason =
      revokedBy?.reason ??
      (noDevicesLeft ? 'the approval was modified and lists no device any more' : 'the approved access period ended');
    await revoke(reason, expired);
    return { outcome: expired ? 'expired' : 'revoked', macs: status.macs, reason, expiresAt: status.expiresAt };
  } catch (err) {
    if (isCancellation(err)) {
      // Temporal's own cancellation behaves like the `cancel` signal: undo, tell, then end as cancelled.
      await revoke('cancelled by an operator (Temporal cancellation)', false);
    }
    throw err;
  }
}
