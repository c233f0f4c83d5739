import { ApplicationFailure } from '@temporalio/common';
import { isIntegrationError } from '../domain/errors';

/**
 * Turn an IntegrationError into the Temporal failure the retry policy understands: transient and rate-limited errors
 * stay retryable, everything else fails fast with a typed, non-retryable ApplicationFailure whose message is what the
 * requester/operator will read. A rate limit that says how long the peer blocks (`retryAfterMs`: WeCom's 45009 for a
 * minute or an hour, DingTalk's IP throttle for 5 minutes) is waited out in one `nextRetryDelay` instead of spending
 * attempts on it; one that does not say falls back on the retry policy's own back-off.
 */
export function toTemporalFailure(err: unknown): unknown {
  if (!isIntegrationError(err)) return err;
  const type = `${err.details.system}:${err.kind}`;
  if (err.kind === 'rate-limited') {
    const retryAfterMs = err.details.retryAfterMs;
    return ApplicationFailure.create({
      message: err.message,
      type,
      nonRetryable: false,
      ...(retryAfterMs !== undefined ? { nextRetryDelay: Math.max(1000, retryAfterMs) } : {}),
      details: [err.details],
    });
  }
  return ApplicationFailure.create({
    message: err.message,
    type,
    nonRetryable: !err.retryable,
    details: [err.details],
  });
}

/** Wrap every function of an activity object so that its errors are classified. */
export function classified<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    // A named function keeps the activity name Temporal registers.
    wrapped[name] = {
      async [name](...args: never[]) {
        try {
          return await fn(...args);
        } catch (err) {
          throw toTemporalFailure(err);
        }
      },
    }[name];
  }
  return wrapped as T;
}
