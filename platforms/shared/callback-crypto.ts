import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { IntegrationError } from '../../domain/errors';

/**
 * The callback crypto DingTalk (DingTalkEncryptor / DingCallbackCrypto) and WeCom (WXBizMsgCrypt) share, reference
 * dingtalk-wecom.md §1.3, §1.4, §5.2 and §7:
 * - key = base64decode(EncodingAESKey + "="), 32 bytes; AES-256-CBC, IV = key[0..16), no automatic padding;
 * - plaintext = random(16) ‖ len(msg) (4 bytes, big-endian) ‖ msg ‖ receiver id, PKCS#7-padded to 32-byte blocks;
 * - signature = hex(sha1(sort([token, timestamp, nonce, encrypt]).join(''))).
 * The receiver id is DingTalk's owner key (AppKey for console subscriptions, CorpId for `register_call_back`,
 * SuiteKey for ISV apps) and WeCom's receiveid (the CorpID). This is the reading side the ingress uses; the
 * simulators encrypt with their own, independent code (simulators/shared/callback-signer.ts).
 */

export type CallbackCryptoFailure =
  'bad-key' | 'bad-base64' | 'bad-ciphertext' | 'bad-padding' | 'bad-length' | 'bad-plaintext' | 'wrong-receiver';

export class CallbackCryptoError extends IntegrationError {
  constructor(
    message: string,
    readonly reason: CallbackCryptoFailure,
    system: string
  ) {
    super(message, 'invalid', { system, code: reason });
  }
}

const BLOCK = 32;
const STRICT_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The 32-byte AES key of a 43-character EncodingAESKey / aes_key; throws on anything else. */
export function aesKeyOf(encodingAesKey: string, system = 'callback'): Buffer {
  if (!/^[A-Za-z0-9]{43}$/.test(encodingAesKey)) {
    throw new CallbackCryptoError('the AES key must be 43 characters from [A-Za-z0-9]', 'bad-key', system);
  }
  const key = Buffer.from(`${encodingAesKey}=`, 'base64');
  if (key.length !== 32) throw new CallbackCryptoError('the AES key does not decode to 32 bytes', 'bad-key', system);
  return key;
}

/** Lower-case hex SHA-1 over the lexicographically sorted parts, concatenated. */
export function callbackSignature(token: string, timestamp: string, nonce: string, encrypt: string): string {
  return createHash('sha1').update([token, timestamp, nonce, encrypt].sort().join(''), 'utf8').digest('hex');
}

/** Constant-time check of a presented signature; never throws. */
export function verifyCallbackSignature(
  presented: string | undefined,
  token: string,
  timestamp: string,
  nonce: string,
  encrypt: string
): boolean {
  const sig = presented?.trim().toLowerCase();
  if (!sig || !/^[0-9a-f]{40}$/.test(sig)) return false;
  const expected = Buffer.from(callbackSignature(token, timestamp, nonce, encrypt), 'hex');
  return timingSafeEqual(expected, Buffer.from(sig, 'hex'));
}

export interface DecryptedCallback {
  message: string;
  receiverId: string;
}

/**
 * Decrypt a callback's `encrypt` / `Encrypt` / `echostr`, strictly: valid base64 of whole 32-byte blocks, a PKCS#7
 * pad of 1–32 identical bytes, a length that fits, UTF-8 text, and (when `expectedReceiver` is given) the receiver id
 * the platform appended. Throws CallbackCryptoError saying which check failed.
 */
export function decryptCallback(
  encodingAesKey: string,
  encrypt: string,
  expectedReceiver: string | undefined,
  system = 'callback'
): DecryptedCallback {
  const key = aesKeyOf(encodingAesKey, system);
  const compact = encrypt.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !STRICT_BASE64.test(compact)) {
    throw new CallbackCryptoError(`${system} callback: ciphertext is not valid base64`, 'bad-base64', system);
  }
  const data = Buffer.from(compact, 'base64');
  if (data.length === 0 || data.length % BLOCK !== 0) {
    throw new CallbackCryptoError(
      `${system} callback: ciphertext has ${data.length} bytes, expected whole 32-byte blocks`,
      'bad-ciphertext',
      system
    );
  }
  const decipher = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  decipher.setAutoPadding(false);
  const raw = Buffer.concat([decipher.update(data), decipher.final()]);
  const pad = raw[raw.length - 1]!;
  if (pad < 1 || pad > BLOCK || raw.length < pad || !raw.subarray(raw.length - pad).every((b) => b === pad)) {
    throw new CallbackCryptoError(
      `${system} callback: bad padding (wrong AES key or corrupted data)`,
      'bad-padding',
      system
    );
  }
  const body = raw.subarray(0, raw.length - pad);
  if (body.length < 20) throw new CallbackCryptoError(`${system} callback: plaintext too short`, 'bad-length', system);
  const len = body.readUInt32BE(16);
  if (20 + len > body.length) {
    throw new CallbackCryptoError(`${system} callback: message length exceeds the plaintext`, 'bad-length', system);
  }
  let message: string;
  let receiverId: string;
  try {
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    message = utf8.decode(body.subarray(20, 20 + len));
    receiverId = utf8.decode(body.subarray(20 + len));
  } catch {
    throw new CallbackCryptoError(`${system} callback: decrypted data is not UTF-8`, 'bad-plaintext', system);
  }
  if (expectedReceiver !== undefined && receiverId !== expectedReceiver) {
    throw new CallbackCryptoError(
      `${system} callback: encrypted for another receiver (owner key / corp id mismatch)`,
      'wrong-receiver',
      system
    );
  }
  return { message, receiverId };
}

/** Encrypt a reply (DingTalk's "success") the same way; `random` is 16 bytes, random by default. */
export function encryptCallback(
  encodingAesKey: string,
  message: string,
  receiverId: string,
  random: Buffer = randomBytes(16)
): string {
  const key = aesKeyOf(encodingAesKey);
  if (random.length !== 16) throw new RangeError('random must be 16 bytes');
  const msg = Buffer.from(message, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(msg.length);
  const body = Buffer.concat([random, len, msg, Buffer.from(receiverId, 'utf8')]);
  const pad = BLOCK - (body.length % BLOCK);
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([body, Buffer.alloc(pad, pad)])), cipher.final()]).toString(
    'base64'
  );
}
