import { IntegrationError } from '../../domain/errors';
import {
  type CoaMode,
  type CoaResult,
  type CreateResult,
  type EndpointSnapshot,
  type EnsureResult,
  type GrantTag,
  type NacAdapter,
  type NacDriver,
} from '../adapter';
import { blockedError } from '../blocked';
import { NacHttpClient, type NacHttpOptions, type NacResponse } from '../http';
import {
  allTagAttributeNames,
  jsonEqual,
  parseTagAttributes,
  parseTagDescription,
  sameTag,
  tagAttributes,
  tagDescription,
} from '../tag';
import { ClearPassOAuth } from './oauth';
import { ClearPassSessions, SESSION_PRIVILEGE_FIX } from './sessions';

/**
 * Aruba ClearPass Policy Manager adapter: endpoints (`/api/endpoint`), OAuth2 client credentials (`oauth.ts`) and
 * session control for CoA (`sessions.ts`). Whitelisting = `status: "Known"` plus our tag in the endpoint's
 * attributes and description.
 *
 * Writes go by PATCH, whose semantics are documented: it merges `attributes` key by key, and only the value
 * `"--For-Delete--"` deletes one (PowerAruba/PowerArubaCP 853ad46, citing the CPPM 6.8.7 release notes; its
 * integration tests against a real box). Restore PATCHes back the prior status, description and attributes, with the
 * marker for every key the prior did not have, then reads the endpoint back and proves it equals the prior — no
 * ApprovalPlus attribute left — or throws a transient error naming what remained. PUT is not used: 6.12 requires
 * `profile` in it (OAS `EndpointReplace`), which would have to be read with `profile_details=true` and echoed back,
 * pinning the profiler's classification.
 */

export interface ClearPassAdapterOptions extends Omit<NacHttpOptions, 'system'> {
  clientId: string;
  clientSecret: string;
  /** Enforcement profile(s) a CoA re-authentication applies (NAC_CLEARPASS_REAUTH_PROFILE). */
  reauthProfiles?: readonly string[];
  /** NAC_COA: verify() warns when CoA is on and the API client cannot control sessions. Default 'reauth'. */
  coa?: CoaMode;
  /** 'sim' when pointed at the simulator. */
  driver?: Extract<NacDriver, 'clearpass' | 'sim'>;
}

type CpEndpoint = Record<string, unknown> & { id: number | string; status?: string; attributes?: unknown };

const WHITELISTED_STATUS = 'Known';
const PAGE_LIMIT = 1000; // ClearPass maximum
const SYSTEM = 'clearpass';
/** PATCH value that deletes an endpoint attribute (CPPM 6.8.7+; `""` does not). */
export const ATTRIBUTE_DELETE_MARKER = '--For-Delete--';
const TAG_ATTRIBUTES = allTagAttributeNames(' ');

/** Where endpoint write access is granted (Juniper's ClearPass connector guide; privilege labels are (I)). */
const ENDPOINT_PRIVILEGE_FIX =
  "in ClearPass Guest, Administration » API Services » API Clients → the client's Operator Profile (Administration » Operator Logins » Profiles), give Policy Manager » Identity » Endpoints full (read and write) access (privilege cppm_endpoints)";

export class ClearPassAdapter implements NacAdapter {
  readonly driver: NacDriver;
  private readonly http: NacHttpClient;
  private readonly oauth: ClearPassOAuth;
  private readonly sessions: ClearPassSessions;
  private readonly coa: CoaMode;

  constructor(opts: ClearPassAdapterOptions) {
    this.driver = opts.driver ?? 'clearpass';
    this.http = new NacHttpClient({ ...opts, system: SYSTEM });
    this.oauth = new ClearPassOAuth(this.http, opts.clientId, opts.clientSecret);
    // The same client (and rate limiter) as the endpoint calls: CoA counts in the NAC rate.
    this.sessions = new ClearPassSessions(this.http, this.oauth, opts.reauthProfiles ?? []);
    this.coa = opts.coa ?? 'reauth';
  }

  /**
   * A token proves the client credentials; `/api/oauth/privileges` (readable with the baseline privileges) shows
   * what the operator profile allows: `cppm_endpoints` without the read-only `#` prefix is needed to write
   * endpoints; session control (`guest_sessions`, or `cppm_session_action`) is needed for CoA.
   */
  async verify(): Promise<string[]> {
    const privileges = new Set(await this.oauth.privileges());
    if (!privileges.has('cppm_endpoints')) {
      const readOnly = privileges.has('#cppm_endpoints');
      throw new IntegrationError(
        `clearpass API client ${readOnly ? 'can only read endpoints (#cppm_endpoints, read-only)' : 'has no access to endpoints (no cppm_endpoints privilege)'}: ${ENDPOINT_PRIVILEGE_FIX}`,
        'auth',
        { system: SYSTEM, code: 'privilege:cppm_endpoints' }
      );
    }
    const warnings: string[] = [];
    if (this.coa !== 'off' && !privileges.has('guest_sessions') && !privileges.has('cppm_session_action')) {
      warnings.push(
        `clearpass API client cannot control sessions, so Change of Authorization (NAC_COA=${this.coa}) would fail and devices keep their old access until they reconnect: ${SESSION_PRIVILEGE_FIX}; or set NAC_COA=off`
      );
    }
    return warnings;
  }

  async lookup(mac: string): Promise<EndpointSnapshot | null> {
    const req = { method: 'GET', path: `/api/endpoint/mac-address/${mac}`, what: `read endpoint ${mac}` } as const;
    const res = await this.oauth.send(req);
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.http.errorFromResponse(req, res);
    return snapshot(mac, readEndpoint(res, req.what));
  }

  async createWhitelisted(mac: string, tag: GrantTag): Promise<CreateResult> {
    const created = await this.create(mac, tag);
    if (!(created instanceof IntegrationError)) return { action: 'created', endpoint: created };
    const existing = await this.lookup(mac);
    if (!existing) throw created;
    // Our own tag can only come from this grant's earlier create (a retry after it committed).
    if (existing.tag?.grantId === tag.grantId) return { action: 'created', endpoint: existing };
    return { action: 'exists', endpoint: existing };
  }

  async ensureWhitelisted(mac: string, tag: GrantTag, known?: EndpointSnapshot): Promise<EnsureResult> {
    const current = known ?? (await this.lookup(mac));
    if (current) return this.tagExisting(mac, current, tag);
    const created = await this.create(mac, tag);
    if (!(created instanceof IntegrationError)) return { action: 'created', endpoint: created };
    // 422 on create = "exists": re-read, then treat it as an existing endpoint.
    const existing = await this.lookup(mac);
    if (!existing) throw created;
    return this.tagExisting(mac, existing, tag);
  }

  async restore(
    mac: string,
    prior: EndpointSnapshot | null,
    grantId: string
  ): Promise<'restored' | 'deleted' | 'skipped'> {
    const current = await this.lookup(mac);
    if (!current) return prior ? 'skipped' : 'deleted';
    if (current.tag?.grantId !== grantId) {
      if (!prior) return 'skipped';
      if (sameRestorable(current.vendor, prior.vendor)) return 'restored';
      // Our own earlier restore, half applied (the box kept the delete marker as a value): finish it.
      if (!isRestoreResidue(current.vendor, prior.vendor)) return 'skipped';
    }
    if (!prior) {
      const req = { method: 'DELETE', path: `/api/endpoint/${current.id}`, what: `delete endpoint ${mac}` } as const;
      const res = await this.oauth.send(req);
      if (res.status !== 204 && res.status !== 200 && res.status !== 404) throw this.http.errorFromResponse(req, res);
      return 'deleted';
    }
    const want = restorable(prior.vendor);
    const attributes: Record<string, unknown> = { ...want.attributes };
    for (const key of Object.keys(attributesOf(current.vendor))) {
      if (!(key in attributes)) attributes[key] = ATTRIBUTE_DELETE_MARKER;
    }
    const req = {
      method: 'PATCH',
      path: `/api/endpoint/${current.id}`,
      json: { status: want.status, description: want.description, attributes },
      what: `restore endpoint ${mac}`,
    } as const;
    const res = await this.oauth.send(req);
    // 304 Not Modified is documented for PATCH (never observed): nothing to change is fine too.
    if (res.status !== 200 && res.status !== 204 && res.status !== 304) throw this.http.errorFromResponse(req, res);
    await this.proveRestored(mac, prior);
    return 'restored';
  }

  async listTagged(): Promise<EndpointSnapshot[]> {
    const tagged: EndpointSnapshot[] = [];
    for (let offset = 0; ; offset += PAGE_LIMIT) {
      const q = new URLSearchParams({
        filter: JSON.stringify({ status: WHITELISTED_STATUS }),
        sort: '+id',
        offset: String(offset),
        limit: String(PAGE_LIMIT),
      });
      const req = { method: 'GET', path: `/api/endpoint?${q.toString()}`, what: 'list endpoints' } as const;
      const res = await this.oauth.send(req);
      if (res.status !== 200) throw this.http.errorFromResponse(req, res);
      const items = (res.body as { _embedded?: { items?: CpEndpoint[] } } | undefined)?._embedded?.items;
      if (!Array.isArray(items)) throw malformed(req.what);
      for (const item of items) {
        const snap = snapshot(String(item.mac_address ?? ''), item);
        if (snap.tag) tagged.push(snap);
      }
      if (items.length < PAGE_LIMIT) return tagged;
    }
  }

  changeOfAuthorization(mac: string, mode: Exclude<CoaMode, 'off'>): Promise<CoaResult> {
    return this.sessions.changeOfAuthorization(mac, mode);
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  // --- helpers -------------------------------------------------------------------------------------------------

  /**
   * Read the endpoint back after a restore and prove it is the prior state: status, description and attributes
   * equal, no ApprovalPlus attribute the prior did not have. Otherwise a transient error names what remained, so the
   * activity retries (and the endpoint, still tagged, is never mistaken for someone else's).
   */
  private async proveRestored(mac: string, prior: EndpointSnapshot): Promise<void> {
    const now = await this.lookup(mac);
    if (!now) {
      throw new IntegrationError(`clearpass restore endpoint ${mac}: the endpoint was gone on read-back`, 'transient', {
        system: SYSTEM,
        code: 'restore-unverified',
      });
    }
    if (sameRestorable(now.vendor, prior.vendor)) return;
    const want = restorable(prior.vendor);
    const got = restorable(now.vendor);
    const left = Object.keys(got.attributes).filter((k) => !(k in want.attributes));
    const ours = left.filter((k) => TAG_ATTRIBUTES.includes(k));
    const changed = Object.keys(want.attributes).filter((k) => !jsonEqual(got.attributes[k], want.attributes[k]));
    const parts = [
      ...(ours.length ? [`ApprovalPlus attributes remained: ${ours.join(', ')}`] : []),
      ...(left.length > ours.length
        ? [`other attributes remained: ${left.filter((k) => !ours.includes(k)).join(', ')}`]
        : []),
      ...(changed.length ? [`attributes differ: ${changed.join(', ')}`] : []),
      ...(got.status !== want.status ? [`status is ${got.status}, not ${want.status}`] : []),
      ...(got.description !== want.description ? ['the description was not put back'] : []),
    ];
    throw new IntegrationError(
      `clearpass restore endpoint ${mac}: read-back differs from the prior state (${parts.join('; ')}); the restore will be retried`,
      'transient',
      { system: SYSTEM, code: 'restore-unverified' }
    );
  }

  private async tagExisting(mac: string, current: EndpointSnapshot, tag: GrantTag): Promise<EnsureResult> {
    if (sameTag(current.tag, tag) && current.group === WHITELISTED_STATUS) {
      return { action: 'unchanged', endpoint: current };
    }
    if (current.group === 'Disabled') throw blockedError(this.driver, mac, 'is Disabled');
    const origin = current.tag?.grantId === tag.grantId ? (current.tag.origin ?? 'existing') : 'existing';
    // PATCH merges attributes, so the tag's keys are all it needs to send (every tag key is always written).
    const patch = {
      status: WHITELISTED_STATUS,
      description: tagDescription({ ...tag, origin }),
      attributes: tagAttributes({ ...tag, origin }, ' '),
    };
    const req = {
      method: 'PATCH',
      path: `/api/endpoint/${current.id}`,
      json: patch,
      what: `whitelist endpoint ${mac}`,
    } as const;
    const res = await this.oauth.send(req);
    const merged = () => ({
      ...current.vendor,
      status: patch.status,
      description: patch.description,
      attributes: { ...attributesOf(current.vendor), ...patch.attributes },
    });
    // 304 Not Modified (documented, never observed): the endpoint already is what we asked for.
    if (res.status === 304) return { action: 'unchanged', endpoint: snapshot(mac, merged()) };
    if (res.status === 404) {
      // Deleted between the read and this write: a retry reads again (and creates it).
      throw new IntegrationError(`clearpass ${req.what}: the endpoint disappeared; retrying`, 'transient', {
        system: SYSTEM,
        status: 404,
      });
    }
    if (res.status !== 200 && res.status !== 204) throw this.http.errorFromResponse(req, res);
    const updated = res.status === 200 && res.body ? readEndpoint(res, req.what) : merged();
    return { action: 'updated', endpoint: snapshot(mac, updated) };
  }

  /** POST the endpoint; a 4xx answer (422 "exists") is returned, not thrown, for the caller to re-read. */
  private async create(mac: string, tag: GrantTag): Promise<EndpointSnapshot | IntegrationError> {
    // Only fields every release accepts (6.11 has no randomized_mac; profile is not a create field).
    const body = {
      mac_address: mac,
      status: WHITELISTED_STATUS,
      description: tagDescription({ ...tag, origin: 'created' }),
      attributes: tagAttributes({ ...tag, origin: 'created' }, ' '),
    };
    const req = { method: 'POST', path: '/api/endpoint', json: body, what: `create endpoint ${mac}` } as const;
    const res = await this.oauth.send(req);
    if (res.status === 201 || res.status === 200) return snapshot(mac, readEndpoint(res, req.what));
    const err = this.http.errorFromResponse(req, res);
    if (err.kind === 'invalid' || err.kind === 'conflict') return err;
    throw err;
  }
}

function readEndpoint(res: NacResponse, what: string): CpEndpoint {
  const ep = res.body as CpEndpoint | undefined;
  if (!ep || (typeof ep.id !== 'number' && typeof ep.id !== 'string')) throw malformed(what);
  return ep;
}

/**
 * The vendor object as read (minus `_links`), with its id as a string. Fields a release omits stay absent
 * (`randomized_mac` before 6.12, `description` when empty, `profile` without profile_details, `device_insight_tags`
 * when empty or typed string or array): nothing here depends on them.
 */
function snapshot(mac: string, ep: Record<string, unknown>): EndpointSnapshot {
  const { _links: _l, ...vendor } = ep;
  // A delete marker left as a value is never a tag (a box that did not honour it).
  const tagAttrs = Object.fromEntries(
    Object.entries(attributesOf(vendor)).filter(([, v]) => v !== ATTRIBUTE_DELETE_MARKER)
  );
  const tag = parseTagAttributes(tagAttrs, ' ') ?? parseTagDescription(vendor.description);
  return {
    mac: mac.replace(/[^0-9a-fA-F]/g, '').toLowerCase(),
    id: String(vendor.id),
    group: typeof vendor.status === 'string' ? vendor.status : '',
    ...(tag ? { tag } : {}),
    vendor,
  };
}

function attributesOf(ep: Record<string, unknown>): Record<string, unknown> {
  return ep.attributes && typeof ep.attributes === 'object' && !Array.isArray(ep.attributes)
    ? { ...(ep.attributes as Record<string, unknown>) }
    : {};
}

/** What a restore puts back and compares: an absent description is the empty one, absent attributes are `{}`. */
function restorable(ep: Record<string, unknown>): {
  status: string;
  description: string;
  attributes: Record<string, unknown>;
} {
  return {
    status: typeof ep.status === 'string' ? ep.status : '',
    description: typeof ep.description === 'string' ? ep.description : '',
    attributes: attributesOf(ep),
  };
}

function sameRestorable(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return jsonEqual(restorable(a), restorable(b));
}

/**
 * Whether `current` is `prior` plus nothing but ApprovalPlus attributes holding the delete marker: what a restore
 * of ours leaves on a box that stored the marker instead of deleting (its read-back check failed; the retry ends it).
 */
function isRestoreResidue(current: Record<string, unknown>, prior: Record<string, unknown>): boolean {
  const now = restorable(current);
  const residue = Object.entries(now.attributes).filter(
    ([k, v]) => TAG_ATTRIBUTES.includes(k) && v === ATTRIBUTE_DELETE_MARKER && !(k in attributesOf(prior))
  );
  if (!residue.length) return false;
  for (const [k] of residue) delete now.attributes[k];
  return jsonEqual(now, restorable(prior));
}

function malformed(what: string): IntegrationError {
  return new IntegrationError(`${SYSTEM} ${what}: unexpected response shape`, 'transient', { system: SYSTEM });
}
