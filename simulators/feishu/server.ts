import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  approvalInstanceEventV1,
  approvalInstanceStatusChangedV2,
  buildSignedRequest,
  contactUserDeletedV2,
  eventIdOf,
  eventTypeOf,
  urlVerification,
  type FeishuEventBody,
} from './event-signer';
import {
  parseFaults,
  parseJsonObject,
  RateWindow,
  readBody,
  sendJson,
  SimInputError,
  sleep,
  str,
  takeFailPath,
  type FailPathFault as KitFailPathFault,
  type SimFaults as KitSimFaults,
} from '../shared/sim-kit';
import { createLongConnectionGateway, type ClientConfig, type LongConnectionInfo } from './long-connection';

/**
 * Feishu simulator: the Open API subset ApprovalPlus calls (same paths, `{code,msg,data}` envelopes, HTTP
 * statuses, error codes and token flow, reference §3 and §5), plus event delivery to the app's request URL the
 * way Feishu does it (§1): encrypted and signed, HTTP 200 within 3 s or redelivery after 15 s, 5 min, 1 h, 6 h,
 * in order per approval instance. `/_sim/*` is the unauthenticated control API for tests and sandbox mode.
 */

export interface FeishuSimulatorOptions {
  port?: number;
  host?: string;
  appId: string;
  appSecret: string;
  encryptKey?: string;
  verificationToken?: string;
  /** The app's request URL (`…/webhook/feishu`); without one, events are recorded as undeliverable. */
  webhookUrl?: string;
  /**
   * Envelope for approval status events: v1 `approval_instance` (default) or v2 `approval.instance.status_changed_v4`.
   * v2 is delivered only for instances an instance subscription covers (`POST /approval/v4/instances/subscription`).
   */
  eventVersion?: 'v1' | 'v2';
  /**
   * How events reach the app: POSTed to `webhookUrl` (`http`, default), or pushed over the long connection (`ws`,
   * long-connection.ts) to one of the app's connected WSClients. Same queue, ordering and redelivery either way.
   */
  eventMode?: 'http' | 'ws';
  /** Long connection: the ClientConfig handed out (seconds; default Feishu's) and the fragment size of payloads. */
  longConnection?: { clientConfig?: Partial<ClientConfig>; fragmentBytes?: number };
  /** Multiplies Feishu's redelivery delays (15 s, 5 min, 1 h, 6 h); e.g. 0.001 in tests. */
  redeliveryScale?: number;
  /**
   * How often (0–1) an event answered with 200 is delivered once more with the same id: Feishu's delivery is
   * at-least-once (doc: ov, "即使成功接收，仍会收到重复消息"). Default 0; 1 duplicates every event once.
   */
  duplicateDeliveryRate?: number;
  /** The app must answer within this (Feishu: 3 s). */
  deliveryTimeoutMs?: number;
  /** tenant_access_token lifetime in seconds (Feishu: 7200). */
  tokenTtlSeconds?: number;
  /**
   * Whether an instance revoked after approval reads back with `reverted: true` next to its CANCELED status
   * (default true; the docs list the field, not its value on the revoked original, so both are modelled).
   */
  revertedFlagOnRevoke?: boolean;
  /** What a message to a resigned user gets: 230029 (default) or 230013; the docs name both (im-v1/message/create). */
  resignedRecipientCode?: 230013 | 230029;
  /**
   * Detail-table (`fieldList`) cells read back with their `name` (true) or, as the documented example shows them, with
   * only `id`, `type` and `value` (false, default; doc: instance/get, fieldList).
   */
  detailCellNames?: boolean;
  /** Deliver approval events only for codes subscribed via the API, as Feishu does. Default false. */
  requireSubscription?: boolean;
  tenantKey?: string;
}

export interface FormWidgetInput {
  id: string;
  name: string;
  type: string;
  value: unknown;
  [extra: string]: unknown;
}

export interface CreateInstanceInput {
  approval_code: string;
  open_id: string;
  form: FormWidgetInput[];
  status?: string;
  deliver?: boolean;
  user_id?: string;
  instance_code?: string;
  approval_name?: string;
  uuid?: string;
  /**
   * This is a revoke (撤销) instance of that approved instance: it reads back with `reverted_instance_code`, and once
   * it is APPROVED the original is revoked (doc: approval-v4/instance/get, "撤销的原实例 Code，仅在查询撤销实例时显示").
   */
  reverts?: string;
  /** This is a modify (修改) instance of that approved instance: `modified_instance_code` (same doc). */
  modifies?: string;
  /** When it was submitted (epoch ms, creation time); default now. E.g. days before it was approved. */
  start_time?: number;
  /** Who approves it (task_list); default `ou_sim_approver`. */
  approver_open_id?: string;
}

export interface SimMessage {
  message_id: string;
  receive_id: string;
  receive_id_type: string;
  msg_type: string;
  content: unknown;
  uuid?: string;
  create_time: string;
}

export interface SimRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  bytes: number;
}

export interface SimComment {
  comment_id: string;
  instance_code: string;
  user_id: string;
  text: string;
  create_time: string;
  /** As sent (`disable_bot`, doc: instance-comment/create); undefined when the request left it out. */
  disable_bot?: boolean;
  /** Deleted through DELETE …/comments/:comment_id: still listed, with `is_delete: 1` (doc: instance-comment/list). */
  deleted?: boolean;
}

export interface DeliveryRecord {
  event_id: string;
  event_type: string;
  instance_code?: string;
  /**
   * 1 for the first push, 2–5 for redeliveries; an ordered event that waited behind a failing one starts at 2 (its
   * first push is its first retry, doc: ov).
   */
  attempt: number;
  status?: number;
  error?: string;
  ok: boolean;
  /** Set on the last attempt of an event: delivered, or Feishu gave up after 4 retries. */
  outcome?: 'delivered' | 'gave-up';
  at: string;
  duration_ms: number;
  /** How it went: to the request URL, or over the long connection (then `status` is the ACK's code). */
  via?: 'webhook' | 'long-connection';
  /** Long connection: the connection it was pushed to (its `device_id`). */
  connection_id?: string;
  /** A delivery of an event that had already been answered with 200 (at-least-once, `duplicateDeliveryRate`). */
  duplicate?: boolean;
}

/** Feishu's error codes are numbers; `errorRate` failures are 1395001 with HTTP 400. */
export type FailPathFault = KitFailPathFault<number>;
export type SimFaults = KitSimFaults<number>;

export interface FeishuSimulator {
  url: string;
  port: number;
  close(): Promise<void>;
  createInstance(input: CreateInstanceInput): { instance_code: string };
  setStatus(instanceCode: string, status: string, opts?: { deliver?: boolean }): void;
  deleteUser(openId: string, opts?: { deliver?: boolean }): void;
  /** Deliver any event body (v1/v2) through the same queue, encryption and redelivery. */
  deliverEvent(body: FeishuEventBody): void;
  /** POST a URL-verification challenge to the webhook and report what came back. */
  verifyUrl(): Promise<{ ok: boolean; status?: number; body?: unknown; error?: string }>;
  setWebhookUrl(url: string): void;
  setFaults(faults: SimFaults): void;
  clearFaults(): void;
  revokeTokens(): void;
  reset(): void;
  messages(): SimMessage[];
  comments(): SimComment[];
  deliveries(): DeliveryRecord[];
  /** Resolve once `count` delivery attempts are recorded, or (no count) once no event is pending. */
  waitForDeliveries(opts?: { count?: number; timeoutMs?: number }): Promise<DeliveryRecord[]>;
  /** Define an approval's form as `GET /approval/v4/approvals/:code` returns it (else one is derived from instances). */
  defineApproval(input: DefineApprovalInput): void;
  /** Open API requests received since the last reset. */
  requests(): SimRequest[];
  /** The at-least-once knob (`duplicateDeliveryRate`) at run time. */
  setDuplicateDeliveryRate(rate: number): void;
  /** Long connection: the app's open connections, and how many were accepted so far. */
  longConnections(): LongConnectionInfo[];
  longConnectionCount(): number;
  /** Long connection: close connections (the client reconnects), or drop them silently (half-open). */
  dropLongConnections(opts?: { mode?: 'close' | 'silent'; connectionId?: string }): number;
  /**
   * The v2 instance subscription a user made (`POST /approval/v4/instances/subscription` with their user token):
   * INVOLVED_APPROVAL covers instances they started, MANAGED_APPROVAL every instance (the simulator makes every
   * subscriber a manager of every definition, I).
   */
  subscribeInstances(openId: string, type: 'INVOLVED_APPROVAL' | 'MANAGED_APPROVAL'): void;
}

// ---- state ----------------------------------------------------------------------------------------------------

const STATUSES = [
  'PENDING',
  'APPROVED',
  'REJECTED',
  'CANCELED',
  'DELETED',
  'REVERTED',
  'OVERTIME_CLOSE',
  'OVERTIME_RECOVER',
] as const;
const TERMINAL = new Set<string>(['APPROVED', 'REJECTED', 'CANCELED', 'DELETED', 'OVERTIME_CLOSE']);

interface SimInstance {
  instance_code: string;
  approval_code: string;
  approval_name: string;
  open_id: string;
  user_id: string;
  uuid: string;
  form: FormWidgetInput[];
  status: string;
  start_time: number;
  end_time: number;
  serial_number: string;
  reverted_instance_code?: string;
  modified_instance_code?: string;
  approver_open_id?: string;
}

/** An approval definition as `approval/get` returns its form: widgets, detail tables with their columns in `children`. */
interface SimDefinition {
  approval_code: string;
  approval_name: string;
  form: Record<string, unknown>[];
  /** Made up from the instances' forms because no test or sandbox defined it (I: a convenience). */
  derived: boolean;
}

export interface DefineApprovalInput {
  approval_code: string;
  approval_name?: string;
  /**
   * Widgets as the definition reads back (doc: 审批定义表单控件参数): `{id, name, type, custom_id?}`; a detail table
   * (`fieldList`) lists its columns in `children` (the read-back format) or `value` (the create format).
   */
  form: Record<string, unknown>[];
}

interface SimUser {
  open_id: string;
  user_id: string;
  union_id: string;
  name: string;
  deleted: boolean;
}

interface StoredComment extends SimComment {
  content: string;
}

interface PendingEvent {
  body: FeishuEventBody;
  id: string;
  type: string;
  instanceCode?: string;
  attempts: number;
  /** A second delivery of an event already answered with 200 (at-least-once). */
  duplicate?: boolean;
}

/** Feishu's redelivery schedule after a failed push (reference §1.7): at most 4 retries. */
const REDELIVERY_DELAYS_MS = [15_000, 300_000, 3_600_000, 21_600_000];
const UUID_DEDUPE_MS = 3_600_000;
/** The instance list's span per call (doc: instance/list, "单次查询时间范围不要超过10小时"). */
const LIST_MAX_SPAN_MS = 10 * 3_600_000;
/** "卡片消息、富文本消息请求体最大不能超过 30 KB", "文本消息请求体最大不能超过 150 KB" (doc: im-v1/message/create). */
const CARD_BODY_LIMIT_BYTES = 30 * 1024;
const TEXT_BODY_LIMIT_BYTES = 150 * 1024;
/** The comment list's largest page (doc: instance-comment/list, page_size 最大值 1000). */
const COMMENT_PAGE_MAX = 1000;
const TOKEN_REISSUE_BELOW_MS = 30 * 60_000;

/** An Open API error: Feishu answers `{code, msg}` with an HTTP status (mostly 400). */
class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    msg: string,
    readonly headers: Record<string, string> = {}
  ) {
    super(msg);
  }
}

function hexId(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** Stable fake ids derived from the open_id, so repeated instances of one requester agree. */
function derivedId(prefix: string, openId: string, len: number): string {
  return prefix + createHash('sha256').update(openId).digest('hex').slice(0, len);
}

// ---- HTTP plumbing --------------------------------------------------------------------------------------------

interface Ctx {
  method: string;
  path: string;
  query: URLSearchParams;
  params: Record<string, string>;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  /** The request body's size in bytes, as Feishu measures message limits. */
  rawBytes: number;
}

interface Reply {
  status?: number;
  body: unknown;
  headers?: Record<string, string>;
}

type Handler = (ctx: Ctx) => Reply | Promise<Reply>;

interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: Handler;
  /** Open API routes need a tenant token; `/_sim` and the token endpoint do not. */
  auth: boolean;
}

function compileRoute(method: string, path: string, handler: Handler, auth: boolean): Route {
  const keys: string[] = [];
  const source = path.replace(/:(\w+)/g, (_, key: string) => {
    keys.push(key);
    return '([^/]+)';
  });
  return { method, pattern: new RegExp(`^${source}$`), keys, handler, auth };
}

function ok(data: unknown): Reply {
  return { body: { code: 0, msg: 'success', data } };
}

/**
 * The form a sandbox administrator would have built for a route: a reason, one text area per MAC field, the duration
 * options; widget ids as `approval-plus demo` fills them in (widget_reason, widget_macs, widget_duration).
 */
export function routedFormDefinition(route: {
  approvalCode: string;
  macFields: string[];
  durationField?: string;
}): DefineApprovalInput {
  return {
    approval_code: route.approvalCode,
    approval_name: 'Wi-Fi access',
    form: [
      { id: 'widget_reason', name: '申请事由', type: 'input', required: false },
      ...route.macFields.map((name, i) => ({
        id: i === 0 ? 'widget_macs' : `widget_macs_${i + 1}`,
        name,
        type: 'textarea',
        required: true,
      })),
      ...(route.durationField
        ? [{ id: 'widget_duration', name: route.durationField, type: 'radioV2', required: false }]
        : []),
    ],
  };
}

// ---- the simulator --------------------------------------------------------------------------------------------

export async function startFeishuSimulator(options: FeishuSimulatorOptions): Promise<FeishuSimulator> {
  const host = options.host ?? '127.0.0.1';
  const tenantKey = options.tenantKey ?? 'sim-tenant';
  const scale = options.redeliveryScale ?? 1;
  const deliveryTimeoutMs = options.deliveryTimeoutMs ?? 3000;
  let duplicateDeliveryRate = options.duplicateDeliveryRate ?? 0;
  const resignedRecipientCode = options.resignedRecipientCode ?? 230029;
  /** Open API requests as received (method, path, query, body size), for tests that count calls. */
  const requests: SimRequest[] = [];
  const tokenTtlMs = (options.tokenTtlSeconds ?? 7200) * 1000;
  let webhookUrl = options.webhookUrl;

  const instances = new Map<string, SimInstance>();
  const users = new Map<string, SimUser>();
  const messages: SimMessage[] = [];
  const messagesByUuid = new Map<string, { message: SimMessage; data: Record<string, unknown>; at: number }>();
  const comments: StoredComment[] = [];
  const definitions = new Map<string, SimDefinition>();
  const subscriptions = new Set<string>();
  /** v2 instance subscriptions: `${type} ${open_id}` of the user who made them. */
  const instanceSubscriptions = new Set<string>();
  const userTokens = new Map<string, string>(); // user_access_token → open_id
  const deliveries: DeliveryRecord[] = [];
  const gateway = createLongConnectionGateway({
    appId: options.appId,
    appSecret: options.appSecret,
    ackTimeoutMs: deliveryTimeoutMs,
    clientConfig: options.longConnection?.clientConfig,
    fragmentBytes: options.longConnection?.fragmentBytes,
  });
  const tokens = new Map<string, number>(); // token → expiresAt
  let currentToken: { token: string; expiresAt: number } | undefined;
  let faults: SimFaults = {};
  const rateWindow = new RateWindow();

  const queues = new Map<string, PendingEvent[]>();
  const timers = new Set<NodeJS.Timeout>();
  const closing = new AbortController();
  let closed = false;
  /** Bumped by reset(): an in-flight push from before a reset must not touch the new state. */
  let epoch = 0;

  // ---- users & instances ----

  function ensureUser(openId: string, userId?: string): SimUser {
    let user = users.get(openId);
    if (!user) {
      user = {
        open_id: openId,
        user_id: userId ?? derivedId('u', openId, 7),
        union_id: derivedId('on_', openId, 32),
        name: `User ${openId.slice(-6)}`,
        deleted: false,
      };
      users.set(openId, user);
    } else if (userId) {
      user.user_id = userId;
    }
    return user;
  }

  function validateForm(form: unknown): FormWidgetInput[] {
    if (!Array.isArray(form)) throw new SimInputError('form must be an array of widgets {id, name, type, value}');
    form.forEach((w: unknown, i) => {
      const widget = w as Record<string, unknown> | null;
      if (!widget || typeof widget !== 'object' || typeof widget.type !== 'string' || typeof widget.name !== 'string') {
        throw new SimInputError(`form[${i}] must be a widget {id, name, type, value}`);
      }
    });
    return form.map((w: FormWidgetInput, i) => ({ ...w, id: w.id ?? `widget${i + 1}` }));
  }

  function validateStatus(status: unknown): string {
    if (typeof status !== 'string' || !(STATUSES as readonly string[]).includes(status)) {
      throw new SimInputError(`status must be one of ${STATUSES.join(', ')}`);
    }
    return status;
  }

  function defineApproval(input: DefineApprovalInput): void {
    const code = str(input.approval_code);
    if (!code) throw new SimInputError('approval_code is required');
    if (!Array.isArray(input.form)) throw new SimInputError('form must be an array of definition widgets');
    definitions.set(code, {
      approval_code: code,
      approval_name: str(input.approval_name) ?? 'Wi-Fi access',
      form: input.form,
      derived: false,
    });
  }

  /**
   * A definition made up from an instance whose approval code none defined (I: real instances always belong to a
   * definition an admin built): its widgets, and each detail table's columns from its rows, as `children`.
   */
  function learnDefinition(approvalCode: string, instance: SimInstance): void {
    const known = definitions.get(approvalCode);
    if (known && !known.derived) return;
    const form = [...(known?.form ?? [])];
    for (const w of instance.form) {
      if (form.some((d) => d.id === w.id)) continue;
      const widget: Record<string, unknown> = { id: w.id, name: w.name, type: w.type, required: false };
      if (typeof w.custom_id === 'string') widget.custom_id = w.custom_id;
      if (w.type === 'fieldList') {
        const columns = new Map<string, Record<string, unknown>>();
        for (const row of Array.isArray(w.value) ? w.value : []) {
          for (const cell of Array.isArray(row) ? row : []) {
            const c = cell as Record<string, unknown> | null;
            if (c && typeof c.id === 'string' && !columns.has(c.id))
              columns.set(c.id, { id: c.id, name: c.name ?? '', type: c.type ?? 'input' });
          }
        }
        widget.children = [...columns.values()];
      }
      form.push(widget);
    }
    definitions.set(approvalCode, {
      approval_code: approvalCode,
      approval_name: instance.approval_name,
      form,
      derived: true,
    });
  }

  function createInstance(input: CreateInstanceInput): { instance_code: string } {
    const approvalCode = str(input.approval_code);
    const openId = str(input.open_id);
    if (!approvalCode) throw new SimInputError('approval_code is required');
    if (!openId) throw new SimInputError('open_id is required');
    const status = validateStatus(input.status ?? 'APPROVED');
    const code = str(input.instance_code) ?? randomUUID().toUpperCase();
    if (instances.has(code)) throw new SimInputError(`instance ${code} exists`);
    const user = ensureUser(openId, str(input.user_id));
    const now = Date.now();
    const submittedAt = input.start_time ?? now;
    if (!Number.isFinite(submittedAt) || submittedAt > now)
      throw new SimInputError('start_time must be a past epoch ms');
    const reverts = str(input.reverts);
    const modifies = str(input.modifies);
    for (const original of [reverts, modifies]) {
      if (original && instances.get(original)?.status !== 'APPROVED') {
        throw new SimInputError(`${original} is not an approved instance: only those can be revoked or modified`);
      }
    }
    instances.set(code, {
      instance_code: code,
      approval_code: approvalCode,
      approval_name: str(input.approval_name) ?? 'Wi-Fi access',
      open_id: openId,
      user_id: user.user_id,
      uuid: str(input.uuid) ?? '',
      form: validateForm(input.form),
      status,
      start_time: submittedAt,
      end_time: TERMINAL.has(status) ? now : 0,
      serial_number: String(202400000 + instances.size + 1),
      approver_open_id: ensureUser(str(input.approver_open_id) ?? 'ou_sim_approver').open_id,
      ...(reverts ? { reverted_instance_code: reverts } : {}),
      ...(modifies ? { modified_instance_code: modifies } : {}),
    });
    learnDefinition(approvalCode, instances.get(code)!);
    if (input.deliver ?? true) enqueueInstanceEvent(code);
    applyRevocation(code, input.deliver ?? true);
    return { instance_code: code };
  }

  /**
   * An approved revoke instance revokes its original: the original's status becomes REVERTED (read back as CANCELED,
   * see instanceGet) and its status event says REVERTED ("事件会有区分", doc: approval-related-faqs) (I: that the
   * original's event follows the revoke instance's approval).
   */
  function applyRevocation(code: string, deliver: boolean): void {
    const instance = instances.get(code);
    if (!instance?.reverted_instance_code || instance.status !== 'APPROVED') return;
    const original = instances.get(instance.reverted_instance_code);
    if (!original || original.status === 'REVERTED') return;
    original.status = 'REVERTED';
    if (deliver) enqueueInstanceEvent(original.instance_code);
  }

  function setStatus(instanceCode: string, status: string, opts: { deliver?: boolean } = {}): void {
    const instance = instances.get(instanceCode);
    if (!instance) throw new SimInputError(`unknown instance ${instanceCode}`);
    instance.status = validateStatus(status);
    if (TERMINAL.has(instance.status) && !instance.end_time) instance.end_time = Date.now();
    if (opts.deliver ?? true) enqueueInstanceEvent(instanceCode);
    applyRevocation(instanceCode, opts.deliver ?? true);
  }

  function deleteUser(openId: string, opts: { deliver?: boolean } = {}): void {
    const user = users.get(openId) ?? ensureUser(openId);
    user.deleted = true;
    if (opts.deliver ?? true) {
      const body = contactUserDeletedV2({
        openId,
        userId: user.user_id,
        unionId: user.union_id,
        name: user.name,
        token: options.verificationToken ?? '',
        appId: options.appId,
        tenantKey,
      });
      enqueue(body);
    }
  }

  // ---- event delivery ----

  function instanceEvent(instance: SimInstance): FeishuEventBody {
    const common = {
      approvalCode: instance.approval_code,
      instanceCode: instance.instance_code,
      status: instance.status,
      token: options.verificationToken ?? '',
      appId: options.appId,
      tenantKey,
      instanceUuid: instance.uuid,
    };
    if (options.eventVersion === 'v2') {
      const user = users.get(instance.open_id);
      return approvalInstanceStatusChangedV2({
        ...common,
        startUser: { open_id: instance.open_id, user_id: instance.user_id, union_id: user?.union_id },
      });
    }
    return approvalInstanceEventV1(common);
  }

  function enqueueInstanceEvent(instanceCode: string): void {
    const instance = instances.get(instanceCode)!;
    const body = instanceEvent(instance);
    const notSubscribed =
      options.requireSubscription && !subscriptions.has(instance.approval_code)
        ? 'approval code not subscribed'
        : options.eventVersion === 'v2' && !instanceSubscriptionCovers(instance)
          ? 'no instance subscription covers it (POST /approval/v4/instances/subscription)'
          : undefined;
    if (notSubscribed) {
      deliveries.push({
        event_id: eventIdOf(body) ?? '',
        event_type: eventTypeOf(body),
        instance_code: instanceCode,
        attempt: 0,
        ok: false,
        error: notSubscribed,
        at: new Date().toISOString(),
        duration_ms: 0,
      });
      return;
    }
    enqueue(body, instanceCode);
  }

  /**
   * v2 `approval.instance.status_changed_v4` needs, besides the per-code subscription, an instance subscription made
   * with a user token, covering what that user is involved in or manages (sdk `code-gen/projects/approval.ts`
   * `instance.subscription`: "需要调用该接口指定需要接收通知的审批任务范围，指定后才可以接收到对应范围内的事件").
   */
  function instanceSubscriptionCovers(instance: SimInstance): boolean {
    // INVOLVED_APPROVAL: instances the user is part of (here: started); MANAGED_APPROVAL: those of definitions the
    // user manages (here: all of them, I).
    return (
      instanceSubscriptions.has(`INVOLVED_APPROVAL ${instance.open_id}`) ||
      [...instanceSubscriptions].some((s) => s.startsWith('MANAGED_APPROVAL '))
    );
  }

  /** Approval events are ordered per instance: a later one waits until the earlier one is acknowledged. */
  function enqueue(body: FeishuEventBody, instanceCode?: string): void {
    const id = eventIdOf(body) ?? hexId(16);
    const key = instanceCode ? `instance:${instanceCode}` : `event:${id}`;
    const queue = queues.get(key) ?? [];
    queue.push({ body, id, type: eventTypeOf(body), instanceCode, attempts: 0 });
    queues.set(key, queue);
    if (queue.length === 1) void pushHead(key);
  }

  async function postToWebhook(
    body: object
  ): Promise<{ status?: number; text?: string; error?: string; durationMs: number }> {
    const started = Date.now();
    if (!webhookUrl) return { error: 'no webhookUrl configured', durationMs: 0 };
    const { rawBody, headers } = buildSignedRequest({
      body,
      encryptKey: options.encryptKey,
      verificationToken: options.verificationToken,
    });
    try {
      const res = await fetch(webhookUrl, {
        method: 'POST',
        headers,
        body: rawBody,
        signal: AbortSignal.any([AbortSignal.timeout(deliveryTimeoutMs), closing.signal]),
      });
      const text = await res.text();
      return { status: res.status, text, durationMs: Date.now() - started };
    } catch (err) {
      const name = (err as Error).name;
      const error = name === 'TimeoutError' ? `no answer within ${deliveryTimeoutMs} ms` : (err as Error).message;
      return { error, durationMs: Date.now() - started };
    }
  }

  /** The delivery hook: one transport per event mode; what counts as received is a 200 (HTTP status or ACK code). */
  async function deliver(body: FeishuEventBody): Promise<{
    status?: number;
    error?: string;
    durationMs: number;
    via: 'webhook' | 'long-connection';
    connectionId?: string;
  }> {
    if (options.eventMode !== 'ws') return { ...(await postToWebhook(body)), via: 'webhook' };
    // Pushed as plaintext: "无需额外解密、验签逻辑" (doc: 使用长连接接收事件).
    const pushed = await gateway.push(body);
    return { ...pushed, via: 'long-connection' };
  }

  async function pushHead(key: string): Promise<void> {
    const queue = queues.get(key);
    const head = queue?.[0];
    if (closed || !queue || !head) return;
    const startedIn = epoch;
    head.attempts += 1;
    const result = await deliver(head.body);
    if (closed || epoch !== startedIn) return;
    // Only HTTP 200 counts as received (reference §1.7).
    const delivered = result.status === 200;
    const exhausted = !delivered && head.attempts > REDELIVERY_DELAYS_MS.length;
    deliveries.push({
      event_id: head.id,
      event_type: head.type,
      instance_code: head.instanceCode,
      attempt: head.attempts,
      status: result.status,
      error: result.error ?? (delivered ? undefined : `HTTP ${result.status}`),
      ok: delivered,
      outcome: delivered ? 'delivered' : exhausted ? 'gave-up' : undefined,
      at: new Date().toISOString(),
      duration_ms: result.durationMs,
      via: result.via,
      ...(result.connectionId ? { connection_id: result.connectionId } : {}),
      ...(head.duplicate ? { duplicate: true } : {}),
    });
    if (delivered || exhausted) {
      queue.shift();
      // "至少发送一次的策略 … 即使成功接收，仍会收到重复消息" (doc: event-subscription-guide/overview): the same event
      // again after a 200, at the rate the `duplicateDeliveryRate` knob sets.
      if (delivered && !head.duplicate && Math.random() < duplicateDeliveryRate) {
        queue.unshift({ ...head, attempts: 0, duplicate: true });
      }
      // An ordered event that queued behind a failing one "直接进入重试队列排队，等前一事件成功后才会开始重试投递
      // 队首的排队事件，开始第一次重试" (doc: ov, evtov): its first push counts as its first retry (attempt 2).
      const next = queue[0];
      if (next && head.attempts > 1 && next.attempts === 0 && !next.duplicate) next.attempts = 1;
      if (queue.length === 0) queues.delete(key);
      else void pushHead(key);
      return;
    }
    const delay = REDELIVERY_DELAYS_MS[head.attempts - 1]! * scale;
    const timer = setTimeout(() => {
      timers.delete(timer);
      void pushHead(key);
    }, delay);
    timers.add(timer);
  }

  async function verifyUrl(): Promise<{ ok: boolean; status?: number; body?: unknown; error?: string }> {
    const challenge = urlVerification({ token: options.verificationToken ?? '' });
    const result = await postToWebhook(challenge);
    if (result.error) return { ok: false, error: result.error };
    let body: unknown = result.text;
    try {
      body = JSON.parse(result.text ?? '');
    } catch {
      // not JSON: reported as text
    }
    const echoed = (body as { challenge?: unknown } | undefined)?.challenge === challenge.challenge;
    return { ok: result.status === 200 && echoed, status: result.status, body };
  }

  function pendingCount(): number {
    let n = 0;
    for (const q of queues.values()) n += q.length;
    return n;
  }

  async function waitForDeliveries(opts: { count?: number; timeoutMs?: number } = {}): Promise<DeliveryRecord[]> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    const done = (): boolean => (opts.count !== undefined ? deliveries.length >= opts.count : pendingCount() === 0);
    while (!done()) {
      if (Date.now() > deadline) {
        throw new Error(
          `feishu simulator: deliveries not settled (${deliveries.length} recorded, ${pendingCount()} pending)`
        );
      }
      await sleep(10);
    }
    return [...deliveries];
  }

  // ---- tokens ----

  function issueToken(): { token: string; expire: number } {
    const now = Date.now();
    // Feishu returns the same token while it has ≥ 30 min left, otherwise a new one (both stay valid).
    if (currentToken && currentToken.expiresAt - now >= TOKEN_REISSUE_BELOW_MS) {
      return { token: currentToken.token, expire: Math.floor((currentToken.expiresAt - now) / 1000) };
    }
    currentToken = { token: `t-${hexId(20)}`, expiresAt: now + tokenTtlMs };
    tokens.set(currentToken.token, currentToken.expiresAt);
    return { token: currentToken.token, expire: Math.floor(tokenTtlMs / 1000) };
  }

  function requireToken(headers: IncomingMessage['headers']): void {
    const match = /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '');
    if (!match) {
      throw new ApiError(
        400,
        99991661,
        'Missing access token for authorization. Please make a request with token attached.'
      );
    }
    const expiresAt = tokens.get(match[1]!);
    if (expiresAt === undefined || expiresAt <= Date.now()) {
      throw new ApiError(
        400,
        99991663,
        'Invalid access token for authorization. Please make a request with token attached.'
      );
    }
  }

  function revokeTokens(): void {
    tokens.clear();
    currentToken = undefined;
  }

  // ---- faults ----

  async function applyFaults(method: string, path: string): Promise<void> {
    if (faults.latencyMs) await sleep(faults.latencyMs);
    if (faults.rateLimit) {
      if (rateWindow.exceeded(faults.rateLimit.perSecond)) {
        throw new ApiError(429, 99991400, 'request trigger frequency limit', {
          'x-ogw-ratelimit-limit': String(faults.rateLimit.perSecond),
          'x-ogw-ratelimit-reset': '1',
        });
      }
    }
    const fail = takeFailPath(faults, method, path);
    if (fail) {
      const headers: Record<string, string> = fail.status === 429 ? { 'x-ogw-ratelimit-reset': '1' } : {};
      throw new ApiError(fail.status, fail.code, fail.msg ?? 'simulated failure', headers);
    }
    // 1395001 comes with HTTP 400 (doc: instance/get, 错误码).
    if (faults.errorRate && Math.random() < faults.errorRate) {
      throw new ApiError(400, 1395001, 'There have been some errors. Please try again later');
    }
  }

  // ---- Open API handlers ----

  function tenantAccessToken(ctx: Ctx): Reply {
    const appId = str(ctx.body.app_id);
    const appSecret = str(ctx.body.app_secret);
    if (!appId || !appSecret) throw new ApiError(400, 10003, 'invalid param');
    if (appId !== options.appId) throw new ApiError(400, 10014, 'app unauthorized');
    if (appSecret !== options.appSecret) throw new ApiError(400, 10015, 'app secret invalid');
    const { token, expire } = issueToken();
    return { body: { code: 0, msg: 'ok', tenant_access_token: token, expire } };
  }

  function findInstance(code: string): SimInstance {
    const instance = instances.get(code) ?? [...instances.values()].find((i) => i.uuid !== '' && i.uuid === code);
    if (!instance) throw new ApiError(400, 1390003, 'instance code not found');
    return instance;
  }

  function instanceGet(ctx: Ctx): Reply {
    const i = findInstance(ctx.params.instance_id!);
    const commentList = comments
      .filter((c) => c.instance_code === i.instance_code)
      .map((c) => ({ id: c.comment_id, open_id: c.user_id, comment: c.text, create_time: c.create_time }));
    // A revoke (撤销) after approval reads back as CANCELED: "接口不会返回“REVERTED”，但是事件会有区分" (doc:
    // 审批常见问题 FAQ, approval-v4/approval-related-faqs); only events say REVERTED. `reverted` is documented as
    // "单据是否被撤销" (doc: instance/get); that it is true on the revoked original is (I), so it is a knob.
    const reverted = i.status === 'REVERTED';
    const approver = i.approver_open_id ? users.get(i.approver_open_id) : undefined;
    return ok({
      approval_code: i.approval_code,
      approval_name: i.approval_name,
      instance_code: i.instance_code,
      serial_number: i.serial_number,
      department_id: '',
      start_time: String(i.start_time),
      end_time: String(i.end_time),
      user_id: i.user_id,
      open_id: i.open_id,
      status: reverted ? 'CANCELED' : i.status,
      reverted: reverted && (options.revertedFlagOnRevoke ?? true),
      uuid: i.uuid,
      form: JSON.stringify(readBackForm(i.form)),
      // Only on revoke / modify instances ("仅在查询撤销实例时显示该字段", doc: instance/get).
      ...(i.reverted_instance_code ? { reverted_instance_code: i.reverted_instance_code } : {}),
      ...(i.modified_instance_code ? { modified_instance_code: i.modified_instance_code } : {}),
      task_list: approver ? [approverTask(i, approver)] : [],
      comment_list: commentList,
      timeline: [
        { type: 'START', create_time: String(i.start_time), open_id: i.open_id, user_id: i.user_id },
        ...(approver && i.end_time && approvedOnce(i)
          ? [{ type: 'PASS', create_time: String(i.end_time), open_id: approver.open_id, user_id: approver.user_id }]
          : []),
      ],
    });
  }

  /** Whether the approver's task passed: the instance was approved (a revoked one was, before). */
  function approvedOnce(i: SimInstance): boolean {
    return i.status === 'APPROVED' || i.status === 'REVERTED';
  }

  /** One approval node with the instance's approver (doc: instance/get, task_list; the single node is I). */
  function approverTask(i: SimInstance, approver: SimUser): Record<string, unknown> {
    const taskStatus = approvedOnce(i)
      ? 'APPROVED'
      : i.status === 'REJECTED'
        ? 'REJECTED'
        : i.end_time
          ? 'DONE'
          : 'PENDING';
    return {
      id: derivedId('t', i.instance_code, 12),
      user_id: approver.user_id,
      open_id: approver.open_id,
      status: taskStatus,
      node_id: derivedId('', i.approval_code, 32),
      node_name: '审批',
      type: 'AND',
      start_time: String(i.start_time),
      end_time: taskStatus === 'PENDING' ? '0' : String(i.end_time),
    };
  }

  /**
   * The form as the instance API returns it: detail-table cells carry only `id`, `type` and `value` as in the
   * documented fieldList example (doc: instance/get), unless `detailCellNames` keeps their names.
   */
  function readBackForm(form: FormWidgetInput[]): FormWidgetInput[] {
    if (options.detailCellNames) return form;
    return form.map((w) =>
      w.type === 'fieldList' && Array.isArray(w.value)
        ? {
            ...w,
            value: w.value.map((row: unknown) =>
              Array.isArray(row)
                ? row.map((cell: unknown) => {
                    if (typeof cell !== 'object' || cell === null) return cell;
                    const { name: _name, ...rest } = cell as Record<string, unknown>;
                    return rest;
                  })
                : row
            ),
          }
        : w
    );
  }

  /** GET /open-apis/approval/v4/approvals/:approval_code (doc: approval/get): name, status and the form definition. */
  function approvalGet(ctx: Ctx): Reply {
    const definition = definitions.get(ctx.params.approval_code!);
    if (!definition) throw new ApiError(400, 1390002, 'approval code not found');
    return ok({
      approval_name: definition.approval_name,
      status: 'ACTIVE',
      form: JSON.stringify(definition.form),
      node_list: [],
      viewers: [{ type: 'TENANT', id: '', user_id: '' }],
    });
  }

  function page<T>(items: T[], ctx: Ctx, max: number): { items: T[]; has_more: boolean; page_token?: string } {
    const size = Math.min(Math.max(Number(ctx.query.get('page_size')) || max, 1), max);
    const start = Number(ctx.query.get('page_token') ?? '0') || 0;
    const slice = items.slice(start, start + size);
    const more = start + size < items.length;
    return { items: slice, has_more: more, page_token: more ? String(start + size) : undefined };
  }

  function instanceList(ctx: Ctx): Reply {
    const approvalCode = ctx.query.get('approval_code');
    const from = Number(ctx.query.get('start_time'));
    const to = Number(ctx.query.get('end_time'));
    if (!approvalCode || !Number.isFinite(from) || !Number.isFinite(to)) {
      throw new ApiError(400, 1390001, 'param is invalid');
    }
    // "单次查询时间范围不要超过10小时" (doc: instance/list); the answer to a longer span is (I): 1390001.
    if (to - from > LIST_MAX_SPAN_MS) {
      throw new ApiError(400, 1390001, 'param is invalid: start_time to end_time spans more than 10 hours');
    }
    // Feishu filters on creation time ("接口会返回在该时间区间内创建的审批实例"), oldest first.
    const codes = [...instances.values()]
      .filter((i) => i.approval_code === approvalCode && i.start_time >= from && i.start_time < to)
      .sort((a, b) => a.start_time - b.start_time)
      .map((i) => i.instance_code);
    const p = page(codes, ctx, 100);
    return ok({ instance_code_list: p.items, has_more: p.has_more, page_token: p.page_token ?? '' });
  }

  /**
   * The comment APIs' `user_id` (required, doc: instance-comment/create and /list). A user who has left is refused with
   * 1390004 "user_id or open_id not found" (the code from doc: instance/get; that a leaver gets it is I).
   */
  function commentUser(ctx: Ctx): string {
    const userId = ctx.query.get('user_id');
    if (!userId) throw new ApiError(400, 1390001, 'param is invalid: user_id is required');
    const type = ctx.query.get('user_id_type') ?? 'open_id';
    const user = [...users.values()].find((u) => u[type as 'open_id' | 'user_id' | 'union_id'] === userId);
    if (user?.deleted) throw new ApiError(400, 1390004, 'user_id or open_id not found');
    return userId;
  }

  function commentCreate(ctx: Ctx): Reply {
    const userId = commentUser(ctx);
    const instance = findInstance(ctx.params.instance_id!);
    const content = ctx.body.content;
    let text: unknown;
    try {
      text = typeof content === 'string' ? (JSON.parse(content) as { text?: unknown }).text : undefined;
    } catch {
      text = undefined;
    }
    if (typeof text !== 'string') throw new ApiError(400, 1390001, 'param is invalid: content');
    const disableBot = ctx.body.disable_bot;
    if (disableBot !== undefined && typeof disableBot !== 'boolean') {
      throw new ApiError(400, 1390001, 'param is invalid: disable_bot');
    }
    const comment: StoredComment = {
      comment_id: `${Date.now()}${String(comments.length + 1).padStart(6, '0')}`,
      instance_code: instance.instance_code,
      user_id: userId,
      text,
      content: content as string,
      create_time: String(Date.now()),
      ...(disableBot !== undefined ? { disable_bot: disableBot } : {}),
    };
    comments.push(comment);
    return ok({ comment_id: comment.comment_id });
  }

  /** DELETE …/comments/:comment_id (doc: instance-comment/delete): the comment shows as deleted from then on. */
  function commentDelete(ctx: Ctx): Reply {
    commentUser(ctx);
    const instance = findInstance(ctx.params.instance_id!);
    const comment = comments.find(
      (c) => c.instance_code === instance.instance_code && c.comment_id === ctx.params.comment_id
    );
    if (!comment) throw new ApiError(400, 1390001, 'param is invalid: comment_id');
    comment.deleted = true;
    return ok({ comment_id: comment.comment_id });
  }

  /**
   * The documented response is `comments` alone: no has_more / page_token, page_size up to 1000 (doc:
   * instance-comment/list). Deleted comments stay in the list with `is_delete: 1`.
   */
  function commentList(ctx: Ctx): Reply {
    commentUser(ctx);
    const instance = findInstance(ctx.params.instance_id!);
    const pageSize = ctx.query.get('page_size');
    const size = pageSize === null ? 100 : Number(pageSize);
    if (!Number.isInteger(size) || size < 1 || size > COMMENT_PAGE_MAX) {
      throw new ApiError(400, 1390001, 'param is invalid: page_size');
    }
    const list = comments
      .filter((c) => c.instance_code === instance.instance_code)
      .slice(0, size)
      .map((c) => ({
        id: c.comment_id,
        content: c.content,
        create_time: c.create_time,
        update_time: c.create_time,
        is_delete: c.deleted ? 1 : 0,
        replies: [],
        at_info_list: [],
        commentator: c.user_id,
        extra: '',
      }));
    return ok({ comments: list });
  }

  function messageCreate(ctx: Ctx): Reply {
    const receiveIdType = ctx.query.get('receive_id_type') ?? '';
    const { receive_id: receiveId, msg_type: msgType, content, uuid } = ctx.body;
    const bad = (why: string): ApiError => new ApiError(400, 230001, `invalid param: ${why}`);
    if (!['open_id', 'user_id', 'union_id', 'email', 'chat_id'].includes(receiveIdType)) throw bad('receive_id_type');
    if (typeof receiveId !== 'string' || !receiveId) throw bad('receive_id');
    if (typeof msgType !== 'string' || !msgType) throw bad('msg_type');
    if (uuid !== undefined && (typeof uuid !== 'string' || uuid.length > 50)) throw bad('uuid');
    let parsed: unknown;
    try {
      parsed = typeof content === 'string' ? JSON.parse(content) : undefined;
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== 'object' || parsed === null) throw bad('content must be a JSON string');
    // The limit is on the request body in bytes (doc: im-v1/message/create, 230025); what counts as "30 KB" exactly is
    // (I): 30 × 1024 here.
    const limit = msgType === 'text' ? TEXT_BODY_LIMIT_BYTES : CARD_BODY_LIMIT_BYTES;
    if (ctx.rawBytes > limit) throw new ApiError(400, 230025, 'The length of the message content reaches its limit.');
    // A resigned user: "230029 User has resigned", and "如果目标用户已离职，也会报错 230013" (same doc): both, by knob.
    const recipient = [...users.values()].find(
      (u) => u[receiveIdType as 'open_id' | 'user_id' | 'union_id'] === receiveId
    );
    if (recipient?.deleted) {
      throw resignedRecipientCode === 230013
        ? new ApiError(400, 230013, 'Bot has NO availability to this user.')
        : new ApiError(400, 230029, 'User has resigned.');
    }

    const now = Date.now();
    const previous = uuid ? messagesByUuid.get(uuid) : undefined;
    // Same uuid within 1 h: at most one message is sent; the first one is returned.
    if (previous && now - previous.at < UUID_DEDUPE_MS) return ok(previous.data);

    const message: SimMessage = {
      message_id: `om_${hexId(16)}`,
      receive_id: receiveId,
      receive_id_type: receiveIdType,
      msg_type: msgType,
      content: parsed,
      uuid: uuid || undefined,
      create_time: String(now),
    };
    const data = {
      message_id: message.message_id,
      root_id: '',
      parent_id: '',
      msg_type: msgType,
      create_time: message.create_time,
      update_time: message.create_time,
      deleted: false,
      updated: false,
      chat_id: derivedId('oc_', receiveId, 32),
      sender: { id: options.appId, id_type: 'app_id', sender_type: 'app', tenant_key: tenantKey },
      body: { content },
    };
    messages.push(message);
    if (uuid) messagesByUuid.set(uuid, { message, data, at: now });
    return ok(data);
  }

  /**
   * v2 instance subscription. The SDK sends it with whatever token it has; it is a user-scoped subscription, so a
   * tenant token is refused with 99991663 "tenant access token not support" (reference §5.1; I: that this API answers
   * so, after a third-party report that the tenant token is rejected). User tokens come from `POST /_sim/user-tokens`.
   */
  function instanceSubscription(ctx: Ctx): Reply {
    const bearer = /^Bearer\s+(\S+)$/i.exec(ctx.headers.authorization ?? '')?.[1];
    if (!bearer) throw new ApiError(400, 99991661, 'Missing access token for authorization.');
    const openId = userTokens.get(bearer);
    if (!openId) {
      if (tokens.has(bearer)) throw new ApiError(400, 99991663, 'tenant access token not support');
      throw new ApiError(400, 99991668, 'Invalid access token for authorization.');
    }
    const type = ctx.body.subscription_type;
    if (type !== 'INVOLVED_APPROVAL' && type !== 'MANAGED_APPROVAL') {
      throw new ApiError(400, 1390001, 'param is invalid: subscription_type');
    }
    instanceSubscriptions.add(`${type} ${openId}`);
    return ok({});
  }

  function approvalSubscribe(ctx: Ctx): Reply {
    const code = ctx.params.approval_code!;
    if (subscriptions.has(code)) throw new ApiError(400, 1390007, 'subscription existed');
    subscriptions.add(code);
    return ok({});
  }

  function contactUserGet(ctx: Ctx): Reply {
    const id = ctx.params.user_id!;
    const type = ctx.query.get('user_id_type') ?? 'open_id';
    const user = [...users.values()].find((u) => u[type as 'open_id' | 'user_id' | 'union_id'] === id);
    // No such user (or outside the app's contact range): Feishu's contact API answers 41050.
    if (!user) throw new ApiError(400, 41050, 'no user authority error');
    return ok({
      user: {
        open_id: user.open_id,
        user_id: user.user_id,
        union_id: user.union_id,
        name: user.name,
        status: {
          is_frozen: false,
          is_resigned: user.deleted,
          is_activated: !user.deleted,
          is_exited: false,
          is_unjoin: false,
        },
      },
    });
  }

  // ---- /_sim handlers ----

  function reset(): void {
    epoch += 1;
    instances.clear();
    users.clear();
    messages.length = 0;
    messagesByUuid.clear();
    comments.length = 0;
    definitions.clear();
    requests.length = 0;
    subscriptions.clear();
    instanceSubscriptions.clear();
    deliveries.length = 0;
    queues.clear();
    for (const t of timers) clearTimeout(t);
    timers.clear();
    faults = {};
  }

  const simRoutes: [string, string, Handler][] = [
    [
      'POST',
      '/_sim/approval/instances',
      (ctx) => ({ body: createInstance(ctx.body as unknown as CreateInstanceInput) }),
    ],
    ['GET', '/_sim/approval/instances', () => ({ body: [...instances.values()] })],
    [
      'POST',
      '/_sim/approval/definitions',
      (ctx) => {
        defineApproval(ctx.body as unknown as DefineApprovalInput);
        return { body: definitions.get(str(ctx.body.approval_code) ?? '') };
      },
    ],
    ['GET', '/_sim/requests', () => ({ body: requests })],
    [
      'POST',
      '/_sim/approval/instances/:code/status',
      (ctx) => {
        setStatus(ctx.params.code!, ctx.body.status as string, { deliver: ctx.body.deliver as boolean | undefined });
        return { body: { instance_code: ctx.params.code, status: ctx.body.status } };
      },
    ],
    [
      'POST',
      '/_sim/contact/users/:open_id/delete',
      (ctx) => {
        deleteUser(ctx.params.open_id!, { deliver: ctx.body.deliver as boolean | undefined });
        return { body: { open_id: ctx.params.open_id, deleted: true } };
      },
    ],
    [
      'POST',
      '/_sim/events',
      (ctx) => {
        const event = ctx.body.event as FeishuEventBody | undefined;
        if (!event || typeof event !== 'object') throw new SimInputError('event (a Feishu event body) is required');
        enqueue(event);
        return { body: { event_id: eventIdOf(event) ?? null } };
      },
    ],
    ['POST', '/_sim/url-verification', async () => ({ body: await verifyUrl() })],
    ['GET', '/_sim/messages', () => ({ body: messages })],
    ['GET', '/_sim/comments', () => ({ body: comments.map(({ content: _content, ...c }) => c) })],
    ['GET', '/_sim/deliveries', () => ({ body: deliveries })],
    ['GET', '/_sim/subscriptions', () => ({ body: [...subscriptions] })],
    [
      'POST',
      '/_sim/user-tokens',
      (ctx) => {
        const openId = str(ctx.body.open_id);
        if (!openId) throw new SimInputError('open_id is required');
        // Stands in for the OAuth flow that gives a user_access_token (u-…).
        const token = `u-${hexId(20)}`;
        userTokens.set(token, openId);
        return { body: { user_access_token: token, open_id: openId } };
      },
    ],
    ['GET', '/_sim/ws/connections', () => ({ body: gateway.connections() })],
    [
      'POST',
      '/_sim/ws/drop',
      (ctx) => {
        const mode = ctx.body.mode ?? 'close';
        if (mode !== 'close' && mode !== 'silent') throw new SimInputError('mode must be close or silent');
        return { body: { dropped: gateway.drop({ mode, connectionId: str(ctx.body.connection_id) }) } };
      },
    ],
    [
      'POST',
      '/_sim/faults',
      (ctx) => {
        faults = parseFaults(ctx.body, { numericCodes: true });
        return { body: faults };
      },
    ],
    [
      'DELETE',
      '/_sim/faults',
      () => {
        faults = {};
        return { body: faults };
      },
    ],
    [
      'POST',
      '/_sim/tokens/revoke',
      () => {
        revokeTokens();
        return { body: { revoked: true } };
      },
    ],
    [
      'POST',
      '/_sim/reset',
      () => {
        reset();
        return { body: { reset: true } };
      },
    ],
  ];

  const routes: Route[] = [
    compileRoute('POST', '/open-apis/auth/v3/tenant_access_token/internal', tenantAccessToken, false),
    compileRoute('GET', '/open-apis/approval/v4/instances', instanceList, true),
    compileRoute('GET', '/open-apis/approval/v4/instances/:instance_id', instanceGet, true),
    compileRoute('POST', '/open-apis/approval/v4/instances/:instance_id/comments', commentCreate, true),
    compileRoute('GET', '/open-apis/approval/v4/instances/:instance_id/comments', commentList, true),
    compileRoute('DELETE', '/open-apis/approval/v4/instances/:instance_id/comments/:comment_id', commentDelete, true),
    compileRoute('POST', '/open-apis/approval/v4/approvals/:approval_code/subscribe', approvalSubscribe, true),
    compileRoute('GET', '/open-apis/approval/v4/approvals/:approval_code', approvalGet, true),
    compileRoute('POST', '/open-apis/approval/v4/instances/subscription', instanceSubscription, false),
    // The long connection's endpoint request (not under /open-apis; no token: it carries AppID/AppSecret).
    compileRoute(
      'POST',
      '/callback/ws/endpoint',
      (ctx) => ({ body: gateway.endpoint(ctx.body, ctx.headers.host) }),
      false
    ),
    compileRoute('POST', '/open-apis/im/v1/messages', messageCreate, true),
    compileRoute('GET', '/open-apis/contact/v3/users/:user_id', contactUserGet, true),
    ...simRoutes.map(([method, path, handler]) => compileRoute(method, path, handler, false)),
  ];

  function match(
    method: string,
    path: string
  ): { route: Route; params: Record<string, string> } | 'method' | undefined {
    let pathMatched = false;
    for (const route of routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params = Object.fromEntries(route.keys.map((k, i) => [k, decodeURIComponent(m[i + 1]!)]));
      return { route, params };
    }
    return pathMatched ? 'method' : undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const isOpenApi = url.pathname.startsWith('/open-apis/');
    try {
      const raw = await readBody(req);
      const found = match(method, url.pathname);
      if (isOpenApi) {
        requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams), bytes: raw.length });
        await applyFaults(method, url.pathname);
      }
      if (found === undefined || found === 'method') {
        if (isOpenApi) throw new ApiError(404, 404, '404 page not found');
        sendJson(res, found === 'method' ? 405 : 404, { error: `no route ${method} ${url.pathname}` });
        return;
      }
      const body = parseJsonObject(raw); // the SDK sends `{}` even on GET: an empty body reads as {}
      if (body === undefined) {
        if (isOpenApi) throw new ApiError(400, 9499, 'Bad Request: body is not a JSON object');
        throw new SimInputError('body must be a JSON object');
      }
      if (found.route.auth) requireToken(req.headers);
      const reply = await found.route.handler({
        method,
        path: url.pathname,
        query: url.searchParams,
        params: found.params,
        headers: req.headers,
        body,
        rawBytes: raw.length,
      });
      sendJson(res, reply.status ?? 200, reply.body, reply.headers);
    } catch (err) {
      if (err instanceof ApiError) sendJson(res, err.status, { code: err.code, msg: err.message }, err.headers);
      else if (err instanceof SimInputError) sendJson(res, 400, { error: err.message });
      else sendJson(res, 500, { code: 500, msg: `simulator error: ${(err as Error).message}` });
    }
  }

  const server: Server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  server.on('upgrade', gateway.handleUpgrade);

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    closing.abort();
    gateway.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close,
    createInstance,
    setStatus,
    deleteUser,
    deliverEvent: (body) => enqueue(body),
    verifyUrl,
    setWebhookUrl: (url) => {
      webhookUrl = url;
    },
    setFaults: (f) => {
      faults = parseFaults(f as Record<string, unknown>, { numericCodes: true });
    },
    clearFaults: () => {
      faults = {};
    },
    revokeTokens,
    reset,
    messages: () => [...messages],
    comments: () => comments.map(({ content: _content, ...c }) => c),
    deliveries: () => [...deliveries],
    waitForDeliveries,
    defineApproval,
    requests: () => [...requests],
    setDuplicateDeliveryRate: (rate) => {
      duplicateDeliveryRate = rate;
    },
    longConnections: () => gateway.connections(),
    longConnectionCount: () => gateway.connectionCount(),
    dropLongConnections: (opts) => gateway.drop(opts),
    subscribeInstances: (openId, type) => {
      instanceSubscriptions.add(`${type} ${openId}`);
    },
  };
}
