import { createCipheriv, createDecipheriv, createHash, randomInt } from 'node:crypto';

/**
 * Writing side of the DingTalk / WeCom callback crypto, for the simulators and tests: encrypts and signs what the
 * platforms POST, and reads the encrypted "success" DingTalk expects back. Written separately from
 * platforms/shared/callback-crypto.ts (the ingress's reading side) so that a bug in one is caught by the other; both
 * are checked against the official vectors (reference dingtalk-wecom.md §6).
 *
 * Layout (reference §1.3, §5.2): AES-256-CBC(key = b64(aesKey + "="), iv = key[:16]) over
 * random16 ‖ uint32be(len) ‖ msg ‖ receiverId, PKCS#7 to a multiple of 32; signature sha1(sorted parts).
 */

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** 16 random alphanumerics, as the Java DingCallbackCrypto generates its random prefix and nonces. */
export function randomAlnum(length = 16): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ALNUM[randomInt(ALNUM.length)];
  return s;
}

function keyBytes(aesKey: string): Buffer {
  const key = Buffer.from(aesKey + '=', 'base64');
  if (aesKey.length !== 43 || key.length !== 32) throw new Error('aesKey must be 43 base64 characters');
  return key;
}

export function sign(token: string, timestamp: string, nonce: string, encrypt: string): string {
  const parts = [token, timestamp, nonce, encrypt];
  parts.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

export function encrypt(aesKey: string, msg: string, receiverId: string, random?: string | Buffer): string {
  const key = keyBytes(aesKey);
  const prefix = random === undefined ? Buffer.from(randomAlnum(16), 'latin1') : Buffer.from(random);
  const msgBytes = Buffer.from(msg, 'utf8');
  const head = Buffer.alloc(20);
  prefix.copy(head, 0, 0, 16);
  head.writeUInt32BE(msgBytes.length, 16);
  const plain = Buffer.concat([head, msgBytes, Buffer.from(receiverId, 'utf8')]);
  const padLen = 32 - (plain.length % 32);
  const padded = Buffer.alloc(plain.length + padLen, padLen);
  plain.copy(padded);
  const c = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  c.setAutoPadding(false);
  return Buffer.concat([c.update(padded), c.final()]).toString('base64');
}

/** Decrypt (lenient: the simulator only reads what the app sent back, and reports what it found). */
export function decrypt(aesKey: string, b64: string): { msg: string; receiverId: string; random: Buffer } {
  const key = keyBytes(aesKey);
  const d = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  d.setAutoPadding(false);
  const raw = Buffer.concat([d.update(Buffer.from(b64, 'base64')), d.final()]);
  const padLen = raw[raw.length - 1] ?? 0;
  const plain = raw.subarray(0, raw.length - (padLen >= 1 && padLen <= 32 ? padLen : 0));
  const len = plain.readUInt32BE(16);
  return {
    msg: plain.subarray(20, 20 + len).toString('utf8'),
    receiverId: plain.subarray(20 + len).toString('utf8'),
    random: plain.subarray(0, 16),
  };
}

// ---- DingTalk HTTP push ----------------------------------------------------------------------------------------

export interface DingTalkSignedRequest {
  /** Query string without the leading '?'. */
  query: string;
  body: string;
  headers: Record<string, string>;
  timestamp: string;
  nonce: string;
  signature: string;
  encrypt: string;
}

/**
 * A DingTalk HTTP push as DingTalk sends it: `?signature|msg_signature=&timestamp=&nonce=` and `{"encrypt": …}`.
 * DingTalk's own requests have used both `signature` and `msg_signature` (reference §1.2); default `msg_signature`.
 */
export function dingtalkRequest(input: {
  plaintext: object | string;
  token: string;
  aesKey: string;
  ownerKey: string;
  timestamp?: string;
  nonce?: string;
  signatureParam?: 'signature' | 'msg_signature';
}): DingTalkSignedRequest {
  const timestamp = input.timestamp ?? String(Date.now());
  const nonce = input.nonce ?? randomAlnum(8);
  const text = typeof input.plaintext === 'string' ? input.plaintext : JSON.stringify(input.plaintext);
  const enc = encrypt(input.aesKey, text, input.ownerKey);
  const signature = sign(input.token, timestamp, nonce, enc);
  const query = new URLSearchParams({ [input.signatureParam ?? 'msg_signature']: signature, timestamp, nonce });
  return {
    query: query.toString(),
    body: JSON.stringify({ encrypt: enc }),
    headers: { 'content-type': 'application/json' },
    timestamp,
    nonce,
    signature,
    encrypt: enc,
  };
}

/**
 * Check the app's answer to a DingTalk push: JSON `{msg_signature, timeStamp, nonce, encrypt}` whose signature
 * verifies and whose `encrypt` decrypts to "success" for the owner key (reference §1.5).
 */
export function checkDingTalkSuccessReply(
  text: string,
  input: { token: string; aesKey: string; ownerKey: string }
): { ok: true } | { ok: false; why: string } {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { ok: false, why: 'answer is not JSON' };
  }
  const { msg_signature: sig, timeStamp, nonce, encrypt: enc } = body;
  if (typeof sig !== 'string' || typeof timeStamp !== 'string' || typeof nonce !== 'string' || typeof enc !== 'string')
    return { ok: false, why: 'answer lacks msg_signature, timeStamp, nonce or encrypt (strings)' };
  if (sign(input.token, timeStamp, nonce, enc) !== sig) return { ok: false, why: 'answer signature does not verify' };
  let plain: { msg: string; receiverId: string };
  try {
    plain = decrypt(input.aesKey, enc);
  } catch {
    return { ok: false, why: 'answer encrypt does not decrypt' };
  }
  if (plain.msg !== 'success') return { ok: false, why: `answer decrypts to ${JSON.stringify(plain.msg)}` };
  if (plain.receiverId !== input.ownerKey) return { ok: false, why: 'answer encrypted for another owner key' };
  return { ok: true };
}

// ---- WeCom callback --------------------------------------------------------------------------------------------

export interface WeComSignedRequest {
  query: string;
  body: string;
  headers: Record<string, string>;
  timestamp: string;
  nonce: string;
  signature: string;
  encrypt: string;
}

/** WeCom's POST: `?msg_signature=&timestamp=&nonce=` and `<xml><ToUserName/><AgentID/><Encrypt/></xml>` (§5.1). */
export function wecomRequest(input: {
  plaintextXml: string;
  token: string;
  aesKey: string;
  corpId: string;
  agentId?: string;
  timestamp?: string;
  nonce?: string;
}): WeComSignedRequest {
  const timestamp = input.timestamp ?? String(Math.floor(Date.now() / 1000));
  const nonce = input.nonce ?? String(randomInt(1_000_000_000, 2_000_000_000));
  const enc = encrypt(input.aesKey, input.plaintextXml, input.corpId);
  const signature = sign(input.token, timestamp, nonce, enc);
  const body =
    `<xml><ToUserName><![CDATA[${input.corpId}]]></ToUserName>` +
    (input.agentId !== undefined ? `<AgentID><![CDATA[${input.agentId}]]></AgentID>` : '') +
    `<Encrypt><![CDATA[${enc}]]></Encrypt></xml>`;
  return {
    query: new URLSearchParams({ msg_signature: signature, timestamp, nonce }).toString(),
    body,
    headers: { 'content-type': 'text/xml' },
    timestamp,
    nonce,
    signature,
    encrypt: enc,
  };
}

/** WeCom's URL verification GET: `?msg_signature=&timestamp=&nonce=&echostr=` (§5.1); the app answers the plaintext. */
export function wecomEchoQuery(input: {
  echo: string;
  token: string;
  aesKey: string;
  corpId: string;
  timestamp?: string;
  nonce?: string;
}): { query: string; echostr: string } {
  const timestamp = input.timestamp ?? String(Math.floor(Date.now() / 1000));
  const nonce = input.nonce ?? String(randomInt(1_000_000_000, 2_000_000_000));
  const echostr = encrypt(input.aesKey, input.echo, input.corpId);
  const signature = sign(input.token, timestamp, nonce, echostr);
  return { query: new URLSearchParams({ msg_signature: signature, timestamp, nonce, echostr }).toString(), echostr };
}

/** Escape text for a CDATA section (split any "]]>"). */
export function cdata(text: string): string {
  return `<![CDATA[${text.replace(/]]>/g, ']]]]><![CDATA[>')}]]>`;
}
