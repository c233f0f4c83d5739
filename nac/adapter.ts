/**
 * One interface for every NAC (Network Access Control) system. The workflow and activities see only this.
 *
 * MACs are passed normalised: 12 lower-case hex digits (`aabbccddeeff`); each adapter renders its vendor's format.
 *
 * Exactly-once contract (activities run at least once):
 *  - `lookup` is a pure read.
 *  - `createWhitelisted` is the one-request path for a device the NAC has never seen: it creates the endpoint already
 *    whitelisted and tagged. When the endpoint exists it writes nothing and returns what is there (the prior state,
 *    which the workflow records before any further write) — unless what is there carries this grant's tag, which
 *    only this grant's own earlier create can have put there (a retry after a create that committed): then it
 *    answers `created`, so undo deletes it.
 *  - `ensureWhitelisted` whitelists an endpoint that exists (moves it into the whitelist, tags it); idempotent: if the
 *    endpoint already carries this grant's tag it changes nothing. `known` is the state the caller just read, to
 *    save a second read on a first attempt; retries pass nothing and read again.
 *  - `restore(prior)` puts back exactly what was there before (or deletes the endpoint when there was nothing), but
 *    only while the endpoint still carries this grant's tag: a later change by someone else is never overwritten.
 *  - `changeOfAuthorization` acts on the device's live session, if it has one, so that a change takes effect now
 *    rather than at the next re-authentication; a device with no session is not an error.
 */
export type NacDriver = 'ise' | 'clearpass' | 'freeradius' | 'sim';

/** `NAC_COA`: what to do to a device's live session after its access changed. */
export type CoaMode = 'reauth' | 'disconnect' | 'off';

/** Who and what a whitelist entry belongs to; written onto the endpoint so it can be reconciled later. */
export interface GrantTag {
  /** Workflow id of the grant, e.g. `feishu-<instance_code>`. */
  grantId: string;
  /** Opaque requester id (a hash, never a name). */
  owner: string;
  approvalCode: string;
  /** ISO-8601, absent for permanent access. */
  expiresAt?: string;
  /**
   * Whether the grant created the endpoint or took over one that existed before. Written by the adapter (callers
   * leave it out), so that reconcile never deletes an endpoint that was there before the grant. Absent on tags
   * written before it existed: unknown.
   */
  origin?: 'created' | 'existing';
}

/** The full vendor state of one endpoint, enough to restore it exactly. */
export interface EndpointSnapshot {
  mac: string;
  /** Vendor object id (ISE endpoint UUID, ClearPass numeric id). */
  id: string;
  /** ISE identity group id, or ClearPass status (Known/Unknown/Disabled). */
  group: string;
  /** The grant that tagged it, when it carries an ApprovalPlus tag. */
  tag?: GrantTag;
  /** The vendor's own representation of every restorable field (opaque to callers). */
  vendor: Record<string, unknown>;
}

export interface EnsureResult {
  /** `created`: no endpoint before; `updated`: an existing endpoint was moved/tagged; `unchanged`: already ours. */
  action: 'created' | 'updated' | 'unchanged';
  endpoint: EndpointSnapshot;
}

export type CreateResult =
  /**
   * The endpoint did not exist; it now does, whitelisted and tagged (or this grant's earlier create committed).
   * `sessionPossible`: the NAC can hold a live session for a device it had no entry for (FreeRADIUS: the NAS's
   * guest or auth-fail VLAN, or a session from before the rows were deleted), so a CoA is due after this create too.
   * ISE and ClearPass have an endpoint for every device they ever saw: no entry, no session.
   */
  | { action: 'created'; endpoint: EndpointSnapshot; sessionPossible?: boolean }
  /** The endpoint exists and nothing was written: `endpoint` is its state, the prior state to record. */
  | { action: 'exists'; endpoint: EndpointSnapshot };

export interface CoaResult {
  /** What happened to the device's session: re-authenticated, disconnected, none to act on, or CoA is off. */
  outcome: 'reauthenticated' | 'disconnected' | 'no-session' | 'off';
  /** Where the session was (ISE: the PSN; ClearPass: the NAS address), for the audit trail. */
  where?: string;
}

export interface NacAdapter {
  readonly driver: NacDriver;
  /**
   * Check at start-up what the grants will need: credentials, write access, the whitelist group, the block group.
   * Throws IntegrationError('auth'|'invalid') with one line naming the fix when a grant could not work; returns
   * warnings (one line each) for what works in a degraded way (e.g. ISE custom attributes not defined).
   */
  verify(): Promise<string[]>;
  lookup(mac: string): Promise<EndpointSnapshot | null>;
  createWhitelisted(mac: string, tag: GrantTag): Promise<CreateResult>;
  ensureWhitelisted(mac: string, tag: GrantTag, known?: EndpointSnapshot): Promise<EnsureResult>;
  /** Undo one grant's write: put `prior` back, or delete when `prior` is null. Returns what was done. */
  restore(mac: string, prior: EndpointSnapshot | null, grantId: string): Promise<'restored' | 'deleted' | 'skipped'>;
  /** Every endpoint carrying an ApprovalPlus tag (reconcile). */
  listTagged(): Promise<EndpointSnapshot[]>;
  /** Re-authenticate or disconnect the device's live session, if it has one. */
  changeOfAuthorization(mac: string, mode: Exclude<CoaMode, 'off'>): Promise<CoaResult>;
  /** Release connections (worker shutdown, tests). */
  close?(): Promise<void>;
}
