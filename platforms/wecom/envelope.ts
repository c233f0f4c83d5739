import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { CallbackCryptoError, decryptCallback, verifyCallbackSignature } from '../shared/callback-crypto';
import type { InboundEvent } from '../../ingress/events';
import { HttpError } from '../../ingress/http-error';

/**
 * WeCom's callback URL (reference dingtalk-wecom.md §5.1–§5.3), the same crypto as DingTalk's with receiveid = CorpID:
 * - GET `?msg_signature=&timestamp=&nonce=&echostr=`: verify, decrypt, answer the plaintext (URL verification);
 * - POST `?msg_signature=&timestamp=&nonce=` with `<xml><ToUserName/><AgentID/><Encrypt/></xml>`: verify the signature
 *   over Encrypt, decrypt with the receiveid check, check ToUserName, parse the inner XML.
 * `sys_approval_change` becomes an approval-status InboundEvent keyed `wecom-<SpNo>`, routed by TemplateId.
 */

export interface WeComSecurity {
  token: string;
  encodingAesKey: string;
  corpId: string;
}

type Query = Record<string, string | string[] | undefined>;
type Xml = Record<string, unknown>;
const isObject = (v: unknown): v is Xml => typeof v === 'object' && v !== null && !Array.isArray(v);

function q(query: Query, name: string): string | undefined {
  const v = query[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

/**
 * Base64 never contains a space: a '+' that reached us unescaped was turned into ' ' by query decoding (WeCom asks
 * receivers to URL-decode, so its own senders escape it; this keeps a proxy that does not from breaking the check).
 */
function base64Param(v: string): string {
  return v.replace(/ /g, '+');
}

function text(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'string') return v.trim() === '' ? undefined : v.trim();
  return undefined;
}

const parser = new XMLParser({
  ignoreAttributes: true,
  // Keep every value a string: SpNo and CreateTime must not become lossy numbers.
  parseTagValue: false,
  // No entity expansion: WeCom's values are in CDATA, and a DOCTYPE has no business in a callback.
  processEntities: false,
  trimValues: true,
});

export function parseWeComXml(body: string, what: string): Xml {
  if (/<!DOCTYPE|<!ENTITY/i.test(body)) throw new HttpError(400, 'malformed_xml', `${what} carries a DOCTYPE`);
  if (XMLValidator.validate(body) !== true) throw new HttpError(400, 'malformed_xml', `${what} is not well-formed XML`);
  let doc: unknown;
  try {
    doc = parser.parse(body);
  } catch {
    throw new HttpError(400, 'malformed_xml', `${what} is not well-formed XML`);
  }
  const root = isObject(doc) ? doc.xml : undefined;
  if (!isObject(root)) throw new HttpError(400, 'malformed_xml', `${what} has no <xml> root element`);
  return root;
}

function verifyAndDecrypt(
  sec: WeComSecurity,
  signature: string | undefined,
  timestamp: string | undefined,
  nonce: string | undefined,
  encrypt: string
): string {
  if (!signature) throw new HttpError(401, 'missing_signature', 'msg_signature is missing');
  if (!timestamp || !nonce) throw new HttpError(400, 'missing_field', 'timestamp or nonce is missing');
  if (!verifyCallbackSignature(signature, sec.token, timestamp, nonce, encrypt)) {
    throw new HttpError(
      401,
      'bad_signature',
      'msg_signature does not match token, timestamp, nonce and the ciphertext'
    );
  }
  try {
    return decryptCallback(sec.encodingAesKey, encrypt, sec.corpId, 'wecom').message;
  } catch (err) {
    if (err instanceof CallbackCryptoError && err.reason === 'wrong-receiver') {
      throw new HttpError(403, 'unknown_corp', 'the callback is encrypted for another receiveid (corp id)');
    }
    throw new HttpError(400, 'bad_ciphertext', 'the ciphertext cannot be decrypted with the configured EncodingAESKey');
  }
}

/** GET: the echostr's plaintext, to be answered as is (no quotes, BOM or newline). */
export function decodeWeComEcho(query: Query, sec: WeComSecurity): string {
  const echostr = q(query, 'echostr');
  if (!echostr) throw new HttpError(400, 'missing_field', 'echostr is missing');
  return verifyAndDecrypt(
    sec,
    q(query, 'msg_signature'),
    q(query, 'timestamp'),
    q(query, 'nonce'),
    base64Param(echostr)
  );
}

/** POST: the event, normalised. */
export function decodeWeComRequest(rawBody: Buffer, query: Query, sec: WeComSecurity): InboundEvent {
  const outer = parseWeComXml(rawBody.toString('utf8'), 'request body');
  const encrypt = text(outer.Encrypt);
  if (!encrypt) throw new HttpError(400, 'expected_encryption', 'body has no <Encrypt> element');
  const plaintext = verifyAndDecrypt(sec, q(query, 'msg_signature'), q(query, 'timestamp'), q(query, 'nonce'), encrypt);
  const toUser = text(outer.ToUserName);
  if (toUser !== undefined && toUser !== sec.corpId) {
    throw new HttpError(403, 'unknown_corp', 'ToUserName is another corp id');
  }
  const inner = parseWeComXml(plaintext, 'decrypted message');
  const innerTo = text(inner.ToUserName);
  if (innerTo !== undefined && innerTo !== sec.corpId) {
    throw new HttpError(403, 'unknown_corp', 'the decrypted message is addressed to another corp id');
  }
  // `raw` (for forward subscribers with include_raw): the decrypted message as parsed, which carries no secret.
  return { ...normaliseWeComMessage(inner), raw: inner };
}

/** sys_approval_change SpStatus (reference §5.3) → the normalised status. */
export const WECOM_SP_STATUS: Record<string, string> = {
  '1': 'PENDING', // 审批中
  '2': 'APPROVED', // 已通过
  '3': 'REJECTED', // 已驳回
  '4': 'CANCELED', // 已撤销
  '6': 'REVERTED', // 通过后撤销
  '7': 'DELETED', // 已删除
  '10': 'APPROVED', // 已支付: paid, which an approved application only becomes
};

export function normaliseWeComMessage(msg: Xml): InboundEvent {
  const msgType = text(msg.MsgType) ?? '';
  const event = text(msg.Event) ?? '';
  const eventType = msgType === 'event' ? event || 'event' : msgType || 'unknown';
  const createTime = text(msg.CreateTime) ?? '';
  if (msgType === 'event' && event === 'sys_approval_change') {
    const info = isObject(msg.ApprovalInfo) ? msg.ApprovalInfo : undefined;
    // SpNoStr is the recommended spelling; SpNo is missing for some approval types (reference §5.3).
    const instanceId = info && (text(info.SpNoStr) ?? text(info.SpNo));
    const approvalCode = info && text(info.TemplateId);
    const spStatus = info && text(info.SpStatus);
    if (!instanceId || !approvalCode || !spStatus) {
      throw new HttpError(400, 'missing_field', 'sys_approval_change without SpNo, TemplateId or SpStatus');
    }
    const change = text(info.StatuChangeEvent) ?? '';
    return {
      kind: 'approval-status',
      platform: 'wecom',
      // Events have no id; WeCom suggests FromUserName + CreateTime, which is always "sys" here (reference §5.1).
      eventId: `${instanceId}:${spStatus}:${change}:${createTime}`,
      eventType: 'sys_approval_change',
      approvalCode,
      instanceId,
      status: WECOM_SP_STATUS[spStatus] ?? `SP_STATUS_${spStatus}`,
    };
  }
  const id = text(msg.MsgId) ?? `${text(msg.FromUserName) ?? ''}:${createTime}:${eventType}`;
  return { kind: 'other', platform: 'wecom', eventId: id, eventType };
}
