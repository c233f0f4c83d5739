import { createHash, randomBytes } from 'node:crypto';
import {
  CallbackCryptoError,
  callbackSignature,
  decryptCallback,
  encryptCallback,
  verifyCallbackSignature,
} from '../shared/callback-crypto';
import type { InboundEvent } from '../../ingress/events';
import { HttpError } from '../../ingress/http-error';

/**
 * Decodes what DingTalk POSTs to an HTTP-push callback URL (reference dingtalk-wecom.md §1.2–§1.6, §2.1):
 * `?signature|msg_signature=&timestamp|timeStamp=&nonce=` with `{"encrypt": "…"}`. Checks, in order: the query
 * parameters, the body, the signature over (token, timestamp, nonce, encrypt), decryption with the owner key check,
 * the plaintext JSON, and the CorpId when one is configured. `check_url` (and the ISV `check_*_suite_url`) is the
 * URL test; `bpms_instance_change` becomes an approval-status InboundEvent; other events are acknowledged.
 * Every answer that is not an error is the encrypted "success" JSON (`dingtalkSuccessReply`), which DingTalk requires
 * for every event, not only `check_url`.
 */

export interface DingTalkSecurity {
  token: string;
  aesKey: string;
  /** AppKey (console subscriptions), CorpId (legacy register_call_back) or SuiteKey (ISV). */
  ownerKey: string;
  corpId?: string;
}

export type DingTalkDecoded = { kind: 'check_url'; eventType: string } | { kind: 'event'; event: InboundEvent };

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

type Query = Record<string, string | string[] | undefined>;
function q(query: Query, ...names: string[]): string | undefined {
  for (const name of names) {
    const v = query[name];
    const s = Array.isArray(v) ? v[0] : v;
    if (s !== undefined && s !== '') return s;
  }
  return undefined;
}

function parseJson(text: string, what: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'malformed_json', `${what} is not valid JSON`);
  }
  if (!isObject(value)) throw new HttpError(400, 'malformed_json', `${what} is not a JSON object`);
  return value;
}

const CHECK_URL_TYPES = new Set([
  'check_url',
  'check_create_suite_url',
  'check_update_suite_url',
  'check_suite_license_code',
]);

export function decodeDingTalkRequest(rawBody: Buffer, query: Query, sec: DingTalkSecurity): DingTalkDecoded {
  // Both spellings are in use (reference §1.2): msg_signature or signature, timestamp or timeStamp.
  const signature = q(query, 'msg_signature', 'signature');
  const timestamp = q(query, 'timestamp', 'timeStamp');
  const nonce = q(query, 'nonce');
  if (!signature) throw new HttpError(401, 'missing_signature', 'msg_signature (or signature) is missing');
  if (!timestamp || !nonce) throw new HttpError(400, 'missing_field', 'timestamp or nonce is missing');

  const outer = parseJson(rawBody.toString('utf8'), 'request body');
  const encrypt = outer.encrypt;
  if (typeof encrypt !== 'string' || encrypt === '') {
    throw new HttpError(
      400,
      'expected_encryption',
      'body has no "encrypt" string (DingTalk HTTP push is always encrypted)'
    );
  }
  if (!verifyCallbackSignature(signature, sec.token, timestamp, nonce, encrypt)) {
    throw new HttpError(401, 'bad_signature', 'msg_signature does not match token, timestamp, nonce and encrypt');
  }

  let plaintext: string;
  try {
    plaintext = decryptCallback(sec.aesKey, encrypt, sec.ownerKey, 'dingtalk').message;
  } catch (err) {
    if (err instanceof CallbackCryptoError && err.reason === 'wrong-receiver') {
      throw new HttpError(403, 'unknown_app', 'the event is encrypted for another owner key (app key / corp id)');
    }
    throw new HttpError(400, 'bad_ciphertext', 'the encrypt field cannot be decrypted with the configured aes_key');
  }
  const body = parseJson(plaintext, 'decrypted event');
  const eventType = str(body.EventType) ?? str(body.eventType);
  if (!eventType) throw new HttpError(400, 'missing_field', 'decrypted event has no EventType');

  // Newer pushes carry CorpId, older ones corpId (reference §2.1).
  const corpId = str(body.CorpId) ?? str(body.corpId);
  if (sec.corpId && corpId !== undefined && corpId !== sec.corpId) {
    throw new HttpError(403, 'unknown_corp', 'the event is for another DingTalk organisation (CorpId)');
  }

  if (CHECK_URL_TYPES.has(eventType)) return { kind: 'check_url', eventType };
  const eventId = str(body.eventId) ?? str(body.EventId) ?? str(body.BizId);
  // `raw` (for forward subscribers with include_raw): the decrypted event, which carries no secret.
  return { kind: 'event', event: { ...normaliseDingTalkEvent(eventType, eventId, body, plaintext), raw: body } };
}

/** `bpms_instance_change` type/result → the normalised status (reference §2.1). */
export function bpmsStatus(type: string, result: string | undefined): string {
  switch (type) {
    case 'finish':
      return result === 'agree' ? 'APPROVED' : result === 'refuse' ? 'REJECTED' : `FINISHED_${result ?? 'UNKNOWN'}`;
    case 'terminate':
      return 'CANCELED'; // the originator withdrew it
    case 'delete':
      return 'DELETED';
    case 'start':
      return 'PENDING';
    default:
      return type.toUpperCase();
  }
}

/**
 * Shared by the HTTP push (flat body with `EventType`) and Stream mode (frame headers carry the event type and id,
 * `data` the same fields): maps a DingTalk event onto an InboundEvent. Without an eventId (older pushes), the dedupe
 * key is the instance, the change and its time, or a hash of the plaintext.
 */
export function normaliseDingTalkEvent(
  eventType: string,
  eventId: string | undefined,
  data: Json,
  plaintext?: string
): InboundEvent {
  if (eventType === 'bpms_instance_change') {
    const instanceId = str(data.processInstanceId);
    const approvalCode = str(data.processCode);
    const type = str(data.type);
    if (!instanceId || !approvalCode || !type) {
      throw new HttpError(400, 'missing_field', 'bpms_instance_change without processInstanceId, processCode or type');
    }
    const result = str(data.result);
    const id = eventId ?? `${instanceId}:${type}:${result ?? ''}:${str(data.finishTime) ?? str(data.EventTime) ?? ''}`;
    return {
      kind: 'approval-status',
      platform: 'dingtalk',
      eventId: id,
      eventType,
      approvalCode,
      instanceId,
      status: bpmsStatus(type, result),
    };
  }
  const id =
    eventId ??
    `h-${createHash('sha256')
      .update(plaintext ?? JSON.stringify(data))
      .digest('hex')
      .slice(0, 32)}`;
  return { kind: 'other', platform: 'dingtalk', eventId: id, eventType };
}

export interface DingTalkSuccessReply {
  msg_signature: string;
  timeStamp: string;
  nonce: string;
  encrypt: string;
}

const NONCE_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** `{msg_signature, timeStamp, nonce, encrypt: enc("success")}` exactly (reference §1.5). */
export function dingtalkSuccessReply(
  sec: DingTalkSecurity,
  opts: { timestamp?: string; nonce?: string } = {}
): DingTalkSuccessReply {
  const timeStamp = opts.timestamp ?? String(Date.now());
  const nonce = opts.nonce ?? [...randomBytes(16)].map((b) => NONCE_CHARS[b % NONCE_CHARS.length]).join('');
  const encrypt = encryptCallback(sec.aesKey, 'success', sec.ownerKey);
  return { msg_signature: callbackSignature(sec.token, timeStamp, nonce, encrypt), timeStamp, nonce, encrypt };
}
