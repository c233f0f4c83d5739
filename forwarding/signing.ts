import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks (standardwebhooks.com, spec v1.0.0), symmetric scheme: the sender signs
 * `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256, keyed by the base64-decoded part of a `whsec_` secret,
 * and sends `webhook-signature: v1,<base64>` (a space-separated list, so a rotation can send two).
 */

export const SECRET_PREFIX = 'whsec_';
/** The spec: "Random. At least 24 bytes (192 bits, 512 maximum)". */
export const MIN_SECRET_BYTES = 24;
export const MAX_SECRET_BYTES = 64;

/** The HMAC key of a `whsec_<base64>` secret; throws an Error whose message says what is wrong (never the value). */
export function secretKey(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error(`must start with ${SECRET_PREFIX}`);
  const b64 = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0)
    throw new Error(`must be ${SECRET_PREFIX} followed by standard base64`);
  const key = Buffer.from(b64, 'base64');
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES)
    throw new Error(`must decode to ${MIN_SECRET_BYTES}–${MAX_SECRET_BYTES} bytes (got ${key.length})`);
  return key;
}

/**
 * The `webhook-id` of one event for one subscriber: the same on every attempt and on a resend, so the receiver can
 * dedupe; derived (not taken from the platform) so it never contains a `.` or anything that is not header-safe.
 */
export function webhookIdFor(platform: string, eventId: string, subscriber: string): string {
  const digest = createHash('sha256').update(`${platform}\u0000${eventId}\u0000${subscriber}`).digest('base64url');
  return `msg_${digest.slice(0, 32)}`;
}

export function sign(key: Buffer, webhookId: string, timestampSec: number, body: string): string {
  const mac = createHmac('sha256', key).update(`${webhookId}.${timestampSec}.${body}`).digest('base64');
  return `v1,${mac}`;
}

export interface StandardWebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

export function signedHeaders(
  key: Buffer,
  webhookId: string,
  body: string,
  nowMs = Date.now()
): StandardWebhookHeaders {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    'webhook-id': webhookId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': sign(key, webhookId, timestamp, body),
  };
}

/**
 * What a receiver does (documented in the README; the tests verify with the independent `standardwebhooks` package):
 * timestamp within `toleranceSec`, then any `v1,` signature equal in constant time.
 */
export function verify(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
  opts: { nowMs?: number; toleranceSec?: number } = {}
): boolean {
  const h = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const id = h('webhook-id');
  const ts = h('webhook-timestamp');
  const sigs = h('webhook-signature');
  if (!id || !ts || !sigs || !/^\d+$/.test(ts)) return false;
  const now = Math.floor((opts.nowMs ?? Date.now()) / 1000);
  if (Math.abs(now - Number(ts)) > (opts.toleranceSec ?? 300)) return false;
  const expected = Buffer.from(sign(secretKey(secret), id, Number(ts), body).slice(3), 'base64');
  return sigs.split(' ').some((s) => {
    const [version, value] = s.split(',', 2);
    if (version !== 'v1' || !value) return false;
    const got = Buffer.from(value, 'base64');
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}
