import { IntegrationError } from '../../domain/errors';
import {
  type CoaResult,
  type CreateResult,
  type EndpointSnapshot,
  type EnsureResult,
  type GrantTag,
  type NacAdapter,
} from '../adapter';
import { blockedError } from '../blocked';
import { NacHttpClient, type NacHttpOptions, type NacRequest, type NacResponse } from '../http';
import { jsonEqual, parseTagAttributes, parseTagDescription, sameTag, tagAttributes, tagDescription } from '../tag';

/**
 * Aruba ClearPass Policy Manager endpoint adapter (`/api/endpoint`, OAuth2 client credentials). Whitelisting =
 * `status: "Known"` plus our tag in the endpoint's attributes and description. Undo PUTs back the prior status,
 * description and attributes (a PUT replaces the attribute map, so attributes the grant added are gone), or deletes
 * an endpoint we created.
 */

export interface ClearPassAdapterOptions extends Omit<NacHttpOptions, 'system'> {
  clientId: string;
  clientSecret: string;
}

type CpEndpoint = Record<string, unknown> & { id: number | string; status?: string; attributes?: unknown };

const WHITELISTED_STATUS = 'Known';
const PAGE_LIMIT = 1000; // ClearPass maximum
/** Refresh this long before the token's stated expiry (capped to a tenth of short lifetimes). */
const TOKEN_MARGIN_MS = 30_000;
const SYSTEM = 'clearpass';

/** Fields a PUT puts back; `id` and `_links` identify the object. */
const RESTORABLE = [
  'mac_address',
  'status',
  'description',
  'attributes',
  'randomized_mac',
  'device_insight_tags',
] as const;

export class ClearPassAdapter implements NacAdapter {
  readonly driver = 'clearpass' as const;
  private readonly http: NacHttpClient;
  private readonly clientId: string;
  private readonly clientSecret: string;
  private token: { value: string; refreshAt: number } | undefined;
  private tokenPromise: Promise<string> | undefined;

  constructor(opts: ClearPassAdapterOptions) {
    this.http = new NacHttpClient({ ...opts, system: SYSTEM });
    this.clientId = opts.clientId;
    this.clientSecret = opts.clientSecret;
  }

  async verify(): Promise<string[]> {
    // A token proves the client credentials; a one-item list proves the endpoint privilege.
    const req = { method: 'GET', path: '/api/endpoint?limit=1', what: 'list endpoints' } as const;
    const res = await this.send(req);
    if (res.status !== 200) throw this.http.errorFromResponse(req, res);
    return [];
  }

  async lookup(mac: string): Promise<EndpointSnapshot | null> {
    const req = { method: 'GET', path: `/api/endpoint/mac-address/${mac}`, what: `read endpoint ${mac}` } as const;
    const res = await this.send(req);
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

  async changeOfAuthorization(): Promise<CoaResult> {
    return { outcome: 'no-session' };
  }

  async ensureWhitelisted(mac: string, tag: GrantTag, known?: EndpointSnapshot): Promise<EnsureResult> {
    const current = known ?? (await this.lookup(mac));
    if (current) return this.tagExisting(mac, current, tag);
    const created = await this.create(mac, tag);
    if (!(created instanceof IntegrationError)) return { action: 'created', endpoint: created };
    // 422 on create = "exists" (Aruba's own tooling reads it so): re-read, then treat it as an existing endpoint.
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
      return prior && sameRestorable(current.vendor, prior.vendor) ? 'restored' : 'skipped';
    }
    if (!prior) {
      const req = { method: 'DELETE', path: `/api/endpoint/${current.id}`, what: `delete endpoint ${mac}` } as const;
      const res = await this.send(req);
      if (res.status !== 204 && res.status !== 200 && res.status !== 404) throw this.http.errorFromResponse(req, res);
      return 'deleted';
    }
    const body = { ...restorableFields(prior.vendor), mac_address: mac };
    const req = {
      method: 'PUT',
      path: `/api/endpoint/${current.id}`,
      json: body,
      what: `restore endpoint ${mac}`,
    } as const;
    const res = await this.send(req);
    if (res.status !== 200 && res.status !== 204) throw this.http.errorFromResponse(req, res);
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
      const res = await this.send(req);
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

  async close(): Promise<void> {
    await this.http.close();
  }

  // --- helpers -------------------------------------------------------------------------------------------------

  /** Send with a bearer token; on a 401 (token revoked or expired early) fetch a fresh token once and retry. */
  private async send(req: NacRequest): Promise<NacResponse> {
    const token = await this.accessToken();
    const res = await this.http.send({ ...req, headers: { authorization: `Bearer ${token}` } });
    if (res.status !== 401) return res;
    this.invalidateToken(token);
    const fresh = await this.accessToken();
    return this.http.send({ ...req, headers: { authorization: `Bearer ${fresh}` } });
  }

  private accessToken(): Promise<string> {
    if (this.token && Date.now() < this.token.refreshAt) return Promise.resolve(this.token.value);
    // Single flight: concurrent callers share one token request.
    this.tokenPromise ??= this.fetchToken().finally(() => {
      this.tokenPromise = undefined;
    });
    return this.tokenPromise;
  }

  private invalidateToken(token: string): void {
    if (this.token?.value === token) this.token = undefined;
  }

  private async fetchToken(): Promise<string> {
    const req = {
      method: 'POST',
      path: '/api/oauth',
      json: { grant_type: 'client_credentials', client_id: this.clientId, client_secret: this.clientSecret },
      what: 'get OAuth token',
    } as const;
    const res = await this.http.send(req);
    if (res.status !== 200) {
      const err = this.http.errorFromResponse(req, res);
      // invalid_client comes back as 400: it is a credentials problem, not a bad request.
      if (res.status === 400 || res.status === 401) {
        throw new IntegrationError(`${err.message} (check NAC_CLIENT_ID / NAC_CLIENT_SECRET)`, 'auth', err.details);
      }
      throw err;
    }
    const body = res.body as { access_token?: unknown; expires_in?: unknown } | undefined;
    if (typeof body?.access_token !== 'string' || !body.access_token) throw malformed(req.what);
    const lifetimeMs = (typeof body.expires_in === 'number' ? body.expires_in : 3600) * 1000;
    const margin = Math.min(TOKEN_MARGIN_MS, lifetimeMs / 10);
    this.token = { value: body.access_token, refreshAt: Date.now() + lifetimeMs - margin };
    return body.access_token;
  }

  private async tagExisting(mac: string, current: EndpointSnapshot, tag: GrantTag): Promise<EnsureResult> {
    if (sameTag(current.tag, tag) && current.group === WHITELISTED_STATUS) {
      return { action: 'unchanged', endpoint: current };
    }
    if (current.group === 'Disabled') throw blockedError(this.driver, mac, 'is Disabled');
    const origin = current.tag?.grantId === tag.grantId ? (current.tag.origin ?? 'existing') : 'existing';
    const patch = {
      status: WHITELISTED_STATUS,
      description: tagDescription({ ...tag, origin }),
      attributes: { ...attributesOf(current.vendor), ...tagAttributes({ ...tag, origin }, ' ') },
    };
    const req = {
      method: 'PATCH',
      path: `/api/endpoint/${current.id}`,
      json: patch,
      what: `whitelist endpoint ${mac}`,
    } as const;
    const res = await this.send(req);
    if (res.status !== 200 && res.status !== 204) throw this.http.errorFromResponse(req, res);
    const updated = res.status === 200 && res.body ? readEndpoint(res, req.what) : { ...current.vendor, ...patch };
    return { action: 'updated', endpoint: snapshot(mac, updated) };
  }

  /** POST the endpoint; a 4xx answer (422 "exists") is returned, not thrown, for the caller to re-read. */
  private async create(mac: string, tag: GrantTag): Promise<EndpointSnapshot | IntegrationError> {
    const body = {
      mac_address: mac,
      status: WHITELISTED_STATUS,
      description: tagDescription({ ...tag, origin: 'created' }),
      attributes: tagAttributes({ ...tag, origin: 'created' }, ' '),
    };
    const req = { method: 'POST', path: '/api/endpoint', json: body, what: `create endpoint ${mac}` } as const;
    const res = await this.send(req);
    if (res.status === 201 || res.status === 200) return snapshot(mac, readEndpoint(res, req.what));
    const err = this.http.errorFromResponse(req, res);
    const reReadable = err.kind === 'invalid' || err.kind === 'conflict';
    if (!reReadable) throw err;
    return err;
  }
}

function readEndpoint(res: NacResponse, what: string): CpEndpoint {
  const ep = res.body as CpEndpoint | undefined;
  if (!ep || (typeof ep.id !== 'number' && typeof ep.id !== 'string')) throw malformed(what);
  return ep;
}

function snapshot(mac: string, ep: Record<string, unknown>): EndpointSnapshot {
  const { _links: _l, ...vendor } = ep;
  const tag = parseTagAttributes(vendor.attributes, ' ') ?? parseTagDescription(vendor.description);
  return {
    mac: mac.replace(/[^0-9a-fA-F]/g, '').toLowerCase(),
    id: String(vendor.id),
    group: typeof vendor.status === 'string' ? vendor.status : '',
    ...(tag ? { tag } : {}),
    vendor,
  };
}

function attributesOf(ep: Record<string, unknown>): Record<string, unknown> {
  return ep.attributes && typeof ep.attributes === 'object' ? { ...(ep.attributes as Record<string, unknown>) } : {};
}

function restorableFields(ep: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of RESTORABLE) if (ep[k] !== undefined) out[k] = ep[k];
  // Explicit values so the PUT clears what the grant set even when the prior object had no such field.
  out.description ??= '';
  out.attributes = attributesOf(ep);
  return out;
}

function sameRestorable(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const pick = (ep: Record<string, unknown>) => {
    const { mac_address: _m, ...rest } = restorableFields(ep);
    return rest;
  };
  return jsonEqual(pick(a), pick(b));
}

function malformed(what: string): IntegrationError {
  return new IntegrationError(`${SYSTEM} ${what}: unexpected response shape`, 'transient', { system: SYSTEM });
}
