import { IntegrationError } from '../../domain/errors';
import { formatMac } from '../../domain/mac';
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
import { NacHttpClient, headerValue, type NacHttpOptions, type NacRequest, type NacResponse } from '../http';
import { TokenBucket } from '../rate-limiter';
import { jsonEqual, parseTagAttributes, parseTagDescription, sameTag, tagAttributes, tagDescription } from '../tag';
import { IseCustomAttributes, type CustomAttributesMode } from './custom-attributes';
import { ErsClient } from './ers';
import { iseErrorFromResponse, isCsrfRefusal, isPageNotExists } from './errors';
import { MntClient } from './mnt';

/**
 * Cisco ISE adapter. Whitelisting = the endpoint sits in the configured endpoint identity group with
 * `staticGroupAssignment: true` and carries our tag in its description (and in custom attributes where they are
 * defined). Undo PUTs back the restorable fields the prior GET returned, or deletes an endpoint we created.
 *
 * Three ISE APIs, one rate limiter (one NAC rate, whatever the base URL):
 * - ERS (`ers.ts`: Basic auth, session cookies, CSRF token) for endpoints, identity groups and nodes — on the PAN;
 * - MnT (`mnt.ts`) for sessions and Change of Authorization — on an MnT node (`NAC_ISE_MNT_URL`);
 * - the OpenAPI (`custom-attributes.ts`) for the custom-attribute definitions (`NAC_ISE_OPENAPI_URL`).
 */

export interface IseAdapterOptions extends Omit<NacHttpOptions, 'system' | 'limiter'> {
  username: string;
  password: string;
  /** Name of the whitelist endpoint identity group (NAC_ISE_GROUP). */
  group: string;
  /** 'sim' when pointed at the simulator. */
  driver?: Extract<NacDriver, 'ise' | 'sim'>;
  /** MnT base URL (default: `baseUrl` on port 443, i.e. without ERS's :9060) and its account (default the ERS one). */
  mntUrl?: string;
  mntUsername?: string;
  mntPassword?: string;
  /** OpenAPI base URL (default like `mntUrl`). */
  openApiUrl?: string;
  /** NAC_ISE_CUSTOM_ATTRIBUTES (default `auto`). */
  customAttributes?: CustomAttributesMode;
  /** NAC_COA: when not `off`, `verify()` also checks that MnT answers. */
  coa?: CoaMode;
  /** ERS session idle time-out (default ISE's 60 s). */
  sessionIdleMs?: number;
}

type ErsEndpoint = Record<string, unknown> & { id: string; groupId?: string; description?: string };

const PAGE_SIZE = 100; // ERS maximum
/**
 * ISE's built-in block group: one fixed UUID on every release, named `Blacklist` on 2.x and `Blocked List` later
 * (demisto/content Cisco ISE README; DISA STIG V-242586; DevNet sandbox output: field notes row 1).
 */
export const ISE_BLOCK_GROUP_ID = 'aa000c30-8bff-11e6-996c-525400b48521';
const BLOCK_GROUP_NAMES = ['Blocked List', 'Blacklist'];
/** No endpoint has the nil UUID (ISE ids are time-based UUIDs): deleting it is a harmless write probe. */
const NIL_UUID = '00000000-0000-0000-0000-000000000000';
/**
 * CoA types (ISE 2.6 API reference ch. 4). Reauth: 1 = REAUTH_TYPE_LAST, re-run the method the session last
 * authenticated with (MAB for the devices we whitelist), so authorization is evaluated again against the endpoint's
 * new group — what practitioner scripts send with `acs_server` (research §6). Disconnect: 0 =
 * DYNAMIC_AUTHZ_PORT_DEFAULT, the NAS's own default; bounce (1) and shutdown (2) would touch the whole port.
 */
const REAUTH_TYPE_LAST = 1;
const DISCONNECT_TYPE_DEFAULT = 0;

/**
 * Fields a PUT puts back — only those the prior GET returned (3.3's `*Defined` flags and `mdmAttributes` when
 * present). `id`, `name`, `mac` identify the object; `link` is not state; `identityStore`/`identityStoreId` are
 * read-only ("This field is for read only", ansible-ise `plugins/modules/endpoint.py`) and never sent.
 */
const RESTORABLE = [
  'groupId',
  'staticGroupAssignment',
  'staticGroupAssignmentDefined',
  'staticProfileAssignment',
  'staticProfileAssignmentDefined',
  'description',
  'customAttributes',
  'profileId',
  'portalUser',
  'mdmAttributes',
] as const;

export class IseAdapter implements NacAdapter {
  readonly driver: NacDriver;
  private readonly baseUrl: string;
  private readonly clients: NacHttpClient[];
  private readonly ers: ErsClient;
  private readonly mnt: MntClient;
  private readonly attrs: IseCustomAttributes;
  private readonly groupName: string;
  private readonly coa: CoaMode | undefined;
  private groupIdPromise: Promise<string> | undefined;
  private blockGroupPromise: Promise<{ id: string; name: string } | null> | undefined;

  constructor(opts: IseAdapterOptions) {
    this.driver = opts.driver ?? 'ise';
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.groupName = opts.group;
    this.coa = opts.coa;
    const limiter = new TokenBucket(opts.maxRps);
    const client = (baseUrl: string) => new NacHttpClient({ ...opts, baseUrl, system: this.driver, limiter });
    const ersHttp = client(this.baseUrl);
    const mntHttp = client(opts.mntUrl ?? withoutErsPort(this.baseUrl));
    const openApiHttp = client(opts.openApiUrl ?? withoutErsPort(this.baseUrl));
    this.clients = [ersHttp, mntHttp, openApiHttp];
    this.ers = new ErsClient({
      http: ersHttp,
      username: opts.username,
      password: opts.password,
      sessionIdleMs: opts.sessionIdleMs,
    });
    this.mnt = new MntClient({
      http: mntHttp,
      username: opts.mntUsername ?? opts.username,
      password: opts.mntPassword ?? opts.password,
    });
    this.attrs = new IseCustomAttributes({
      http: openApiHttp,
      username: opts.username,
      password: opts.password,
      mode: opts.customAttributes ?? 'auto',
    });
  }

  /**
   * Start-up check, one line naming the fix for each way a grant could fail: credentials, ERS unreachable, the
   * whitelist group, an account or node that cannot write. Warnings: no block group found, custom attributes
   * missing, MnT not answering (CoA would fail). CSRF on or off is fine either way.
   */
  async verify(): Promise<string[]> {
    try {
      await this.whitelistGroupId();
    } catch (err) {
      throw this.unreachable(err);
    }
    await this.checkWriteAccess();
    const warnings: string[] = [];
    if (!(await this.blockGroup())) {
      warnings.push(
        `no ISE block group found (neither id ${ISE_BLOCK_GROUP_ID} nor "Blocked List"/"Blacklist"): the check that an approval never whitelists a blocked device cannot run`
      );
    }
    warnings.push(...(await this.attrs.check()));
    if (this.coa && this.coa !== 'off') {
      try {
        await this.mnt.activeCount();
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        warnings.push(
          `Change of Authorization will fail: ${why} (check NAC_ISE_MNT_URL; the NAC_COA default is reauth)`
        );
      }
    }
    return warnings;
  }

  async lookup(mac: string): Promise<EndpointSnapshot | null> {
    const req = {
      method: 'GET',
      path: `/ers/config/endpoint/name/${formatMac(mac, 'colon-upper')}`,
      what: `read endpoint ${formatMac(mac, 'colon-upper')}`,
    } as const;
    const res = await this.ers.send(req);
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.error(req, res);
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
      id: current.id,
      name: current.vendor.name,
      mac: formatMac(mac, 'colon-upper'),
      ...restorableFields(prior.vendor),
    };
    await this.put(current.id, body, `restore endpoint ${formatMac(mac, 'colon-upper')}`);
    return 'restored';
  }

  async listTagged(): Promise<EndpointSnapshot[]> {
    const groupId = await this.whitelistGroupId();
    const tagged: EndpointSnapshot[] = [];
    for (let page = 1; ; page++) {
      const found = await this.searchPage(`groupId.EQ.${groupId}`, page);
      for (const id of found.ids) {
        const ep = await this.getById(id);
        if (!ep) continue; // deleted while we paged
        const snap = this.snapshot(macFromEndpoint(ep), ep);
        if (snap.tag) tagged.push(snap);
      }
      if (!found.more) return tagged;
    }
  }

  /**
   * CoA through MnT: the session by MAC (its `acs_server` is the PSN that holds it), then Reauth or Disconnect on
   * that PSN. No session is not an error; a CoA ISE did not execute is a transient error.
   */
  async changeOfAuthorization(mac: string, mode: Exclude<CoaMode, 'off'>): Promise<CoaResult> {
    const session = await this.mnt.sessionByMac(mac);
    if (!session) return { outcome: 'no-session' };
    if (mode === 'reauth') {
      await this.mnt.reauthenticate(session, mac, REAUTH_TYPE_LAST);
      return { outcome: 'reauthenticated', where: session.server };
    }
    await this.mnt.disconnect(session, mac, DISCONNECT_TYPE_DEFAULT);
    return { outcome: 'disconnected', where: session.server };
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
  }

  // --- verify ----------------------------------------------------------------------------------------------------

  /** Name the fix for a failure of the very first request (network, TLS). */
  private unreachable(err: unknown): unknown {
    if (!(err instanceof IntegrationError) || err.details.status !== undefined) return err;
    const tls = /TLS verification failed/.test(err.message);
    const fix = tls
      ? "trust the appliance's CA with NAC_CA_FILE (or NAC_TLS_INSECURE=true on a lab box)"
      : 'ERS is not reachable: enable ERS (Administration › System › Settings › API Settings) and check NAC_BASE_URL (https://<PAN>:9060)';
    return new IntegrationError(`${err.message}: ${fix}`, err.kind, err.details);
  }

  /**
   * A harmless write (DELETE of an endpoint that cannot exist): 404 means ERS let us write. A refusal is told apart
   * by the ERS node resource, not by its text (what a PSN answers a write was never recorded): the node we talk to
   * is not the primary PAN → fix NAC_BASE_URL; it is → the account may only read (ERS Operator).
   */
  private async checkWriteAccess(): Promise<void> {
    const req = { method: 'DELETE', path: `/ers/config/endpoint/${NIL_UUID}`, what: 'check ERS write access' } as const;
    const res = await this.ers.send(req);
    if (res.status === 404 || (res.status >= 200 && res.status < 300)) return;
    if (res.status === 401 || res.status === 429 || isCsrfRefusal(res)) throw this.error(req, res);
    const node = await this.addressedNode();
    if (node && !node.primaryPan) {
      throw new IntegrationError(
        `${this.driver}: NAC_BASE_URL (${hostOf(this.baseUrl)}) is ISE node ${node.name}, which is not the Primary Administration Node: only the PAN accepts ERS writes (a PSN or secondary node is read-only); point NAC_BASE_URL at the PAN${node.pan ? ` (${node.pan})` : ''}`,
        'invalid',
        { system: this.driver, status: res.status, code: 'NOT_PAN' }
      );
    }
    if (res.status === 403) {
      throw new IntegrationError(
        `${this.driver}: the ERS account may only read (ERS Operator): add it to the ERS Admin admin group (Administration › System › Admin Access › Administrators)`,
        'auth',
        { system: this.driver, status: 403, code: 'ERS_OPERATOR' }
      );
    }
    const e = this.error(req, res);
    throw new IntegrationError(
      `${e.message}: ISE refused a write; the ERS account needs the ERS Admin role and NAC_BASE_URL must be the PAN`,
      e.kind,
      e.details
    );
  }

  /**
   * The node NAC_BASE_URL addresses, from `GET /ers/config/node` and each node's `{"Node":{…}}` (`name`, `fqdn`,
   * `ipAddress`, `primaryPapNode`: ciscoisesdk `node_details.py`), with the PAN's name. Undefined when it cannot
   * tell (no access, or the URL is an alias no node lists).
   */
  private async addressedNode(): Promise<{ name: string; primaryPan: boolean; pan?: string } | undefined> {
    try {
      const list = await this.ers.send({ method: 'GET', path: '/ers/config/node?size=100', what: 'list ISE nodes' });
      if (list.status !== 200) return undefined;
      const resources = (list.body as { SearchResult?: SearchResult } | undefined)?.SearchResult?.resources ?? [];
      const nodes: Array<Record<string, unknown>> = [];
      for (const r of resources.slice(0, 50)) {
        if (typeof r.id !== 'string') continue;
        const res = await this.ers.send({
          method: 'GET',
          path: `/ers/config/node/${encodeURIComponent(r.id)}`,
          what: 'read an ISE node',
        });
        const node = (res.body as { Node?: Record<string, unknown> } | undefined)?.Node;
        if (res.status === 200 && node) nodes.push(node);
      }
      const host = hostOf(this.baseUrl).toLowerCase();
      const names = (n: Record<string, unknown>) =>
        [n.name, n.fqdn, n.ipAddress, ...(Array.isArray(n.ipAddresses) ? n.ipAddresses : [])]
          .filter((x): x is string => typeof x === 'string' && x.length > 0)
          .map((x) => x.toLowerCase());
      const addressed = nodes.find((n) => names(n).includes(host) || names(n).includes(host.split('.')[0]!));
      if (!addressed) return undefined;
      const pan = nodes.find((n) => n.primaryPapNode === true);
      const panName = pan ? String(pan.fqdn || pan.name || '') : '';
      return {
        name: String(addressed.name ?? host),
        primaryPan: addressed.primaryPapNode === true,
        ...(panName ? { pan: panName } : {}),
      };
    } catch {
      return undefined;
    }
  }

  // --- helpers -------------------------------------------------------------------------------------------------

  private error(req: Pick<NacRequest, 'what'>, res: NacResponse): IntegrationError {
    return iseErrorFromResponse(this.driver, req.what, res);
  }

  /** Resolve the whitelist group once (single flight); a failure is not cached so a fixed config recovers. */
  private whitelistGroupId(): Promise<string> {
    this.groupIdPromise ??= this.resolveGroup().catch((err: unknown) => {
      this.groupIdPromise = undefined;
      throw err;
    });
    return this.groupIdPromise;
  }

  /** ISE's block group: by its fixed UUID, else by either name it has had; null when the box has neither. */
  private blockGroup(): Promise<{ id: string; name: string } | null> {
    this.blockGroupPromise ??= (async () => {
      for (const ref of [ISE_BLOCK_GROUP_ID, ...BLOCK_GROUP_NAMES.map((n) => `name/${encodeURIComponent(n)}`)]) {
        const req = { method: 'GET', path: `/ers/config/endpointgroup/${ref}`, what: 'read the block group' } as const;
        const res = await this.ers.send(req);
        if (res.status === 404) continue;
        if (res.status !== 200) throw this.error(req, res);
        const g = (res.body as { EndPointGroup?: { id?: unknown; name?: unknown } } | undefined)?.EndPointGroup;
        const id = ref === ISE_BLOCK_GROUP_ID ? ISE_BLOCK_GROUP_ID : typeof g?.id === 'string' ? g.id : '';
        if (id) return { id, name: typeof g?.name === 'string' && g.name ? g.name : 'Blocked List' };
      }
      return null;
    })().catch((err: unknown) => {
      this.blockGroupPromise = undefined;
      throw err;
    });
    return this.blockGroupPromise;
  }

  private async resolveGroup(): Promise<string> {
    const req = {
      method: 'GET',
      path: `/ers/config/endpointgroup/name/${encodeURIComponent(this.groupName)}`,
      what: 'read endpoint identity group',
    } as const;
    const res = await this.ers.send(req);
    if (res.status === 404) {
      throw new IntegrationError(
        `${this.driver}: endpoint identity group "${this.groupName}" does not exist (check NAC_ISE_GROUP, or create the group in Work Centers › Network Access › Identities › Groups › Endpoint Identity Groups)`,
        'invalid',
        { system: this.driver, status: 404, code: 'NAC_ISE_GROUP' }
      );
    }
    if (res.status === 401) {
      throw new IntegrationError(
        `${this.driver} ${req.what}: HTTP 401: ISE refused the ERS credentials; check NAC_USERNAME/NAC_PASSWORD (an internal admin user in the ERS Admin group)`,
        'auth',
        { system: this.driver, status: 401 }
      );
    }
    if (res.status !== 200) throw this.error(req, res);
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
    // A security block wins over an approval: a device in ISE's block group is never moved out of it by us.
    const block = await this.blockGroupOf(current.group);
    if (block) throw blockedError(this.driver, mac, `is in the ${block} identity group`);
    const withTag = withOrigin(tag, current, 'existing');
    const desired: Record<string, unknown> = {
      id: current.id,
      name: current.vendor.name,
      mac: formatMac(mac, 'colon-upper'),
      ...restorableFields(current.vendor),
      groupId,
      staticGroupAssignment: true,
      // 3.3: say that the static assignment is set (I: the flag's meaning is undocumented; it is sent only where
      // the GET returned it).
      ...(current.vendor.staticGroupAssignmentDefined !== undefined ? { staticGroupAssignmentDefined: true } : {}),
      description: tagDescription(withTag),
      customAttributes: {
        customAttributes: {
          ...customAttributesOf(current.vendor),
          ...(await this.attrs.filter(tagAttributes(withTag, ''))),
        },
      },
    };
    await this.put(current.id, desired, `whitelist endpoint ${formatMac(mac, 'colon-upper')}`);
    return { action: 'updated', endpoint: this.snapshot(mac, desired) };
  }

  /**
   * The block group's name when `groupId` is it. The fixed UUID is the block group whatever the box calls it (its
   * name is only for the message); another id is compared with the group found by name.
   */
  private async blockGroupOf(groupId: string): Promise<string | undefined> {
    if (groupId === ISE_BLOCK_GROUP_ID) {
      const found = await this.blockGroup().catch(() => null);
      return found?.name ?? 'Blocked List';
    }
    const block = await this.blockGroup();
    return block && block.id === groupId ? block.name : undefined;
  }

  /** POST the endpoint; a 4xx answer (e.g. "already exists") is returned, not thrown, for the caller to re-read. */
  private async create(mac: string, tag: GrantTag, groupId: string): Promise<EndpointSnapshot | IntegrationError> {
    const withTag: GrantTag = { ...tag, origin: 'created' };
    const body = {
      name: formatMac(mac, 'colon-upper'),
      mac: formatMac(mac, 'colon-upper'),
      groupId,
      staticGroupAssignment: true,
      staticProfileAssignment: false,
      description: tagDescription(withTag),
      customAttributes: { customAttributes: await this.attrs.filter(tagAttributes(withTag, '')) },
    };
    const req = {
      method: 'POST',
      path: '/ers/config/endpoint',
      json: { ERSEndPoint: body },
      what: `create endpoint ${formatMac(mac, 'colon-upper')}`,
    } as const;
    const res = await this.ers.send(req);
    if (res.status === 201) {
      const id = headerValue(res.headers, 'location')?.split('/').filter(Boolean).pop();
      if (!id) throw malformed(this.driver, req.what);
      return this.snapshot(mac, { ...body, id });
    }
    const err = this.error(req, res);
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
    const res = await this.ers.send(req);
    if (res.status !== 200 && res.status !== 204) throw this.error(req, res);
  }

  private async deleteEndpoint(id: string, mac: string): Promise<void> {
    const req = {
      method: 'DELETE',
      path: `/ers/config/endpoint/${encodeURIComponent(id)}`,
      what: `delete endpoint ${formatMac(mac, 'colon-upper')}`,
    } as const;
    const res = await this.ers.send(req);
    if (res.status !== 204 && res.status !== 200 && res.status !== 404) throw this.error(req, res);
  }

  private async getById(id: string): Promise<ErsEndpoint | null> {
    const req = {
      method: 'GET',
      path: `/ers/config/endpoint/${encodeURIComponent(id)}`,
      what: `read endpoint ${id}`,
    } as const;
    const res = await this.ers.send(req);
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.error(req, res);
    return readEndpoint(res, this.driver, req.what);
  }

  /**
   * One search page. `nextPage` is ISE's signal, the total guards a server that omits it. A page that "does not
   * exist" (ISE's error for a page past the end, ansible-ise#108) means the list shrank while we paged: its end.
   */
  private async searchPage(filter: string, page: number): Promise<{ ids: string[]; more: boolean }> {
    const q = new URLSearchParams({ filter, size: String(PAGE_SIZE), page: String(page) });
    const req = { method: 'GET', path: `/ers/config/endpoint?${q.toString()}`, what: 'search endpoints' } as const;
    const res = await this.ers.send(req);
    if (isPageNotExists(res)) return { ids: [], more: false };
    if (res.status !== 200) throw this.error(req, res);
    const sr = (res.body as { SearchResult?: SearchResult } | undefined)?.SearchResult;
    if (!sr || !Array.isArray(sr.resources)) throw malformed(this.driver, req.what);
    const ids = sr.resources.map((r) => r.id).filter((id): id is string => typeof id === 'string');
    const total = typeof sr.total === 'number' ? sr.total : 0;
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

/**
 * The restorable fields the endpoint's GET returned. An absent `customAttributes` or `description` (2.7 omits an
 * empty map, 3.3 a description never set) is sent empty, so a PUT removes what the grant added.
 */
function restorableFields(ep: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of RESTORABLE) if (ep[k] !== undefined) out[k] = ep[k];
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

function macFromEndpoint(ep: Record<string, unknown>): string {
  const raw = typeof ep.mac === 'string' ? ep.mac : typeof ep.name === 'string' ? ep.name : '';
  return raw.replace(/[^0-9a-fA-F]/g, '').toLowerCase();
}

function hostOf(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, '');
}

/** `https://ise-pan:9060` → `https://ise-pan`: MnT and the OpenAPI answer on the node's 443, not ERS's 9060. */
function withoutErsPort(baseUrl: string): string {
  const u = new URL(baseUrl);
  if (u.port === '9060') u.port = '';
  return u.toString().replace(/\/+$/, '');
}
