import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { checkDingTalkSuccessReply, dingtalkRequest, randomAlnum } from './callback-signer';
import {
  PushQueue,
  RateWindow,
  SimInputError,
  SimRouter,
  listen,
  parseFaults,
  parseJsonObject,
  readBody,
  sendJson,
  sleep,
  str,
  takeFailPath,
  type DeliveryRecord,
  type PushResult,
  type SimCtx,
  type SimFaults,
  type SimReply,
} from '../shared/sim-kit';

/**
 * DingTalk simulator: the API subset ApprovalPlus calls, with DingTalk's envelopes (v1.0: HTTP status + `{code,
 * message, requestid}`; legacy oapi: HTTP 200 `{errcode, errmsg}`), both token flows, and approval events pushed the
 * way DingTalk does (reference dingtalk-wecom.md §1–§3):
 * - HTTP push (`eventMode: 'http'`): `bpms_instance_change` encrypted for the owner key and signed, POSTed to the
 *   callback URL; only HTTP 200 with the encrypted "success" JSON counts, anything else is pushed again. DingTalk
 *   documents no schedule ("keeps pushing until a threshold"), so the simulator's is 5 s, 30 s, 2 min, 10 min, 30 min,
 *   1 h, 3 h, 6 h (× redeliveryScale) and then it gives up.
 * - Stream mode (`eventMode: 'stream'`): `POST /v1.0/gateway/connections/open` hands out a one-use ticket and a
 *   `ws://…/connect` endpoint; events go to one connected client (chosen at random, like DingTalk) as EVENT frames and
 *   count as delivered only on an ACK frame with `{"status":"SUCCESS"}`; LATER, no ACK within ackTimeoutMs, or no
 *   client means another push later.
 * `/_sim/*` is the unauthenticated control API for tests and sandbox mode.
 */

export interface DingTalkSimulatorOptions {
  port?: number;
  host?: string;
  appKey: string;
  appSecret: string;
  aesKey?: string;
  token?: string;
  /** What events are encrypted for (default: appKey, as for console subscriptions). */
  ownerKey?: string;
  corpId?: string;
  agentId?: string;
  /** The app's callback URL (`…/webhook/dingtalk`), for HTTP push. */
  webhookUrl?: string;
  eventMode?: 'http' | 'stream';
  redeliveryScale?: number;
  /** DingTalk wants an answer within 1.5–2.5 s (reference §1.6); default 3000. */
  deliveryTimeoutMs?: number;
  /** Stream mode: how long to wait for an ACK frame; default 5000. */
  ackTimeoutMs?: number;
  tokenTtlSeconds?: number;
}

export type DingTalkSimStatus = 'APPROVED' | 'REJECTED' | 'RUNNING' | 'TERMINATED' | 'DELETED';
const STATUSES: readonly DingTalkSimStatus[] = ['APPROVED', 'REJECTED', 'RUNNING', 'TERMINATED', 'DELETED'];

/** One form component as the v1.0 API returns it; `value` is a string (complex components carry JSON). */
export interface DingTalkFormInput {
  id?: string;
  name: string;
  value: string;
  componentType?: string;
  extValue?: string;
  bizAlias?: string;
}

export interface CreateDingTalkInstanceInput {
  /** The template's processCode (alias: approval_code). */
  process_code?: string;
  approval_code?: string;
  /** The originator's userId (alias: user_id). */
  originator_user_id?: string;
  user_id?: string;
  form: DingTalkFormInput[];
  status?: DingTalkSimStatus;
  deliver?: boolean;
  title?: string;
  process_instance_id?: string;
  /** ms epoch; default now. */
  create_time?: number;
}

export interface DingTalkSimMessage {
  task_id: number;
  agent_id: number;
  userid_list: string[];
  msg: Record<string, unknown>;
  create_time: string;
}

export interface DingTalkSimComment {
  process_instance_id: string;
  comment_user_id: string;
  text: string;
  create_time: string;
}

export interface DingTalkSimulator {
  url: string;
  port: number;
  close(): Promise<void>;
  createInstance(input: CreateDingTalkInstanceInput): { process_instance_id: string };
  setStatus(id: string, status: DingTalkSimStatus, opts?: { deliver?: boolean }): void;
  /** Push any decrypted event body (e.g. `{EventType: …}`) through the same queue, crypto and redelivery. */
  deliverEvent(plaintext: Record<string, unknown>, instanceId?: string): void;
  /** POST a check_url event to the callback URL and report whether the answer is the encrypted "success". */
  checkUrl(): Promise<{ ok: boolean; status?: number; why?: string }>;
  setWebhookUrl(url: string): void;
  setFaults(faults: SimFaults): void;
  clearFaults(): void;
  revokeTokens(): void;
  reset(): void;
  messages(): DingTalkSimMessage[];
  comments(): DingTalkSimComment[];
  deliveries(): DeliveryRecord[];
  waitForDeliveries(opts?: { count?: number; timeoutMs?: number }): Promise<DeliveryRecord[]>;
  /** Stream mode: connected clients. */
  streamClients(): number;
  /** Stream mode: connections accepted so far. */
  streamConnectionCount(): number;
  /** Stream mode: drop every connection (as DingTalk does when it rebalances); clients must reconnect. */
  dropStreamClients(): void;
}

interface SimInstance {
  id: string;
  processCode: string;
  title: string;
  originator: string;
  form: DingTalkFormInput[];
  status: DingTalkSimStatus;
  createTime: number;
  finishTime?: number;
  records: Record<string, unknown>[];
}

/** A DingTalk API error: v1.0 answers `{code, message, requestid}` with an HTTP status; legacy HTTP 200 `{errcode}`. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | number,
    msg: string
  ) {
    super(msg);
  }
}

const REDELIVERY_DELAYS_MS = [5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000];

/** "2022-08-31T11:52Z": the v1.0 time format (UTC, minutes). */
function v1Time(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16) + 'Z';
}

function requestId(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}

export async function startDingTalkSimulator(options: DingTalkSimulatorOptions): Promise<DingTalkSimulator> {
  const host = options.host ?? '127.0.0.1';
  const ownerKey = options.ownerKey ?? options.appKey;
  const corpId = options.corpId ?? 'dingsimcorp0000000001';
  const tokenTtlMs = (options.tokenTtlSeconds ?? 7200) * 1000;
  const deliveryTimeoutMs = options.deliveryTimeoutMs ?? 3000;
  const ackTimeoutMs = options.ackTimeoutMs ?? 5000;
  const eventMode = options.eventMode ?? 'http';
  let webhookUrl = options.webhookUrl;

  const instances = new Map<string, SimInstance>();
  const messages: DingTalkSimMessage[] = [];
  const messageKeys = new Map<string, number>();
  const comments: DingTalkSimComment[] = [];
  const tokens = { v1: new Map<string, number>(), legacy: new Map<string, number>() };
  let faults: SimFaults = {};
  const rate = new RateWindow();
  let nextTaskId = 100_000;
  const closing = new AbortController();
  let closed = false;

  // ---- event push ----

  interface Outgoing {
    plaintext: Record<string, unknown>;
    eventId: string;
    eventType: string;
  }

  async function pushHttp(ev: Outgoing): Promise<PushResult> {
    const started = Date.now();
    if (!webhookUrl) return { ok: false, error: 'no webhookUrl configured', durationMs: 0 };
    if (!options.aesKey || !options.token) return { ok: false, error: 'no aesKey/token configured', durationMs: 0 };
    const req = dingtalkRequest({
      plaintext: ev.plaintext,
      token: options.token,
      aesKey: options.aesKey,
      ownerKey,
    });
    try {
      const res = await fetch(`${webhookUrl}${webhookUrl.includes('?') ? '&' : '?'}${req.query}`, {
        method: 'POST',
        headers: req.headers,
        body: req.body,
        signal: AbortSignal.any([AbortSignal.timeout(deliveryTimeoutMs), closing.signal]),
      });
      const text = await res.text();
      const durationMs = Date.now() - started;
      if (res.status !== 200) return { ok: false, status: res.status, durationMs };
      const check = checkDingTalkSuccessReply(text, { token: options.token, aesKey: options.aesKey, ownerKey });
      return check.ok
        ? { ok: true, status: 200, durationMs }
        : { ok: false, status: 200, error: check.why, durationMs };
    } catch (err) {
      const name = (err as Error).name;
      const error = name === 'TimeoutError' ? `no answer within ${deliveryTimeoutMs} ms` : (err as Error).message;
      return { ok: false, error, durationMs: Date.now() - started };
    }
  }

  // Stream mode: connections and ACKs.
  const wss = new WebSocketServer({ noServer: true });
  const tickets = new Map<string, number>(); // ticket → expiresAt
  const clients = new Set<WebSocket>();
  const acks = new Map<string, (status: string) => void>();

  let connectionCount = 0;
  wss.on('connection', (ws) => {
    connectionCount += 1;
    clients.add(ws);
    ws.on('close', () => clients.delete(ws));
    ws.on('message', (data) => {
      let frame: { code?: unknown; headers?: { messageId?: unknown }; data?: unknown };
      try {
        frame = JSON.parse(String(data)) as typeof frame;
      } catch {
        return;
      }
      const messageId = typeof frame.headers?.messageId === 'string' ? frame.headers.messageId : undefined;
      const resolve = messageId ? acks.get(messageId) : undefined;
      if (!resolve) return;
      let status = 'UNKNOWN';
      try {
        const d = JSON.parse(String(frame.data)) as { status?: unknown };
        if (typeof d.status === 'string') status = d.status;
      } catch {
        // not JSON: an unknown ACK
      }
      resolve(frame.code === 200 ? status : `code ${String(frame.code)}`);
    });
  });

  async function pushStream(ev: Outgoing): Promise<PushResult> {
    const started = Date.now();
    const open = [...clients].filter((c) => c.readyState === c.OPEN);
    if (open.length === 0) return { ok: false, error: 'no stream client connected', durationMs: 0 };
    const ws = open[randomInt(open.length)]!;
    const messageId = `sim-${randomBytes(8).toString('hex')}`;
    const { EventType: _t, eventId: _id, CorpId: _c, EventTime: _tm, ...data } = ev.plaintext;
    const frame = {
      specVersion: '1.0',
      type: 'EVENT',
      headers: {
        appId: options.appKey,
        connectionId: 'sim-connection',
        contentType: 'application/json',
        messageId,
        time: String(Date.now()),
        topic: ev.eventType,
        eventType: ev.eventType,
        eventId: ev.eventId,
        eventCorpId: corpId,
        eventBornTime: String(Date.now()),
        eventUnifiedAppId: options.appKey,
      },
      data: JSON.stringify(data),
    };
    const status = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('no ACK'), ackTimeoutMs);
      acks.set(messageId, (s) => {
        clearTimeout(timer);
        resolve(s);
      });
      ws.send(JSON.stringify(frame));
    });
    acks.delete(messageId);
    const durationMs = Date.now() - started;
    return status === 'SUCCESS' ? { ok: true, durationMs } : { ok: false, error: `ACK ${status}`, durationMs };
  }

  const queue = new PushQueue<Outgoing>(
    (ev) => (eventMode === 'stream' ? pushStream(ev) : pushHttp(ev)),
    REDELIVERY_DELAYS_MS,
    options.redeliveryScale ?? 1
  );

  function instanceEvent(i: SimInstance): Outgoing {
    const type =
      i.status === 'APPROVED' || i.status === 'REJECTED'
        ? 'finish'
        : i.status === 'TERMINATED'
          ? 'terminate'
          : i.status === 'DELETED'
            ? 'delete'
            : 'start';
    const eventId = randomBytes(16).toString('hex');
    const now = Date.now();
    const plaintext: Record<string, unknown> = {
      EventType: 'bpms_instance_change',
      EventTime: now,
      CorpId: corpId,
      BizId: String(now),
      eventId,
      processInstanceId: i.id,
      processCode: i.processCode,
      type,
      title: i.title,
      staffId: i.originator,
      createTime: i.createTime,
      url: `https://aflow.dingtalk.com/dingtalk/mobile/homepage.htm?procInsId=${i.id}`,
      bizCategoryId: '',
      businessId: '',
    };
    if (type === 'finish') {
      plaintext.result = i.status === 'APPROVED' ? 'agree' : 'refuse';
      plaintext.finishTime = i.finishTime ?? now;
    }
    return { plaintext, eventId, eventType: 'bpms_instance_change' };
  }

  function deliverInstance(i: SimInstance): void {
    const ev = instanceEvent(i);
    queue.enqueue(ev, { id: ev.eventId, type: ev.eventType, instanceId: i.id });
  }

  function deliverEvent(plaintext: Record<string, unknown>, instanceId?: string): void {
    const eventType = str(plaintext.EventType) ?? 'unknown';
    const eventId = str(plaintext.eventId) ?? randomBytes(16).toString('hex');
    queue.enqueue({ plaintext, eventId, eventType }, { id: eventId, type: eventType, instanceId });
  }

  async function checkUrl(): Promise<{ ok: boolean; status?: number; why?: string }> {
    const r = await pushHttp({ plaintext: { EventType: 'check_url' }, eventId: 'check_url', eventType: 'check_url' });
    return { ok: r.ok, status: r.status, why: r.error };
  }

  // ---- instances ----

  function validateStatus(status: unknown): DingTalkSimStatus {
    if (typeof status !== 'string' || !(STATUSES as readonly string[]).includes(status)) {
      throw new SimInputError(`status must be one of ${STATUSES.join(', ')}`);
    }
    return status as DingTalkSimStatus;
  }

  function validateForm(form: unknown): DingTalkFormInput[] {
    if (!Array.isArray(form)) throw new SimInputError('form must be an array of {name, value, componentType?}');
    return form.map((c: unknown, i) => {
      const comp = c as Record<string, unknown> | null;
      if (!comp || typeof comp !== 'object' || typeof comp.name !== 'string') {
        throw new SimInputError(`form[${i}] must be a form component {name, value, componentType?}`);
      }
      const value = typeof comp.value === 'string' ? comp.value : JSON.stringify(comp.value ?? '');
      return {
        id: str(comp.id) ?? `${str(comp.componentType) ?? 'TextField'}-${i + 1}`,
        name: comp.name,
        value,
        componentType: str(comp.componentType) ?? 'TextField',
        extValue: str(comp.extValue),
        bizAlias: str(comp.bizAlias) ?? '',
      };
    });
  }

  function createInstance(input: CreateDingTalkInstanceInput): { process_instance_id: string } {
    const processCode = str(input.process_code) ?? str(input.approval_code);
    const originator = str(input.originator_user_id) ?? str(input.user_id);
    if (!processCode) throw new SimInputError('process_code (or approval_code) is required');
    if (!originator) throw new SimInputError('originator_user_id (or user_id) is required');
    const status = validateStatus(input.status ?? 'APPROVED');
    const id = str(input.process_instance_id) ?? `${randomAlnum(22)}${String(Date.now()).slice(-10)}`;
    if (instances.has(id)) throw new SimInputError(`instance ${id} exists`);
    const createTime = typeof input.create_time === 'number' ? input.create_time : Date.now();
    const instance: SimInstance = {
      id,
      processCode,
      title: str(input.title) ?? 'Wi-Fi 接入申请',
      originator,
      form: validateForm(input.form),
      status,
      createTime,
      finishTime: status === 'APPROVED' || status === 'REJECTED' ? Date.now() : undefined,
      records: [
        { userId: originator, date: v1Time(createTime), type: 'START_PROCESS_INSTANCE', result: 'NONE', remark: '' },
      ],
    };
    if (instance.finishTime) {
      instance.records.push({
        userId: 'manager01',
        date: v1Time(instance.finishTime),
        type: 'EXECUTE_TASK_NORMAL',
        result: status === 'APPROVED' ? 'AGREE' : 'REFUSE',
        remark: '',
      });
    }
    instances.set(id, instance);
    if (input.deliver ?? true) deliverInstance(instance);
    return { process_instance_id: id };
  }

  function setStatus(id: string, status: DingTalkSimStatus, opts: { deliver?: boolean } = {}): void {
    const i = instances.get(id);
    if (!i) throw new SimInputError(`unknown instance ${id}`);
    i.status = validateStatus(status);
    if ((status === 'APPROVED' || status === 'REJECTED') && !i.finishTime) i.finishTime = Date.now();
    if (status === 'TERMINATED') {
      i.records.push({
        userId: i.originator,
        date: v1Time(Date.now()),
        type: 'TERMINATE_PROCESS_INSTANCE',
        result: 'NONE',
        remark: '',
      });
    }
    if (opts.deliver ?? true) deliverInstance(i);
  }

  // ---- tokens ----

  function issue(kind: 'v1' | 'legacy'): string {
    const token = `${kind === 'v1' ? 'v1' : 'lg'}${randomBytes(16).toString('hex')}`;
    tokens[kind].set(token, Date.now() + tokenTtlMs);
    return token;
  }

  function requireV1Token(ctx: SimCtx): void {
    const t = ctx.headers['x-acs-dingtalk-access-token'];
    const token = Array.isArray(t) ? t[0] : t;
    if (!token) throw new ApiError(400, 'MissingxAcsDingtalkAccessToken', 'x-acs-dingtalk-access-token is mandatory');
    const exp = tokens.v1.get(token);
    if (exp === undefined || exp <= Date.now())
      throw new ApiError(401, 'InvalidAuthentication', '不合法的access_token');
  }

  function requireLegacyToken(ctx: SimCtx): void {
    const token = ctx.query.get('access_token');
    if (!token) throw new ApiError(200, 41001, '缺少access_token参数');
    const exp = tokens.legacy.get(token);
    if (exp === undefined) throw new ApiError(200, 40014, '不合法的access_token');
    if (exp <= Date.now()) throw new ApiError(200, 42001, 'access_token超时');
  }

  // ---- API handlers ----

  function body(ctx: SimCtx, legacy: boolean): Record<string, unknown> {
    if (ctx.body) return ctx.body;
    throw legacy ? new ApiError(200, 40035, '不合法的参数') : new ApiError(400, 'InvalidParameter', 'body is not JSON');
  }

  function v1AccessToken(ctx: SimCtx): SimReply {
    const b = body(ctx, false);
    if (b.appKey !== options.appKey || b.appSecret !== options.appSecret) {
      // DingTalk's exact code for a bad key/secret is not in the reference; the app classifies by status.
      throw new ApiError(400, 'invalidClientIdOrSecret', '无效的appKey或appSecret');
    }
    return { body: { accessToken: issue('v1'), expireIn: Math.floor(tokenTtlMs / 1000) } };
  }

  function legacyGetToken(ctx: SimCtx): SimReply {
    if (ctx.query.get('appkey') !== options.appKey || ctx.query.get('appsecret') !== options.appSecret) {
      throw new ApiError(200, 40089, '不合法的corpid或corpsecret');
    }
    return {
      body: { errcode: 0, errmsg: 'ok', access_token: issue('legacy'), expires_in: Math.floor(tokenTtlMs / 1000) },
    };
  }

  function findInstance(id: string | null | undefined): SimInstance {
    if (!id) throw new ApiError(400, 'processInstanceIdError', 'processInstanceId is required');
    const i = instances.get(id);
    if (!i || i.status === 'DELETED') throw new ApiError(400, 'processInstanceNotExist', '审批实例不存在');
    return i;
  }

  function instanceDetail(ctx: SimCtx): SimReply {
    requireV1Token(ctx);
    const i = findInstance(ctx.query.get('processInstanceId'));
    const status = i.status === 'APPROVED' || i.status === 'REJECTED' ? 'COMPLETED' : i.status;
    return {
      body: {
        success: true,
        result: {
          title: i.title,
          createTime: v1Time(i.createTime),
          finishTime: i.finishTime ? v1Time(i.finishTime) : undefined,
          originatorUserId: i.originator,
          originatorDeptId: '-1',
          originatorDeptName: '',
          status,
          result: i.status === 'APPROVED' ? 'agree' : i.status === 'REJECTED' ? 'refuse' : '',
          businessId: String(202600000000 + instances.size),
          bizAction: 'NONE',
          ccUserIds: [],
          approverUserIds: [],
          attachedProcessInstanceIds: [],
          formComponentValues: i.form,
          operationRecords: i.records,
          tasks: [],
        },
      },
    };
  }

  function listInstanceIds(ctx: SimCtx): SimReply {
    requireV1Token(ctx);
    const b = body(ctx, false);
    const code = str(b.processCode);
    const start = Number(b.startTime);
    const end = b.endTime === undefined ? Date.now() : Number(b.endTime);
    const size = Math.min(Math.max(Number(b.maxResults) || 20, 1), 20);
    const from = Number(b.nextToken) || 0;
    if (!code || !Number.isFinite(start) || !Number.isFinite(end)) {
      throw new ApiError(400, 'InvalidParameter', 'processCode and startTime are required');
    }
    const statuses = Array.isArray(b.statuses) ? (b.statuses as string[]) : undefined;
    const all = [...instances.values()]
      .filter((i) => i.processCode === code && i.status !== 'DELETED' && i.createTime >= start && i.createTime <= end)
      .filter((i) => {
        const s = i.status === 'APPROVED' || i.status === 'REJECTED' ? 'COMPLETED' : i.status;
        return !statuses || statuses.includes(s);
      })
      .sort((a, b2) => a.createTime - b2.createTime)
      .map((i) => i.id);
    const list = all.slice(from, from + size);
    const more = from + size < all.length;
    return { body: { success: true, result: { list, ...(more ? { nextToken: from + size } : {}) } } };
  }

  function addComment(ctx: SimCtx): SimReply {
    requireV1Token(ctx);
    const b = body(ctx, false);
    const i = findInstance(str(b.processInstanceId));
    const text = str(b.text);
    const user = str(b.commentUserId);
    if (!text || !user) throw new ApiError(400, 'InvalidParameter', 'text and commentUserId are required');
    const now = Date.now();
    comments.push({
      process_instance_id: i.id,
      comment_user_id: user,
      text,
      create_time: new Date(now).toISOString(),
    });
    i.records.push({ userId: user, date: v1Time(now), type: 'ADD_REMARK', result: 'NONE', remark: text });
    return { body: { success: true, result: true } };
  }

  function sendWorkNotification(ctx: SimCtx): SimReply {
    requireLegacyToken(ctx);
    const b = body(ctx, true);
    const agentId = Number(b.agent_id);
    if (!Number.isFinite(agentId)) throw new ApiError(200, 40035, '不合法的参数: agent_id');
    if (options.agentId && String(agentId) !== options.agentId) throw new ApiError(200, 60011, '没有调用该接口的权限');
    const users = typeof b.userid_list === 'string' ? b.userid_list.split(',').filter(Boolean) : [];
    const msg = b.msg as Record<string, unknown> | undefined;
    if (users.length === 0 && b.to_all_user !== true) throw new ApiError(200, 40035, '不合法的参数: userid_list');
    if (!msg || typeof msg !== 'object' || typeof msg.msgtype !== 'string') {
      throw new ApiError(200, 40035, '不合法的参数: msg');
    }
    nextTaskId += 1;
    // DingTalk delivers the same content to the same user once a day (reference §2.4): a repeat gets a task id but
    // no second message.
    const key = createHash('sha256')
      .update(`${users.join(',')}\n${JSON.stringify(msg)}`)
      .digest('hex');
    const day = Math.floor(Date.now() / 86_400_000);
    if (messageKeys.get(key) !== day) {
      messageKeys.set(key, day);
      messages.push({
        task_id: nextTaskId,
        agent_id: agentId,
        userid_list: users,
        msg,
        create_time: new Date().toISOString(),
      });
    }
    return { body: { errcode: 0, errmsg: 'ok', task_id: nextTaskId, request_id: requestId() } };
  }

  function openConnection(ctx: SimCtx): SimReply {
    const b = body(ctx, false);
    if (b.clientId !== options.appKey || b.clientSecret !== options.appSecret) {
      throw new ApiError(401, 'InvalidClientIdOrSecret', 'clientId or clientSecret is wrong');
    }
    const ticket = randomBytes(16).toString('hex');
    tickets.set(ticket, Date.now() + 90_000); // valid 90 s, one connection (reference §3.2)
    return { body: { endpoint: `${simUrl.replace(/^http/, 'ws')}/connect`, ticket } };
  }

  // ---- /_sim ----

  function reset(): void {
    instances.clear();
    messages.length = 0;
    messageKeys.clear();
    comments.length = 0;
    queue.reset();
    faults = {};
  }

  function revokeTokens(): void {
    tokens.v1.clear();
    tokens.legacy.clear();
  }

  const router = new SimRouter()
    .add('POST', '/v1.0/oauth2/accessToken', v1AccessToken)
    .add('GET', '/gettoken', legacyGetToken)
    .add('GET', '/v1.0/workflow/processInstances', instanceDetail)
    .add('POST', '/v1.0/workflow/processes/instanceIds/query', listInstanceIds)
    .add('POST', '/v1.0/workflow/processInstances/comments', addComment)
    .add('POST', '/topapi/message/corpconversation/asyncsend_v2', sendWorkNotification)
    .add('POST', '/v1.0/gateway/connections/open', openConnection)
    .add('POST', '/_sim/approval/instances', (ctx) => ({
      body: createInstance((ctx.body ?? {}) as unknown as CreateDingTalkInstanceInput),
    }))
    .add('GET', '/_sim/approval/instances', () => ({ body: [...instances.values()] }))
    .add('POST', '/_sim/approval/instances/:id/status', (ctx) => {
      setStatus(ctx.params.id!, ctx.body?.status as DingTalkSimStatus, {
        deliver: ctx.body?.deliver as boolean | undefined,
      });
      return { body: { process_instance_id: ctx.params.id, status: ctx.body?.status } };
    })
    .add('POST', '/_sim/events', (ctx) => {
      const ev = ctx.body?.event;
      if (!ev || typeof ev !== 'object') throw new SimInputError('event (a decrypted DingTalk event body) is required');
      deliverEvent(ev as Record<string, unknown>);
      return { body: { queued: true } };
    })
    .add('POST', '/_sim/check-url', async () => ({ body: await checkUrl() }))
    .add('GET', '/_sim/messages', () => ({ body: messages }))
    .add('GET', '/_sim/comments', () => ({ body: comments }))
    .add('GET', '/_sim/deliveries', () => ({ body: queue.deliveries }))
    .add('POST', '/_sim/faults', (ctx) => {
      faults = parseFaults(ctx.body ?? {});
      return { body: faults };
    })
    .add('DELETE', '/_sim/faults', () => {
      faults = {};
      return { body: faults };
    })
    .add('POST', '/_sim/tokens/revoke', () => {
      revokeTokens();
      return { body: { revoked: true } };
    })
    .add('POST', '/_sim/reset', () => {
      reset();
      return { body: { reset: true } };
    });

  const LEGACY_PATHS = ['/gettoken', '/topapi/'];

  async function applyFaults(method: string, path: string, legacy: boolean): Promise<void> {
    if (faults.latencyMs) await sleep(faults.latencyMs);
    if (faults.rateLimit && rate.exceeded(faults.rateLimit.perSecond)) {
      // how-to-process-api-throttling: legacy 90018, v1.0 Forbidden.AccessDenied.QpsLimitForAppkeyAndApi (HTTP 403).
      if (legacy) throw new ApiError(200, 90018, '当前应用调用该接口的频率超过上限');
      throw new ApiError(403, 'Forbidden.AccessDenied.QpsLimitForAppkeyAndApi', '请求过于频繁');
    }
    const fail = takeFailPath(faults, method, path);
    if (fail) throw new ApiError(legacy ? 200 : fail.status, fail.code, fail.msg ?? 'simulated failure');
    if (faults.errorRate && Math.random() < faults.errorRate) {
      if (legacy) throw new ApiError(200, -1, '系统繁忙');
      throw new ApiError(500, 'ServiceUnavailable', 'The request has failed due to a temporary failure of the server.');
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const isSim = url.pathname.startsWith('/_sim/');
    const legacy = LEGACY_PATHS.some((p) => url.pathname.startsWith(p));
    try {
      const raw = await readBody(req);
      const found = router.match(method, url.pathname);
      if (!isSim) await applyFaults(method, url.pathname, legacy);
      if (found === undefined || found === 'method') {
        if (!isSim) throw new ApiError(404, 'NotFound', `no such API ${method} ${url.pathname}`);
        sendJson(res, found === 'method' ? 405 : 404, { error: `no route ${method} ${url.pathname}` });
        return;
      }
      const parsed = parseJsonObject(raw);
      if (parsed === undefined && isSim) throw new SimInputError('body must be a JSON object');
      const reply = await found.handler({
        method,
        path: url.pathname,
        query: url.searchParams,
        params: found.params,
        headers: req.headers,
        raw,
        body: parsed,
      });
      sendJson(res, reply.status ?? 200, reply.body, reply.headers);
    } catch (err) {
      if (err instanceof ApiError) {
        if (typeof err.code === 'number') sendJson(res, err.status, { errcode: err.code, errmsg: err.message });
        else sendJson(res, err.status, { code: err.code, message: err.message, requestid: requestId() });
      } else if (err instanceof SimInputError) sendJson(res, 400, { error: err.message });
      else sendJson(res, 500, { code: 'InternalError', message: `simulator error: ${(err as Error).message}` });
    }
  }

  const http = await listen(handle, options.port ?? 0, host);
  const simUrl = http.url;
  http.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://sim');
    const ticket = url.searchParams.get('ticket') ?? '';
    const exp = tickets.get(ticket);
    tickets.delete(ticket); // one connection per ticket
    if (url.pathname !== '/connect' || exp === undefined || exp < Date.now()) {
      socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    queue.close();
    closing.abort();
    for (const c of clients) c.terminate();
    wss.close();
    await http.close();
  }

  return {
    url: simUrl,
    port: http.port,
    close,
    createInstance,
    setStatus,
    deliverEvent,
    checkUrl,
    setWebhookUrl: (u) => {
      webhookUrl = u;
    },
    setFaults: (f) => {
      faults = parseFaults(f as Record<string, unknown>);
    },
    clearFaults: () => {
      faults = {};
    },
    revokeTokens,
    reset,
    messages: () => [...messages],
    comments: () => [...comments],
    deliveries: () => [...queue.deliveries],
    waitForDeliveries: (opts) => queue.waitFor(opts, 'dingtalk simulator'),
    streamClients: () => [...clients].filter((c) => c.readyState === c.OPEN).length,
    streamConnectionCount: () => connectionCount,
    dropStreamClients: () => {
      for (const c of clients) c.terminate();
    },
  };
}
