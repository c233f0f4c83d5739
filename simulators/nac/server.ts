import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import type { ApiArea, ApiResult, SimRequest, SimShared, VendorApi } from './api';
import { createClearPassApi } from './clearpass/api';
import { createIseApi } from './ise/api';
import {
  clearpassKnobsFromBody,
  clearpassKnobsOf,
  DEFAULT_NAC_SIM_PROFILE,
  iseKnobsFromBody,
  iseKnobsOf,
  isNacSimProfileName,
  nacSimProfile,
  type NacSimProfile,
  type NacSimProfileName,
  type ProfileKnobs,
} from './profiles';
import { SessionStore, type CoaRecord, type SessionInput, type SimSession } from './sessions';
import { EndpointStore, normalizeMac, type EndpointInput } from './store';

/**
 * NAC simulator: Cisco ISE (ERS endpoints and identity groups, MnT sessions and CoA, the OpenAPI custom-attribute
 * definitions) and Aruba ClearPass (OAuth, endpoints, session control) on one port, over one endpoint store and one
 * session directory, with each vendor's paths, envelopes and status codes as its release does them
 * (`profiles.ts`, `NAC_SIM_PROFILE`). This file is the shared core: the HTTP server, the request log, rate limiting,
 * fault injection and the `/_sim/...` control API (no auth) that tests and other processes steer it with. The
 * vendors' APIs live in `ise/` and `clearpass/`.
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
  /** Version profile (default `ise-3.3`). */
  profile?: NacSimProfileName;
  /** ISE ERS CSRF check on (default off, as ISE ships). */
  iseCsrf?: boolean;
  /** ISE knobs (`profiles.ts` ProfileKnobs): node role, account role, ERS session idle, custom attributes. */
  iseNode?: ProfileKnobs['iseNode'];
  iseAccount?: ProfileKnobs['iseAccount'];
  iseSessionIdleMs?: number;
  iseCustomAttributes?: string[];
  iseUndefinedCustomAttributes?: ProfileKnobs['iseUndefinedCustomAttributes'];
  /** ClearPass knobs (`profiles.ts` ProfileKnobs): 6.12 PUT requires `profile`, operator privileges, delete marker. */
  clearpassPutRequiresProfile?: boolean;
  clearpassPrivileges?: string[];
  clearpassDeleteMarker?: boolean;
}

export interface FaultRule {
  /** Any MAC format; the rule matches requests about this MAC. */
  mac: string;
  /** Answer this status instead of doing the work. */
  status?: number;
  /** Only for this HTTP method. */
  method?: string;
  /** Only for this area of the vendor API (`ers`, `mnt`, `endpoint`, `session`…). */
  area?: ApiArea;
  /** The error's detail (ISE: the ERSResponse title, e.g. "Validation Error - …"); default "Injected fault". */
  detail?: string;
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
  /** Which part of the vendor's API (endpoint writes vs. session/CoA calls are counted apart). */
  area: ApiArea;
  /** 12 lower-case hex digits when the request concerns one MAC. */
  mac?: string;
  write: boolean;
}

export interface RequestCounters {
  total: number;
  writes: number;
  byMac: Record<string, { reads: number; writes: number }>;
  byArea: Partial<Record<ApiArea, number>>;
}

export interface NacSimulator {
  url: string;
  port: number;
  close(): Promise<void>;
  store: EndpointStore;
  sessions: SessionStore;
  /** The whitelist group's ISE id. */
  whitelistGroupId: string;
  profile(): NacSimProfile;
  /** Knobs not given keep their current value. */
  setProfile(name: NacSimProfileName, knobs?: ProfileKnobs): NacSimProfile;
  setFaults(faults: NacFaults): void;
  clearFaults(): void;
  requests(filter?: { mac?: string }): SimRequestRecord[];
  counters(): RequestCounters;
  clearRequests(): void;
  /** The device authenticates: opens a live session (learning the endpoint when unknown). */
  connect(input: SessionInput): SimSession;
  /** CoA and disconnect requests received (`GET /_sim/coa`). */
  coa(filter?: { mac?: string }): CoaRecord[];
  /** Invalidate every ClearPass token and ISE ERS session issued so far (clients must recover). */
  expireTokens(): void;
}

interface ActiveRule extends FaultRule {
  remaining: number;
}

const MAX_LOG = 10_000;
const DEFAULT_HANG_MS = 30_000;

export async function startNacSimulator(opts: NacSimulatorOptions): Promise<NacSimulator> {
  const sim = new NacSim(opts);
  return sim.listen();
}

class NacSim implements SimShared {
  readonly store: EndpointStore;
  readonly sessions: SessionStore;
  private activeProfile: NacSimProfile;
  /** ClearPass knobs as last set (kept across profile changes; the profile derives from name + knobs). */
  private clearpassKnobs: ProfileKnobs;
  /** ISE knobs as last set (kept across profile changes, like the ClearPass ones). */
  private iseKnobs: ProfileKnobs;
  private readonly vendors: VendorApi[];
  private faults: NacFaults = {};
  private rules: ActiveRule[] = [];
  private readonly log: SimRequestRecord[] = [];
  private seq = 0;
  private readonly acceptedAt: number[] = [];
  private readonly held = new Set<NodeJS.Timeout>();
  private readonly server: Server;

  constructor(readonly opts: NacSimulatorOptions) {
    this.clearpassKnobs = clearpassKnobsOf(opts);
    this.iseKnobs = iseKnobsOf(opts);
    this.activeProfile = nacSimProfile(opts.profile ?? DEFAULT_NAC_SIM_PROFILE, {
      ...this.iseKnobs,
      ...this.clearpassKnobs,
    });
    this.store = new EndpointStore(opts.whitelistGroup, opts.stateFile, () => this.activeProfile);
    this.sessions = new SessionStore(this.store);
    this.vendors = [createIseApi(this), createClearPassApi(this)];
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) send(res, { status: 500, body: { error: String(err) } });
      });
    });
  }

  profile(): NacSimProfile {
    return this.activeProfile;
  }

  setProfile(name: NacSimProfileName, knobs: ProfileKnobs = {}): NacSimProfile {
    this.clearpassKnobs = { ...this.clearpassKnobs, ...clearpassKnobsOf(knobs) };
    this.iseKnobs = { ...this.iseKnobs, ...iseKnobsOf(knobs) };
    this.activeProfile = nacSimProfile(name, {
      ...this.iseKnobs,
      ...this.clearpassKnobs,
    });
    this.store.profileChanged();
    for (const v of this.vendors) v.forgetClients();
    return this.activeProfile;
  }

  async listen(): Promise<NacSimulator> {
    const host = this.opts.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, host, () => resolve());
    });
    const port = (this.server.address() as AddressInfo).port;
    const urlHost = host.includes(':') ? `[${host}]` : host;
    const store = this.store;
    return {
      url: `http://${urlHost}:${port}`,
      port,
      close: () => this.close(),
      store: this.store,
      sessions: this.sessions,
      get whitelistGroupId() {
        return store.whitelistGroupId;
      },
      profile: () => this.activeProfile,
      setProfile: (name, knobs) => this.setProfile(name, knobs),
      setFaults: (f) => this.setFaults(f),
      clearFaults: () => this.setFaults({}),
      requests: (filter) => this.requests(filter),
      counters: () => this.counters(),
      clearRequests: () => {
        this.log.length = 0;
      },
      connect: (input) => this.sessions.connect(input),
      coa: (filter) => this.sessions.coa(filter),
      expireTokens: () => this.forgetClients(),
    };
  }

  private forgetClients(): void {
    for (const v of this.vendors) v.forgetClients();
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
    const sreq: SimRequest = {
      method: (req.method ?? 'GET').toUpperCase(),
      path: url.pathname,
      query: url.searchParams,
      rawBody,
      json: parseJsonSafe(rawBody),
      headers: req.headers,
      base: `http://${req.headers.host ?? 'localhost'}`,
    };
    if (sreq.path.startsWith('/_sim/')) return send(res, this.simRoute(sreq));

    let vendor: VendorApi | undefined;
    let area: ApiArea = 'other';
    for (const v of this.vendors) {
      const a = v.areaOf(sreq.path);
      if (a) {
        vendor = v;
        area = a;
        break;
      }
    }
    const mac = vendor?.macOf(sreq, area);
    const write = vendor?.isWrite(sreq, area) ?? false;
    const { result, hold } = await this.process(sreq, vendor, area, mac, write);
    this.record(sreq, vendor, area, mac, write, result.status);
    if (hold) return this.holdThenSend(res, result, hold);
    send(res, result);
  }

  /** Gates in the order a real appliance's front end would apply them, then the API itself. */
  private async process(
    req: SimRequest,
    vendor: VendorApi | undefined,
    area: ApiArea,
    mac: string | undefined,
    write: boolean
  ): Promise<{ result: ApiResult; hold?: number }> {
    const limited = this.rateLimit(req, vendor, area);
    if (limited) return { result: limited };
    if (this.faults.latencyMs) await sleep(this.faults.latencyMs);
    if (!vendor) return { result: { status: 404, body: { error: 'not found' } } };

    const denied = vendor.authenticate(req, area);
    if (denied) return { result: denied };

    const rule = this.matchRule(req.method, area, mac, write);
    if (rule?.status) {
      const injected = vendor.error(rule.status, rule.detail ?? 'Injected fault', req, area);
      return { result: rule.status === 429 ? withHeader(injected, 'retry-after', '2') : injected };
    }
    if (this.faults.errorRate5xx && Math.random() < this.faults.errorRate5xx) {
      return { result: vendor.error(500, 'Injected server error', req, area) };
    }
    const hangs =
      write &&
      (rule?.timeoutAfterCommit ||
        (!!this.faults.timeoutAfterCommitRate && Math.random() < this.faults.timeoutAfterCommitRate));
    const result = await vendor.handle(req, area);
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

  private rateLimit(req: SimRequest, vendor: VendorApi | undefined, area: ApiArea): ApiResult | undefined {
    const rps = this.faults.rateLimitRps;
    if (!rps) return undefined;
    const now = Date.now();
    while (this.acceptedAt.length && now - this.acceptedAt[0]! >= 1000) this.acceptedAt.shift();
    if (this.acceptedAt.length < rps) {
      this.acceptedAt.push(now);
      return undefined;
    }
    const retryAfterSec = Math.max(1, Math.ceil((this.acceptedAt[0]! + 1000 - now) / 1000));
    const err = (vendor ?? this.vendors[0]!).error(429, 'Too many requests', req, area);
    return withHeader(err, 'retry-after', String(retryAfterSec));
  }

  private matchRule(method: string, area: ApiArea, mac: string | undefined, write: boolean): ActiveRule | undefined {
    if (!mac) return undefined;
    const rule = this.rules.find(
      (r) =>
        r.remaining > 0 &&
        r.mac === mac &&
        (!r.method || r.method.toUpperCase() === method) &&
        (!r.area || r.area === area) &&
        // A time-out-after-commit rule only concerns writes; reads pass through untouched.
        (r.status !== undefined || (r.timeoutAfterCommit && write))
    );
    if (rule) rule.remaining -= 1;
    return rule;
  }

  private record(
    req: SimRequest,
    vendor: VendorApi | undefined,
    area: ApiArea,
    mac: string | undefined,
    write: boolean,
    status: number
  ): void {
    const q = req.query.toString();
    const entry: SimRequestRecord = {
      seq: ++this.seq,
      at: new Date().toISOString(),
      method: req.method,
      path: q ? `${req.path}?${q}` : req.path,
      status,
      api: vendor?.vendor ?? 'other',
      area,
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
    const c: RequestCounters = { total: this.log.length, writes: 0, byMac: {}, byArea: {} };
    for (const r of this.log) {
      if (r.write) c.writes++;
      c.byArea[r.area] = (c.byArea[r.area] ?? 0) + 1;
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

  // --- /_sim control API -----------------------------------------------------------------------------------------

  private simRoute(req: SimRequest): ApiResult {
    const route = `${req.method} ${req.path.replace(/\/+$/, '')}`;
    const object = (): Record<string, unknown> | undefined =>
      req.json && typeof req.json === 'object' && !Array.isArray(req.json)
        ? (req.json as Record<string, unknown>)
        : undefined;
    switch (route) {
      case 'GET /_sim/faults':
        return { status: 200, body: this.currentFaults() };
      case 'POST /_sim/faults': {
        const body = object();
        if (!body) return { status: 400, body: { error: 'JSON object expected' } };
        this.setFaults(body as NacFaults);
        return { status: 200, body: this.currentFaults() };
      }
      case 'DELETE /_sim/faults':
        this.setFaults({});
        return { status: 204 };
      case 'GET /_sim/profile':
        return { status: 200, body: this.activeProfile };
      case 'POST /_sim/profile': {
        const body = object();
        const name = body?.profile ?? this.activeProfile.name;
        if (typeof name !== 'string' || !isNacSimProfileName(name)) {
          return {
            status: 400,
            body: { error: 'profile must be one of ise-2.7, ise-3.3, clearpass-6.11, clearpass-6.12' },
          };
        }
        const ise = iseKnobsFromBody(body);
        if (typeof ise === 'string') return { status: 400, body: { error: ise } };
        const clearpass = clearpassKnobsFromBody(body);
        if (typeof clearpass === 'string') return { status: 400, body: { error: clearpass } };
        return { status: 200, body: this.setProfile(name, { ...ise, ...clearpass }) };
      }
      case 'GET /_sim/state':
        return {
          status: 200,
          body: {
            profile: this.activeProfile.name,
            endpoints: this.store.list(),
            groups: this.store.listGroups(),
            sessions: this.sessions.list(),
          },
        };
      case 'POST /_sim/reset':
        this.store.reset();
        this.sessions.reset();
        this.setFaults({});
        this.log.length = 0;
        this.forgetClients();
        return { status: 204 };
      case 'POST /_sim/endpoints':
        return this.simSeed(object());
      case 'GET /_sim/sessions':
        return { status: 200, body: this.sessions.list() };
      case 'POST /_sim/sessions': {
        const body = object();
        if (!body || !normalizeMac(body.mac)) return { status: 400, body: { error: 'mac (12 hex digits) required' } };
        const str = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : undefined);
        const session = this.sessions.connect({
          mac: body.mac as string,
          nasIp: str('nasIp'),
          endpointIp: str('endpointIp'),
          server: str('server'),
          username: str('username'),
        });
        return { status: 201, body: session };
      }
      case 'GET /_sim/coa':
        return { status: 200, body: this.sessions.coa({ mac: req.query.get('mac') ?? undefined }) };
      case 'DELETE /_sim/coa':
        this.sessions.clearCoa();
        return { status: 204 };
      case 'GET /_sim/requests': {
        const mac = req.query.get('mac') ?? undefined;
        return { status: 200, body: { ...this.counters(), requests: this.requests({ mac }) } };
      }
      case 'DELETE /_sim/requests':
        this.log.length = 0;
        return { status: 204 };
      case 'POST /_sim/expire-tokens':
        this.forgetClients();
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

  private simSeed(body: Record<string, unknown> | undefined): ApiResult {
    const input = body as (EndpointInput & { group?: string }) | undefined;
    if (!input || !normalizeMac(input.mac)) return { status: 400, body: { error: 'mac (12 hex digits) required' } };
    try {
      return { status: 201, body: this.store.seed(input) };
    } catch (err) {
      return { status: 400, body: { error: (err as Error).message } };
    }
  }
}

// --- plumbing --------------------------------------------------------------------------------------------------

function withHeader(result: ApiResult, name: string, value: string): ApiResult {
  return { ...result, headers: { ...result.headers, [name]: value } };
}

function send(res: ServerResponse, result: ApiResult): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string | string[]> = { ...result.headers };
  let payload = '';
  if (result.raw !== undefined) {
    headers['content-type'] = result.raw.contentType;
    payload = result.raw.text;
  } else if (result.body !== undefined) {
    headers['content-type'] ??= 'application/json';
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
