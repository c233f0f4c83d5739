import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Plumbing shared by the platform simulators: fault injection (all three), and for DingTalk and WeCom a tiny router,
 * JSON bodies, and the platforms' event push
 * (one ordered queue per approval instance, redelivery on failure after a schedule, a record of every attempt).
 * The protocol itself (envelopes, crypto, what counts as acknowledged) is each simulator's.
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
}

interface Pending<T> {
  id: string;
  type: string;
  instanceId?: string;
  payload: T;
  attempts: number;
}

/**
 * Ordered push with redelivery: events of one instance go one at a time (a later one waits until the earlier one is
 * acknowledged or given up), a failed push is retried after `delaysMs[attempt-1] * scale`, and the last delay's
 * failure gives up.
 */
export class PushQueue<T> {
  readonly deliveries: DeliveryRecord[] = [];
  private readonly queues = new Map<string, Pending<T>[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private epoch = 0;
  private closed = false;

  constructor(
    private readonly push: (payload: T) => Promise<PushResult>,
    private readonly delaysMs: readonly number[],
    private readonly scale: number
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
    head.attempts += 1;
    const result = await this.push(head.payload);
    if (this.closed || this.epoch !== startedIn) return;
    const exhausted = !result.ok && head.attempts > this.delaysMs.length;
    this.deliveries.push({
      event_id: head.id,
      event_type: head.type,
      instance_id: head.instanceId,
      attempt: head.attempts,
      status: result.status,
      error: result.ok ? undefined : (result.error ?? `HTTP ${result.status}`),
      ok: result.ok,
      outcome: result.ok ? 'delivered' : exhausted ? 'gave-up' : undefined,
      at: new Date().toISOString(),
      duration_ms: result.durationMs,
    });
    if (result.ok || exhausted) {
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
      this.delaysMs[head.attempts - 1]! * this.scale
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
