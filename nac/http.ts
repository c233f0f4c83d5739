import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Agent, request } from 'undici';
import { IntegrationError, classifyHttpStatus, parseRetryAfter } from '../domain/errors';
import { TokenBucket } from './rate-limiter';

/**
 * The HTTP edge of every NAC adapter: TLS policy, per-request time-out, rate limit and error classification in one
 * place. Responses of any status are returned to the adapter (a 404 is an answer, not a failure); adapters turn the
 * ones they do not expect into IntegrationErrors with `errorFromResponse`. Nothing here logs, and no header value
 * (Authorization!) ever reaches an error message.
 */

export interface NacHttpOptions {
  /** Peer name for messages and metrics: 'ise', 'clearpass', 'sim'. */
  system: string;
  baseUrl: string;
  timeoutMs: number;
  maxRps: number;
  /** Extra CA (PEM file) trusted on top of Node's built-in roots. */
  caFile?: string;
  /** Turn TLS verification off (lab appliances with self-signed certificates). */
  tlsInsecure?: boolean;
  /**
   * A rate limiter shared with the adapter's other clients (e.g. ISE ERS, MnT and the OpenAPI on different base URLs
   * count against one NAC rate); default: one of its own at `maxRps`.
   */
  limiter?: TokenBucket;
  /** Told about every request when it ends (the worker's NAC metrics); must not throw. */
  observer?: NacHttpObserver;
  /**
   * The caller's cancellation, read at each request (the worker passes the running activity's, which aborts when the
   * worker's shutdown grace ends): an aborted signal ends the request at once and `send` rethrows its reason.
   */
  cancellation?: () => AbortSignal | undefined;
}

/**
 * What a NAC request ended with, for metrics: an HTTP status class, or why there was no answer; for a NAC reached
 * by SQL or RADIUS (FreeRADIUS), `ok` or `error` (an answer that was a failure).
 */
export type NacRequestOutcome =
  '2xx' | '3xx' | '4xx' | '404' | '429' | '5xx' | 'timeout' | 'network' | 'cancelled' | 'ok' | 'error';

/** One finished request: low-cardinality labels only (never a path, a MAC or a header). */
export interface NacRequestObservation {
  system: string;
  /**
   * The vendor API's part: ISE `ers`, `mnt`, `openapi`; ClearPass `oauth`, `endpoint`, `session`; FreeRADIUS `sql`
   * (one transaction), `coa` (one RFC 5176 exchange); else `other`.
   */
  area: string;
  method: NacRequest['method'] | 'SQL' | 'RADIUS';
  outcome: NacRequestOutcome;
  /** From the request leaving (after its rate-limiter slot) to the whole body read or the failure. */
  seconds: number;
}

export interface NacHttpObserver {
  request(o: NacRequestObservation): void;
}

/** The injectable parts of a client, as the adapters' factories pass them through (nac/index.ts). */
export type NacHttpHooks = Pick<NacHttpOptions, 'observer' | 'cancellation'>;

export interface NacRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path plus query, starting with `/`. */
  path: string;
  headers?: Record<string, string>;
  json?: unknown;
  /** Human words for error messages, e.g. "create endpoint AA:BB:…". */
  what: string;
}

export interface NacResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON when the body is JSON, else undefined. */
  body: unknown;
  text: string;
}

export class NacHttpClient {
  readonly system: string;
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly agent: Agent;
  private readonly limiter: TokenBucket;
  private readonly observer?: NacHttpObserver;
  private readonly cancellation?: () => AbortSignal | undefined;

  constructor(opts: NacHttpOptions) {
    this.system = opts.system;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs;
    this.limiter = opts.limiter ?? new TokenBucket(opts.maxRps);
    this.agent = new Agent({ connect: tlsOptions(opts) });
    this.observer = opts.observer;
    this.cancellation = opts.cancellation;
  }

  /** Send one request (after a rate-limiter slot is free). Throws only for network errors and time-outs. */
  async send(req: NacRequest): Promise<NacResponse> {
    await this.limiter.acquire();
    const cancel = this.cancellation?.();
    cancel?.throwIfAborted();
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    const onCancel = () => controller.abort();
    cancel?.addEventListener('abort', onCancel, { once: true });
    const started = performance.now();
    let outcome: NacRequestOutcome = 'network';
    try {
      const res = await request(this.baseUrl + req.path, {
        method: req.method,
        headers: {
          accept: 'application/json',
          ...(req.json !== undefined ? { 'content-type': 'application/json' } : {}),
          ...req.headers,
        },
        body: req.json !== undefined ? JSON.stringify(req.json) : undefined,
        dispatcher: this.agent,
        signal: controller.signal,
      });
      // The body is read inside the time-out too: a peer that sends headers and then stalls is a time-out.
      const text = await res.body.text();
      outcome = statusOutcome(res.statusCode);
      return { status: res.statusCode, headers: res.headers, body: parseJson(text, res.headers), text };
    } catch (err) {
      if (cancel?.aborted && !timedOut) {
        outcome = 'cancelled';
        throw cancel.reason;
      }
      if (timedOut) {
        outcome = 'timeout';
        throw new IntegrationError(`${this.system} ${req.what}: no answer within ${this.timeoutMs} ms`, 'transient', {
          system: this.system,
          code: 'TIMEOUT',
        });
      }
      throw this.networkError(req, err);
    } finally {
      clearTimeout(timer);
      cancel?.removeEventListener('abort', onCancel);
      const seconds = (performance.now() - started) / 1000;
      this.observer?.request({ system: this.system, area: nacApiArea(req.path), method: req.method, outcome, seconds });
    }
  }

  /** The IntegrationError for a response the adapter did not expect. */
  errorFromResponse(req: Pick<NacRequest, 'what'>, res: NacResponse): IntegrationError {
    return errorFromResponse(this.system, req.what, res);
  }

  /** Waiters for a rate-limit slot (metrics, tests). */
  get queued(): number {
    return this.limiter.pending;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private networkError(req: NacRequest, err: unknown): IntegrationError {
    const e = err as { code?: string; cause?: { code?: string } };
    const code = e.code ?? e.cause?.code ?? 'ENETWORK';
    // Certificate problems are configuration errors: retrying will not fix them.
    const tls = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code);
    return new IntegrationError(
      `${this.system} ${req.what}: ${tls ? 'TLS verification failed' : 'network error'} (${code})`,
      tls ? 'auth' : 'transient',
      { system: this.system, code }
    );
  }
}

function statusOutcome(status: number): NacRequestOutcome {
  if (status === 404 || status === 429) return String(status) as '404' | '429';
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  return status >= 300 ? '3xx' : '2xx';
}

/** The vendor API area of a request path, as the appliances split them (the simulator's `areaOf` does the same). */
export function nacApiArea(path: string): string {
  if (path.startsWith('/ers/')) return 'ers';
  if (path.startsWith('/admin/API/mnt/')) return 'mnt';
  if (path.startsWith('/api/v1/')) return 'openapi';
  if (path === '/api/oauth' || path.startsWith('/api/oauth/') || path.startsWith('/api/oauth?')) return 'oauth';
  if (/^\/api\/(session|session-action|active-session)([/?]|$)/.test(path)) return 'session';
  if (path.startsWith('/api/')) return 'endpoint';
  return 'other';
}

/** Build the IntegrationError for an HTTP answer: kind from the status, detail from the vendor's error envelope. */
export function errorFromResponse(system: string, what: string, res: NacResponse): IntegrationError {
  const kind = classifyHttpStatus(res.status);
  const detail = vendorErrorDetail(res.body);
  const retryAfterMs = res.status === 429 ? parseRetryAfter(headerValue(res.headers, 'retry-after')) : undefined;
  return new IntegrationError(`${system} ${what}: HTTP ${res.status}${detail ? ` (${detail})` : ''}`, kind, {
    system,
    status: res.status,
    ...(detail ? { code: detail.slice(0, 200) } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

/** The one human line of an ISE `ERSResponse` or a ClearPass API-Problem body; never the raw (maybe HTML) body. */
export function vendorErrorDetail(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const ers = (body as { ERSResponse?: { messages?: Array<{ title?: string; code?: string }> } }).ERSResponse;
  const first = ers?.messages?.[0];
  if (first) return first.title || first.code;
  const problem = body as { title?: unknown; detail?: unknown };
  const parts = [problem.title, problem.detail].filter((p): p is string => typeof p === 'string' && p.length > 0);
  return parts.length ? parts.join(': ') : undefined;
}

export function headerValue(headers: NacResponse['headers'], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function parseJson(text: string, headers: NacResponse['headers']): unknown {
  const type = headerValue(headers, 'content-type') ?? '';
  if (!text || !/json/i.test(type)) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function tlsOptions(opts: NacHttpOptions): { ca?: string[]; rejectUnauthorized: boolean } {
  const rejectUnauthorized = !opts.tlsInsecure;
  if (!opts.caFile) return { rejectUnauthorized };
  // Setting `ca` replaces Node's roots, so keep them and add the operator's CA.
  return { ca: [...rootCertificates, readFileSync(opts.caFile, 'utf8')], rejectUnauthorized };
}
