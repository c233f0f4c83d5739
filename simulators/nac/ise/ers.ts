import { createHash } from 'node:crypto';
import { formatMac } from '../../../domain/mac';
import type { ApiResult, SimRequest, SimShared } from '../api';
import { segments } from '../api';
import type { IseVersion } from '../profiles';
import { normalizeMac, type IseEndpointExtras, type SimEndpoint } from '../store';
import type { CustomAttributeDefinitions } from './openapi';

/**
 * ISE ERS (`/ers/config/...`, port 9060 on a real PAN): endpoints, endpoint identity groups, nodes and the
 * versioninfo resources, with ERS's envelopes, per release (`profiles.ts`). Sources: research report §2–§4
 * (/tmp/research/ise.md) and shared/reference/nac-field-notes.md rows 1–9; "(I)" marks inference.
 *
 * Endpoint GET per release:
 * - 2.7 (and 3.0): `description` always present (`""` when empty), `customAttributes` omitted when empty, no
 *   `*Defined` flags (falkowich/pyise-ers cassettes `test_ise_27|30/test_get_endpoint.yaml` at ef40a62).
 * - 3.3: `description` omitted when never set, `customAttributes: {customAttributes:{}}` always present (DevNet sandbox
 *   output in an Ansible demo README, research §3 "Later versions"), `staticGroupAssignmentDefined` /
 *   `staticProfileAssignmentDefined` present and `mdmAttributes` when the endpoint has them (the endpoint resource's
 *   revision table: all three are 3.3; api-evangelist/cisco-ise `cisco-ise-legacy-ers-endpoint.yaml`). The flags
 *   default to true, as the sandbox showed for an endpoint created without them.
 */

const ERS_PAGE_MAX = 100;
const JSON_TYPE = 'application/json;charset=utf-8';
/** Fields that exist on 3.3 only (revision table); on 2.7 a body carrying them is refused (I: an unknown field). */
const V33_ONLY = ['staticGroupAssignmentDefined', 'staticProfileAssignmentDefined', 'mdmAttributes'] as const;

export interface Ers {
  handle(req: SimRequest): ApiResult;
  macOf(req: SimRequest): string | undefined;
}

export function createErs(shared: SimShared, definitions: CustomAttributeDefinitions): Ers {
  const { store } = shared;
  const version = (): IseVersion => shared.profile().ise.version;

  function route(req: SimRequest): ApiResult {
    const seg = segments(req.path);
    if (seg[0] !== 'ers' || seg[1] !== 'config') return ersError(404, 'Resource not found', req);
    const resource = seg[2];
    const rest = seg.slice(3);
    // POST/PUT need a JSON body type; an unsupported media type is 415 (DevNet "request headers"; Cisco's error
    // table: MEDIA_TYPE_EXCEPTION 415).
    if ((req.method === 'POST' || req.method === 'PUT') && !/json/i.test(req.headers['content-type'] ?? '')) {
      return ersError(415, 'Unsupported media type', req, 'Media type exception');
    }
    if (rest[0] === 'versioninfo' && rest.length === 1 && req.method === 'GET') return versionInfo(req, resource);
    if (resource === 'endpointgroup') return groups(req, rest);
    if (resource === 'endpoint') return endpoints(req, rest);
    if (resource === 'node') return nodes(req, rest);
    return ersError(404, 'Resource not found', req);
  }

  /**
   * `GET /ers/config/{endpoint|deploymentinfo}/versioninfo`: the shape of Cisco's spec `VersionInfo`
   * (`cisco-ise-legacy-ers-endpoint.yaml`, `cisco-ise-legacy-ers-pull-deployment-info.yaml`). The endpoint resource is
   * 1.2 from ISE 2.2 and 1.3 from 3.2 (revision table); deploymentinfo is 1.0 (the spec's example).
   */
  function versionInfo(req: SimRequest, resource: string | undefined): ApiResult {
    const versions =
      resource === 'endpoint'
        ? version() === '2.7'
          ? ['1.0', '1.1', '1.2']
          : ['1.0', '1.1', '1.2', '1.3']
        : resource === 'deploymentinfo'
          ? ['1.0']
          : undefined;
    if (!versions) return ersError(404, 'Resource not found', req);
    return ok({
      VersionInfo: {
        currentServerVersion: versions[versions.length - 1],
        supportedVersions: versions.join(','),
        link: { rel: 'self', href: `${req.base}${req.path}`, type: 'application/json' },
      },
    });
  }

  function groups(req: SimRequest, rest: string[]): ApiResult {
    if (req.method !== 'GET') return ersError(405, 'Method not allowed', req, 'Unsupported method exception');
    if (rest.length === 0) {
      const names = req.query
        .getAll('filter')
        .filter((f) => f.startsWith('name.EQ.'))
        .map((f) => f.slice(8));
      const found = store.listGroups().filter((g) => names.every((n) => g.name === n));
      return ersSearch(
        req,
        found.map((g) => ({ id: g.id, name: g.name, description: g.description })),
        'endpointgroup'
      );
    }
    // `GET /ers/config/endpointgroup/name/{name}` exists since 2.4 (identity-group swagger revision table).
    const group = rest[0] === 'name' ? store.groupByName(rest[1] ?? '') : store.groupById(rest[0]!);
    if (!group) return ersError(404, 'Resource not found', req);
    return ok({ EndPointGroup: { ...group, link: ersLink(req.base, 'endpointgroup', group.id) } });
  }

  function endpoints(req: SimRequest, rest: string[]): ApiResult {
    if (rest.length === 0) {
      if (req.method === 'GET') return search(req);
      if (req.method === 'POST') return create(req);
      return ersError(405, 'Method not allowed', req, 'Unsupported method exception');
    }
    if (rest[0] === 'name') {
      if (req.method !== 'GET') return ersError(405, 'Method not allowed', req, 'Unsupported method exception');
      const mac = normalizeMac(rest[1]);
      const ep = mac ? store.byMac(mac) : undefined;
      // The spec declares a 404 ERSResponse here; its text was never recorded (I).
      if (!ep) return ersError(404, 'Resource not found', req);
      return ok({ ERSEndPoint: view(ep, req.base) });
    }
    const ep = store.byId(rest[0]!);
    if (!ep) return ersError(404, 'Resource not found', req);
    switch (req.method) {
      case 'GET':
        return ok({ ERSEndPoint: view(ep, req.base) });
      case 'PUT':
        return update(req, ep);
      case 'DELETE':
        // 204, empty body (pyise-ers `test_ise_30/test_delete_endpoint.yaml`).
        store.delete(ep.id);
        return { status: 204 };
      default:
        return ersError(405, 'Method not allowed', req, 'Unsupported method exception');
    }
  }

  /**
   * Endpoint search. Filters are Cisco's documented endpoint filters (`mac, groupId, profileId, portalUser,
   * staticGroupAssignment, staticProfileAssignment`…; `name` is not one). Hits carry `id, name, link` and no
   * description (pyise-ers `test_ise_30/test_get_endpoint.yaml`).
   */
  function search(req: SimRequest): ApiResult {
    let eps = store.list();
    for (const f of req.query.getAll('filter')) {
      const m = /^(mac|groupId|staticGroupAssignment|staticProfileAssignment|profileId|portalUser)\.EQ\.(.*)$/.exec(f);
      if (!m) return ersError(400, `Invalid filter: ${f}`, req, 'Query validation exception');
      const [, field, value] = m;
      eps = eps.filter((e) =>
        field === 'mac'
          ? e.mac === normalizeMac(value)
          : String((e as unknown as Record<string, unknown>)[field!]) === value
      );
    }
    eps.sort((a, b) => a.name.localeCompare(b.name));
    return ersSearch(
      req,
      eps.map((e) => ({ id: e.id, name: e.name })),
      'endpoint'
    );
  }

  /**
   * Create: 201, empty body, `Location` with the new id; ISE names the endpoint after its MAC whatever `name` says
   * (pyise-ers `test_ise_30/test_add_endpoint.yaml` + `test_get_endpoint.yaml`). Booleans may come as strings
   * ("false"/"true" in the same cassette). A duplicate is 400 with the verbatim title seen on 3.1 P3
   * (terraform-provider-ciscoise#46) and code "Application resource validation exception" (I: by analogy with the
   * networkdevice duplicate, ciscoisesdk quickstart). `identityStore`/`identityStoreId` are read-only ("This field
   * is for read only", ansible-ise `plugins/modules/endpoint.py`): a body carrying them is accepted and they are
   * ignored (I — what the clients that echo a GET back, pyise-ers and ansible, need).
   */
  function create(req: SimRequest): ApiResult {
    const body = (req.json as { ERSEndPoint?: Record<string, unknown> } | undefined)?.ERSEndPoint;
    if (!body) return invalidJson(req);
    // "Validation Error - Mandatory fields missing: [Id,]" is the recorded form (terraform-provider-ise PR #5).
    if (body.mac === undefined || body.mac === '') return validationError(req, 'Mandatory fields missing: [mac,]');
    const mac = normalizeMac(body.mac);
    if (!mac) return validationError(req, `Illegal values: [mac ${String(body.mac)}]`);
    if (store.byMac(mac)) {
      return ersError(
        400,
        `Unable to create the endpoint. Endpoint "${formatMac(mac, 'colon-upper')}" already exists.`,
        req,
        'Application resource validation exception'
      );
    }
    const parsed = writable(body, req);
    if ('error' in parsed) return parsed.error;
    const { fields, extras } = parsed;
    if (fields.groupId !== undefined && !store.groupById(fields.groupId)) {
      return validationError(req, `Illegal values: [groupId ${fields.groupId} does not exist]`);
    }
    const ise = canonicalExtras(extras, fields.description ?? '');
    const ep = store.create({ ...fields, mac, ...(ise ? { ise } : {}) });
    return { status: 201, headers: { location: `${req.base}/ers/config/endpoint/${ep.id}` } };
  }

  /**
   * Update: a partial body is fine (pyise-ers sends only groupId + staticGroupAssignment), fields not sent are kept.
   * The answer is 200 `UpdatedFieldsList` with *string* old/new values, maps rendered as `"{}"`, and
   * `customAttributes` listed whenever it is sent, changed or not (pyise-ers `test_update_endpoint.yaml` at f0914ba;
   * rendering a non-empty map as JSON is I). `id` is mandatory for update (ERS endpoint resource definition).
   */
  function update(req: SimRequest, ep: SimEndpoint): ApiResult {
    const body = (req.json as { ERSEndPoint?: Record<string, unknown> } | undefined)?.ERSEndPoint;
    if (!body) return invalidJson(req);
    if (body.id === undefined || body.id === '') return validationError(req, 'Mandatory fields missing: [Id,]');
    if (body.id !== ep.id) return validationError(req, 'Illegal values: [id does not match the resource URL]');
    if (body.mac !== undefined && normalizeMac(body.mac) !== ep.mac) {
      return validationError(req, 'Illegal values: [mac cannot be changed]');
    }
    const parsed = writable(body, req);
    if ('error' in parsed) return parsed.error;
    const { fields, extras, sent } = parsed;
    if (fields.groupId !== undefined && !store.groupById(fields.groupId)) {
      return validationError(req, `Illegal values: [groupId ${fields.groupId} does not exist]`);
    }
    const before = flat(ep);
    const ise = canonicalExtras({ ...ep.ise, ...extras }, fields.description ?? ep.description);
    store.update(ep.id, fields);
    store.setIseExtras(ep.id, ise);
    const after = flat(store.byId(ep.id)!);
    const updatedField = sent
      .filter((k) => k === 'customAttributes' || before[k] !== after[k])
      .map((field) => ({ field, oldValue: before[field] ?? '', newValue: after[field] ?? '' }));
    return ok({ UpdatedFieldsList: { updatedField } });
  }

  /**
   * The fields a create/update may set, the ISE-only ones (3.3), and the names sent (for UpdatedFieldsList).
   * Custom attributes must be defined on the box first (Settings › Endpoint Custom Attributes, or the OpenAPI):
   * an undefined one is dropped silently or refuses the write, as the profile says (unknown which: I).
   */
  function writable(
    body: Record<string, unknown>,
    req: SimRequest
  ): { fields: Partial<SimEndpoint>; extras: IseEndpointExtras; sent: string[] } | { error: ApiResult } {
    const v = version();
    if (v === '2.7') {
      const extra = V33_ONLY.find((k) => body[k] !== undefined);
      if (extra) return { error: invalidJson(req, `Unrecognized field "${extra}"`) };
    }
    const fields: Partial<SimEndpoint> = {};
    const extras: IseEndpointExtras = {};
    const sent: string[] = [];
    for (const k of ['description', 'groupId', 'profileId', 'portalUser'] as const) {
      if (typeof body[k] === 'string') {
        fields[k] = body[k];
        sent.push(k);
      }
    }
    if (fields.description !== undefined) extras.descriptionSet = true;
    for (const k of ['staticGroupAssignment', 'staticProfileAssignment'] as const) {
      const b = asBool(body[k]);
      if (b !== undefined) {
        fields[k] = b;
        sent.push(k);
      }
    }
    if (v === '3.3') {
      for (const k of ['staticGroupAssignmentDefined', 'staticProfileAssignmentDefined'] as const) {
        const b = asBool(body[k]);
        if (b !== undefined) {
          extras[k] = b;
          sent.push(k);
        }
      }
      if (body.mdmAttributes && typeof body.mdmAttributes === 'object') {
        extras.mdmAttributes = { ...(body.mdmAttributes as Record<string, unknown>) };
        sent.push('mdmAttributes');
      }
    }
    const ca = body.customAttributes as { customAttributes?: unknown } | undefined;
    if (ca && typeof ca === 'object') {
      const inner = (ca.customAttributes && typeof ca.customAttributes === 'object' ? ca.customAttributes : {}) as
        Record<string, unknown> | Record<string, never>;
      const undefinedNames = Object.keys(inner).filter((n) => !definitions.has(n));
      if (undefinedNames.length && shared.profile().ise.undefinedCustomAttributes === 'reject') {
        return { error: validationError(req, `Illegal values: [custom attribute not defined: ${undefinedNames}]`) };
      }
      fields.customAttributes = Object.fromEntries(Object.entries(inner).filter(([n]) => definitions.has(n)));
      sent.push('customAttributes');
    }
    return { fields, extras, sent };
  }

  /** Field values as UpdatedFieldsList renders them: strings, booleans as "true"/"false", maps as JSON. */
  function flat(ep: SimEndpoint): Record<string, string> {
    const str = (x: unknown) => (typeof x === 'string' ? x : JSON.stringify(x ?? null));
    return {
      description: ep.description,
      groupId: ep.groupId,
      profileId: ep.profileId,
      portalUser: ep.portalUser,
      staticGroupAssignment: str(ep.staticGroupAssignment),
      staticProfileAssignment: str(ep.staticProfileAssignment),
      staticGroupAssignmentDefined: str(ep.ise?.staticGroupAssignmentDefined ?? true),
      staticProfileAssignmentDefined: str(ep.ise?.staticProfileAssignmentDefined ?? true),
      mdmAttributes: str(ep.ise?.mdmAttributes ?? {}),
      customAttributes: str(ep.customAttributes),
    };
  }

  function view(ep: SimEndpoint, base: string): Record<string, unknown> {
    const v33 = version() === '3.3';
    const hasAttrs = Object.keys(ep.customAttributes).length > 0;
    return {
      id: ep.id,
      name: ep.name,
      ...(!v33 || ep.description !== '' || ep.ise?.descriptionSet ? { description: ep.description } : {}),
      mac: formatMac(ep.mac, 'colon-upper'),
      profileId: ep.profileId,
      staticProfileAssignment: ep.staticProfileAssignment,
      ...(v33 ? { staticProfileAssignmentDefined: ep.ise?.staticProfileAssignmentDefined ?? true } : {}),
      groupId: ep.groupId,
      staticGroupAssignment: ep.staticGroupAssignment,
      ...(v33 ? { staticGroupAssignmentDefined: ep.ise?.staticGroupAssignmentDefined ?? true } : {}),
      portalUser: ep.portalUser,
      identityStore: ep.identityStore,
      identityStoreId: ep.identityStoreId,
      ...(v33 && ep.ise?.mdmAttributes ? { mdmAttributes: { ...ep.ise.mdmAttributes } } : {}),
      ...(v33 || hasAttrs ? { customAttributes: { customAttributes: { ...ep.customAttributes } } } : {}),
      link: ersLink(base, 'endpoint', ep.id),
    };
  }

  /**
   * `GET /ers/config/node[/{id}|/name/{name}]`: the deployment's nodes (`{"Node":{…}}`, fields as ciscoisesdk
   * `v3_3_patch_1/node_details.py` defines them: `primaryPapNode`, `papNode`, `pxGridNode`, `nodeServiceTypes`,
   * `fqdn`, `ipAddress`…). The node asked is the one the client addressed (its Host); in `psn` mode that node is a
   * PSN and the PAN is another box. Two nodes, their names and addresses, are the simulator's own (I).
   */
  function nodes(req: SimRequest, rest: string[]): ApiResult {
    if (req.method !== 'GET') return ersError(405, 'Method not allowed', req, 'Unsupported method exception');
    const all = deployment(req);
    if (rest.length === 0) {
      return ersSearch(
        req,
        all.map((n) => ({ id: n.id, name: n.name })),
        'node'
      );
    }
    const node = rest[0] === 'name' ? all.find((n) => n.name === rest[1]) : all.find((n) => n.id === rest[0]);
    if (!node) return ersError(404, 'Resource not found', req);
    return ok({ Node: { ...node, link: ersLink(req.base, 'node', node.id) } });
  }

  function deployment(req: SimRequest): Array<Record<string, unknown> & { id: string; name: string }> {
    const host = (req.headers.host ?? 'localhost').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    const hostIsIp = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
    const addressedPsn = shared.profile().ise.node === 'psn';
    const node = (name: string, ip: string, pan: boolean, addressed: boolean) => ({
      id: nodeId(name),
      name,
      displayName: name,
      gateWay: '10.0.0.1',
      inDeployment: true,
      ipAddresses: [addressed && hostIsIp ? host : ip],
      ipAddress: addressed && hostIsIp ? host : ip,
      sxpIpAddress: '',
      nodeServiceTypes: pan ? '' : 'Session, Profiler',
      fqdn: addressed && !hostIsIp ? host : `${name}.example.com`,
      primaryPapNode: pan,
      papNode: pan,
      pxGridNode: false,
    });
    return [node('ise-pan-1', '10.0.0.10', true, !addressedPsn), node('ise-psn-1', '10.0.0.11', false, addressedPsn)];
  }

  return {
    handle: route,
    macOf(req) {
      const seg = segments(req.path);
      if (seg[2] !== 'endpoint') return undefined;
      if (seg[3] === 'name') return normalizeMac(seg[4]);
      if (seg[3]) return store.byId(seg[3])?.mac;
      const body = (req.json as { ERSEndPoint?: { mac?: unknown } } | undefined)?.ERSEndPoint;
      if (body?.mac) return normalizeMac(body.mac);
      const macFilter = req.query.getAll('filter').find((f) => f.startsWith('mac.EQ.'));
      return macFilter ? normalizeMac(macFilter.slice(7)) : undefined;
    },
  };
}

function ok(body: unknown): ApiResult {
  return { status: 200, body, headers: { 'content-type': JSON_TYPE } };
}

/** "Validation Error - …" titles come back as 400 (terraform-provider-ise PR #5; research §2 "Validation errors"). */
function validationError(req: SimRequest, what: string): ApiResult {
  return ersError(400, `Validation Error - ${what}`, req, 'Application resource validation exception');
}

/** Bad JSON: 400 "Resource Initialization Failed: …" with the generic code (research §2, [FS:16306313518]). */
function invalidJson(req: SimRequest, why = 'ERSEndPoint expected'): ApiResult {
  return ersError(
    400,
    `Resource Initialization Failed: Invalid JSON: ${why}\n`,
    req,
    'Application resource validation exception'
  );
}

function asBool(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  return undefined;
}

/**
 * The extras as stored: defaults left out (flags true, `descriptionSet` only matters for an empty description), so
 * an endpoint written back to what it was is stored exactly as it was.
 */
function canonicalExtras(extras: IseEndpointExtras, description: string): IseEndpointExtras | undefined {
  const out: IseEndpointExtras = {};
  if (extras.staticGroupAssignmentDefined === false) out.staticGroupAssignmentDefined = false;
  if (extras.staticProfileAssignmentDefined === false) out.staticProfileAssignmentDefined = false;
  if (extras.mdmAttributes) out.mdmAttributes = extras.mdmAttributes;
  if (extras.descriptionSet && description === '') out.descriptionSet = true;
  return Object.keys(out).length ? out : undefined;
}

function nodeId(name: string): string {
  const h = createHash('sha1').update(`ise-sim-node:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function ersLink(base: string, resource: string, id: string): Record<string, string> {
  return { rel: 'self', href: `${base}/ers/config/${resource}/${id}`, type: 'application/json' };
}

/**
 * A search page: `SearchResult {total, resources, nextPage?, previousPage?}`, `?size` 1..100, pages from 1 (DevNet
 * "read a resource"; pyise-ers `test_ise_30/test_get_endpoint_groups.yaml` for `nextPage`). Nothing found is 200 with
 * `total: 0` (pyise-ers `test_add_egressmatrixcell.yaml`); a page past the end is ISE's error "The page N does not
 * exist. Please refine your query." / "Page not exists exception" (ansible-ise#108, ISE 3.3 P1), status 400 (I).
 */
function ersSearch(
  req: SimRequest,
  resources: Array<{ id: string; name: string; description?: string }>,
  resource: string
): ApiResult {
  const size = Number(req.query.get('size') ?? 20);
  const page = Number(req.query.get('page') ?? 1);
  if (!Number.isInteger(size) || size < 1 || size > ERS_PAGE_MAX || !Number.isInteger(page) || page < 1) {
    return ersError(400, `Page size must be 1..${ERS_PAGE_MAX} and page >= 1`, req, 'Query validation exception');
  }
  const start = (page - 1) * size;
  if (page > 1 && start >= resources.length) {
    return ersError(
      400,
      `The page ${page} does not exist. Please refine your query.`,
      req,
      'Page not exists exception'
    );
  }
  const slice = resources.slice(start, start + size).map((r) => ({ ...r, link: ersLink(req.base, resource, r.id) }));
  const pageLink = (p: number) => {
    const q = new URLSearchParams(req.query);
    q.set('size', String(size));
    q.set('page', String(p));
    return {
      rel: p > page ? 'next' : 'previous',
      href: `${req.base}/ers/config/${resource}?${q.toString()}`,
      type: 'application/json',
    };
  };
  return ok({
    SearchResult: {
      total: resources.length,
      resources: slice,
      ...(start + size < resources.length ? { nextPage: pageLink(page + 1) } : {}),
      ...(page > 1 ? { previousPage: pageLink(page - 1) } : {}),
    },
  });
}

/**
 * The ERS error envelope as recorded on 2.7 (pyise-ers `test_ise_27/test_add_device.yaml`): `operation`
 * `<METHOD>-<verb>-<resource>`, one message `{title, type: "ERROR", code}` with the human form of Cisco's error code,
 * and `link.type` `application/xml` even on a JSON request; `Content-Type: application/json;charset=utf-8`. Codes by
 * status follow Cisco's table (DevNet "error responses"): 400 validation, 404 not found (I: the human string), 415
 * media type, 500 "CRUD operation exception" (recorded). The verbs per operation are I.
 */
export function ersError(status: number, title: string, req: SimRequest, code?: string): ApiResult {
  const seg = segments(req.path);
  const resource = seg[2] ?? 'resource';
  const byName = seg[3] === 'name';
  const verb =
    req.method === 'POST'
      ? 'create'
      : req.method === 'PUT'
        ? 'update'
        : req.method === 'DELETE'
          ? 'delete'
          : byName
            ? 'getByName'
            : seg.length > 3
              ? 'getById'
              : 'getAll';
  const q = req.query.toString();
  return {
    status,
    headers: { 'content-type': JSON_TYPE },
    body: {
      ERSResponse: {
        operation: `${req.method}-${verb}-${resource}`,
        messages: [{ title, type: 'ERROR', code: code ?? ersCode(status) }],
        link: { rel: 'related', href: `${req.base}${req.path}${q ? `?${q}` : ''}`, type: 'application/xml' },
      },
    },
  };
}

function ersCode(status: number): string {
  if (status === 404) return 'Resource not found exception';
  if (status === 415) return 'Media type exception';
  // ERS sending 429 was never recorded (field notes row 9); injected rate limits use this wording (I).
  if (status === 429) return 'Too many requests';
  if (status >= 500) return 'CRUD operation exception';
  return 'Application resource validation exception';
}
