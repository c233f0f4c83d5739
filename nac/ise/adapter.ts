import { formatMac } from '../../domain/mac';
import { IntegrationError } from '../../domain/errors';
import {
  type CoaResult,
  type CreateResult,
  type EndpointSnapshot,
  type EnsureResult,
  type GrantTag,
  type NacAdapter,
  type NacDriver,
} from '../adapter';
import { blockedError } from '../blocked';
import { NacHttpClient, headerValue, type NacHttpOptions, type NacRequest, type NacResponse } from '../http';
import { jsonEqual, parseTagAttributes, parseTagDescription, sameTag, tagAttributes, tagDescription } from '../tag';

/**
 * Cisco ISE ERS adapter (`/ers/config/endpoint`, identity groups). Whitelisting = the endpoint sits in the configured
 * endpoint identity group with `staticGroupAssignment: true` and carries our tag in its description (and custom
 * attributes). Undo PUTs back every restorable field of the prior ERSEndPoint, or deletes an endpoint we created.
 */

export interface IseAdapterOptions extends Omit<NacHttpOptions, 'system'> {
  username: string;
  password: string;
  /** Name of the whitelist endpoint identity group (NAC_ISE_GROUP). */
  group: string;
  /** 'sim' when pointed at the simulator. */
  driver?: Extract<NacDriver, 'ise' | 'sim'>;
}

type ErsEndpoint = Record<string, unknown> & { id: string; groupId?: string; description?: string };

const PAGE_SIZE = 100; // ERS maximum

/** Fields a PUT puts back; `id`, `name`, `mac` and `link` identify the object and are not "state". */
const RESTORABLE = [
  'groupId',
  'staticGroupAssignment',
  'staticProfileAssignment',
  'description',
  'customAttributes',
  'profileId',
  'portalUser',
  'identityStore',
  'identityStoreId',
  'mdmAttributes',
] as const;

export class IseAdapter implements NacAdapter {
  readonly driver: NacDriver;
  private readonly http: NacHttpClient;
  private readonly authHeader: string;
  private readonly groupName: string;
  private groupIdPromise: Promise<string> | undefined;
  private blockedGroupIdPromise: Promise<string | null> | undefined;

  constructor(opts: IseAdapterOptions) {
    this.driver = opts.driver ?? 'ise';
    this.http = new NacHttpClient({ ...opts, system: this.driver });
    this.authHeader = 'Basic ' + Buffer.from(`${opts.username}:${opts.password}`).toString('base64');
    this.groupName = opts.group;
  }

  async verify(): Promise<string[]> {
    await this.whitelistGroupId();
    return [];
  }

  async lookup(mac: string): Promise<EndpointSnapshot | null> {
    const req = {
      method: 'GET',
      path: `/ers/config/endpoint/name/${formatMac(mac, 'colon-upper')}`,
      what: `read endpoint ${formatMac(mac, 'colon-upper')}`,
    } as const;
    const res = await this.send(req);
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.http.errorFromResponse(req, res);
    return this.snapshot(mac, readEndpoint(res, this.driver, req.what));
  }

  async createWhitelisted(mac: string, tag: GrantTag): Promise<CreateResult> {
    const groupId = await this.whitelistGroupId();
    const created = await this.create(mac, tag, groupId);
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
    const groupId = await this.whitelistGroupId();
    const current = known ?? (await this.lookup(mac));
    if (current) return this.tagExisting(mac, current, tag, groupId);
    const created = await this.create(mac, tag, groupId);
    if (!(created instanceof IntegrationError)) return { action: 'created', endpoint: created };
    // "Already exists" (or any 4xx on create): someone created it between our read and write. Re-read and treat it
    // as an existing endpoint; never count the failed create as success.
    const existing = await this.lookup(mac);
    if (!existing) throw created;
    return this.tagExisting(mac, existing, tag, groupId);
  }

  async restore(
    mac: string,
    prior: EndpointSnapshot | null,
    grantId: string
  ): Promise<'restored' | 'deleted' | 'skipped'> {
    const current = await this.lookup(mac);
    if (!current) return prior ? 'skipped' : 'deleted'; // gone: deleted by our earlier attempt, or by someone else
    if (current.tag?.grantId !== grantId) {
      // Not ours any more. A retry after our own PUT-back committed looks exactly like the prior state.
      return prior && sameRestorable(current.vendor, prior.vendor) ? 'restored' : 'skipped';
    }
    if (!prior) {
      await this.deleteEndpoint(current.id, mac);
      return 'deleted';
    }
    const body = {
      ...restorableFields(prior.vendor),
      id: current.id,
      name: current.vendor.name,
      mac: formatMac(mac, 'colon-upper'),
    };
    await this.put(current.id, body, `restore endpoint ${formatMac(mac, 'colon-upper')}`);
    return 'restored';
  }

  async listTagged(): Promise<EndpointSnapshot[]> {
    const groupId = await this.whitelistGroupId();
    const tagged: EndpointSnapshot[] = [];
    for (let page = 1; ; page++) {
      const { ids, more } = await this.searchPage(`groupId.EQ.${groupId}`, page);
      for (const id of ids) {
        const ep = await this.getById(id);
        if (!ep) continue; // deleted while we paged
        const snap = this.snapshot(macFromEndpoint(ep), ep);
        if (snap.tag) tagged.push(snap);
      }
      if (!more) return tagged;
    }
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  // --- helpers -------------------------------------------------------------------------------------------------

  private send(req: NacRequest): Promise<NacResponse> {
    return this.http.send({ ...req, headers: { authorization: this.authHeader, ...req.headers } });
  }

  /** Resolve the whitelist group once (single flight); a failure is not cached so a fixed config recovers. */
  private whitelistGroupId(): Promise<string> {
    this.groupIdPromise ??= this.resolveGroup().catch((err: unknown) => {
      this.groupIdPromise = undefined;
      throw err;
    });
    return this.groupIdPromise;
  }

  /** ISE's built-in "Blocked List" identity group, or null when the appliance has none. */
  private blockedGroupId(): Promise<string | null> {
    this.blockedGroupIdPromise ??= (async () => {
      const req = {
        method: 'GET',
        path: `/ers/config/endpointgroup/name/${encodeURIComponent('Blocked List')}`,
        what: 'read the Blocked List identity group',
      } as const;
      const res = await this.send(req);
      if (res.status === 404) return null;
      if (res.status !== 200) throw this.http.errorFromResponse(req, res);
      const id = (res.body as { EndPointGroup?: { id?: unknown } } | undefined)?.EndPointGroup?.id;
      return typeof id === 'string' && id ? id : null;
    })().catch((err: unknown) => {
      this.blockedGroupIdPromise = undefined;
      throw err;
    });
    return this.blockedGroupIdPromise;
  }

  private async resolveGroup(): Promise<string> {
    const req = {
      method: 'GET',
      path: `/ers/config/endpointgroup/name/${encodeURIComponent(this.groupName)}`,
      what: 'read endpoint identity group',
    } as const;
    const res = await this.send(req);
    if (res.status === 404) {
      throw new IntegrationError(
        `${this.driver}: endpoint identity group "${this.groupName}" does not exist (check NAC_ISE_GROUP)`,
        'invalid',
        { system: this.driver, status: 404, code: 'NAC_ISE_GROUP' }
      );
    }
    if (res.status !== 200) throw this.http.errorFromResponse(req, res);
    const id = (res.body as { EndPointGroup?: { id?: unknown } } | undefined)?.EndPointGroup?.id;
    if (typeof id !== 'string' || !id) throw malformed(this.driver, req.what);
    return id;
  }

  private async tagExisting(
    mac: string,
    current: EndpointSnapshot,
    tag: GrantTag,
    groupId: string
  ): Promise<EnsureResult> {
    if (isWhitelistedWith(current, tag, groupId)) return { action: 'unchanged', endpoint: current };
    // A security block wins over an approval: a device in ISE's Blocked List is never moved out of it by us.
    if (current.group === (await this.blockedGroupId())) throw blockedError(this.driver, mac, 'is in the Blocked List');
    const desired = {
      ...withoutIdentity(current.vendor),
      id: current.id,
      mac: formatMac(mac, 'colon-upper'),
      groupId,
      staticGroupAssignment: true,
      description: tagDescription(withOrigin(tag, current, 'existing')),
      customAttributes: {
        customAttributes: {
          ...customAttributesOf(current.vendor),
          ...tagAttributes(withOrigin(tag, current, 'existing'), ''),
        },
      },
    };
    await this.put(current.id, desired, `whitelist endpoint ${formatMac(mac, 'colon-upper')}`);
    return { action: 'updated', endpoint: this.snapshot(mac, desired) };
  }

  /** POST the endpoint; a 4xx answer (e.g. "already exists") is returned, not thrown, for the caller to re-read. */
  private async create(mac: string, tag: GrantTag, groupId: string): Promise<EndpointSnapshot | IntegrationError> {
    const body = {
      name: formatMac(mac, 'colon-upper'),
      mac: formatMac(mac, 'colon-upper'),
      groupId,
      staticGroupAssignment: true,
      staticProfileAssignment: false,
      description: tagDescription({ ...tag, origin: 'created' }),
      customAttributes: { customAttributes: tagAttributes({ ...tag, origin: 'created' }, '') },
    };
    const req = {
      method: 'POST',
      path: '/ers/config/endpoint',
      json: { ERSEndPoint: body },
      what: `create endpoint ${formatMac(mac, 'colon-upper')}`,
    } as const;
    const res = await this.send(req);
    if (res.status === 201) {
      const id = headerValue(res.headers, 'location')?.split('/').filter(Boolean).pop();
      if (!id) throw malformed(this.driver, req.what);
      return this.snapshot(mac, { ...body, id });
    }
    const err = this.http.errorFromResponse(req, res);
    const reReadable = err.kind === 'invalid' || err.kind === 'conflict' || err.kind === 'not-found';
    if (!reReadable) throw err; // auth, rate limit, 5xx: the caller's retry policy decides
    return err;
  }

  private async put(id: string, endpoint: Record<string, unknown>, what: string): Promise<void> {
    const req = {
      method: 'PUT',
      path: `/ers/config/endpoint/${encodeURIComponent(id)}`,
      json: { ERSEndPoint: endpoint },
      what,
    } as const;
    const res = await this.send(req);
    if (res.status !== 200 && res.status !== 204) throw this.http.errorFromResponse(req, res);
  }

  private async deleteEndpoint(id: string, mac: string): Promise<void> {
    const req = {
      method: 'DELETE',
      path: `/ers/config/endpoint/${encodeURIComponent(id)}`,
      what: `delete endpoint ${formatMac(mac, 'colon-upper')}`,
    } as const;
    const res = await this.send(req);
    if (res.status !== 204 && res.status !== 200 && res.status !== 404) throw this.http.errorFromResponse(req, res);
  }

  private async getById(id: string): Promise<ErsEndpoint | null> {
    const req = {
      method: 'GET',
      path: `/ers/config/endpoint/${encodeURIComponent(id)}`,
      what: `read endpoint ${id}`,
    } as const;
    const res = await this.send(req);
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.http.errorFromResponse(req, res);
    return readEndpoint(res, this.driver, req.what);
  }

  private async searchPage(filter: string, page: number): Promise<{ ids: string[]; more: boolean }> {
    const q = new URLSearchParams({ filter, size: String(PAGE_SIZE), page: String(page) });
    const req = { method: 'GET', path: `/ers/config/endpoint?${q.toString()}`, what: 'search endpoints' } as const;
    const res = await this.send(req);
    if (res.status !== 200) throw this.http.errorFromResponse(req, res);
    const sr = (res.body as { SearchResult?: SearchResult } | undefined)?.SearchResult;
    if (!sr || !Array.isArray(sr.resources)) throw malformed(this.driver, req.what);
    const ids = sr.resources.map((r) => r.id).filter((id): id is string => typeof id === 'string');
    const total = typeof sr.total === 'number' ? sr.total : 0;
    // nextPage is ISE's own signal; the count guards against a server that omits it.
    const more = ids.length > 0 && (!!sr.nextPage || page * PAGE_SIZE < total);
    return { ids, more };
  }

  private snapshot(mac: string, ep: Record<string, unknown>): EndpointSnapshot {
    const vendor = withoutLink(ep);
    const tag =
      parseTagDescription(vendor.description) ?? parseTagAttributes(customAttributesOf(vendor), '') ?? undefined;
    return {
      mac,
      id: String(vendor.id),
      group: typeof vendor.groupId === 'string' ? vendor.groupId : '',
      ...(tag ? { tag } : {}),
      vendor,
    };
  }
}

interface SearchResult {
  total?: number;
  resources?: Array<{ id?: unknown }>;
  nextPage?: unknown;
}

function readEndpoint(res: NacResponse, system: string, what: string): ErsEndpoint {
  const ep = (res.body as { ERSEndPoint?: ErsEndpoint } | undefined)?.ERSEndPoint;
  if (!ep || typeof ep.id !== 'string') throw malformed(system, what);
  return ep;
}

function malformed(system: string, what: string): IntegrationError {
  return new IntegrationError(`${system} ${what}: unexpected response shape`, 'transient', { system });
}

/** The tag to write: a re-tag by the same grant keeps the origin it recorded first. */
function withOrigin(tag: GrantTag, current: EndpointSnapshot, fallback: 'created' | 'existing'): GrantTag {
  const origin = current.tag?.grantId === tag.grantId ? (current.tag.origin ?? fallback) : fallback;
  return { ...tag, origin };
}

function isWhitelistedWith(ep: EndpointSnapshot, tag: GrantTag, groupId: string): boolean {
  return sameTag(ep.tag, tag) && ep.group === groupId && ep.vendor.staticGroupAssignment === true;
}

function customAttributesOf(ep: Record<string, unknown>): Record<string, unknown> {
  const outer = ep.customAttributes as { customAttributes?: Record<string, unknown> } | undefined;
  return { ...(outer?.customAttributes ?? {}) };
}

function restorableFields(ep: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of RESTORABLE) if (ep[k] !== undefined) out[k] = ep[k];
  // An absent map would leave our attributes in place on PUT: send an explicit empty one.
  out.customAttributes ??= { customAttributes: {} };
  out.description ??= '';
  return out;
}

function sameRestorable(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return jsonEqual(restorableFields(a), restorableFields(b));
}

function withoutLink(ep: Record<string, unknown>): Record<string, unknown> & { id?: unknown } {
  const { link: _link, ...rest } = ep;
  return rest;
}

function withoutIdentity(ep: Record<string, unknown>): Record<string, unknown> {
  const { link: _link, id: _id, ...rest } = ep;
  return rest;
}

function macFromEndpoint(ep: Record<string, unknown>): string {
  const raw = typeof ep.mac === 'string' ? ep.mac : typeof ep.name === 'string' ? ep.name : '';
  return raw.replace(/[^0-9a-fA-F]/g, '').toLowerCase();
}
