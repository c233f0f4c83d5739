import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { FeishuCryptoError, computeSignature, decryptEvent, verifySignature } from '../platforms/feishu/crypto';
import { buildSignedRequest, encryptEvent, signEvent, urlVerification } from '../simulators/feishu/event-signer';
import { isIntegrationError } from '../domain/errors';

// Official test vector from Feishu's "receive events" docs (reference §1.3).
const VECTOR_KEY = 'test key';
const VECTOR_ENCRYPT = 'P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=';

/** A third, minimal decryptor straight from the documented algorithm, to check the event signer against. */
function referenceDecrypt(encrypt: string, key: string): string {
  const buf = Buffer.from(encrypt, 'base64');
  const d = createDecipheriv('aes-256-cbc', createHash('sha256').update(key).digest(), buf.subarray(0, 16));
  return Buffer.concat([d.update(buf.subarray(16)), d.final()]).toString('utf8');
}

function assertCryptoError(fn: () => unknown, reason: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FeishuCryptoError, `expected FeishuCryptoError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    assert.ok(isIntegrationError(err));
    assert.equal(err.kind, 'invalid');
    assert.equal(err.retryable, false);
    return true;
  });
}

describe('feishu crypto: official test vector', () => {
  it('crypto.ts decrypts the official vector to "hello world"', () => {
    assert.equal(decryptEvent(VECTOR_ENCRYPT, VECTOR_KEY), 'hello world');
  });

  it('event-signer encrypts with the same IV to the exact official ciphertext', () => {
    const iv = Buffer.from(VECTOR_ENCRYPT, 'base64').subarray(0, 16);
    assert.equal(encryptEvent('hello world', VECTOR_KEY, iv), VECTOR_ENCRYPT);
  });

  it('event-signer output decrypts with the documented algorithm', () => {
    assert.equal(referenceDecrypt(encryptEvent('hello world', VECTOR_KEY), VECTOR_KEY), 'hello world');
  });
});

describe('feishu crypto: round trip and signatures', () => {
  const key = 'sandbox-encrypt-key';

  it('round-trips unicode JSON through encryptEvent → decryptEvent with a fresh IV each time', () => {
    const plain = JSON.stringify({ schema: '2.0', event: { text: 'MAC地址 aa:bb:cc:dd:ee:ff ✓' } });
    const a = encryptEvent(plain, key);
    const b = encryptEvent(plain, key);
    assert.notEqual(a, b);
    assert.equal(decryptEvent(a, key), plain);
    assert.equal(decryptEvent(b, key), plain);
  });

  it('signatures agree between crypto.ts and event-signer and match the documented formula', () => {
    const raw = Buffer.from('{"encrypt":"abc"}');
    const expected = createHash('sha256')
      .update('1700000000' + 'nonce1' + key + '{"encrypt":"abc"}')
      .digest('hex');
    assert.equal(computeSignature('1700000000', 'nonce1', key, raw), expected);
    assert.equal(signEvent('1700000000', 'nonce1', key, raw), expected);
  });

  it('a signed request verifies over its raw bytes and decrypts to the original body', () => {
    const body = { uuid: 'e1', token: 'vt', type: 'event_callback', event: { type: 'approval_instance' } };
    const { rawBody, headers } = buildSignedRequest({ body, encryptKey: key });
    assert.equal(verifySignature(headers, key, rawBody), true);
    const { encrypt } = JSON.parse(rawBody.toString('utf8')) as { encrypt: string };
    assert.deepEqual(JSON.parse(decryptEvent(encrypt, key)), body);
  });

  it('verification reads headers case-insensitively and from a Fetch Headers object', () => {
    const { rawBody, headers } = buildSignedRequest({ body: { a: 1 }, encryptKey: key });
    const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    assert.equal(verifySignature(upper, key, rawBody), true);
    assert.equal(verifySignature(new Headers(headers), key, rawBody), true);
  });

  it('tampering with the body, timestamp, nonce, signature or key fails verification', () => {
    const { rawBody, headers } = buildSignedRequest({ body: { a: 1 }, encryptKey: key });
    const tamperedBody = Buffer.from(rawBody);
    tamperedBody[5] = tamperedBody[5]! ^ 1;
    assert.equal(verifySignature(headers, key, tamperedBody), false);
    assert.equal(verifySignature({ ...headers, 'x-lark-request-timestamp': '1' }, key, rawBody), false);
    assert.equal(verifySignature({ ...headers, 'x-lark-request-nonce': 'other' }, key, rawBody), false);
    const sig = headers['x-lark-signature']!;
    const flipped = (sig[0] === '0' ? '1' : '0') + sig.slice(1);
    assert.equal(verifySignature({ ...headers, 'x-lark-signature': flipped }, key, rawBody), false);
    assert.equal(verifySignature({ ...headers, 'x-lark-signature': 'short' }, key, rawBody), false);
    assert.equal(verifySignature(headers, 'other key', rawBody), false);
  });

  it('re-serialised JSON does not verify: the signature is over the raw bytes', () => {
    const { rawBody, headers } = buildSignedRequest({ body: { a: 1 }, encryptKey: key });
    const pretty = Buffer.from(JSON.stringify(JSON.parse(rawBody.toString('utf8')), null, 2));
    assert.equal(verifySignature(headers, key, pretty), false);
  });

  it('missing signature headers fail verification', () => {
    const { rawBody } = buildSignedRequest({ body: { a: 1 }, encryptKey: key });
    assert.equal(verifySignature({}, key, rawBody), false);
  });

  it('optional timestamp window rejects stale requests', () => {
    const { rawBody, headers } = buildSignedRequest({ body: { a: 1 }, encryptKey: key, timestamp: '1000' });
    assert.equal(verifySignature(headers, key, rawBody), true);
    assert.equal(verifySignature(headers, key, rawBody, { maxSkewSeconds: 300 }), false);
    assert.equal(verifySignature(headers, key, rawBody, { maxSkewSeconds: 300, nowMs: 1_100_000 }), true);
  });

  it('plaintext requests have no signature headers; the URL challenge is never signed', () => {
    const plain = buildSignedRequest({ body: { a: 1 } });
    assert.equal(plain.rawBody.toString(), '{"a":1}');
    assert.equal(plain.headers['x-lark-signature'], undefined);
    const challenge = buildSignedRequest({ body: urlVerification({ token: 'vt' }), encryptKey: key });
    assert.equal(challenge.headers['x-lark-signature'], undefined);
    const { encrypt } = JSON.parse(challenge.rawBody.toString()) as { encrypt: string };
    assert.equal((JSON.parse(decryptEvent(encrypt, key)) as { type: string }).type, 'url_verification');
  });

  it('fills the verification token into bodies without one', () => {
    const v1 = buildSignedRequest({ body: { type: 'event_callback', event: {} }, verificationToken: 'vt' });
    assert.equal((JSON.parse(v1.rawBody.toString()) as { token: string }).token, 'vt');
    const v2 = buildSignedRequest({ body: { schema: '2.0', header: { event_id: 'x' } }, verificationToken: 'vt' });
    assert.equal((JSON.parse(v2.rawBody.toString()) as { header: { token: string } }).header.token, 'vt');
  });
});

describe('feishu crypto: bad input raises a typed error', () => {
  const key = 'k';

  it('rejects non-base64', () => {
    assertCryptoError(() => decryptEvent('not base64!!', key), 'bad-base64');
    assertCryptoError(() => decryptEvent('', key), 'bad-base64');
    assertCryptoError(() => decryptEvent('abc', key), 'bad-base64');
  });

  it('rejects ciphertext that is too short or not whole blocks', () => {
    assertCryptoError(() => decryptEvent(randomBytes(16).toString('base64'), key), 'bad-ciphertext');
    assertCryptoError(() => decryptEvent(randomBytes(40).toString('base64'), key), 'bad-ciphertext');
  });

  it('rejects the wrong key (bad PKCS7 padding)', () => {
    // Fixed IV so the test is deterministic (a wrong key gives random padding, valid about 1 time in 256).
    const encrypt = encryptEvent('{"hello":"world"}', 'right key', Buffer.alloc(16, 7));
    assertCryptoError(() => decryptEvent(encrypt, 'wrong key'), 'bad-padding');
  });

  it('rejects plaintext that is not UTF-8', () => {
    const iv = randomBytes(16);
    const c = createCipheriv('aes-256-cbc', createHash('sha256').update(key).digest(), iv);
    const encrypt = Buffer.concat([iv, c.update(Buffer.from([0xff, 0xfe, 0xfd])), c.final()]).toString('base64');
    assertCryptoError(() => decryptEvent(encrypt, key), 'bad-plaintext');
  });
});
