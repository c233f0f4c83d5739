import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeDingTalkRequest, dingtalkSuccessReply } from '../platforms/dingtalk/envelope';
import { HttpError } from '../ingress/http-error';
import { decodeWeComEcho, decodeWeComRequest } from '../platforms/wecom/envelope';
import {
  type CallbackCryptoError,
  callbackSignature,
  decryptCallback,
  encryptCallback,
  verifyCallbackSignature,
} from '../platforms/shared/callback-crypto';
import * as signer from '../simulators/shared/callback-signer';

/**
 * The callback crypto DingTalk and WeCom share, against their OFFICIAL test vectors (shared/reference
 * dingtalk-wecom.md §6, with sources there): the ingress's reader (platforms/shared/callback-crypto.ts) and the
 * simulators' writer (simulators/shared/callback-signer.ts) are separate code, and both must reproduce the vectors
 * byte for byte. Then forged variants: each must be refused for the right reason.
 */

/** V1: DingTalk console HTTP-push FAQ (an encrypted "success" reply). */
const V1 = {
  token: '123456',
  aesKey: '1234567890123456789012345678901234567890123',
  ownerKey: 'dingsnotzck6pm5veliw',
  signature: '9a95a004dd16f5c307e849b994173f76aa26e5eb',
  timeStamp: '1614767836',
  nonce: 'A7Co0cJLMzIDtMMI',
  encrypt: 'YvkvaGe4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOURqhalbmBJQk5FNcRk42Gl5T0YQXZNwpwWSm1xAFJ5ZA==',
  random: 'dICkEDLj0eb6yAbc',
};

/** V2: DingTalk legacy ISV doc debug sample (a check_create_suite_url push). */
const V2 = {
  token: '123456',
  aesKey: '4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij',
  ownerKey: 'suite4xxxxxxxxxxxxxxx',
  query: 'signature=5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0&timestamp=1445827045067&nonce=nEXhMP4r',
  encrypt:
    '1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMeiZI7gTRWVdUBmfxjZ8Ej23JVYa9VrYeJ5as7XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgUathB6zRHP8PYrfgnNOS9PhSBdHlegK+AGGanfwjXuQ9+0pZcy0w9lQ==',
  plaintext: '{"EventType":"check_create_suite_url","Random":"LPIdSnlF","TestSuiteKey":"suite4xxxxxxxxxxxxxxx"}',
  random: 'hU3bEfGZZewzhG5a',
};

/** V3: WeCom's worked example (加解密方案说明 举例说明). */
const V3 = {
  corpId: 'wx5823bf96d3bd56c7',
  token: 'QDG6eK',
  aesKey: 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C',
  query: 'msg_signature=477715d11cdb4164915debcba66cb864d751f3e6&timestamp=1409659813&nonce=1372623149',
  encrypt:
    'RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==',
  plaintext: [
    '<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>',
    '<FromUserName><![CDATA[mycreate]]></FromUserName>',
    '<CreateTime>1409659813</CreateTime>',
    '<MsgType><![CDATA[text]]></MsgType>',
    '<Content><![CDATA[hello]]></Content>',
    '<MsgId>4561255354251345929</MsgId>',
    '<AgentID>218</AgentID>',
    '</xml>',
  ].join('\n'),
  random: '0960688932c47ef1',
};

const queryOf = (q: string): Record<string, string> => Object.fromEntries(new URLSearchParams(q));

function refusedWith(status: number, id: string) {
  return (err: unknown) => err instanceof HttpError && err.status === status && err.id === id;
}

describe('DingTalk / WeCom callback crypto: official vectors', () => {
  it('V1 (DingTalk FAQ): signature, decryption, owner key, and byte-exact re-encryption', () => {
    assert.equal(callbackSignature(V1.token, V1.timeStamp, V1.nonce, V1.encrypt), V1.signature);
    assert.equal(signer.sign(V1.token, V1.timeStamp, V1.nonce, V1.encrypt), V1.signature);
    assert.ok(verifyCallbackSignature(V1.signature, V1.token, V1.timeStamp, V1.nonce, V1.encrypt));
    assert.deepEqual(decryptCallback(V1.aesKey, V1.encrypt, V1.ownerKey), {
      message: 'success',
      receiverId: V1.ownerKey,
    });
    assert.equal(encryptCallback(V1.aesKey, 'success', V1.ownerKey, Buffer.from(V1.random)), V1.encrypt);
    assert.equal(signer.encrypt(V1.aesKey, 'success', V1.ownerKey, V1.random), V1.encrypt);
    assert.deepEqual(signer.decrypt(V1.aesKey, V1.encrypt).random.toString(), V1.random);
  });

  it('V1 as the reply the ingress builds: checkDingTalkSuccessReply accepts it, and ours', () => {
    const official = JSON.stringify({
      msg_signature: V1.signature,
      timeStamp: V1.timeStamp,
      nonce: V1.nonce,
      encrypt: V1.encrypt,
    });
    const sec = { token: V1.token, aesKey: V1.aesKey, ownerKey: V1.ownerKey };
    assert.deepEqual(signer.checkDingTalkSuccessReply(official, sec), { ok: true });
    const ours = dingtalkSuccessReply(sec, { timestamp: V1.timeStamp, nonce: V1.nonce });
    assert.deepEqual(Object.keys(ours), ['msg_signature', 'timeStamp', 'nonce', 'encrypt']);
    assert.deepEqual(signer.checkDingTalkSuccessReply(JSON.stringify(ours), sec), { ok: true });
  });

  it('V2 (DingTalk ISV sample): the ingress decodes the push as a URL check', () => {
    const decoded = decodeDingTalkRequest(Buffer.from(JSON.stringify({ encrypt: V2.encrypt })), queryOf(V2.query), {
      token: V2.token,
      aesKey: V2.aesKey,
      ownerKey: V2.ownerKey,
    });
    assert.deepEqual(decoded, { kind: 'check_url', eventType: 'check_create_suite_url' });
    assert.equal(decryptCallback(V2.aesKey, V2.encrypt, V2.ownerKey).message, V2.plaintext);
    assert.equal(signer.encrypt(V2.aesKey, V2.plaintext, V2.ownerKey, V2.random), V2.encrypt);
  });

  it('V3 (WeCom example): the ingress verifies, decrypts (receiveid = corp id) and reads the message', () => {
    const body = `<xml><ToUserName><![CDATA[${V3.corpId}]]></ToUserName><AgentID><![CDATA[218]]></AgentID><Encrypt><![CDATA[${V3.encrypt}]]></Encrypt></xml>`;
    const sec = { token: V3.token, encodingAesKey: V3.aesKey, corpId: V3.corpId };
    const event = decodeWeComRequest(Buffer.from(body), queryOf(V3.query), sec);
    assert.equal(event.kind, 'other');
    assert.equal(event.eventType, 'text');
    assert.equal(event.eventId, '4561255354251345929');
    assert.deepEqual(decryptCallback(V3.aesKey, V3.encrypt, V3.corpId), {
      message: V3.plaintext,
      receiverId: V3.corpId,
    });
    assert.equal(encryptCallback(V3.aesKey, V3.plaintext, V3.corpId, Buffer.from(V3.random)), V3.encrypt);
    assert.equal(signer.encrypt(V3.aesKey, V3.plaintext, V3.corpId, V3.random), V3.encrypt);
    // The same ciphertext as a GET echostr answers its plaintext.
    const echo = decodeWeComEcho({ ...queryOf(V3.query), echostr: V3.encrypt }, sec);
    assert.equal(echo, V3.plaintext);
    // An unescaped '+' that query decoding turned into ' ' is still read correctly.
    assert.equal(decodeWeComEcho({ ...queryOf(V3.query), echostr: V3.encrypt.replace(/\+/g, ' ') }, sec), echo);
  });
});

describe('DingTalk / WeCom callback crypto: forged inputs are refused', () => {
  const v2Body = (encrypt = V2.encrypt) => Buffer.from(JSON.stringify({ encrypt }));
  const v2Sec = { token: V2.token, aesKey: V2.aesKey, ownerKey: V2.ownerKey };

  it('DingTalk: bad signature, wrong token, wrong owner key, wrong corp, tampered ciphertext, wrong key', () => {
    const q = queryOf(V2.query);
    assert.throws(
      () => decodeDingTalkRequest(v2Body(), { ...q, signature: '0'.repeat(40) }, v2Sec),
      refusedWith(401, 'bad_signature')
    );
    assert.throws(
      () => decodeDingTalkRequest(v2Body(), q, { ...v2Sec, token: '654321' }),
      refusedWith(401, 'bad_signature')
    );
    assert.throws(
      () => decodeDingTalkRequest(v2Body(), { ...q, timestamp: '1445827045068' }, v2Sec),
      refusedWith(401, 'bad_signature')
    );
    assert.throws(
      () => decodeDingTalkRequest(v2Body(), q, { ...v2Sec, ownerKey: 'suite4yyyyyyyyyyyyyyy' }),
      refusedWith(403, 'unknown_app')
    );
    // Tampered: flip one bit of the last block (its padding) and re-sign, so only decryption can notice.
    const bytes = Buffer.from(V2.encrypt, 'base64');
    bytes[bytes.length - 20]! ^= 0x01;
    const tampered = bytes.toString('base64');
    const sig = callbackSignature(V2.token, q.timestamp!, q.nonce!, tampered);
    assert.throws(
      () => decodeDingTalkRequest(v2Body(tampered), { ...q, signature: sig }, v2Sec),
      refusedWith(400, 'bad_ciphertext')
    );
    assert.throws(
      () => decodeDingTalkRequest(v2Body(), q, { ...v2Sec, aesKey: V1.aesKey }),
      refusedWith(400, 'bad_ciphertext')
    );
    // A validly signed and encrypted event for another organisation, when DINGTALK_CORP_ID is set.
    const plaintext = {
      EventType: 'bpms_instance_change',
      CorpId: 'dingother',
      processInstanceId: 'p',
      processCode: 'c',
      type: 'finish',
      result: 'agree',
    };
    const req = signer.dingtalkRequest({ plaintext, ...v2Sec });
    assert.throws(
      () => decodeDingTalkRequest(Buffer.from(req.body), queryOf(req.query), { ...v2Sec, corpId: 'dingmine' }),
      refusedWith(403, 'unknown_corp')
    );
    assert.equal(
      decodeDingTalkRequest(Buffer.from(req.body), queryOf(req.query), { ...v2Sec, corpId: 'dingother' }).kind,
      'event'
    );
  });

  it('WeCom: bad signature, wrong corp id, tampered ciphertext', () => {
    const sec = { token: V3.token, encodingAesKey: V3.aesKey, corpId: V3.corpId };
    const body = (enc: string) =>
      Buffer.from(`<xml><ToUserName><![CDATA[${V3.corpId}]]></ToUserName><Encrypt><![CDATA[${enc}]]></Encrypt></xml>`);
    const q = queryOf(V3.query);
    assert.throws(
      () => decodeWeComRequest(body(V3.encrypt), { ...q, msg_signature: 'f'.repeat(40) }, sec),
      refusedWith(401, 'bad_signature')
    );
    assert.throws(
      () => decodeWeComRequest(body(V3.encrypt), q, { ...sec, corpId: 'wx0000000000000000' }),
      refusedWith(403, 'unknown_corp')
    );
    const bytes = Buffer.from(V3.encrypt, 'base64');
    bytes[100]! ^= 0xff;
    const tampered = bytes.toString('base64');
    assert.throws(
      () =>
        decodeWeComRequest(
          body(tampered),
          { ...q, msg_signature: callbackSignature(V3.token, q.timestamp!, q.nonce!, tampered) },
          sec
        ),
      // Flipping a byte in the middle garbles two blocks: the length, the XML or the receiveid no longer hold.
      (err: unknown) => err instanceof HttpError && err.status >= 400 && err.status < 500
    );
  });

  it('the reader rejects bad padding, a bad key, bad base64 and partial blocks with a reason', () => {
    const reason = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return (err as CallbackCryptoError).reason;
      }
      return 'accepted';
    };
    assert.equal(
      reason(() => decryptCallback('short', V1.encrypt, V1.ownerKey)),
      'bad-key'
    );
    assert.equal(
      reason(() => decryptCallback(V1.aesKey, '!!!notbase64', V1.ownerKey)),
      'bad-base64'
    );
    assert.equal(
      reason(() => decryptCallback(V1.aesKey, Buffer.alloc(48).toString('base64'), undefined)),
      'bad-ciphertext'
    );
    assert.equal(
      reason(() => decryptCallback(V2.aesKey, V1.encrypt, undefined)),
      'bad-padding'
    );
    assert.equal(
      reason(() => decryptCallback(V1.aesKey, V1.encrypt, 'someone-else')),
      'wrong-receiver'
    );
    assert.equal(verifyCallbackSignature('not-hex', V1.token, V1.timeStamp, V1.nonce, V1.encrypt), false);
  });

  it('round-trips arbitrary UTF-8 between the two implementations, padding to 32-byte blocks', () => {
    for (const len of [0, 1, 11, 12, 31, 32, 33, 100, 1000]) {
      const msg = '审'.repeat(len);
      const enc = signer.encrypt(V3.aesKey, msg, V3.corpId);
      assert.equal(Buffer.from(enc, 'base64').length % 32, 0);
      assert.equal(decryptCallback(V3.aesKey, enc, V3.corpId).message, msg);
      assert.equal(signer.decrypt(V3.aesKey, encryptCallback(V3.aesKey, msg, V3.corpId)).msg, msg);
    }
  });
});
