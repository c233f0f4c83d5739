import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Plumbing shared by the platform simulators: fault injection (all three), and for DingTalk and WeCom a tiny router
 * and request handler, JSON bodies, access tokens, the `/_sim` control API, and the platforms' event push (one
 * ordered queue per approval instance, redelivery on failure after a schedule, a record of every attempt). The
 * protocol itself (envelopes, crypto, error codes, what counts as acknowledged) is each simulator's, passed in.
 */

export interface SimCtx {
  method: string;
  path: string;
  query: URLSearchParams;
  params: Record<string, string>;
  headers: IncomingMessage['headers'];
  raw: Buffer;
  /** Parsed JSON object body ({} when empty); undefined when the body is not a JSON object. */
  body: Record<string, unknown> | undefined;
}

export interface SimReply {
  status?: number;
  body: unknown;
  headers?: Record<string, string>;
}

export type SimHandler = (ctx: SimCtx) => SimReply | Promise<SimReply>;

interface CompiledRoute {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: SimHandler;
}

/** A bad `/_sim` request: answered 400 `{error}`. */
export class SimInputError extends Error {}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export class SimRouter {
  private readonly routes: CompiledRoute[] = [];

  add(method: string, path: string, handler: SimHandler): this {
    const keys: string[] = [];
    const source = path.replace(/:(\w+)/g, (_, key: string) => {
      keys.push(key);
      return '([^/]+)';
    });
    this.routes.push({ method, pattern: new RegExp(`^${source}$`), keys, handler });
    return this;
  }

  match(method: string, path: string): { handler: SimHandler; params: Record<string, string> } | 'method' | undefined {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params = Object.fromEntries(route.keys.map((k, i) => [k, decodeURIComponent(m[i + 1]!)]));
      return { handler: route.handler, params };
    }
    return pathMatched ? 'method' : undefined;
  }
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function parseJsonObject(raw: Buffer): Record<string, unknown> | undefined {
  if (raw.length === 0) return {};
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

export async function listen(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  port: number,
  host: string
): Promise<{ server: Server; port: number; url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    server,
    port: actual,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ---- event push ------------------------------------------------------------------------------------------------

export interface DeliveryRecord {
  event_id: string;
  event_type: string;
  instance_id?: string;
  /** 1 for the first push, then redeliveries. */
  attempt: number;
  /** A push of an event that was already acknowledged (the `duplicateRate` knob). */
  duplicate?: boolean;
  status?: number;
  error?: string;
  ok: boolean;
  /** Set on the last attempt of an event: delivered, or the platform gave up. */
  outcome?: 'delivered' | 'gave-up';
  at: string;
  duration_ms: number;
}

export interface PushResult {
  ok: boolean;
  status?: number;
  error?: string;
  durationMs: number;
  /** A failure the platform does not push again after (e.g. WeCom, read as 90930: only time-outs are retried). */
  final?: boolean;
}

interface Pending<T> {
  id: string;
  type: string;
  instanceId?: string;
  payload: T;
  attempts: number;
  /** Acknowledged, and about to be pushed once more as a duplicate. */
  acknowledged?: boolean;
}

export interface PushQueueOptions<T> {
  /** The platform stopped pushing this event (its failed-push list, where it has one). */
  onGiveUp?(payload: T, meta: { id: string; type: string; instanceId?: string }): void;
}

/**
 * Ordered push with redelivery: events of one instance go one at a time (a later one waits until the earlier one is
 * acknowledged or given up), a failed push is retried after `delaysMs[attempt-1] * scale`, and the last delay's
 * failure gives up. With `duplicateRate` an acknowledged event is pushed once more after the first delay, as the
 * platforms may ("依然可能出现重复推送", DingTalk Stream protocol FAQ).
 */
export class PushQueue<T> {
  readonly deliveries: DeliveryRecord[] = [];
  /** Probability (0–1) that an acknowledged event is pushed again. */
  duplicateRate = 0;
  private readonly queues = new Map<string, Pending<T>[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private epoch = 0;
  private closed = false;

  constructor(
    private readonly push: (payload: T) => Promise<PushResult>,
    private readonly delaysMs: readonly number[],
    private readonly scale: number,
    private readonly opts: PushQueueOptions<T> = {}
  ) {}

  enqueue(payload: T, meta: { id: string; type: string; instanceId?: string }): void {
    const key = meta.instanceId ? `instance:${meta.instanceId}` : `event:${meta.id}`;
    const queue = this.queues.get(key) ?? [];
    queue.push({ ...meta, payload, attempts: 0 });
    this.queues.set(key, queue);
    if (queue.length === 1) void this.pushHead(key);
  }

  /** Record an event that was never sent (e.g. no subscription). */
  record(r: DeliveryRecord): void {
    this.deliveries.push(r);
  }

  private async pushHead(key: string): Promise<void> {
    const queue = this.queues.get(key);
    const head = queue?.[0];
    if (this.closed || !queue || !head) return;
    const startedIn = this.epoch;
    const duplicate = head.acknowledged === true;
    head.attempts += 1;
    const result = await this.push(head.payload);
    if (this.closed || this.epoch !== startedIn) return;
    const exhausted = !duplicate && !result.ok && (result.final === true || head.attempts > this.delaysMs.length);
    this.deliveries.push({
      event_id: head.id,
      event_type: head.type,
      instance_id: head.instanceId,
      attempt: head.attempts,
      ...(duplicate ? { duplicate } : {}),
      status: result.status,
      error: result.ok ? undefined : (result.error ?? `HTTP ${result.status}`),
      ok: result.ok,
      outcome: result.ok ? 'delivered' : exhausted ? 'gave-up' : undefined,
      at: new Date().toISOString(),
      duration_ms: result.durationMs,
    });
    const again = result.ok && !duplicate && this.duplicateRate > 0 && Math.random() < this.duplicateRate;
    if (again) head.acknowledged = true;
    if (exhausted) this.opts.onGiveUp?.(head.payload, { id: head.id, type: head.type, instanceId: head.instanceId });
    if (duplicate || (result.ok && !again) || exhausted) {
      queue.shift();
      if (queue.length === 0) this.queues.delete(key);
      else void this.pushHead(key);
      return;
    }
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        void this.pushHead(key);
      },
      this.delaysMs[again ? 0 : head.attempts - 1]! * this.scale
    );
    this.timers.add(timer);
  }

  pendingCount(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  async waitFor(opts: { count?: number; timeoutMs?: number } = {}, name = 'simulator'): Promise<DeliveryRecord[]> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    const done = () => (opts.count !== undefined ? this.deliveries.length >= opts.count : this.pendingCount() === 0);
    while (!done()) {
      if (Date.now() > deadline) {
        throw new Error(
          `${name}: deliveries not settled (${this.deliveries.length} recorded, ${this.pendingCount()} pending)`
        );
      }
      await sleep(10);
    }
    return [...this.deliveries];
  }

  reset(): void {
    this.epoch += 1;
    this.queues.clear();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.deliveries.length = 0;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

// ---- faults ----------------------------------------------------------------------------------------------------

/** `C`: the platform's error-code type (Feishu's are numbers; DingTalk v1.0 has string codes). */
export interface FailPathFault<C extends number | string = number | string> {
  pathPrefix: string;
  /** HTTP status of the failure (DingTalk v1.0) — WeCom and DingTalk's legacy API answer 200 with an errcode. */
  status: number;
  code: C;
  msg?: string;
  method?: string;
  /** Fail this many matching requests, then stop; default: every one. */
  times?: number;
}

export interface SimFaults<C extends number | string = number | string> {
  /** Probability (0–1) that an API call fails with the platform's "system busy". */
  errorRate?: number;
  latencyMs?: number;
  rateLimit?: { perSecond: number };
  failPaths?: FailPathFault<C>[];
}

/** The `/_sim/faults` body; with `numericCodes`, a failPath's code must be an integer. */
export function parseFaults(body: Record<string, unknown>, opts: { numericCodes: true }): SimFaults<number>;
export function parseFaults(body: Record<string, unknown>, opts?: { numericCodes?: boolean }): SimFaults;
export function parseFaults(body: Record<string, unknown>, opts: { numericCodes?: boolean } = {}): SimFaults {
  const next: SimFaults = {};
  if (body.errorRate !== undefined) {
    const rate = Number(body.errorRate);
    if (!(rate >= 0 && rate <= 1)) throw new SimInputError('errorRate must be between 0 and 1');
    next.errorRate = rate;
  }
  if (body.latencyMs !== undefined) next.latencyMs = Math.max(0, Number(body.latencyMs) || 0);
  const rl = body.rateLimit as { perSecond?: unknown } | undefined;
  if (rl !== undefined) {
    if (!(Number(rl?.perSecond) > 0)) throw new SimInputError('rateLimit.perSecond must be > 0');
    next.rateLimit = { perSecond: Number(rl.perSecond) };
  }
  if (body.failPaths !== undefined) {
    if (!Array.isArray(body.failPaths)) throw new SimInputError('failPaths must be an array');
    next.failPaths = body.failPaths.map((f: Record<string, unknown>, i) => {
      const code = f?.code;
      if (
        typeof f?.pathPrefix !== 'string' ||
        !Number.isInteger(f.status) ||
        (typeof code !== 'string' && !Number.isInteger(code)) ||
        (opts.numericCodes && !Number.isInteger(code))
      ) {
        throw new SimInputError(`failPaths[${i}] needs pathPrefix, status and code`);
      }
      return {
        pathPrefix: f.pathPrefix,
        status: f.status as number,
        code: code as number | string,
        msg: str(f.msg),
        method: str(f.method),
        times: f.times === undefined ? undefined : Number(f.times),
      };
    });
  }
  return next;
}

/** Per-second window counter for the rateLimit fault. */
export class RateWindow {
  private second = 0;
  private count = 0;
  exceeded(perSecond: number): boolean {
    const s = Math.floor(Date.now() / 1000);
    if (s !== this.second) {
      this.second = s;
      this.count = 0;
    }
    this.count += 1;
    return this.count > perSecond;
  }
}

/** The first failPath matching this request (its `times` is consumed). */
export function takeFailPath<C extends number | string>(
  faults: SimFaults<C>,
  method: string,
  path: string
): FailPathFault<C> | undefined {
  const fail = faults.failPaths?.find(
    (f) => path.startsWith(f.pathPrefix) && (!f.method || f.method.toUpperCase() === method) && f.times !== 0
  );
  if (fail && fail.times !== undefined) fail.times -= 1;
  return fail;
}

// ---- access tokens ---------------------------------------------------------------------------------------------

/** Access tokens a simulator handed out, each with its expiry; revoking them all is how tests make a token go bad. */
export class SimTokens {
  private readonly tokens = new Map<string, number>();
  constructor(private readonly ttlMs: number) {}

  issue(prefix = ''): string {
    const token = `${prefix}${randomBytes(16).toString('hex')}`;
    this.tokens.set(token, Date.now() + this.ttlMs);
    return token;
  }

  check(token: string | null | undefined): 'ok' | 'missing' | 'unknown' | 'expired' {
    if (!token) return 'missing';
    const exp = this.tokens.get(token);
    if (exp === undefined) return 'unknown';
    return exp <= Date.now() ? 'expired' : 'ok';
  }

  get ttlSeconds(): number {
    return Math.floor(this.ttlMs / 1000);
  }

  clear(): void {
    this.tokens.clear();
  }
}

// ---- request handling and the /_sim control API ----------------------------------------------------------------

export interface SimHandlerSpec {
  router: SimRouter;
  /** Before each platform API request (not `/_sim`): latency, throttles, injected failures; may throw `apiError`s. */
  beforeApi(ctx: { method: string; path: string }): Promise<void>;
  /** An API path the platform does not have, in its own envelope. */
  notFound(ctx: { method: string; path: string }): SimReply;
  /** A thrown error in the platform's envelope, or undefined when it is not one of the platform's errors. */
  apiError(err: unknown, ctx: { method: string; path: string }): SimReply | undefined;
}

/**
 * The HTTP handler both simulators run: platform API paths get the platform's envelopes (and its faults), `/_sim/*`
 * answers 400 `{error}` for bad input and needs a JSON object body.
 */
export function simHandler(spec: SimHandlerSpec): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async function handle(req, res) {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const isSim = url.pathname.startsWith('/_sim/');
    const send = (reply: SimReply) => {
      // A string body with its own content type (an HTML page) goes out as it is; everything else as JSON.
      if (typeof reply.body === 'string' && reply.headers?.['content-type']) {
        res.writeHead(reply.status ?? 200, reply.headers);
        res.end(reply.body);
      } else sendJson(res, reply.status ?? 200, reply.body, reply.headers);
    };
    try {
      const raw = await readBody(req);
      const found = spec.router.match(method, url.pathname);
      if (!isSim) await spec.beforeApi({ method, path: url.pathname });
      if (found === undefined || found === 'method') {
        if (!isSim) send(spec.notFound({ method, path: url.pathname }));
        else sendJson(res, found === 'method' ? 405 : 404, { error: `no route ${method} ${url.pathname}` });
        return;
      }
      const parsed = parseJsonObject(raw);
      if (parsed === undefined && isSim) throw new SimInputError('body must be a JSON object');
      send(
        await found.handler({
          method,
          path: url.pathname,
          query: url.searchParams,
          params: found.params,
          headers: req.headers,
          raw,
          body: parsed,
        })
      );
    } catch (err) {
      const reply = spec.apiError(err, { method, path: url.pathname });
      if (reply) send(reply);
      else if (err instanceof SimInputError) sendJson(res, 400, { error: err.message });
      else sendJson(res, 500, { error: `simulator error: ${(err as Error).message}` });
    }
  };
}

/** What the `/_sim` control API of a simulator reads and does. */
export interface SimControl {
  /** POST `/_sim/approval/instances`: create one from the body; returns what to answer. */
  createInstance(body: Record<string, unknown>): unknown;
  /** POST `/_sim/approval/instances/:id/status` `{status, deliver?}`. */
  setStatus(id: string, status: unknown, opts: { deliver?: boolean }): unknown;
  /** POST `/_sim/events`: push an arbitrary (decrypted) event from the body. */
  deliverEvent(body: Record<string, unknown>): unknown;
  instances(): unknown[];
  messages(): unknown[];
  comments(): unknown[];
  deliveries(): DeliveryRecord[];
  /** Parse and apply a `/_sim/faults` body; returns the faults now in force. */
  setFaults(body: Record<string, unknown>): unknown;
  clearFaults(): void;
  revokeTokens(): void;
  reset(): void;
}

/**
 * The control routes the DingTalk and WeCom simulators share: POST `/_sim/approval/instances`,
 * `/_sim/approval/instances/:id/status`, `/_sim/events`; GET `/_sim/approval/instances`, `/_sim/messages`,
 * `/_sim/comments`, `/_sim/deliveries`; POST / DELETE `/_sim/faults`; POST `/_sim/tokens/revoke`, `/_sim/reset`.
 */
export function addControlRoutes(router: SimRouter, ctl: SimControl): SimRouter {
  return router
    .add('POST', '/_sim/approval/instances', (ctx) => ({ body: ctl.createInstance(ctx.body ?? {}) }))
    .add('POST', '/_sim/approval/instances/:id/status', (ctx) => ({
      body: ctl.setStatus(ctx.params.id!, ctx.body?.status, { deliver: ctx.body?.deliver as boolean | undefined }),
    }))
    .add('POST', '/_sim/events', (ctx) => ({ body: ctl.deliverEvent(ctx.body ?? {}) }))
    .add('GET', '/_sim/approval/instances', () => ({ body: ctl.instances() }))
    .add('GET', '/_sim/messages', () => ({ body: ctl.messages() }))
    .add('GET', '/_sim/comments', () => ({ body: ctl.comments() }))
    .add('GET', '/_sim/deliveries', () => ({ body: ctl.deliveries() }))
    .add('POST', '/_sim/faults', (ctx) => ({ body: ctl.setFaults(ctx.body ?? {}) }))
    .add('DELETE', '/_sim/faults', () => {
      ctl.clearFaults();
      return { body: {} };
    })
    .add('POST', '/_sim/tokens/revoke', () => {
      ctl.revokeTokens();
      return { body: { revoked: true } };
    })
    .add('POST', '/_sim/reset', () => {
      ctl.reset();
      return { body: { reset: true } };
    });
}
