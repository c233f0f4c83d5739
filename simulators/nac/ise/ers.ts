import { formatMac } from '../../../domain/mac';
import type { ApiResult, SimRequest, SimShared } from '../api';
import { normalizeMac, type SimEndpoint } from '../store';

/**
 * ISE ERS: the endpoint resource (`/ers/config/endpoint`) and endpoint identity groups (`/ers/config/endpointgroup`),
 * with ERS's envelopes (`ERSEndPoint`, `SearchResult`, `ERSResponse`, `UpdatedFieldsList`), see
 * shared/reference/nac.md §1.2–1.6.
 */

const WRITE_METHODS = new Set(['POST', 'PUT', 'DELETE']);
const ERS_PAGE_MAX = 100;

export interface Ers {
  handle(req: SimRequest): ApiResult;
  macOf(req: SimRequest): string | undefined;
  forgetSessions(): void;
}

export function createErs(shared: SimShared): Ers {
  const { store } = shared;

  function route(req: SimRequest): ApiResult {
    const seg = segments(req.path);
    if (seg[0] !== 'ers' || seg[1] !== 'config') return ersError(404, 'Resource not found', req.method, 'resource');
    const resource = seg[2];
    if (WRITE_METHODS.has(req.method) && req.method !== 'DELETE' && !/json/i.test(req.headers['content-type'] ?? '')) {
      return ersError(415, 'Unsupported media type', req.method, resource ?? 'resource');
    }
    if (resource === 'endpointgroup') return groups(req, seg.slice(3));
    if (resource === 'endpoint') return endpoints(req, seg.slice(3));
    return ersError(404, 'Resource not found', req.method, resource ?? 'resource');
  }

  function groups(req: SimRequest, rest: string[]): ApiResult {
    if (req.method !== 'GET') return ersError(405, 'Method not allowed', req.method, 'endpointgroup');
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
    const group = rest[0] === 'name' ? store.groupByName(rest[1] ?? '') : store.groupById(rest[0]!);
    if (!group) return ersError(404, 'Resource not found', 'GET', 'endpointgroup');
    return {
      status: 200,
      body: { EndPointGroup: { ...group, link: ersLink(req.base, 'endpointgroup', group.id) } },
    };
  }

  function endpoints(req: SimRequest, rest: string[]): ApiResult {
    if (rest.length === 0) {
      if (req.method === 'GET') return search(req);
      if (req.method === 'POST') return create(req);
      return ersError(405, 'Method not allowed', req.method, 'endpoint');
    }
    if (rest[0] === 'name') {
      if (req.method !== 'GET') return ersError(405, 'Method not allowed', req.method, 'endpoint');
      const mac = normalizeMac(rest[1]);
      const ep = mac ? store.byMac(mac) : undefined;
      if (!ep) return ersError(404, 'Resource not found', 'GET-getbyname', 'endpoint');
      return { status: 200, body: { ERSEndPoint: view(ep, req.base) } };
    }
    const ep = store.byId(rest[0]!);
    if (!ep) return ersError(404, 'Resource not found', req.method, 'endpoint');
    switch (req.method) {
      case 'GET':
        return { status: 200, body: { ERSEndPoint: view(ep, req.base) } };
      case 'PUT':
        return update(req, ep);
      case 'DELETE':
        store.delete(ep.id);
        return { status: 204 };
      default:
        return ersError(405, 'Method not allowed', req.method, 'endpoint');
    }
  }

  function search(req: SimRequest): ApiResult {
    const filters = req.query.getAll('filter');
    let eps = store.list();
    for (const f of filters) {
      const m = /^(mac|groupId|staticGroupAssignment|profileId)\.EQ\.(.*)$/.exec(f);
      if (!m) return ersError(400, `Unsupported filter: ${f}`, 'GET-search', 'endpoint');
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

  function create(req: SimRequest): ApiResult {
    const body = (req.json as { ERSEndPoint?: Record<string, unknown> } | undefined)?.ERSEndPoint;
    if (!body) return ersError(400, 'Invalid request: ERSEndPoint expected', 'POST-create', 'endpoint');
    const mac = normalizeMac(body.mac);
    if (!mac) return ersError(400, `Invalid MAC address: ${String(body.mac)}`, 'POST-create', 'endpoint');
    if (store.byMac(mac)) {
      return ersError(
        400,
        `Unable to create the endpoint. Endpoint "${formatMac(mac, 'colon-upper')}" already exists.`,
        'POST-create',
        'endpoint'
      );
    }
    const fields = writableFields(body);
    if (fields.groupId !== undefined && !store.groupById(fields.groupId)) {
      return ersError(400, `Endpoint identity group ${fields.groupId} does not exist`, 'POST-create', 'endpoint');
    }
    const ep = store.create({ ...fields, mac });
    return { status: 201, headers: { location: `${req.base}/ers/config/endpoint/${ep.id}` } };
  }

  function update(req: SimRequest, ep: SimEndpoint): ApiResult {
    const body = (req.json as { ERSEndPoint?: Record<string, unknown> } | undefined)?.ERSEndPoint;
    if (!body) return ersError(400, 'Invalid request: ERSEndPoint expected', 'PUT-update', 'endpoint');
    if (body.id !== undefined && body.id !== ep.id) {
      return ersError(400, 'Resource id in the body does not match the URL', 'PUT-update', 'endpoint');
    }
    if (body.mac !== undefined && normalizeMac(body.mac) !== ep.mac) {
      return ersError(400, 'The MAC address of an endpoint cannot be changed', 'PUT-update', 'endpoint');
    }
    const fields = writableFields(body);
    if (fields.groupId !== undefined && !store.groupById(fields.groupId)) {
      return ersError(400, `Endpoint identity group ${fields.groupId} does not exist`, 'PUT-update', 'endpoint');
    }
    const changed = store.update(ep.id, fields);
    const updatedField = changed.map((c) => ({
      field: c.field,
      oldValue: typeof c.oldValue === 'string' ? c.oldValue : JSON.stringify(c.oldValue),
      newValue: typeof c.newValue === 'string' ? c.newValue : JSON.stringify(c.newValue),
    }));
    return { status: 200, body: { UpdatedFieldsList: { updatedField } } };
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
    forgetSessions() {},
  };
}

function view(ep: SimEndpoint, base: string): Record<string, unknown> {
  return {
    id: ep.id,
    name: ep.name,
    description: ep.description,
    mac: formatMac(ep.mac, 'colon-upper'),
    profileId: ep.profileId,
    staticProfileAssignment: ep.staticProfileAssignment,
    staticProfileAssignmentDefined: true,
    groupId: ep.groupId,
    staticGroupAssignment: ep.staticGroupAssignment,
    staticGroupAssignmentDefined: true,
    portalUser: ep.portalUser,
    identityStore: ep.identityStore,
    identityStoreId: ep.identityStoreId,
    customAttributes: { customAttributes: { ...ep.customAttributes } },
    link: ersLink(base, 'endpoint', ep.id),
  };
}

/** The ERSEndPoint fields a create/update may set. */
function writableFields(body: Record<string, unknown>): Partial<SimEndpoint> {
  const out: Partial<SimEndpoint> = {};
  const str = (k: keyof SimEndpoint) => {
    if (typeof body[k] === 'string') (out as Record<string, unknown>)[k] = body[k];
  };
  const bool = (k: keyof SimEndpoint) => {
    if (typeof body[k] === 'boolean') (out as Record<string, unknown>)[k] = body[k];
  };
  (['description', 'groupId', 'profileId', 'portalUser', 'identityStore', 'identityStoreId'] as const).forEach(str);
  (['staticGroupAssignment', 'staticProfileAssignment'] as const).forEach(bool);
  const ca = body.customAttributes as { customAttributes?: unknown } | undefined;
  if (ca && typeof ca === 'object') {
    const inner = ca.customAttributes;
    out.customAttributes = inner && typeof inner === 'object' ? { ...(inner as Record<string, unknown>) } : {};
  }
  return out;
}

export function ersLink(base: string, resource: string, id: string): Record<string, string> {
  return { rel: 'self', href: `${base}/ers/config/${resource}/${id}`, type: 'application/json' };
}

function ersSearch(
  req: SimRequest,
  resources: Array<{ id: string; name: string; description?: string }>,
  resource: string
): ApiResult {
  const size = Number(req.query.get('size') ?? 20);
  const page = Number(req.query.get('page') ?? 1);
  if (!Number.isInteger(size) || size < 1 || size > ERS_PAGE_MAX || !Number.isInteger(page) || page < 1) {
    return ersError(400, `Page size must be 1..${ERS_PAGE_MAX} and page >= 1`, 'GET-search', resource);
  }
  const start = (page - 1) * size;
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
  return {
    status: 200,
    body: {
      SearchResult: {
        total: resources.length,
        resources: slice,
        ...(start + size < resources.length ? { nextPage: pageLink(page + 1) } : {}),
        ...(page > 1 ? { previousPage: pageLink(page - 1) } : {}),
      },
    },
  };
}

export function ersError(status: number, title: string, operation: string, resource: string): ApiResult {
  return {
    status,
    body: {
      ERSResponse: {
        operation: `${operation}-${resource}`,
        messages: [{ title, type: 'ERROR', code: ersCode(status) }],
        link: { rel: 'related', href: 'https://ise/ers/sdk', type: 'text/html' },
      },
    },
  };
}

function ersCode(status: number): string {
  if (status === 404) return 'Resource not found exception';
  if (status === 429) return 'Too many requests';
  if (status >= 500) return 'Internal server error';
  if (status === 415) return 'Unsupported media type';
  return 'Application resource validation exception';
}

function segments(path: string): string[] {
  return path
    .replace(/\/+$/, '')
    .split('/')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
}
