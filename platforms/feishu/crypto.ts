import { createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';
import { IntegrationError } from '../../domain/errors';

/**
 * Reading side of Feishu's event security (reference §1.3, §1.4): decrypt `{"encrypt": …}` bodies and verify
 * `X-Lark-Signature` over the RAW request bytes. Written from the documented algorithm, not from the SDK, because
 * the SDK re-serialises the parsed body instead of hashing the bytes Feishu signed.
 */

export const HEADER_TIMESTAMP = 'x-lark-request-timestamp';
export const HEADER_NONCE = 'x-lark-request-nonce';
export const HEADER_SIGNATURE = 'x-lark-signature';

export type FeishuCryptoFailure = 'bad-base64' | 'bad-ciphertext' | 'bad-padding' | 'bad-plaintext';

/** A forged or corrupted event body: the ingress answers 4xx. Classified 'invalid' (never worth retrying). */
export class FeishuCryptoError extends IntegrationError {
  constructor(
    message: string,
    readonly reason: FeishuCryptoFailure
  ) {
    super(message, 'invalid', { system: 'feishu', code: reason });
  }
}

const AES_BLOCK = 16;
const STRICT_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** AES-256 key = SHA-256 of the Encrypt Key string. */
function aesKey(encryptKey: string): Buffer {
  return createHash('sha256').update(encryptKey, 'utf8').digest();
}

/** Buffer.from(…, 'base64') silently skips garbage, so check the alphabet and length first. */
function decodeBase64Strict(value: string): Buffer {
  const compact = value.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !STRICT_BASE64.test(compact)) {
    throw new FeishuCryptoError('feishu event: "encrypt" is not valid base64', 'bad-base64');
  }
  return Buffer.from(compact, 'base64');
}

/** Decrypt the `encrypt` field of a Feishu event body to its UTF-8 JSON text. Throws FeishuCryptoError. */
export function decryptEvent(encrypt: string, encryptKey: string): string {
  const buf = decodeBase64Strict(encrypt);
  // IV block plus at least one ciphertext block, and whole blocks only (CBC).
  if (buf.length < 2 * AES_BLOCK || buf.length % AES_BLOCK !== 0) {
    throw new FeishuCryptoError(
      `feishu event: ciphertext has ${buf.length} bytes, expected IV + whole AES blocks`,
      'bad-ciphertext'
    );
  }
  const decipher = createDecipheriv('aes-256-cbc', aesKey(encryptKey), buf.subarray(0, AES_BLOCK));
  let plain: Buffer;
  try {
    // Node's auto-padding strips PKCS7 and throws on a bad pad, which is also what a wrong key looks like.
    plain = Buffer.concat([decipher.update(buf.subarray(AES_BLOCK)), decipher.final()]);
  } catch {
    throw new FeishuCryptoError('feishu event: decryption failed (wrong encrypt key or corrupted data)', 'bad-padding');
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    throw new FeishuCryptoError('feishu event: decrypted data is not UTF-8', 'bad-plaintext');
  }
}

/** X-Lark-Signature: lowercase hex SHA-256 (not HMAC) of utf8(timestamp + nonce + encryptKey) followed by the raw body. */
export function computeSignature(timestamp: string, nonce: string, encryptKey: string, rawBody: Buffer): string {
  return createHash('sha256')
    .update(Buffer.from(timestamp + nonce + encryptKey, 'utf8'))
    .update(rawBody)
    .digest('hex');
}

/** Node's IncomingHttpHeaders, a plain record, or a Fetch `Headers`. */
export type HeadersLike =
  Record<string, string | string[] | undefined> | { get(name: string): string | null | undefined };

function headerValue(headers: HeadersLike, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null | undefined }).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value[0] : value;
}

export interface VerifyOptions {
  /** Reject timestamps further than this from now. Feishu documents no window, so off unless asked. */
  maxSkewSeconds?: number;
  nowMs?: number;
}

/** True when the request's X-Lark-Signature matches the raw body. Constant-time comparison; never throws. */
export function verifySignature(
  headers: HeadersLike,
  encryptKey: string,
  rawBody: Buffer,
  opts: VerifyOptions = {}
): boolean {
  const timestamp = headerValue(headers, HEADER_TIMESTAMP);
  const nonce = headerValue(headers, HEADER_NONCE);
  const signature = headerValue(headers, HEADER_SIGNATURE)?.trim().toLowerCase();
  if (!timestamp || nonce === undefined || !signature || !/^[0-9a-f]{64}$/.test(signature)) return false;
  if (opts.maxSkewSeconds !== undefined) {
    const ts = Number(timestamp);
    const now = (opts.nowMs ?? Date.now()) / 1000;
    if (!Number.isFinite(ts) || Math.abs(now - ts) > opts.maxSkewSeconds) return false;
  }
  const expected = Buffer.from(computeSignature(timestamp, nonce, encryptKey, rawBody), 'hex');
  return timingSafeEqual(expected, Buffer.from(signature, 'hex'));
}
