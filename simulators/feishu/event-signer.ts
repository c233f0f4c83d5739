import { createCipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Writing side of Feishu event delivery, for the simulator and tests: builds the bodies Feishu posts and encrypts
 * and signs them as Feishu does (reference §1.2–§1.6). Deliberately independent of platforms/feishu/crypto.ts so
 * that a bug in one is caught by the other.
 */

/** Feishu's envelope for v1 events (no `schema`). */
export interface FeishuEventV1 {
  ts: string;
  uuid: string;
  token: string;
  type: 'event_callback';
  event: Record<string, unknown> & { type: string };
}

/** Feishu's v2 envelope. */
export interface FeishuEventV2 {
  schema: '2.0';
  header: {
    event_id: string;
    token: string;
    create_time: string;
    event_type: string;
    tenant_key: string;
    app_id: string;
  };
  event: Record<string, unknown>;
}

export interface UrlVerificationBody {
  challenge: string;
  token: string;
  type: 'url_verification';
}

export type FeishuEventBody = FeishuEventV1 | FeishuEventV2 | UrlVerificationBody;

/** Encrypt a plaintext event: base64(iv ‖ AES-256-CBC(sha256(key), iv, PKCS7(plain))). */
export function encryptEvent(plain: string, encryptKey: string, iv: Buffer = randomBytes(16)): string {
  const key = createHash('sha256').update(encryptKey, 'utf8').digest();
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  return Buffer.concat([iv, cipher.update(plain, 'utf8'), cipher.final()]).toString('base64');
}

/** X-Lark-Signature over the exact bytes posted: hex(sha256(timestamp + nonce + key + body)). */
export function signEvent(timestamp: string, nonce: string, encryptKey: string, rawBody: Buffer): string {
  const prefix = Buffer.from(`${timestamp}${nonce}${encryptKey}`, 'utf8');
  return createHash('sha256')
    .update(Buffer.concat([prefix, rawBody]))
    .digest('hex');
}

export interface SignedRequestInput {
  body: object;
  encryptKey?: string;
  /** Filled into the body's token slot when the body has none. */
  verificationToken?: string;
  /** Defaults: now (seconds) and a random nonce. */
  timestamp?: string;
  nonce?: string;
  /** Feishu does not sign the URL challenge; default: sign everything else when a key is set. */
  signed?: boolean;
}

export interface SignedRequest {
  rawBody: Buffer;
  headers: Record<string, string>;
}

function withToken(body: object, token: string | undefined): object {
  if (token === undefined) return body;
  const b = body as Record<string, unknown>;
  if (b.schema === '2.0' && b.header && typeof b.header === 'object') {
    const header = b.header as Record<string, unknown>;
    return header.token ? body : { ...b, header: { ...header, token } };
  }
  return b.token ? body : { ...b, token };
}

function isUrlVerification(body: object): boolean {
  return (body as Record<string, unknown>).type === 'url_verification';
}

/** Exactly what Feishu posts to the request URL: compact JSON, encrypted and signed when an Encrypt Key is set. */
export function buildSignedRequest(input: SignedRequestInput): SignedRequest {
  const plain = JSON.stringify(withToken(input.body, input.verificationToken));
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  if (!input.encryptKey) return { rawBody: Buffer.from(plain, 'utf8'), headers };

  const rawBody = Buffer.from(JSON.stringify({ encrypt: encryptEvent(plain, input.encryptKey) }), 'utf8');
  const signed = input.signed ?? !isUrlVerification(input.body);
  if (signed) {
    const timestamp = input.timestamp ?? String(Math.floor(Date.now() / 1000));
    const nonce = input.nonce ?? randomBytes(8).toString('hex');
    headers['x-lark-request-timestamp'] = timestamp;
    headers['x-lark-request-nonce'] = nonce;
    headers['x-lark-signature'] = signEvent(timestamp, nonce, input.encryptKey, rawBody);
  }
  return { rawBody, headers };
}

/** Feishu event ids are 32 lowercase hex characters. */
export function newEventId(): string {
  return randomBytes(16).toString('hex');
}

/** The dedupe key Feishu documents: v1 `uuid`, v2 `header.event_id`. */
export function eventIdOf(body: FeishuEventBody): string | undefined {
  if ('schema' in body) return body.header.event_id;
  if (body.type === 'event_callback') return body.uuid;
  return undefined;
}

/** v1 `event.type` or v2 `header.event_type`. */
export function eventTypeOf(body: FeishuEventBody): string {
  if ('schema' in body) return body.header.event_type;
  if (body.type === 'event_callback') return body.event.type;
  return body.type;
}

interface CommonEventInput {
  token: string;
  appId?: string;
  tenantKey?: string;
  /** Defaults to a fresh random id. */
  eventId?: string;
}

export interface ApprovalInstanceEventInput extends CommonEventInput {
  approvalCode: string;
  instanceCode: string;
  status: string;
  /** Epoch ms of the status change; default now. */
  operateTimeMs?: number;
  /** The instance's custom uuid given at creation (v1 `event.uuid`, v2 `external_id`). */
  instanceUuid?: string;
}

const DEFAULT_APP_ID = 'cli_a1b2c3d4e5f6a7b8';
const DEFAULT_TENANT_KEY = 'sim-tenant';

/** v1 `approval_instance` (reference §2.2). `operate_time` is an int64 for REVERTED and a string otherwise. */
export function approvalInstanceEventV1(input: ApprovalInstanceEventInput): FeishuEventV1 {
  const operateMs = input.operateTimeMs ?? Date.now();
  return {
    ts: (Date.now() / 1000).toFixed(7),
    uuid: input.eventId ?? newEventId(),
    token: input.token,
    type: 'event_callback',
    event: {
      app_id: input.appId ?? DEFAULT_APP_ID,
      tenant_key: input.tenantKey ?? DEFAULT_TENANT_KEY,
      type: 'approval_instance',
      approval_code: input.approvalCode,
      instance_code: input.instanceCode,
      status: input.status,
      operate_time: input.status === 'REVERTED' ? operateMs : String(operateMs),
      instance_operate_time: String(operateMs),
      uuid: input.instanceUuid ?? '',
    },
  };
}

function v2Envelope(eventType: string, input: CommonEventInput, event: Record<string, unknown>): FeishuEventV2 {
  return {
    schema: '2.0',
    header: {
      event_id: input.eventId ?? newEventId(),
      token: input.token,
      create_time: String(Date.now()),
      event_type: eventType,
      tenant_key: input.tenantKey ?? DEFAULT_TENANT_KEY,
      app_id: input.appId ?? DEFAULT_APP_ID,
    },
    event,
  };
}

export interface ApprovalInstanceV2Input extends ApprovalInstanceEventInput {
  startUser?: { open_id: string; user_id?: string; union_id?: string };
}

/** v2 `approval.instance.status_changed_v4` (reference §2.4). */
export function approvalInstanceStatusChangedV2(input: ApprovalInstanceV2Input): FeishuEventV2 {
  return v2Envelope('approval.instance.status_changed_v4', input, {
    approval_code: input.approvalCode,
    instance_code: input.instanceCode,
    external_id: input.instanceUuid ?? '',
    status: input.status,
    operate_time: String(input.operateTimeMs ?? Date.now()),
    start_user: input.startUser
      ? {
          open_id: input.startUser.open_id,
          user_id: input.startUser.user_id ?? '',
          union_id: input.startUser.union_id ?? '',
        }
      : undefined,
  });
}

export interface ContactUserDeletedInput extends CommonEventInput {
  openId: string;
  userId?: string;
  unionId?: string;
  name?: string;
}

/** v2 `contact.user.deleted_v3`: the user left the company (event.object is the user as it was). */
export function contactUserDeletedV2(input: ContactUserDeletedInput): FeishuEventV2 {
  return v2Envelope('contact.user.deleted_v3', input, {
    object: {
      open_id: input.openId,
      user_id: input.userId ?? '',
      union_id: input.unionId ?? '',
      name: input.name ?? '',
      status: { is_frozen: false, is_resigned: true, is_activated: false, is_exited: false, is_unjoin: false },
    },
    old_object: { open_id: input.openId, department_ids: [] },
  });
}

/** The challenge Feishu posts when the request URL is saved (no schema, never signed). */
export function urlVerification(input: { token: string; challenge?: string }): UrlVerificationBody {
  return {
    challenge: input.challenge ?? randomBytes(12).toString('hex'),
    token: input.token,
    type: 'url_verification',
  };
}
