/**
 * Errors from external systems (NAC, office platforms), classified once at the edge so that activities can turn them
 * into Temporal failures: retryable ones are retried by the activity retry policy, the rest fail fast.
 */
export type IntegrationErrorKind =
  | 'transient' // 5xx, network error, time-out: retry
  | 'rate-limited' // 429 / platform rate-limit code: retry after `retryAfterMs`
  | 'auth' // 401/403, bad credentials or missing permission: configuration error, do not retry
  | 'invalid' // 4xx the request itself is wrong (bad MAC, bad id): do not retry
  | 'not-found' // the object does not exist
  | 'conflict'; // exists already / state changed under us

export class IntegrationError extends Error {
  override readonly name = 'IntegrationError';
  constructor(
    message: string,
    readonly kind: IntegrationErrorKind,
    readonly details: { system: string; status?: number; code?: string | number; retryAfterMs?: number } = {
      system: 'unknown',
    }
  ) {
    super(message);
  }

  get retryable(): boolean {
    return this.kind === 'transient' || this.kind === 'rate-limited';
  }
}

export function isIntegrationError(err: unknown): err is IntegrationError {
  return err instanceof IntegrationError;
}

/** Classify an HTTP status the way every adapter here does; `system` names the peer for messages and metrics. */
export function classifyHttpStatus(status: number): IntegrationErrorKind {
  if (status === 429) return 'rate-limited';
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not-found';
  if (status === 409) return 'conflict';
  if (status === 408 || status >= 500) return 'transient';
  return 'invalid';
}

/** Parse an HTTP Retry-After header (seconds or HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined;
}
