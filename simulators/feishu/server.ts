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
  /** Envelope for approval status events: v1 `approval_instance` (default) or v2 `approval.instance.status_changed_v4`. */
  eventVersion?: 'v1' | 'v2';
  /** Multiplies Feishu's redelivery delays (15 s, 5 min, 1 h, 6 h); e.g. 0.001 in tests. */
  redeliveryScale?: number;
  /** The app must answer within this (Feishu: 3 s). */
  deliveryTimeoutMs?: number;
  /** tenant_access_token lifetime in seconds (Feishu: 7200). */
  tokenTtlSeconds?: number;
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

export interface SimComment {
  comment_id: string;
  instance_code: string;
  user_id: string;
  text: string;
  create_time: string;
}

export interface DeliveryRecord {
  event_id: string;
  event_type: string;
  instance_code?: string;
  /** 1 for the first push, 2–5 for redeliveries. */
  attempt: number;
  status?: number;
  error?: string;
  ok: boolean;
  /** Set on the last attempt of an event: delivered, or Feishu gave up after 4 retries. */
  outcome?: 'delivered' | 'gave-up';
  at: string;
  duration_ms: number;
}

/** Feishu's error codes are numbers; `errorRate` failures are HTTP 500. */
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
}

/** Feishu's redelivery schedule after a failed push (reference §1.7): at most 4 retries. */
const REDELIVERY_DELAYS_MS = [15_000, 300_000, 3_600_000, 21_600_000];
const UUID_DEDUPE_MS = 3_600_000;
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

// ---- the simulator --------------------------------------------------------------------------------------------

export async function startFeishuSimulator(options: FeishuSimulatorOptions): Promise<FeishuSimulator> {
  const host = options.host ?? '127.0.0.1';
  const tenantKey = options.tenantKey ?? 'sim-tenant';
  const scale = options.redeliveryScale ?? 1;
  const deliveryTimeoutMs = options.deliveryTimeoutMs ?? 3000;
  const tokenTtlMs = (options.tokenTtlSeconds ?? 7200) * 1000;
  let webhookUrl = options.webhookUrl;

  const instances = new Map<string, SimInstance>();
  const users = new Map<string, SimUser>();
  const messages: SimMessage[] = [];
  const messagesByUuid = new Map<string, { message: SimMessage; data: Record<string, unknown>; at: number }>();
  const comments: StoredComment[] = [];
  const subscriptions = new Set<string>();
  const deliveries: DeliveryRecord[] = [];
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
    instances.set(code, {
      instance_code: code,
      approval_code: approvalCode,
      approval_name: str(input.approval_name) ?? 'Wi-Fi access',
      open_id: openId,
      user_id: user.user_id,
      uuid: str(input.uuid) ?? '',
      form: validateForm(input.form),
      status,
      start_time: now,
      end_time: TERMINAL.has(status) ? now : 0,
      serial_number: String(202400000 + instances.size + 1),
    });
    if (input.deliver ?? true) enqueueInstanceEvent(code);
    return { instance_code: code };
  }

  function setStatus(instanceCode: string, status: string, opts: { deliver?: boolean } = {}): void {
    const instance = instances.get(instanceCode);
    if (!instance) throw new SimInputError(`unknown instance ${instanceCode}`);
    instance.status = validateStatus(status);
    if (TERMINAL.has(instance.status) && !instance.end_time) instance.end_time = Date.now();
    if (opts.deliver ?? true) enqueueInstanceEvent(instanceCode);
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
    if (options.requireSubscription && !subscriptions.has(instance.approval_code)) {
      deliveries.push({
        event_id: eventIdOf(body) ?? '',
        event_type: eventTypeOf(body),
        instance_code: instanceCode,
        attempt: 0,
        ok: false,
        error: 'approval code not subscribed',
        at: new Date().toISOString(),
        duration_ms: 0,
      });
      return;
    }
    enqueue(body, instanceCode);
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

  async function pushHead(key: string): Promise<void> {
    const queue = queues.get(key);
    const head = queue?.[0];
    if (closed || !queue || !head) return;
    const startedIn = epoch;
    head.attempts += 1;
    const result = await postToWebhook(head.body);
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
    });
    if (delivered || exhausted) {
      queue.shift();
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
    if (faults.errorRate && Math.random() < faults.errorRate) {
      throw new ApiError(500, 1395001, 'There have been some errors. Please try again later');
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
    // Like Feishu, a revoked approval keeps its APPROVED status and carries reverted=true.
    const reverted = i.status === 'REVERTED';
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
      status: reverted ? 'APPROVED' : i.status,
      reverted,
      uuid: i.uuid,
      form: JSON.stringify(i.form),
      task_list: [],
      comment_list: commentList,
      timeline: [{ type: 'START', create_time: String(i.start_time), open_id: i.open_id, user_id: i.user_id }],
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
    // Feishu filters on creation time, oldest first.
    const codes = [...instances.values()]
      .filter((i) => i.approval_code === approvalCode && i.start_time >= from && i.start_time < to)
      .sort((a, b) => a.start_time - b.start_time)
      .map((i) => i.instance_code);
    const p = page(codes, ctx, 100);
    return ok({ instance_code_list: p.items, has_more: p.has_more, page_token: p.page_token ?? '' });
  }

  function commentUser(ctx: Ctx): string {
    const userId = ctx.query.get('user_id');
    if (!userId) throw new ApiError(400, 1390001, 'param is invalid: user_id is required');
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
    const comment: StoredComment = {
      comment_id: `${Date.now()}${String(comments.length + 1).padStart(6, '0')}`,
      instance_code: instance.instance_code,
      user_id: userId,
      text,
      content: content as string,
      create_time: String(Date.now()),
    };
    comments.push(comment);
    return ok({ comment_id: comment.comment_id });
  }

  function commentList(ctx: Ctx): Reply {
    commentUser(ctx);
    const instance = findInstance(ctx.params.instance_id!);
    const all = comments
      .filter((c) => c.instance_code === instance.instance_code)
      .map((c) => ({
        id: c.comment_id,
        content: c.content,
        create_time: c.create_time,
        update_time: c.create_time,
        is_delete: 0,
        commentator: c.user_id,
        extra: '',
      }));
    const p = page(all, ctx, 100);
    return ok({ comments: p.items, has_more: p.has_more, page_token: p.page_token ?? '' });
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
    subscriptions.clear();
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
    compileRoute('POST', '/open-apis/approval/v4/approvals/:approval_code/subscribe', approvalSubscribe, true),
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
      if (isOpenApi) await applyFaults(method, url.pathname);
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

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    closing.abort();
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
  };
}
