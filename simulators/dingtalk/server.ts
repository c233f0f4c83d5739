import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { checkDingTalkSuccessReply, dingtalkRequest, randomAlnum } from '../shared/callback-signer';
import {
  PushQueue,
  RateWindow,
  SimInputError,
  SimRouter,
  SimTokens,
  addControlRoutes,
  listen,
  parseFaults,
  simHandler,
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
 * message, requestid}`; legacy oapi: HTTP 200 `{errcode, errmsg}`, wrapped by the TOP gateway on `/topapi/*` as
 * errcode 88 with a `sub_code`), both token flows, and approval events pushed the way DingTalk does (reference
 * dingtalk-wecom.md §1–§4):
 * - HTTP push (`eventMode: 'http'`): `bpms_instance_change` encrypted for the owner key and signed, POSTed to the
 *   callback URL; only HTTP 200 with the encrypted "success" JSON within 1.5 s counts (the 事件订阅 doc's 1500 ms;
 *   `deliveryTimeoutMs: 2500` for the current doc's check_url figure), anything else is pushed again. DingTalk
 *   documents no schedule ("keeps pushing until a threshold"), so the simulator's is 5 s, 30 s, 2 min, 10 min, 30 min,
 *   1 h, 3 h, 6 h (× redeliveryScale) and then it gives up, and the event joins the failed-push list
 *   (`GET /v1.0/event/callbacks/failedResults`).
 * - Stream mode (`eventMode: 'stream'`): `POST /v1.0/gateway/connections/open` hands out a one-use ticket and a
 *   `ws://…/connect` endpoint; events go to one connected client (chosen at random, like DingTalk) as EVENT frames with
 *   `topic: "*"` and count as delivered only on an ACK frame with `{"status":"SUCCESS"}`; LATER, no ACK within
 *   ackTimeoutMs, or no client means another push later. SYSTEM frames as developerpedia protocol.md describes them:
 *   `ping` (the client echoes its data) every pingIntervalMs, and `disconnect` (no reply; the server closes the
 *   connection 10 s later and pushes nothing more on it meanwhile, I from 3p observations).
 * - Both: with the `duplicateRate` fault an acknowledged event is pushed once more ("依然可能出现重复推送", protocol
 *   FAQ); the `ipThrottle` fault answers every API as DingTalk's IP throttle does.
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
  /**
   * How long DingTalk waits for the answer to an HTTP push: 1500 ms ("在1500ms内返回", 事件订阅 doc as quoted on
   * developer.aliyun.com/ask/662484); the current doc says 2500 ms for check_url (reference §1.6). Default 1500.
   */
  deliveryTimeoutMs?: number;
  /** Stream mode: how long to wait for an ACK frame; default 5000. */
  ackTimeoutMs?: number;
  /** Stream mode: the server closes a connection this long after its `disconnect` frame (protocol.md: 10 s). */
  disconnectGraceMs?: number;
  /** Stream mode: SYSTEM `ping` every this many ms (I: 3p saw keep-alive frames every 20–30 s); 0 = never. */
  pingIntervalMs?: number;
  tokenTtlSeconds?: number;
  /**
   * Whether an attached instance's detail names its original in `mainProcessInstanceId`: newer workflow_1_0 models
   * carry the field, older ones only the original's `attachedProcessInstanceIds` (aliyun/dingtalk-sdk Java
   * `GetProcessInstanceResponseBody`, versions with and without it). Default true.
   */
  mainIdInDetail?: boolean;
}

/** DingTalk-only faults on top of the shared ones (`/_sim/faults`). */
export interface DingTalkSimFaults extends SimFaults {
  /**
   * DingTalk's IP throttle: from now on every API answers `{"status":1111,"wait":5,…}` (or an HTML page) with HTTP
   * 200 (I) for blockMs (default 5 min), the FAQ's "禁止调用5分钟" (copy at tianjinsc.cn/default/894239.html).
   */
  ipThrottle?: { blockMs?: number; format?: 'json' | 'html' };
  /** Probability (0–1) that an acknowledged event is pushed once more. */
  duplicateRate?: number;
}

/** One entry of the failed-push list, as `GET /v1.0/event/callbacks/failedResults` returns it (SDK event_1_0). */
export interface DingTalkFailedPush {
  callBackData: string;
  callBackTag: string;
  corpId: string;
  eventTime: number;
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
  /**
   * An attached instance of an approved one: MODIFY (修改) or REVOKE (撤销) ("当已经通过的审批实例被修改或撤销，会
   * 生成一个新的实例，作为原有审批实例的附属", workflow_1_0 GetProcessInstance model comments).
   */
  biz_action?: 'MODIFY' | 'REVOKE';
  main_process_instance_id?: string;
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
  setFaults(faults: DingTalkSimFaults): void;
  clearFaults(): void;
  /** HTTP push: how long DingTalk waits for the answer (1500, or 2500 for the current check_url doc). */
  setDeliveryTimeout(ms: number): void;
  /** Whether attached instances name their original in `mainProcessInstanceId` (newer API) or not (older). */
  setMainIdInDetail(on: boolean): void;
  revokeTokens(): void;
  reset(): void;
  messages(): DingTalkSimMessage[];
  comments(): DingTalkSimComment[];
  deliveries(): DeliveryRecord[];
  /** Events DingTalk gave up pushing and not yet read through failedResults. */
  failedPushes(): DingTalkFailedPush[];
  waitForDeliveries(opts?: { count?: number; timeoutMs?: number }): Promise<DeliveryRecord[]>;
  /** Stream mode: connected clients (not counting those told to disconnect). */
  streamClients(): number;
  /** Stream mode: connections accepted so far. */
  streamConnectionCount(): number;
  /** Stream mode: drop every connection without warning; clients must notice and reconnect. */
  dropStreamClients(): void;
  /** Stream mode: send every client the SYSTEM `disconnect` frame; the connection closes disconnectGraceMs later. */
  disconnectStreamClients(reason?: string): void;
  /** Stream mode: send every client a SYSTEM `ping`; resolves with how many echoed it within timeoutMs. */
  pingStreamClients(timeoutMs?: number): Promise<number>;
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
  bizAction: 'NONE' | 'MODIFY' | 'REVOKE';
  mainId?: string;
  attached: string[];
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

/** The IP throttle's answer (the ipThrottle fault). */
class IpThrottled extends Error {
  constructor(readonly format: 'json' | 'html') {
    super('ip throttled');
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
  let deliveryTimeoutMs = options.deliveryTimeoutMs ?? 1500;
  let mainIdInDetail = options.mainIdInDetail ?? true;
  const ackTimeoutMs = options.ackTimeoutMs ?? 5000;
  const disconnectGraceMs = options.disconnectGraceMs ?? 10_000;
  const eventMode = options.eventMode ?? 'http';
  let webhookUrl = options.webhookUrl;

  const instances = new Map<string, SimInstance>();
  const messages: DingTalkSimMessage[] = [];
  const messageKeys = new Map<string, number>();
  const comments: DingTalkSimComment[] = [];
  const tokens = { v1: new SimTokens(tokenTtlMs), legacy: new SimTokens(tokenTtlMs) };
  let faults: DingTalkSimFaults = {};
  /** Until when the IP throttle blocks (the ipThrottle fault). */
  let throttledUntil = 0;
  const failedList: DingTalkFailedPush[] = [];
  /** What the previous failedResults call returned: the next call clears it (reference §4.1). */
  let failedReturned = new Set<DingTalkFailedPush>();
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
  /** Told to disconnect: nothing more is pushed on them, ACKs still count until they close. */
  const draining = new Set<WebSocket>();
  const acks = new Map<string, (status: string) => void>();
  const pings = new Map<string, () => void>();

  let connectionCount = 0;
  wss.on('connection', (ws) => {
    connectionCount += 1;
    clients.add(ws);
    ws.on('close', () => {
      clients.delete(ws);
      draining.delete(ws);
    });
    ws.on('message', (data) => {
      let frame: { code?: unknown; headers?: { messageId?: unknown }; data?: unknown };
      try {
        frame = JSON.parse(String(data)) as typeof frame;
      } catch {
        return;
      }
      const messageId = typeof frame.headers?.messageId === 'string' ? frame.headers.messageId : undefined;
      // A ping is answered with code 200 and the ping's own data (protocol.md 系统推送).
      const pong = messageId ? pings.get(messageId) : undefined;
      if (pong) {
        if (frame.code === 200) pong();
        return;
      }
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
    const open = [...clients].filter((c) => c.readyState === c.OPEN && !draining.has(c));
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
        // Events carry topic "*", the only event subscription there is; the type is in eventType (protocol.md).
        topic: '*',
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

  function systemFrame(topic: string, data: Record<string, unknown>, messageId?: string) {
    return JSON.stringify({
      specVersion: '1.0',
      type: 'SYSTEM',
      headers: {
        topic,
        contentType: 'application/json',
        time: String(Date.now()),
        ...(messageId ? { messageId } : {}),
      },
      data: JSON.stringify(data),
    });
  }

  function disconnectStreamClients(reason = 'connection is expired'): void {
    for (const ws of clients) {
      if (ws.readyState !== ws.OPEN || draining.has(ws)) continue;
      draining.add(ws);
      ws.send(systemFrame('disconnect', { reason }));
      setTimeout(() => ws.terminate(), disconnectGraceMs).unref();
    }
  }

  async function pingStreamClients(timeoutMs = 2000): Promise<number> {
    const open = [...clients].filter((c) => c.readyState === c.OPEN);
    const answered = await Promise.all(
      open.map(
        (ws) =>
          new Promise<boolean>((resolve) => {
            const messageId = `sim-ping-${randomBytes(6).toString('hex')}`;
            const timer = setTimeout(() => {
              pings.delete(messageId);
              resolve(false);
            }, timeoutMs);
            pings.set(messageId, () => {
              clearTimeout(timer);
              pings.delete(messageId);
              resolve(true);
            });
            ws.send(systemFrame('ping', { opaque: randomBytes(8).toString('hex') }, messageId));
          })
      )
    );
    return answered.filter(Boolean).length;
  }
  const pingTimer =
    eventMode === 'stream' && (options.pingIntervalMs ?? 20_000) > 0
      ? setInterval(() => void pingStreamClients().catch(() => 0), options.pingIntervalMs ?? 20_000)
      : undefined;
  pingTimer?.unref();

  const queue = new PushQueue<Outgoing>(
    (ev) => (eventMode === 'stream' ? pushStream(ev) : pushHttp(ev)),
    REDELIVERY_DELAYS_MS,
    options.redeliveryScale ?? 1,
    {
      // Given up: the event waits in the failed-push list (SDK event_1_0 GetCallBackFaileResult fields).
      onGiveUp: (ev) => {
        if (ev.eventType === 'check_url') return;
        failedList.push({
          callBackData: JSON.stringify(ev.plaintext),
          callBackTag: ev.eventType,
          corpId,
          eventTime: Number(ev.plaintext.EventTime) || Date.now(),
        });
      },
    }
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
    const bizAction = input.biz_action === 'MODIFY' || input.biz_action === 'REVOKE' ? input.biz_action : 'NONE';
    const mainId = str(input.main_process_instance_id);
    const main = mainId ? instances.get(mainId) : undefined;
    if (bizAction !== 'NONE' && (!main || main.status !== 'APPROVED')) {
      throw new SimInputError('biz_action needs main_process_instance_id of an approved instance');
    }
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
      bizAction,
      ...(main ? { mainId: main.id } : {}),
      attached: [],
    };
    // The original lists its attached instances, in order (same model comment: "依次遍历它的附属列表").
    if (main) main.attached.push(id);
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
    return tokens[kind].issue(kind === 'v1' ? 'v1' : 'lg');
  }

  /**
   * v1.0 token checks as recorded (probe log "无凭证探测日志（dingtalk，2026-09-11）" P6/P7; satorijs/satori#240):
   * a bad or expired token is HTTP 400 `InvalidAuthentication`, a missing header `AuthenticationFailed.MissingParameter`.
   */
  function requireV1Token(ctx: SimCtx): void {
    const t = ctx.headers['x-acs-dingtalk-access-token'];
    const check = tokens.v1.check(Array.isArray(t) ? t[0] : t);
    if (check === 'missing') {
      throw new ApiError(400, 'AuthenticationFailed.MissingParameter', '缺少参数：x-acs-dingtalk-access-token');
    }
    if (check !== 'ok') throw new ApiError(400, 'InvalidAuthentication', '不合法的access_token');
  }

  /**
   * Legacy token checks behind the TOP gateway (probe P8/P9/P11): no token is 88 / sub_code 40000 "access_token is
   * blank", a bad one 88 / 40014 "不合法的access_token"; an expired one 88 / 42001 (I: the code is the oapi one).
   */
  function requireLegacyToken(ctx: SimCtx): void {
    const check = tokens.legacy.check(ctx.query.get('access_token'));
    if (check === 'missing') throw new ApiError(200, 40000, 'access_token is blank');
    if (check === 'unknown') throw new ApiError(200, 40014, '不合法的access_token');
    if (check === 'expired') throw new ApiError(200, 42001, 'access_token超时');
  }

  // ---- API handlers ----

  function body(ctx: SimCtx, legacy: boolean): Record<string, unknown> {
    if (ctx.body) return ctx.body;
    throw legacy ? new ApiError(200, 40035, '不合法的参数') : new ApiError(400, 'InvalidParameter', 'body is not JSON');
  }

  function v1AccessToken(ctx: SimCtx): SimReply {
    const b = body(ctx, false);
    if (b.appKey !== options.appKey || b.appSecret !== options.appSecret) {
      // Probe P3: HTTP 400 {"code":"invalidClientIdOrSecret","message":"无效的clientId或者clientSecret"}.
      throw new ApiError(400, 'invalidClientIdOrSecret', '无效的clientId或者clientSecret');
    }
    return { body: { accessToken: issue('v1'), expireIn: Math.floor(tokenTtlMs / 1000) } };
  }

  function legacyGetToken(ctx: SimCtx): SimReply {
    if (ctx.query.get('appkey') !== options.appKey || ctx.query.get('appsecret') !== options.appSecret) {
      // Probe P1: /gettoken is not behind the TOP gateway: a flat {"errcode":40096,"errmsg":"不合法的appKey或appSecret"}.
      throw new ApiError(200, 40096, '不合法的appKey或appSecret');
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
        // The doc's example wraps the detail in `"success":"true"`, a string (reference §2.3); nothing reads it.
        success: 'true',
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
          bizAction: i.bizAction,
          ...(i.mainId && mainIdInDetail ? { mainProcessInstanceId: i.mainId } : {}),
          ccUserIds: [],
          approverUserIds: [],
          attachedProcessInstanceIds: [...i.attached],
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
    const size = Number(b.maxResults) || 20;
    const from = Number(b.nextToken) || 0;
    if (!code || !Number.isFinite(start) || !Number.isFinite(end)) {
      throw new ApiError(400, 'InvalidParameter', 'processCode and startTime are required');
    }
    // "分页参数，每页大小，最多传20" (SDK ListProcessInstanceIdsRequest); how DingTalk refuses more is not said (I).
    if (size < 1 || size > 20) throw new ApiError(400, 'InvalidParameter', 'maxResults must be 1–20');
    // A startTime more than 365 days back is refused, with this misleading message (3p client DingTalk.OAPI.Process).
    if (start < Date.now() - 365 * 86_400_000) {
      throw new ApiError(400, 'invalidEndTime', '获取审批实例ID列表，审批实例结束时间不能小于开始时间');
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

  /**
   * `GET /v1.0/event/callbacks/failedResults?beginTime=&endTime=` (SDK event_1_0 GetCallBackFaileResult): up to 200
   * failed pushes with eventTime in [beginTime, endTime] and `hasMore`. "每次调用该接口会自动清除上一次调用所返回的
   * failed_list数据" (event-subscription-and-data-push FAQ, reference §4.1): a call first clears what the previous one
   * returned.
   */
  function failedResults(ctx: SimCtx): SimReply {
    requireV1Token(ctx);
    for (const e of failedReturned) failedList.splice(failedList.indexOf(e), 1);
    const begin = ctx.query.has('beginTime') ? Number(ctx.query.get('beginTime')) : -Infinity;
    const end = ctx.query.has('endTime') ? Number(ctx.query.get('endTime')) : Infinity;
    const matching = failedList.filter((e) => e.eventTime >= begin && e.eventTime <= end);
    const page = matching.slice(0, 200);
    failedReturned = new Set(page);
    return { body: { failedList: page, hasMore: matching.length > page.length } };
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
    failedList.length = 0;
    failedReturned = new Set();
    setFaults({});
  }

  function revokeTokens(): void {
    tokens.v1.clear();
    tokens.legacy.clear();
  }

  function setFaults(next: DingTalkSimFaults | Record<string, unknown>): DingTalkSimFaults {
    const body = next as Record<string, unknown>;
    const parsed: DingTalkSimFaults = parseFaults(body);
    const throttle = body.ipThrottle as DingTalkSimFaults['ipThrottle'] | undefined;
    if (throttle !== undefined) {
      if (typeof throttle !== 'object' || throttle === null) throw new SimInputError('ipThrottle must be an object');
      parsed.ipThrottle = { blockMs: Number(throttle.blockMs) || 5 * 60_000, format: throttle.format ?? 'json' };
    }
    if (body.duplicateRate !== undefined) {
      const rate = Number(body.duplicateRate);
      if (!(rate >= 0 && rate <= 1)) throw new SimInputError('duplicateRate must be between 0 and 1');
      parsed.duplicateRate = rate;
    }
    faults = parsed;
    throttledUntil = parsed.ipThrottle ? Date.now() + parsed.ipThrottle.blockMs! : 0;
    queue.duplicateRate = parsed.duplicateRate ?? 0;
    return parsed;
  }

  const router = addControlRoutes(
    new SimRouter()
      .add('POST', '/v1.0/oauth2/accessToken', v1AccessToken)
      .add('GET', '/gettoken', legacyGetToken)
      .add('GET', '/v1.0/workflow/processInstances', instanceDetail)
      .add('POST', '/v1.0/workflow/processes/instanceIds/query', listInstanceIds)
      .add('POST', '/v1.0/workflow/processInstances/comments', addComment)
      .add('GET', '/v1.0/event/callbacks/failedResults', failedResults)
      .add('POST', '/topapi/message/corpconversation/asyncsend_v2', sendWorkNotification)
      .add('POST', '/v1.0/gateway/connections/open', openConnection)
      .add('POST', '/_sim/check-url', async () => ({ body: await checkUrl() }))
      .add('GET', '/_sim/failed-pushes', () => ({ body: failedList }))
      .add('POST', '/_sim/stream/disconnect', () => {
        disconnectStreamClients();
        return { body: { disconnecting: clients.size } };
      }),
    {
      createInstance: (b) => createInstance(b as unknown as CreateDingTalkInstanceInput),
      setStatus: (id, status, opts) => {
        setStatus(id, status as DingTalkSimStatus, opts);
        return { process_instance_id: id, status };
      },
      deliverEvent: (b) => {
        if (!b.event || typeof b.event !== 'object') {
          throw new SimInputError('event (a decrypted DingTalk event body) is required');
        }
        deliverEvent(b.event as Record<string, unknown>);
        return { queued: true };
      },
      instances: () => [...instances.values()],
      messages: () => messages,
      comments: () => comments,
      deliveries: () => queue.deliveries,
      setFaults,
      clearFaults: () => setFaults({}),
      revokeTokens,
      reset,
    }
  );

  const LEGACY_PATHS = ['/gettoken', '/topapi/'];
  /**
   * Codes the TOP gateway in front of `/topapi/*` answers itself, wrapped as errcode 88 with the code as `sub_code`:
   * tokens (probe P8/P9/P11), rate limits (90002 in a 3p log), permission 60011 and IP allow-list 60020 (3p answers).
   * Business errors of the API itself stay flat (I).
   */
  const TOP_GATEWAY_CODES = new Set([40000, 40014, 41001, 42001, 90002, 90006, 90018, 90019, 60011, 60020]);

  async function applyFaults(method: string, path: string, legacy: boolean): Promise<void> {
    if (faults.latencyMs) await sleep(faults.latencyMs);
    if (throttledUntil > Date.now()) throw new IpThrottled(faults.ipThrottle?.format ?? 'json');
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

  const handle = simHandler({
    router,
    beforeApi: ({ method, path }) =>
      applyFaults(
        method,
        path,
        LEGACY_PATHS.some((p) => path.startsWith(p))
      ),
    notFound: ({ method, path }) => ({
      status: 404,
      body: { code: 'NotFound', message: `no such API ${method} ${path}`, requestid: requestId() },
    }),
    apiError(err, { path }) {
      if (err instanceof IpThrottled) {
        // The FAQ's example body; the HTML variant is a page, not JSON (I: its markup).
        if (err.format === 'html') {
          return {
            status: 200,
            body: '<html><body>访问被拒绝 (deny)</body></html>',
            headers: { 'content-type': 'text/html; charset=utf-8' },
          };
        }
        return {
          status: 200,
          body: { status: 1111, wait: 5, source: 'x5', punish: 'deny', uuid: randomBytes(8).toString('hex') },
        };
      }
      if (!(err instanceof ApiError)) return undefined;
      if (typeof err.code !== 'number') {
        return { status: err.status, body: { code: err.code, message: err.message, requestid: requestId() } };
      }
      // A legacy error on `/topapi/*` comes through the TOP gateway's wrapper, flat elsewhere.
      if (path.startsWith('/topapi/') && TOP_GATEWAY_CODES.has(err.code)) {
        return {
          status: 200,
          body: {
            errcode: 88,
            sub_code: String(err.code),
            sub_msg: err.message,
            errmsg: `ding talk error[subcode=${err.code},submsg=${err.message}]`,
            request_id: requestId().toLowerCase(),
          },
        };
      }
      return { status: err.status, body: { errcode: err.code, errmsg: err.message } };
    },
  });

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
    if (pingTimer) clearInterval(pingTimer);
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
    setFaults: (f) => void setFaults(f),
    clearFaults: () => void setFaults({}),
    setDeliveryTimeout: (ms) => {
      deliveryTimeoutMs = ms;
    },
    setMainIdInDetail: (on) => {
      mainIdInDetail = on;
    },
    revokeTokens,
    reset,
    messages: () => [...messages],
    comments: () => [...comments],
    deliveries: () => [...queue.deliveries],
    failedPushes: () => [...failedList],
    waitForDeliveries: (opts) => queue.waitFor(opts, 'dingtalk simulator'),
    streamClients: () => [...clients].filter((c) => c.readyState === c.OPEN && !draining.has(c)).length,
    streamConnectionCount: () => connectionCount,
    dropStreamClients: () => {
      for (const c of clients) c.terminate();
    },
    disconnectStreamClients,
    pingStreamClients,
  };
}
