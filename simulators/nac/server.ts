import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import { formatMac } from '../../domain/mac';
import { CP_STATUSES, EndpointStore, normalizeMac, type CpStatus, type EndpointInput, type SimEndpoint } from './store';

/**
 * NAC simulator: the Cisco ISE ERS endpoint / endpoint-identity-group API and the Aruba ClearPass endpoint API on
 * one port, over one endpoint store, with faithful paths, envelopes and status codes (see
 * shared/reference/nac.md), state that can survive restarts, and fault injection driven over HTTP (`/_sim/...`,
 * no auth) so tests and other processes can steer it.
 */

export interface NacSimulatorOptions {
  port: number;
  host?: string;
  /** ISE ERS Basic-auth credentials accepted (exactly). */
  iseUsername: string;
  isePassword: string;
  /** ClearPass API client accepted (exactly). */
  clientId: string;
  clientSecret: string;
  /** Name of the whitelist endpoint identity group, created next to ISE's defaults. */
  whitelistGroup: string;
  /** JSON file the state is saved to after each change and loaded from at start. */
  stateFile?: string;
  /** One console line per API request (never headers or bodies). */
  logRequests?: boolean;
  /** ClearPass access-token lifetime in seconds (default 8 h, ClearPass's default). */
  tokenLifetimeSec?: number;
}

export interface FaultRule {
  /** Any MAC format; the rule matches requests about this MAC. */
  mac: string;
  /** Answer this status instead of doing the work. */
  status?: number;
  /** Only for this HTTP method. */
  method?: string;
  /** Commit the write, then hold the response for `hangMs` so the client times out. */
  timeoutAfterCommit?: boolean;
  /** How many times the rule fires (default: unlimited). */
  times?: number;
}

export interface NacFaults {
  /** Share of API requests (0..1) answered 500 before doing any work. */
  errorRate5xx?: number;
  /** Added to every API request. */
  latencyMs?: number;
  /** Share of writes (0..1) committed and then answered only after `hangMs`. */
  timeoutAfterCommitRate?: number;
  /** How long a time-out-after-commit response is held (default 30 s). */
  hangMs?: number;
  /** API requests per second accepted (sliding 1 s window); beyond it 429 + Retry-After. */
  rateLimitRps?: number;
  rules?: FaultRule[];
}

export interface SimRequestRecord {
  seq: number;
  at: string;
  method: string;
  /** Path and query. */
  path: string;
  status: number;
  api: 'ise' | 'clearpass' | 'other';
  /** 12 lower-case hex digits when the request concerns one MAC. */
  mac?: string;
  write: boolean;
}

export interface RequestCounters {
  total: number;
  writes: number;
  byMac: Record<string, { reads: number; writes: number }>;
}

export interface NacSimulator {
  url: string;
  port: number;
  close(): Promise<void>;
  store: EndpointStore;
  /** The whitelist group's ISE id. */
  whitelistGroupId: string;
  setFaults(faults: NacFaults): void;
  clearFaults(): void;
  requests(filter?: { mac?: string }): SimRequestRecord[];
  counters(): RequestCounters;
  clearRequests(): void;
  /** Invalidate every ClearPass token issued so far (clients must get a 401 and re-authenticate). */
  expireTokens(): void;
}

interface ApiResult {
  status: number;
  body?: unknown;
  /** Pre-rendered non-JSON body (ISE's HTML 401). */
  html?: string;
  headers?: Record<string, string>;
}

interface ActiveRule extends FaultRule {
  remaining: number;
}

interface Ctx {
  method: string;
  path: string;
  query: URLSearchParams;
  rawBody: string;
  json: unknown;
  headers: IncomingMessage['headers'];
  base: string;
}

const MAX_LOG = 10_000;
const DEFAULT_HANG_MS = 30_000;
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const ERS_PAGE_MAX = 100;
const CP_LIMIT_MAX = 1000;

export async function startNacSimulator(opts: NacSimulatorOptions): Promise<NacSimulator> {
  const sim = new NacSim(opts);
  return sim.listen();
}

class NacSim {
  readonly store: EndpointStore;
  private faults: NacFaults = {};
  private rules: ActiveRule[] = [];
  private readonly log: SimRequestRecord[] = [];
  private seq = 0;
  private readonly acceptedAt: number[] = [];
  private readonly tokens = new Map<string, number>();
  private readonly held = new Set<NodeJS.Timeout>();
  private readonly server: Server;

  constructor(private readonly opts: NacSimulatorOptions) {
    this.store = new EndpointStore(opts.whitelistGroup, opts.stateFile);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) send(res, { status: 500, body: { error: String(err) } });
      });
    });
  }

  async listen(): Promise<NacSimulator> {
    const host = this.opts.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, host, () => resolve());
    });
    const port = (this.server.address() as AddressInfo).port;
    const urlHost = host.includes(':') ? `[${host}]` : host;
    return {
      url: `http://${urlHost}:${port}`,
      port,
      close: () => this.close(),
      store: this.store,
      whitelistGroupId: this.store.whitelistGroupId,
      setFaults: (f) => this.setFaults(f),
      clearFaults: () => this.setFaults({}),
      requests: (filter) => this.requests(filter),
      counters: () => this.counters(),
      clearRequests: () => {
        this.log.length = 0;
      },
      expireTokens: () => this.tokens.clear(),
    };
  }

  private async close(): Promise<void> {
    for (const t of this.held) clearTimeout(t);
    this.held.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  // --- request pipeline ------------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const rawBody = await readBody(req);
    const ctx: Ctx = {
      method: (req.method ?? 'GET').toUpperCase(),
      path: url.pathname,
      query: url.searchParams,
      rawBody,
      json: parseJsonSafe(rawBody),
      headers: req.headers,
      base: `http://${req.headers.host ?? 'localhost'}`,
    };
    if (ctx.path.startsWith('/_sim/')) return send(res, this.simRoute(ctx));

    const api = ctx.path.startsWith('/ers/') ? 'ise' : ctx.path.startsWith('/api/') ? 'clearpass' : 'other';
    const mac = this.macOf(ctx, api);
    const write = WRITE_METHODS.has(ctx.method) && !(api === 'clearpass' && ctx.path === '/api/oauth');
    const { result, hold } = await this.process(ctx, api, mac, write);
    this.record(ctx, api, mac, write, result.status);
    if (hold) return this.holdThenSend(res, result, hold);
    send(res, result);
  }

  /** Gates in the order a real appliance's front end would apply them, then the API itself. */
  private async process(
    ctx: Ctx,
    api: SimRequestRecord['api'],
    mac: string | undefined,
    write: boolean
  ): Promise<{ result: ApiResult; hold?: number }> {
    const limited = this.rateLimit(api);
    if (limited) return { result: limited };
    if (this.faults.latencyMs) await sleep(this.faults.latencyMs);
    if (api === 'other') return { result: { status: 404, body: { error: 'not found' } } };

    const denied = api === 'ise' ? this.iseAuth(ctx) : this.cpAuth(ctx);
    if (denied) return { result: denied };

    const rule = this.matchRule(ctx.method, mac, write);
    if (rule?.status) {
      const injected = errorFor(api, rule.status, 'Injected fault', ctx.method);
      return { result: rule.status === 429 ? { ...injected, headers: { 'retry-after': '2' } } : injected };
    }
    if (this.faults.errorRate5xx && Math.random() < this.faults.errorRate5xx) {
      return { result: errorFor(api, 500, 'Injected server error', ctx.method) };
    }
    const hangs =
      write &&
      (rule?.timeoutAfterCommit ||
        (!!this.faults.timeoutAfterCommitRate && Math.random() < this.faults.timeoutAfterCommitRate));
    const result = api === 'ise' ? this.iseRoute(ctx) : this.cpRoute(ctx);
    return { result, hold: hangs ? (this.faults.hangMs ?? DEFAULT_HANG_MS) : undefined };
  }

  /** The write is committed; the answer comes only after `ms` (or never, if the client gave up). */
  private holdThenSend(res: ServerResponse, result: ApiResult, ms: number): void {
    const timer = setTimeout(() => {
      this.held.delete(timer);
      if (!res.destroyed) send(res, result);
    }, ms);
    this.held.add(timer);
    res.on('close', () => {
      clearTimeout(timer);
      this.held.delete(timer);
    });
  }

  private rateLimit(api: SimRequestRecord['api']): ApiResult | undefined {
    const rps = this.faults.rateLimitRps;
    if (!rps) return undefined;
    const now = Date.now();
    while (this.acceptedAt.length && now - this.acceptedAt[0]! >= 1000) this.acceptedAt.shift();
    if (this.acceptedAt.length < rps) {
      this.acceptedAt.push(now);
      return undefined;
    }
    const retryAfterSec = Math.max(1, Math.ceil((this.acceptedAt[0]! + 1000 - now) / 1000));
    const err = errorFor(api === 'clearpass' ? 'clearpass' : 'ise', 429, 'Too many requests', 'rate-limit');
    return { ...err, headers: { 'retry-after': String(retryAfterSec) } };
  }

  private matchRule(method: string, mac: string | undefined, write: boolean): ActiveRule | undefined {
    if (!mac) return undefined;
    const rule = this.rules.find(
      (r) =>
        r.remaining > 0 &&
        r.mac === mac &&
        (!r.method || r.method.toUpperCase() === method) &&
        // A time-out-after-commit rule only concerns writes; reads pass through untouched.
        (r.status !== undefined || (r.timeoutAfterCommit && write))
    );
    if (rule) rule.remaining -= 1;
    return rule;
  }

  private record(
    ctx: Ctx,
    api: SimRequestRecord['api'],
    mac: string | undefined,
    write: boolean,
    status: number
  ): void {
    const q = ctx.query.toString();
    const entry: SimRequestRecord = {
      seq: ++this.seq,
      at: new Date().toISOString(),
      method: ctx.method,
      path: q ? `${ctx.path}?${q}` : ctx.path,
      status,
      api,
      ...(mac ? { mac } : {}),
      write,
    };
    this.log.push(entry);
    if (this.log.length > MAX_LOG) this.log.shift();
    if (this.opts.logRequests) console.log(`[nac-sim] ${entry.method} ${entry.path} -> ${status}`);
  }

  private requests(filter?: { mac?: string }): SimRequestRecord[] {
    const mac = filter?.mac ? normalizeMac(filter.mac) : undefined;
    return this.log.filter((r) => !mac || r.mac === mac).map((r) => ({ ...r }));
  }

  private counters(): RequestCounters {
    const c: RequestCounters = { total: this.log.length, writes: 0, byMac: {} };
    for (const r of this.log) {
      if (r.write) c.writes++;
      if (!r.mac) continue;
      const m = (c.byMac[r.mac] ??= { reads: 0, writes: 0 });
      if (r.write) m.writes++;
      else m.reads++;
    }
    return c;
  }

  private setFaults(f: NacFaults): void {
    this.faults = { ...f };
    this.rules = (f.rules ?? []).map((r) => ({
      ...r,
      mac: normalizeMac(r.mac) ?? r.mac,
      remaining: r.times ?? Number.POSITIVE_INFINITY,
    }));
    this.acceptedAt.length = 0;
  }

  /** Which MAC a request concerns (for rules and the request log). */
  private macOf(ctx: Ctx, api: SimRequestRecord['api']): string | undefined {
    const seg = ctx.path.split('/').filter(Boolean).map(decodeURIComponentSafe);
    if (api === 'ise') {
      if (seg[2] !== 'endpoint') return undefined;
      if (seg[3] === 'name') return normalizeMac(seg[4]);
      if (seg[3]) return this.store.byId(seg[3])?.mac;
      const body = (ctx.json as { ERSEndPoint?: { mac?: unknown } } | undefined)?.ERSEndPoint;
      if (body?.mac) return normalizeMac(body.mac);
      const macFilter = ctx.query.getAll('filter').find((f) => f.startsWith('mac.EQ.'));
      return macFilter ? normalizeMac(macFilter.slice(7)) : undefined;
    }
    if (api === 'clearpass') {
      if (seg[1] !== 'endpoint') return undefined;
      if (seg[2] === 'mac-address') return normalizeMac(seg[3]);
      if (seg[2]) return /^\d+$/.test(seg[2]) ? this.store.byCpId(Number(seg[2]))?.mac : undefined;
      return normalizeMac((ctx.json as { mac_address?: unknown } | undefined)?.mac_address);
    }
    return undefined;
  }

  // --- /_sim control API -----------------------------------------------------------------------------------------

  private simRoute(ctx: Ctx): ApiResult {
    const route = `${ctx.method} ${ctx.path.replace(/\/+$/, '')}`;
    switch (route) {
      case 'GET /_sim/faults':
        return { status: 200, body: this.currentFaults() };
      case 'POST /_sim/faults':
        if (!ctx.json || typeof ctx.json !== 'object') return { status: 400, body: { error: 'JSON object expected' } };
        this.setFaults(ctx.json as NacFaults);
        return { status: 200, body: this.currentFaults() };
      case 'DELETE /_sim/faults':
        this.setFaults({});
        return { status: 204 };
      case 'GET /_sim/state':
        return { status: 200, body: { endpoints: this.store.list(), groups: this.store.listGroups() } };
      case 'POST /_sim/reset':
        this.store.reset();
        this.setFaults({});
        this.log.length = 0;
        this.tokens.clear();
        return { status: 204 };
      case 'POST /_sim/endpoints':
        return this.simSeed(ctx.json);
      case 'GET /_sim/requests': {
        const mac = ctx.query.get('mac') ?? undefined;
        return { status: 200, body: { ...this.counters(), requests: this.requests({ mac }) } };
      }
      case 'DELETE /_sim/requests':
        this.log.length = 0;
        return { status: 204 };
      case 'POST /_sim/expire-tokens':
        this.tokens.clear();
        return { status: 204 };
      default:
        return { status: 404, body: { error: `no such simulator route: ${route}` } };
    }
  }

  private currentFaults(): NacFaults {
    const rules = this.rules.map(({ remaining, ...r }) => ({
      ...r,
      ...(Number.isFinite(remaining) ? { times: remaining } : {}),
    }));
    return { ...this.faults, rules };
  }

  private simSeed(body: unknown): ApiResult {
    const input = body as (EndpointInput & { group?: string }) | undefined;
    if (!input || !normalizeMac(input.mac)) return { status: 400, body: { error: 'mac (12 hex digits) required' } };
    try {
      return { status: 201, body: this.store.seed(input) };
    } catch (err) {
      return { status: 400, body: { error: (err as Error).message } };
    }
  }

  // --- Cisco ISE ERS ---------------------------------------------------------------------------------------------

  private iseAuth(ctx: Ctx): ApiResult | undefined {
    const expected = 'Basic ' + Buffer.from(`${this.opts.iseUsername}:${this.opts.isePassword}`).toString('base64');
    if (ctx.headers.authorization === expected) return undefined;
    return {
      status: 401,
      html: '<!doctype html><html lang="en"><head><title>HTTP Status 401 – Unauthorized</title></head><body><h1>HTTP Status 401 – Unauthorized</h1></body></html>',
      headers: { 'www-authenticate': 'Basic realm="Cisco ISE"' },
    };
  }

  private iseRoute(ctx: Ctx): ApiResult {
    const seg = ctx.path.replace(/\/+$/, '').split('/').filter(Boolean).map(decodeURIComponentSafe);
    if (seg[0] !== 'ers' || seg[1] !== 'config') return ersError(404, 'Resource not found', ctx.method, 'resource');
    const resource = seg[2];
    if (WRITE_METHODS.has(ctx.method) && ctx.method !== 'DELETE' && !/json/i.test(ctx.headers['content-type'] ?? '')) {
      return ersError(415, 'Unsupported media type', ctx.method, resource ?? 'resource');
    }
    if (resource === 'endpointgroup') return this.iseGroups(ctx, seg.slice(3));
    if (resource === 'endpoint') return this.iseEndpoints(ctx, seg.slice(3));
    return ersError(404, 'Resource not found', ctx.method, resource ?? 'resource');
  }

  private iseGroups(ctx: Ctx, rest: string[]): ApiResult {
    if (ctx.method !== 'GET') return ersError(405, 'Method not allowed', ctx.method, 'endpointgroup');
    if (rest.length === 0) {
      const names = ctx.query
        .getAll('filter')
        .filter((f) => f.startsWith('name.EQ.'))
        .map((f) => f.slice(8));
      const groups = this.store.listGroups().filter((g) => names.every((n) => g.name === n));
      return ersSearch(
        ctx,
        groups.map((g) => ({ id: g.id, name: g.name, description: g.description })),
        'endpointgroup'
      );
    }
    const group = rest[0] === 'name' ? this.store.groupByName(rest[1] ?? '') : this.store.groupById(rest[0]!);
    if (!group) return ersError(404, 'Resource not found', 'GET', 'endpointgroup');
    return {
      status: 200,
      body: { EndPointGroup: { ...group, link: ersLink(ctx.base, 'endpointgroup', group.id) } },
    };
  }

  private iseEndpoints(ctx: Ctx, rest: string[]): ApiResult {
    if (rest.length === 0) {
      if (ctx.method === 'GET') return this.iseSearch(ctx);
      if (ctx.method === 'POST') return this.iseCreate(ctx);
      return ersError(405, 'Method not allowed', ctx.method, 'endpoint');
    }
    if (rest[0] === 'name') {
      if (ctx.method !== 'GET') return ersError(405, 'Method not allowed', ctx.method, 'endpoint');
      const mac = normalizeMac(rest[1]);
      const ep = mac ? this.store.byMac(mac) : undefined;
      if (!ep) return ersError(404, 'Resource not found', 'GET-getbyname', 'endpoint');
      return { status: 200, body: { ERSEndPoint: iseView(ep, ctx.base) } };
    }
    const ep = this.store.byId(rest[0]!);
    if (!ep) return ersError(404, 'Resource not found', ctx.method, 'endpoint');
    switch (ctx.method) {
      case 'GET':
        return { status: 200, body: { ERSEndPoint: iseView(ep, ctx.base) } };
      case 'PUT':
        return this.iseUpdate(ctx, ep);
      case 'DELETE':
        this.store.delete(ep.id);
        return { status: 204 };
      default:
        return ersError(405, 'Method not allowed', ctx.method, 'endpoint');
    }
  }

  private iseSearch(ctx: Ctx): ApiResult {
    const filters = ctx.query.getAll('filter');
    let eps = this.store.list();
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
      ctx,
      eps.map((e) => ({ id: e.id, name: e.name })),
      'endpoint'
    );
  }

  private iseCreate(ctx: Ctx): ApiResult {
    const body = (ctx.json as { ERSEndPoint?: Record<string, unknown> } | undefined)?.ERSEndPoint;
    if (!body) return ersError(400, 'Invalid request: ERSEndPoint expected', 'POST-create', 'endpoint');
    const mac = normalizeMac(body.mac);
    if (!mac) return ersError(400, `Invalid MAC address: ${String(body.mac)}`, 'POST-create', 'endpoint');
    if (this.store.byMac(mac)) {
      return ersError(
        400,
        `Unable to create the endpoint. Endpoint "${formatMac(mac, 'colon-upper')}" already exists.`,
        'POST-create',
        'endpoint'
      );
    }
    const fields = iseFields(body);
    if (fields.groupId !== undefined && !this.store.groupById(fields.groupId)) {
      return ersError(400, `Endpoint identity group ${fields.groupId} does not exist`, 'POST-create', 'endpoint');
    }
    const ep = this.store.create({ ...fields, mac });
    return { status: 201, headers: { location: `${ctx.base}/ers/config/endpoint/${ep.id}` } };
  }

  private iseUpdate(ctx: Ctx, ep: SimEndpoint): ApiResult {
    const body = (ctx.json as { ERSEndPoint?: Record<string, unknown> } | undefined)?.ERSEndPoint;
    if (!body) return ersError(400, 'Invalid request: ERSEndPoint expected', 'PUT-update', 'endpoint');
    if (body.id !== undefined && body.id !== ep.id) {
      return ersError(400, 'Resource id in the body does not match the URL', 'PUT-update', 'endpoint');
    }
    if (body.mac !== undefined && normalizeMac(body.mac) !== ep.mac) {
      return ersError(400, 'The MAC address of an endpoint cannot be changed', 'PUT-update', 'endpoint');
    }
    const fields = iseFields(body);
    if (fields.groupId !== undefined && !this.store.groupById(fields.groupId)) {
      return ersError(400, `Endpoint identity group ${fields.groupId} does not exist`, 'PUT-update', 'endpoint');
    }
    const changed = this.store.update(ep.id, fields);
    const updatedField = changed.map((c) => ({
      field: c.field,
      oldValue: typeof c.oldValue === 'string' ? c.oldValue : JSON.stringify(c.oldValue),
      newValue: typeof c.newValue === 'string' ? c.newValue : JSON.stringify(c.newValue),
    }));
    return { status: 200, body: { UpdatedFieldsList: { updatedField } } };
  }

  // --- Aruba ClearPass -------------------------------------------------------------------------------------------

  private cpAuth(ctx: Ctx): ApiResult | undefined {
    if (ctx.path === '/api/oauth') return undefined; // the token endpoint authenticates by body
    const m = /^Bearer (\S+)$/.exec(ctx.headers.authorization ?? '');
    const expiresAt = m ? this.tokens.get(m[1]!) : undefined;
    if (expiresAt !== undefined && expiresAt > Date.now()) return undefined;
    return problem(401, 'Unauthorized', 'Invalid or expired bearer token');
  }

  private cpRoute(ctx: Ctx): ApiResult {
    const seg = ctx.path.replace(/\/+$/, '').split('/').filter(Boolean).map(decodeURIComponentSafe);
    if (seg[1] === 'oauth' && seg.length === 2) {
      return ctx.method === 'POST' ? this.cpToken(ctx) : problem(405, 'Method Not Allowed', 'Use POST');
    }
    if (seg[1] !== 'endpoint') return problem(404, 'Not Found', `No route for ${ctx.path}`);
    if (seg.length === 2) {
      if (ctx.method === 'GET') return this.cpList(ctx);
      if (ctx.method === 'POST') return this.cpCreate(ctx);
      return problem(405, 'Method Not Allowed', `${ctx.method} not allowed`);
    }
    let ep: SimEndpoint | undefined;
    if (seg[2] === 'mac-address' && seg.length === 4) {
      const mac = normalizeMac(seg[3]);
      ep = mac ? this.store.byMac(mac) : undefined;
    } else if (seg.length === 3 && /^\d+$/.test(seg[2]!)) {
      ep = this.store.byCpId(Number(seg[2]));
    } else {
      return problem(404, 'Not Found', `No route for ${ctx.path}`);
    }
    if (!ep) return problem(404, 'Not Found', 'Endpoint not found');
    switch (ctx.method) {
      case 'GET':
        return { status: 200, body: cpView(ep, ctx.base) };
      case 'PATCH':
        return this.cpPatch(ctx, ep);
      case 'PUT':
        return this.cpReplace(ctx, ep);
      case 'DELETE':
        this.store.delete(ep.id);
        return { status: 204 };
      default:
        return problem(405, 'Method Not Allowed', `${ctx.method} not allowed`);
    }
  }

  private cpToken(ctx: Ctx): ApiResult {
    const body = (ctx.json ?? Object.fromEntries(new URLSearchParams(ctx.rawBody))) as Record<string, unknown>;
    if (body.grant_type !== 'client_credentials') {
      return problem(400, 'unsupported_grant_type', 'The authorization grant type is not supported');
    }
    if (body.client_id !== this.opts.clientId || body.client_secret !== this.opts.clientSecret) {
      return problem(400, 'invalid_client', 'The client credentials are invalid');
    }
    const lifetime = this.opts.tokenLifetimeSec ?? 28_800;
    const token = randomBytes(20).toString('hex');
    this.tokens.set(token, Date.now() + lifetime * 1000);
    return { status: 200, body: { access_token: token, expires_in: lifetime, token_type: 'Bearer', scope: null } };
  }

  private cpList(ctx: Ctx): ApiResult {
    let filter: Record<string, unknown> = {};
    const rawFilter = ctx.query.get('filter');
    if (rawFilter) {
      const parsed = parseJsonSafe(rawFilter);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
        return problem(422, 'Unprocessable Entity', 'filter must be a JSON object');
      }
      filter = parsed as Record<string, unknown>;
    }
    const offset = Number(ctx.query.get('offset') ?? 0);
    const limit = Number(ctx.query.get('limit') ?? 25);
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(limit) || limit < 1 || limit > CP_LIMIT_MAX) {
      return problem(422, 'Unprocessable Entity', `offset must be >= 0 and limit 1..${CP_LIMIT_MAX}`);
    }
    const desc = (ctx.query.get('sort') ?? '+id').startsWith('-');
    const all = this.store
      .list()
      .map((e) => cpView(e, ctx.base))
      .filter((v) => matchesCpFilter(v, filter))
      .sort((a, b) => (desc ? b.id - a.id : a.id - b.id));
    const items = all.slice(offset, offset + limit);
    const page = (o: number) => {
      const q = new URLSearchParams(ctx.query);
      q.set('offset', String(o));
      q.set('limit', String(limit));
      return { href: `${ctx.base}/api/endpoint?${q.toString()}` };
    };
    const links: Record<string, { href: string }> = { self: page(offset), first: page(0) };
    if (offset + limit < all.length) links.next = page(offset + limit);
    if (offset > 0) links.prev = page(Math.max(0, offset - limit));
    return {
      status: 200,
      body: {
        _links: links,
        _embedded: { items },
        ...(ctx.query.get('calculate_count') === 'true' ? { count: all.length } : {}),
      },
    };
  }

  private cpCreate(ctx: Ctx): ApiResult {
    const body = ctx.json as Record<string, unknown> | undefined;
    const invalid = cpValidate(body, true);
    if (invalid) return invalid;
    const mac = normalizeMac(body!.mac_address)!;
    if (this.store.byMac(mac)) {
      return problem(422, 'Unprocessable Entity', `Endpoint with MAC address ${mac} already exists`);
    }
    const ep = this.store.create({ ...cpFields(body!), mac });
    return { status: 201, body: cpView(ep, ctx.base) };
  }

  /** PATCH merges: top-level fields present replace, `attributes` merge key by key (null removes a key). */
  private cpPatch(ctx: Ctx, ep: SimEndpoint): ApiResult {
    const body = ctx.json as Record<string, unknown> | undefined;
    const invalid = cpValidate(body, false);
    if (invalid) return invalid;
    if (body!.mac_address !== undefined && normalizeMac(body!.mac_address) !== ep.mac) {
      return problem(422, 'Unprocessable Entity', 'mac_address cannot be changed');
    }
    const fields = cpFields(body!);
    if (fields.attributes) {
      const merged: Record<string, unknown> = { ...ep.attributes, ...fields.attributes };
      for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
      fields.attributes = merged;
    }
    this.store.update(ep.id, fields);
    return { status: 200, body: cpView(this.store.byId(ep.id)!, ctx.base) };
  }

  /** PUT replaces: what the body omits goes back to its default (empty description, no attributes). */
  private cpReplace(ctx: Ctx, ep: SimEndpoint): ApiResult {
    const body = ctx.json as Record<string, unknown> | undefined;
    const invalid = cpValidate(body, true);
    if (invalid) return invalid;
    if (normalizeMac(body!.mac_address) !== ep.mac) {
      return problem(422, 'Unprocessable Entity', 'mac_address cannot be changed');
    }
    const fields = cpFields(body!);
    this.store.update(ep.id, {
      status: fields.status!,
      description: fields.description ?? '',
      attributes: fields.attributes ?? {},
      randomizedMac: fields.randomizedMac ?? false,
    });
    return { status: 200, body: cpView(this.store.byId(ep.id)!, ctx.base) };
  }
}

// --- ISE views and envelopes -----------------------------------------------------------------------------------

function iseView(ep: SimEndpoint, base: string): Record<string, unknown> {
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
function iseFields(body: Record<string, unknown>): Partial<SimEndpoint> {
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

function ersLink(base: string, resource: string, id: string): Record<string, string> {
  return { rel: 'self', href: `${base}/ers/config/${resource}/${id}`, type: 'application/json' };
}

function ersSearch(
  ctx: Ctx,
  resources: Array<{ id: string; name: string; description?: string }>,
  resource: string
): ApiResult {
  const size = Number(ctx.query.get('size') ?? 20);
  const page = Number(ctx.query.get('page') ?? 1);
  if (!Number.isInteger(size) || size < 1 || size > ERS_PAGE_MAX || !Number.isInteger(page) || page < 1) {
    return ersError(400, `Page size must be 1..${ERS_PAGE_MAX} and page >= 1`, 'GET-search', resource);
  }
  const start = (page - 1) * size;
  const slice = resources.slice(start, start + size).map((r) => ({ ...r, link: ersLink(ctx.base, resource, r.id) }));
  const pageLink = (p: number) => {
    const q = new URLSearchParams(ctx.query);
    q.set('size', String(size));
    q.set('page', String(p));
    return {
      rel: p > page ? 'next' : 'previous',
      href: `${ctx.base}/ers/config/${resource}?${q.toString()}`,
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

function ersError(status: number, title: string, operation: string, resource: string): ApiResult {
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

// --- ClearPass views and envelopes -----------------------------------------------------------------------------

interface CpView {
  id: number;
  mac_address: string;
  description: string;
  status: CpStatus;
  attributes: Record<string, unknown>;
  randomized_mac: boolean;
  _links: { self: { href: string } };
}

function cpView(ep: SimEndpoint, base: string): CpView {
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

function cpFields(body: Record<string, unknown>): Partial<SimEndpoint> {
  const out: Partial<SimEndpoint> = {};
  if (typeof body.status === 'string') out.status = body.status as CpStatus;
  if (typeof body.description === 'string') out.description = body.description;
  if (body.attributes && typeof body.attributes === 'object') out.attributes = { ...(body.attributes as object) };
  if (typeof body.randomized_mac === 'boolean') out.randomizedMac = body.randomized_mac;
  return out;
}

function cpValidate(body: Record<string, unknown> | undefined, full: boolean): ApiResult | undefined {
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
function matchesCpFilter(view: CpView, filter: Record<string, unknown>): boolean {
  return Object.entries(filter).every(([field, cond]) => {
    const actual = (view as unknown as Record<string, unknown>)[field];
    if (cond && typeof cond === 'object' && !Array.isArray(cond)) {
      return Object.entries(cond).every(([op, v]) => {
        if (op === '$eq') return actual === v;
        if (op === '$ne') return actual !== v;
        if (op === '$contains') return typeof actual === 'string' && actual.includes(String(v));
        if (op === '$in') return Array.isArray(v) && v.includes(actual);
        return false;
      });
    }
    return actual === cond;
  });
}

function problem(status: number, title: string, detail: string): ApiResult {
  return {
    status,
    body: { type: 'http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html', title, status, detail },
  };
}

function errorFor(api: SimRequestRecord['api'], status: number, detail: string, operation: string): ApiResult {
  if (api === 'clearpass') return problem(status, statusTitle(status), detail);
  return ersError(status, detail, operation, 'endpoint');
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

// --- plumbing --------------------------------------------------------------------------------------------------

function send(res: ServerResponse, result: ApiResult): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string> = { ...result.headers };
  let payload = '';
  if (result.html !== undefined) {
    headers['content-type'] = 'text/html;charset=utf-8';
    payload = result.html;
  } else if (result.body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(result.body);
  }
  res.writeHead(result.status, headers);
  res.end(payload);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJsonSafe(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
