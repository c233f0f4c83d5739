import { decryptEvent, verifySignature } from './crypto';
import type { InboundEvent } from '../../ingress/events';
import { HttpError } from '../../ingress/http-error';

/**
 * Decodes what Feishu POSTs to the request URL: plain or encrypted, v1 (`event_callback`) or v2 (`schema: "2.0"`),
 * or the `url_verification` challenge. Checks, in order: signature over the raw bytes (whenever an encrypt key is set;
 * the challenge alone arrives unsigned), decryption, JSON, verification token (whenever set), app id.
 */
export interface FeishuSecurity {
  appId: string;
  encryptKey?: string;
  verificationToken?: string;
}

export type FeishuDecoded =
  | { kind: 'challenge'; challenge: string }
  | { kind: 'event'; event: InboundEvent }
  /** An authentic event that can never be processed (see UNREADABLE_FOR_GOOD): acknowledged, never retried. */
  | { kind: 'unreadable'; error: HttpError };

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

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

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

export function decodeFeishuRequest(
  rawBody: Buffer,
  headers: Record<string, string | string[] | undefined>,
  sec: FeishuSecurity
): FeishuDecoded {
  const outer = parseJson(rawBody.toString('utf8'), 'request body');
  const header = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const signature = header('x-lark-signature');
  const encrypted = typeof outer.encrypt === 'string';

  if (sec.encryptKey && signature !== undefined) {
    const ok = verifySignature(headers, sec.encryptKey, rawBody);
    if (!ok) throw new HttpError(401, 'bad_signature', 'X-Lark-Signature does not match the request body');
  }

  let body = outer;
  if (encrypted) {
    if (!sec.encryptKey)
      throw new HttpError(400, 'unexpected_encryption', 'encrypted event but FEISHU_ENCRYPT_KEY is not set');
    let plain: string;
    try {
      plain = decryptEvent(outer.encrypt as string, sec.encryptKey);
    } catch {
      throw new HttpError(400, 'bad_ciphertext', 'the encrypt field cannot be decrypted with the configured key');
    }
    body = parseJson(plain, 'decrypted event');
  } else if (sec.encryptKey) {
    throw new HttpError(400, 'expected_encryption', 'plaintext event but an encrypt key is configured');
  }

  const v2Header = isObject(body.header) ? body.header : undefined;
  const token = v2Header ? v2Header.token : body.token;
  if (sec.verificationToken && token !== sec.verificationToken) {
    throw new HttpError(403, 'bad_token', 'verification token does not match');
  }

  if (body.type === 'url_verification') {
    const challenge = str(body.challenge);
    if (!challenge) throw new HttpError(400, 'missing_field', 'url_verification without challenge');
    return { kind: 'challenge', challenge };
  }
  // Every event but the challenge is signed when an encrypt key is set.
  if (sec.encryptKey && signature === undefined) {
    throw new HttpError(401, 'missing_signature', 'X-Lark-Signature header is missing');
  }

  // Here the request is Feishu's own when a secret vouched for it: the signature (encrypt key) or the token.
  const authentic = !!sec.encryptKey || !!sec.verificationToken;
  try {
    return { kind: 'event', event: decodeFeishuEvent(body, sec) };
  } catch (err) {
    if (authentic && err instanceof HttpError && UNREADABLE_FOR_GOOD.has(err.id))
      return { kind: 'unreadable', error: err };
    throw err;
  }
}

/**
 * What an authentic event can fail on that no redelivery changes: the same bytes come back. Any non-200 is redelivered
 * at 15 s, 5 min, 1 h and 6 h, and while it is, later ordered events of the same instance queue behind it (doc:
 * event-subscription-guide/overview, approval-v4/event/function-introduction: "后续投递的事件会直接进入重试队列
 * 排队"), so a REVERTED could wait for hours. Such an event is acknowledged (200, outcome `unreadable`) and logged as an
 * error instead. Forged, undecryptable and wrongly signed requests, and events for another app, stay 4xx: they are
 * not an event of this app, or a key or app id the operator can correct while Feishu still redelivers (7.1 h).
 */
const UNREADABLE_FOR_GOOD = new Set(['missing_field', 'unknown_envelope']);

/**
 * A plaintext Feishu event envelope, v1 or v2, as the request URL receives it after decryption and the long
 * connection receives it as is, into the normalised event with `raw` (so forward subscribers see one shape in both
 * modes). Checks the app id; the verification token is the webhook's business.
 */
export function decodeFeishuEvent(body: Json, sec: Pick<FeishuSecurity, 'appId'>): InboundEvent {
  const v2Header = isObject(body.header) ? body.header : undefined;
  if (v2Header) return { ...decodeV2(body, v2Header, sec), raw: rawFeishuEvent(body) };
  if (body.type === 'event_callback') return { ...decodeV1(body, sec), raw: rawFeishuEvent(body) };
  throw new HttpError(400, 'unknown_envelope', 'neither a v1 event_callback nor a v2 (schema 2.0) event');
}

/** The decrypted event for forward subscribers (`include_raw`), without the verification token (a secret). */
export function rawFeishuEvent(body: Json): Json {
  const { token: _token, ...rest } = body;
  if (isObject(rest.header)) {
    const { token: _headerToken, ...header } = rest.header;
    return { ...rest, header };
  }
  return rest;
}

function checkApp(appId: unknown, sec: Pick<FeishuSecurity, 'appId'>): void {
  if (appId !== undefined && appId !== sec.appId) throw new HttpError(403, 'unknown_app', 'event is for another app');
}

function decodeV1(body: Json, sec: Pick<FeishuSecurity, 'appId'>): InboundEvent {
  const eventId = str(body.uuid);
  const event = isObject(body.event) ? body.event : undefined;
  if (!eventId || !event) throw new HttpError(400, 'missing_field', 'v1 event without uuid or event');
  checkApp(event.app_id, sec);
  return normaliseEventObject(str(event.type) ?? '', eventId, event);
}

function decodeV2(body: Json, header: Json, sec: Pick<FeishuSecurity, 'appId'>): InboundEvent {
  const eventId = str(header.event_id);
  const eventType = str(header.event_type);
  const event = isObject(body.event) ? body.event : undefined;
  if (!eventId || !eventType || !event)
    throw new HttpError(400, 'missing_field', 'v2 event without event_id, event_type or event');
  checkApp(header.app_id, sec);
  return normaliseEventObject(eventType, eventId, event);
}

/** Maps a Feishu event type and its `event` fields onto an InboundEvent. */
export function normaliseEventObject(eventType: string, eventId: string, event: Json): InboundEvent {
  switch (eventType) {
    case 'approval_instance':
    case 'approval.instance.status_changed_v4': {
      const approvalCode = str(event.approval_code);
      const instanceId = str(event.instance_code);
      const status = str(event.status);
      if (!approvalCode || !instanceId || !status) {
        throw new HttpError(400, 'missing_field', `${eventType} without approval_code, instance_code or status`);
      }
      return { kind: 'approval-status', platform: 'feishu', eventId, eventType, approvalCode, instanceId, status };
    }
    case 'approval.instance.remedy_group_update_v4': {
      // Attendance remedy approvals: not an automation of ours, but acknowledged as a known approval event.
      return { kind: 'other', platform: 'feishu', eventId, eventType };
    }
    case 'contact.user.deleted_v3': {
      const obj = isObject(event.object) ? event.object : event;
      const userId = str(obj.open_id);
      if (!userId) throw new HttpError(400, 'missing_field', 'contact.user.deleted_v3 without object.open_id');
      return { kind: 'user-left', platform: 'feishu', eventId, eventType, userId };
    }
    default:
      return { kind: 'other', platform: 'feishu', eventId, eventType: eventType || 'unknown' };
  }
}
