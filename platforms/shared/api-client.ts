import { IntegrationError, type IntegrationErrorKind } from '../../domain/errors';

/**
 * What the DingTalk and WeCom API clients share. Both call JSON APIs over plain fetch with an access token that is
 * cached for its lifetime, and both platforms may reject a token before it expires. Shared here: the request with its
 * time-out, the token cache, dropping a rejected token and trying once more with a fresh one, and turning a failed
 * answer into an IntegrationError. Each platform's client passes in what differs: how to read a failure from an
 * answer, what each code means, and how long a throttle lasts.
 */

/** What the DingTalk and WeCom clients log (a pino logger fits). */
export interface PlatformLogger {
  debug(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
}

/** Options both clients take. */
export interface PlatformClientOptions {
  logger?: PlatformLogger;
  /** Per request; default 10 s. */
  timeoutMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

export interface ApiAnswer {
  status: number;
  /** The JSON object that was answered; {} when the body is not a JSON object. */
  body: Record<string, unknown>;
  /** False when the body is not JSON, e.g. an HTML error or throttle page. */
  json: boolean;
  headers: Headers;
}

/** One failed call, as the platform's client reads it from the answer (or from the missing answer). */
export interface ApiFailure {
  status?: number;
  /** The code that says what went wrong (for DingTalk's TOP gateway, the `sub_code` inside errcode 88). */
  code?: string | number;
  message?: string;
  /** The platform said how long to wait (a header, or a throttle body). */
  retryAfterMs?: number;
  /** No answer at all: connection refused, time-out. */
  network?: string;
}

export interface Classified {
  kind: IntegrationErrorKind;
  /** How long the platform blocks the caller; becomes the activity's next retry delay (activities/classify.ts). */
  retryAfterMs?: number;
}

export interface ApiClientSpec {
  system: string;
  timeoutMs: number;
  /** What a failure means. `op` names the API (a platform's limits are per API). */
  classify(failure: ApiFailure, op: string): Classified;
  /** A call of `op` succeeded (e.g. a throttle on it is over). */
  succeeded?(op: string): void;
  logger?: { warn(obj: Record<string, unknown>, msg?: string): void };
}

/** One family of APIs authorised by one kind of token (DingTalk has two: v1.0 and the legacy oapi). */
export interface TokenFamily {
  tokens: TokenCache;
  /** The failure this answer reports, or undefined when the call succeeded. */
  failureOf(answer: ApiAnswer): ApiFailure | undefined;
  /** The platform refused the token itself (invalid, expired): drop it and try again with a new one. */
  isTokenRejection(failure: ApiFailure): boolean;
}

export interface ApiClient {
  /** One request; a transport failure is thrown as a transient IntegrationError, any answer is returned. */
  request(
    op: string,
    url: string,
    init: { method: string; headers?: Record<string, string>; body?: unknown }
  ): Promise<ApiAnswer>;
  /** A call with a token of `family`. A rejected token is dropped and the call made once more with a new one. */
  authorized(
    op: string,
    family: TokenFamily,
    send: (token: string) => Promise<ApiAnswer>
  ): Promise<Record<string, unknown>>;
  error(op: string, failure: ApiFailure): IntegrationError;
  /** For the token endpoints: a refusal that retrying cannot fix is a configuration error (`auth`). */
  credentialError(op: string, failure: ApiFailure): IntegrationError;
}

export function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

export function createApiClient(spec: ApiClientSpec): ApiClient {
  function error(op: string, f: ApiFailure): IntegrationError {
    const { kind, retryAfterMs } = f.network !== undefined ? { kind: 'transient' as const } : spec.classify(f, op);
    const what =
      f.network ??
      [
        f.status !== undefined && f.status !== 200 ? `HTTP ${f.status}` : undefined,
        f.code !== undefined ? `code ${f.code}` : undefined,
        f.message,
      ]
        .filter(Boolean)
        .join(' ');
    return new IntegrationError(`${spec.system} ${op} failed: ${what}`, kind, {
      system: spec.system,
      status: f.status,
      code: f.code ?? f.network,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }

  async function request(
    op: string,
    url: string,
    init: { method: string; headers?: Record<string, string>; body?: unknown }
  ): Promise<ApiAnswer> {
    let res: Response;
    try {
      res = await fetch(url, {
        method: init.method,
        headers: {
          accept: 'application/json',
          ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...init.headers,
        },
        body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
        signal: AbortSignal.timeout(spec.timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      throw error(op, {
        network: e.name === 'TimeoutError' ? `no answer within ${spec.timeoutMs} ms` : (e.cause?.code ?? e.message),
      });
    }
    const text = await res.text().catch(() => '');
    try {
      return { status: res.status, body: asRecord(JSON.parse(text)) ?? {}, json: true, headers: res.headers };
    } catch {
      return { status: res.status, body: {}, json: false, headers: res.headers };
    }
  }

  async function authorized(
    op: string,
    family: TokenFamily,
    send: (token: string) => Promise<ApiAnswer>
  ): Promise<Record<string, unknown>> {
    for (let attempt = 1; ; attempt++) {
      const token = await family.tokens.get();
      const answer = await send(token);
      const failure = family.failureOf(answer);
      if (!failure) {
        spec.succeeded?.(op);
        return answer.body;
      }
      if (family.isTokenRejection(failure)) {
        family.tokens.drop(token);
        spec.logger?.warn(
          { system: spec.system, op, code: failure.code, status: failure.status, attempt },
          `${spec.system} access token rejected; dropped`
        );
        if (attempt === 1) continue;
      }
      throw error(op, failure);
    }
  }

  function credentialError(op: string, f: ApiFailure): IntegrationError {
    const err = error(op, f);
    return err.retryable ? err : new IntegrationError(err.message, 'auth', err.details);
  }

  return { request, authorized, error, credentialError };
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Refresh this long before the platform's stated expiry, so that a token is never used at the edge of its life. */
const REFRESH_BEFORE_MS = 5 * 60_000;

/**
 * One access token: cached until shortly before it expires, fetched once however many callers wait for it
 * (single-flight), never cached when the fetch failed.
 */
export class TokenCache {
  private pending?: Promise<CachedToken>;
  private known?: CachedToken;

  constructor(
    private readonly fetchToken: () => Promise<{ token: string; ttlSeconds: number }>,
    private readonly now: () => number = Date.now
  ) {}

  async get(): Promise<string> {
    const current = this.pending;
    if (current) {
      try {
        const t = await current;
        if (t.expiresAt - this.now() > REFRESH_BEFORE_MS) return t.token;
      } catch {
        // fetch again
      }
      if (this.pending !== current) return this.get();
    }
    const next = this.fetchToken().then(({ token, ttlSeconds }) => {
      const cached = { token, expiresAt: this.now() + ttlSeconds * 1000 };
      this.known = cached;
      return cached;
    });
    this.pending = next;
    next.catch(() => {
      if (this.pending === next) this.pending = undefined;
    });
    return (await next).token;
  }

  /** Forget `token` (the platform refused it), unless a newer one has replaced it meanwhile; no token: forget all. */
  drop(token?: string): void {
    if (token !== undefined && this.known?.token !== token) return;
    this.pending = undefined;
    this.known = undefined;
  }
}

/** A token answer's lifetime in seconds (DingTalk and WeCom both say 7200 when they say nothing else). */
export function ttlSecondsOf(v: unknown): number {
  return Number(v) > 0 ? Number(v) : 7200;
}
