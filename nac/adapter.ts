/**
 * One interface for every NAC (Network Access Control) system. The workflow and activities see only this.
 *
 * MACs are passed normalised: 12 lower-case hex digits (`aabbccddeeff`); each adapter renders its vendor's format.
 *
 * Exactly-once contract (activities run at least once):
 *  - `lookup` is a pure read; the workflow records its result (the prior state) before any write.
 *  - `ensureWhitelisted` is idempotent: if the endpoint already carries this grant's tag it changes nothing, so a
 *    retry after a time-out-after-commit neither duplicates the entry nor mistakes it for a pre-existing one.
 *  - `restore(prior)` puts back exactly what `lookup` returned (or deletes the endpoint when there was none), but only
 *    while the endpoint still carries this grant's tag: a later change by someone else is never overwritten.
 */
export type NacDriver = 'ise' | 'clearpass' | 'sim';

/** Who and what a whitelist entry belongs to; written onto the endpoint so it can be reconciled later. */
export interface GrantTag {
  /** Workflow id of the grant, e.g. `feishu-<instance_code>`. */
  grantId: string;
  /** Opaque requester id (a hash, never a name). */
  owner: string;
  approvalCode: string;
  /** ISO-8601, absent for permanent access. */
  expiresAt?: string;
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

export interface NacAdapter {
  readonly driver: NacDriver;
  /** Check credentials and the whitelist group at start-up; throws IntegrationError('auth'|'invalid') if wrong. */
  verify(): Promise<void>;
  lookup(mac: string): Promise<EndpointSnapshot | null>;
  ensureWhitelisted(mac: string, tag: GrantTag): Promise<EnsureResult>;
  /** Undo one grant's write: put `prior` back, or delete when `prior` is null. Returns what was done. */
  restore(mac: string, prior: EndpointSnapshot | null, grantId: string): Promise<'restored' | 'deleted' | 'skipped'>;
  /** Every endpoint carrying an ApprovalPlus tag (reconcile). */
  listTagged(): Promise<EndpointSnapshot[]>;
  /** Release connections (worker shutdown, tests). */
  close?(): Promise<void>;
}
