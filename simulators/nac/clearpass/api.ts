import { randomBytes } from 'node:crypto';
import type { ApiArea, ApiResult, SimRequest, SimShared, VendorApi } from '../api';
import { CP_STATUSES, normalizeMac, type CpStatus, type SimEndpoint } from '../store';

/**
 * Aruba ClearPass Policy Manager as the simulator serves it: OAuth2 (`/api/oauth`) and the endpoint repository
 * (`/api/endpoint`), with ClearPass's API-Problem error bodies and HAL lists (shared/reference/nac.md §2).
 */

const CP_LIMIT_MAX = 1000;

export function createClearPassApi(shared: SimShared): VendorApi {
  const { store, opts } = shared;
  const tokens = new Map<string, number>();

  function areaOf(path: string): ApiArea | undefined {
    // ISE's OpenAPI lives under /api/v1/ on the same port; ClearPass has no versioned prefix.
    if (!path.startsWith('/api/') || path.startsWith('/api/v1/')) return undefined;
    if (path === '/api/oauth' || path.startsWith('/api/oauth/')) return 'oauth';
    return 'endpoint';
  }

  function authenticate(req: SimRequest, area: ApiArea): ApiResult | undefined {
    if (area === 'oauth' && req.path === '/api/oauth') return undefined; // the token endpoint authenticates by body
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    const expiresAt = m ? tokens.get(m[1]!) : undefined;
    if (expiresAt !== undefined && expiresAt > Date.now()) return undefined;
    return problem(401, 'Unauthorized', 'Invalid or expired bearer token');
  }

  function handle(req: SimRequest): ApiResult {
    const seg = segments(req.path);
    if (seg[1] === 'oauth' && seg.length === 2) {
      return req.method === 'POST' ? token(req) : problem(405, 'Method Not Allowed', 'Use POST');
    }
    if (seg[1] !== 'endpoint') return problem(404, 'Not Found', `No route for ${req.path}`);
    if (seg.length === 2) {
      if (req.method === 'GET') return list(req);
      if (req.method === 'POST') return create(req);
      return problem(405, 'Method Not Allowed', `${req.method} not allowed`);
    }
    let ep: SimEndpoint | undefined;
    if (seg[2] === 'mac-address' && seg.length === 4) {
      const mac = normalizeMac(seg[3]);
      ep = mac ? store.byMac(mac) : undefined;
    } else if (seg.length === 3 && /^\d+$/.test(seg[2]!)) {
      ep = store.byCpId(Number(seg[2]));
    } else {
      return problem(404, 'Not Found', `No route for ${req.path}`);
    }
    if (!ep) return problem(404, 'Not Found', 'Endpoint not found');
    switch (req.method) {
      case 'GET':
        return { status: 200, body: view(ep, req.base) };
      case 'PATCH':
        return patch(req, ep);
      case 'PUT':
        return replace(req, ep);
      case 'DELETE':
        store.delete(ep.id);
        return { status: 204 };
      default:
        return problem(405, 'Method Not Allowed', `${req.method} not allowed`);
    }
  }

  function token(req: SimRequest): ApiResult {
    const body = (req.json ?? Object.fromEntries(new URLSearchParams(req.rawBody))) as Record<string, unknown>;
    if (body.grant_type !== 'client_credentials') {
      return problem(400, 'unsupported_grant_type', 'The authorization grant type is not supported');
    }
    if (body.client_id !== opts.clientId || body.client_secret !== opts.clientSecret) {
      return problem(400, 'invalid_client', 'The client credentials are invalid');
    }
    const lifetime = opts.tokenLifetimeSec ?? 28_800;
    const value = randomBytes(20).toString('hex');
    tokens.set(value, Date.now() + lifetime * 1000);
    return { status: 200, body: { access_token: value, expires_in: lifetime, token_type: 'Bearer', scope: null } };
  }

  function list(req: SimRequest): ApiResult {
    let filter: Record<string, unknown> = {};
    const rawFilter = req.query.get('filter');
    if (rawFilter) {
      const parsed = parseJsonSafe(rawFilter);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
        return problem(422, 'Unprocessable Entity', 'filter must be a JSON object');
      }
      filter = parsed as Record<string, unknown>;
    }
    const offset = Number(req.query.get('offset') ?? 0);
    const limit = Number(req.query.get('limit') ?? 25);
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(limit) || limit < 1 || limit > CP_LIMIT_MAX) {
      return problem(422, 'Unprocessable Entity', `offset must be >= 0 and limit 1..${CP_LIMIT_MAX}`);
    }
    const desc = (req.query.get('sort') ?? '+id').startsWith('-');
    const all = store
      .list()
      .map((e) => view(e, req.base))
      .filter((v) => matchesFilter(v, filter))
      .sort((a, b) => (desc ? b.id - a.id : a.id - b.id));
    const items = all.slice(offset, offset + limit);
    const page = (o: number) => {
      const q = new URLSearchParams(req.query);
      q.set('offset', String(o));
      q.set('limit', String(limit));
      return { href: `${req.base}/api/endpoint?${q.toString()}` };
    };
    const links: Record<string, { href: string }> = { self: page(offset), first: page(0) };
    if (offset + limit < all.length) links.next = page(offset + limit);
    if (offset > 0) links.prev = page(Math.max(0, offset - limit));
    return {
      status: 200,
      body: {
        _links: links,
        _embedded: { items },
        ...(req.query.get('calculate_count') === 'true' ? { count: all.length } : {}),
      },
    };
  }

  function create(req: SimRequest): ApiResult {
    const body = req.json as Record<string, unknown> | undefined;
    const invalid = validate(body, true);
    if (invalid) return invalid;
    const mac = normalizeMac(body!.mac_address)!;
    if (store.byMac(mac)) {
      return problem(422, 'Unprocessable Entity', `Endpoint with MAC address ${mac} already exists`);
    }
    const ep = store.create({ ...writableFields(body!), mac });
    return { status: 201, body: view(ep, req.base) };
  }

  /** PATCH merges: top-level fields present replace, `attributes` merge key by key (null removes a key). */
  function patch(req: SimRequest, ep: SimEndpoint): ApiResult {
    const body = req.json as Record<string, unknown> | undefined;
    const invalid = validate(body, false);
    if (invalid) return invalid;
    if (body!.mac_address !== undefined && normalizeMac(body!.mac_address) !== ep.mac) {
      return problem(422, 'Unprocessable Entity', 'mac_address cannot be changed');
    }
    const fields = writableFields(body!);
    if (fields.attributes) {
      const merged: Record<string, unknown> = { ...ep.attributes, ...fields.attributes };
      for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
      fields.attributes = merged;
    }
    store.update(ep.id, fields);
    return { status: 200, body: view(store.byId(ep.id)!, req.base) };
  }

  /** PUT replaces: what the body omits goes back to its default (empty description, no attributes). */
  function replace(req: SimRequest, ep: SimEndpoint): ApiResult {
    const body = req.json as Record<string, unknown> | undefined;
    const invalid = validate(body, true);
    if (invalid) return invalid;
    if (normalizeMac(body!.mac_address) !== ep.mac) {
      return problem(422, 'Unprocessable Entity', 'mac_address cannot be changed');
    }
    const fields = writableFields(body!);
    store.update(ep.id, {
      status: fields.status!,
      description: fields.description ?? '',
      attributes: fields.attributes ?? {},
      randomizedMac: fields.randomizedMac ?? false,
    });
    return { status: 200, body: view(store.byId(ep.id)!, req.base) };
  }

  return {
    vendor: 'clearpass',
    areaOf,
    authenticate,
    isWrite: (req) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method) && req.path !== '/api/oauth',
    macOf(req, area) {
      if (area !== 'endpoint') return undefined;
      const seg = segments(req.path);
      if (seg[1] !== 'endpoint') return undefined;
      if (seg[2] === 'mac-address') return normalizeMac(seg[3]);
      if (seg[2]) return /^\d+$/.test(seg[2]) ? store.byCpId(Number(seg[2]))?.mac : undefined;
      return normalizeMac((req.json as { mac_address?: unknown } | undefined)?.mac_address);
    },
    handle,
    error: (status, detail) => problem(status, statusTitle(status), detail),
    forgetClients: () => tokens.clear(),
  };
}

interface View {
  id: number;
  mac_address: string;
  description: string;
  status: CpStatus;
  attributes: Record<string, unknown>;
  randomized_mac: boolean;
  _links: { self: { href: string } };
}

function view(ep: SimEndpoint, base: string): View {
  return {
    id: ep.cpId,
    mac_address: ep.mac,
    description: ep.description,
    status: ep.status,
    attributes: { ...ep.attributes },
    randomized_mac: ep.randomizedMac,
    _links: { self: { href: `${base}/api/endpoint/${ep.cpId}` } },
  };
}

function writableFields(body: Record<string, unknown>): Partial<SimEndpoint> {
  const out: Partial<SimEndpoint> = {};
  if (typeof body.status === 'string') out.status = body.status as CpStatus;
  if (typeof body.description === 'string') out.description = body.description;
  if (body.attributes && typeof body.attributes === 'object') out.attributes = { ...(body.attributes as object) };
  if (typeof body.randomized_mac === 'boolean') out.randomizedMac = body.randomized_mac;
  return out;
}

function validate(body: Record<string, unknown> | undefined, full: boolean): ApiResult | undefined {
  const messages: Record<string, string> = {};
  if (!body || typeof body !== 'object') return problem(422, 'Unprocessable Entity', 'JSON object expected');
  if ((full || body.mac_address !== undefined) && !normalizeMac(body.mac_address)) {
    messages.mac_address = 'A valid MAC address is required';
  }
  if ((full || body.status !== undefined) && !CP_STATUSES.includes(body.status as CpStatus)) {
    messages.status = `Status must be one of ${CP_STATUSES.join(', ')}`;
  }
  if (body.attributes !== undefined && (typeof body.attributes !== 'object' || Array.isArray(body.attributes))) {
    messages.attributes = 'Attributes must be an object';
  }
  if (!Object.keys(messages).length) return undefined;
  return {
    status: 422,
    body: {
      ...(problem(422, 'Unprocessable Entity', 'Validation failed').body as object),
      validation_messages: messages,
    },
  };
}

/** ClearPass JSON filter: `{field: value}`, `{field: {"$eq"|"$ne"|"$contains"|"$in": …}}`, ANDed. */
function matchesFilter(v: View, filter: Record<string, unknown>): boolean {
  return Object.entries(filter).every(([field, cond]) => {
    const actual = (v as unknown as Record<string, unknown>)[field];
    if (cond && typeof cond === 'object' && !Array.isArray(cond)) {
      return Object.entries(cond).every(([op, x]) => {
        if (op === '$eq') return actual === x;
        if (op === '$ne') return actual !== x;
        if (op === '$contains') return typeof actual === 'string' && actual.includes(String(x));
        if (op === '$in') return Array.isArray(x) && x.includes(actual);
        return false;
      });
    }
    return actual === cond;
  });
}

export function problem(status: number, title: string, detail: string): ApiResult {
  return {
    status,
    body: { type: 'http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html', title, status, detail },
  };
}

function statusTitle(status: number): string {
  const titles: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    409: 'Conflict',
    422: 'Unprocessable Entity',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    502: 'Bad Gateway',
    503: 'Service Unavailable',
    504: 'Gateway Timeout',
  };
  return titles[status] ?? 'Error';
}

function parseJsonSafe(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
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
