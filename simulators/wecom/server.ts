import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cdata, wecomEchoQuery, wecomRequest } from '../dingtalk/callback-signer';
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
 * WeCom (企业微信) simulator: the API subset ApprovalPlus calls (reference dingtalk-wecom.md §5.4, §5.5) with WeCom's
 * envelope (HTTP 200 `{errcode, errmsg, …}`) and token flow, and the approval callback pushed the way WeCom does
 * (§5.1–§5.3): `sys_approval_change` XML, encrypted for the CorpID and signed, POSTed to the receive URL; any HTTP 200
 * counts as received (an empty body is what WeCom accepts for events). WeCom retries on time-out (5 s), three times;
 * the simulator also retries other failures (doc 90238 says non-200 counts as failure) after 5 s each
 * (× redeliveryScale), then gives up. WeCom has no API to comment on an approval, so `/_sim/comments` stays empty.
 * `/_sim/*` is the unauthenticated control API for tests and sandbox mode.
 */

export interface WeComSimulatorOptions {
  port?: number;
  host?: string;
  corpId: string;
  corpSecret: string;
  agentId: string;
  token: string;
  encodingAesKey: string;
  /** The app's receive URL (`…/webhook/wecom`). */
  webhookUrl?: string;
  redeliveryScale?: number;
  /** WeCom waits 5 s. */
  deliveryTimeoutMs?: number;
  tokenTtlSeconds?: number;
}

/** sp_status: 1 审批中, 2 已通过, 3 已驳回, 4 已撤销, 6 通过后撤销, 7 已删除, 10 已支付 (reference §5.3). */
export const WECOM_STATUS_CODES: Record<string, number> = {
  PENDING: 1,
  APPROVED: 2,
  REJECTED: 3,
  CANCELED: 4,
  REVERTED: 6,
  DELETED: 7,
  PAID: 10,
};
/** StatuChangeEvent for each transition (reference §5.3). */
const CHANGE_EVENT: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 6, 6: 8, 7: 6, 10: 2 };

/** One control of apply_data.contents as the detail API returns it. */
export interface WeComControlInput {
  control: string;
  id?: string;
  title: { text: string; lang?: string }[] | string;
  value: Record<string, unknown>;
}

export interface CreateWeComInstanceInput {
  /** The template id (alias: approval_code). */
  template_id?: string;
  approval_code?: string;
  /** The applicant's userid (alias: user_id). */
  userid?: string;
  user_id?: string;
  form: WeComControlInput[];
  /** APPROVED (default), PENDING, REJECTED, CANCELED, REVERTED, DELETED, PAID, or the numeric sp_status. */
  status?: string | number;
  deliver?: boolean;
  sp_name?: string;
  sp_no?: string;
}

export interface WeComSimMessage {
  msgid: string;
  touser: string;
  agentid: number;
  msgtype: string;
  content: unknown;
  create_time: string;
}

export interface WeComSimulator {
  url: string;
  port: number;
  close(): Promise<void>;
  createInstance(input: CreateWeComInstanceInput): { sp_no: string };
  setStatus(spNo: string, status: string | number, opts?: { deliver?: boolean }): void;
  /** Push any decrypted XML message through the same queue, crypto and retries. */
  deliverXml(xml: string, meta?: { id?: string; type?: string; instanceId?: string }): void;
  /** GET the receive URL with an echostr and report whether the plaintext came back. */
  verifyUrl(): Promise<{ ok: boolean; status?: number; body?: string; error?: string }>;
  setWebhookUrl(url: string): void;
  setFaults(faults: SimFaults): void;
  clearFaults(): void;
  revokeTokens(): void;
  reset(): void;
  messages(): WeComSimMessage[];
  comments(): never[];
  deliveries(): DeliveryRecord[];
  waitForDeliveries(opts?: { count?: number; timeoutMs?: number }): Promise<DeliveryRecord[]>;
}

interface SimInstance {
  spNo: string;
  templateId: string;
  spName: string;
  applicant: string;
  form: WeComControlInput[];
  spStatus: number;
  applyTime: number;
  decidedAt?: number;
}

class ApiError extends Error {
  constructor(
    readonly errcode: number,
    msg: string
  ) {
    super(msg);
  }
}

const REDELIVERY_DELAYS_MS = [5_000, 5_000, 5_000];

function parseStatus(status: unknown): number {
  if (typeof status === 'number' && Object.values(WECOM_STATUS_CODES).includes(status)) return status;
  if (typeof status === 'string' && WECOM_STATUS_CODES[status] !== undefined) return WECOM_STATUS_CODES[status];
  throw new SimInputError(`status must be one of ${Object.keys(WECOM_STATUS_CODES).join(', ')} (or the number)`);
}

export async function startWeComSimulator(options: WeComSimulatorOptions): Promise<WeComSimulator> {
  const host = options.host ?? '127.0.0.1';
  const tokenTtlMs = (options.tokenTtlSeconds ?? 7200) * 1000;
  const deliveryTimeoutMs = options.deliveryTimeoutMs ?? 5000;
  let webhookUrl = options.webhookUrl;

  const instances = new Map<string, SimInstance>();
  const messages: WeComSimMessage[] = [];
  const dedupe = new Map<string, { msgid: string; at: number }>();
  const tokens = new Map<string, number>();
  let faults: SimFaults = {};
  const rate = new RateWindow();
  let spCounter = 0;
  const closing = new AbortController();
  let closed = false;

  // ---- callback push ----

  interface Outgoing {
    xml: string;
  }

  async function push(ev: Outgoing): Promise<PushResult> {
    const started = Date.now();
    if (!webhookUrl) return { ok: false, error: 'no webhookUrl configured', durationMs: 0 };
    const req = wecomRequest({
      plaintextXml: ev.xml,
      token: options.token,
      aesKey: options.encodingAesKey,
      corpId: options.corpId,
      agentId: options.agentId,
    });
    try {
      const res = await fetch(`${webhookUrl}${webhookUrl.includes('?') ? '&' : '?'}${req.query}`, {
        method: 'POST',
        headers: req.headers,
        body: req.body,
        signal: AbortSignal.any([AbortSignal.timeout(deliveryTimeoutMs), closing.signal]),
      });
      await res.text();
      return { ok: res.status === 200, status: res.status, durationMs: Date.now() - started };
    } catch (err) {
      const name = (err as Error).name;
      const error = name === 'TimeoutError' ? `no answer within ${deliveryTimeoutMs} ms` : (err as Error).message;
      return { ok: false, error, durationMs: Date.now() - started };
    }
  }

  const queue = new PushQueue<Outgoing>(push, REDELIVERY_DELAYS_MS, options.redeliveryScale ?? 1);

  function approvalXml(i: SimInstance, createTime: number): string {
    const change = CHANGE_EVENT[i.spStatus] ?? 1;
    return [
      '<xml>',
      `<ToUserName>${cdata(options.corpId)}</ToUserName>`,
      `<FromUserName>${cdata('sys')}</FromUserName>`,
      `<CreateTime>${createTime}</CreateTime>`,
      `<MsgType>${cdata('event')}</MsgType>`,
      `<Event>${cdata('sys_approval_change')}</Event>`,
      `<AgentID>${options.agentId}</AgentID>`,
      '<ApprovalInfo>',
      `<SpNoStr>${cdata(i.spNo)}</SpNoStr>`,
      `<SpNo>${i.spNo}</SpNo>`,
      `<SpName>${cdata(i.spName)}</SpName>`,
      `<SpStatus>${i.spStatus}</SpStatus>`,
      `<TemplateId>${cdata(i.templateId)}</TemplateId>`,
      `<ApplyTime>${i.applyTime}</ApplyTime>`,
      `<Applyer><UserId>${cdata(i.applicant)}</UserId><Party>${cdata('1')}</Party></Applyer>`,
      `<StatuChangeEvent>${change}</StatuChangeEvent>`,
      '</ApprovalInfo>',
      '</xml>',
    ].join('\n');
  }

  let lastCreateTime = 0;
  function deliverInstance(i: SimInstance): void {
    // CreateTime is in seconds; keep it strictly increasing so two changes never share an event key.
    lastCreateTime = Math.max(lastCreateTime + 1, Math.floor(Date.now() / 1000));
    const xml = approvalXml(i, lastCreateTime);
    queue.enqueue(
      { xml },
      { id: `${i.spNo}:${i.spStatus}:${lastCreateTime}`, type: 'sys_approval_change', instanceId: i.spNo }
    );
  }

  function deliverXml(xml: string, meta: { id?: string; type?: string; instanceId?: string } = {}): void {
    queue.enqueue(
      { xml },
      { id: meta.id ?? randomBytes(8).toString('hex'), type: meta.type ?? 'xml', instanceId: meta.instanceId }
    );
  }

  async function verifyUrl(): Promise<{ ok: boolean; status?: number; body?: string; error?: string }> {
    if (!webhookUrl) return { ok: false, error: 'no webhookUrl configured' };
    const echo = String(Date.now()) + randomBytes(4).toString('hex');
    const { query } = wecomEchoQuery({
      echo,
      token: options.token,
      aesKey: options.encodingAesKey,
      corpId: options.corpId,
    });
    try {
      const res = await fetch(`${webhookUrl}${webhookUrl.includes('?') ? '&' : '?'}${query}`, {
        signal: AbortSignal.timeout(1000), // "1秒内响应"
      });
      const body = await res.text();
      return { ok: res.status === 200 && body === echo, status: res.status, body };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  // ---- instances ----

  function createInstance(input: CreateWeComInstanceInput): { sp_no: string } {
    const templateId = str(input.template_id) ?? str(input.approval_code);
    const applicant = str(input.userid) ?? str(input.user_id);
    if (!templateId) throw new SimInputError('template_id (or approval_code) is required');
    if (!applicant) throw new SimInputError('userid (or user_id) is required');
    if (!Array.isArray(input.form))
      throw new SimInputError('form must be an array of controls {control, title, value}');
    input.form.forEach((c, i) => {
      if (!c || typeof c !== 'object' || typeof c.control !== 'string' || typeof c.value !== 'object') {
        throw new SimInputError(`form[${i}] must be a control {control, id?, title, value}`);
      }
    });
    const spStatus = parseStatus(input.status ?? 'APPROVED');
    spCounter += 1;
    const day = new Date().toISOString().slice(0, 10).replace(/-/g, '');
    const spNo =
      str(input.sp_no) ?? `${day}${String(spCounter).padStart(4, '0')}${randomBytes(2).readUInt16BE() % 100}`;
    if (instances.has(spNo)) throw new SimInputError(`sp_no ${spNo} exists`);
    const now = Math.floor(Date.now() / 1000);
    const instance: SimInstance = {
      spNo,
      templateId,
      spName: str(input.sp_name) ?? 'Wi-Fi 接入申请',
      applicant,
      form: input.form.map((c, i) => ({
        ...c,
        id: c.id ?? `${c.control}-${1_700_000_000_000 + i}`,
        title: typeof c.title === 'string' ? [{ text: c.title, lang: 'zh_CN' }] : c.title,
      })),
      spStatus,
      applyTime: now,
      decidedAt: spStatus === 1 ? undefined : now,
    };
    instances.set(spNo, instance);
    if (input.deliver ?? true) deliverInstance(instance);
    return { sp_no: spNo };
  }

  function setStatus(spNo: string, status: string | number, opts: { deliver?: boolean } = {}): void {
    const i = instances.get(spNo);
    if (!i) throw new SimInputError(`unknown sp_no ${spNo}`);
    i.spStatus = parseStatus(status);
    if (i.spStatus !== 1 && !i.decidedAt) i.decidedAt = Math.floor(Date.now() / 1000);
    if (opts.deliver ?? true) deliverInstance(i);
  }

  // ---- API ----

  function issueToken(): string {
    const t = randomBytes(32).toString('base64url');
    tokens.set(t, Date.now() + tokenTtlMs);
    return t;
  }

  function requireToken(ctx: SimCtx): void {
    const t = ctx.query.get('access_token');
    if (!t) throw new ApiError(41001, 'access_token missing');
    const exp = tokens.get(t);
    if (exp === undefined) throw new ApiError(40014, 'invalid access_token');
    if (exp <= Date.now()) throw new ApiError(42001, 'access_token expired');
  }

  function body(ctx: SimCtx): Record<string, unknown> {
    if (!ctx.body) throw new ApiError(47001, 'data format error');
    return ctx.body;
  }

  function getToken(ctx: SimCtx): SimReply {
    if (ctx.query.get('corpid') !== options.corpId) throw new ApiError(40013, 'invalid corpid');
    if (ctx.query.get('corpsecret') !== options.corpSecret) throw new ApiError(40001, 'invalid credential');
    return {
      body: { errcode: 0, errmsg: 'ok', access_token: issueToken(), expires_in: Math.floor(tokenTtlMs / 1000) },
    };
  }

  function approvalDetail(ctx: SimCtx): SimReply {
    requireToken(ctx);
    const spNo = str(body(ctx).sp_no);
    const i = spNo ? instances.get(spNo) : undefined;
    // Not documented in the reference: the simulator answers 40058 (invalid parameter) for an unknown sp_no.
    if (!i) throw new ApiError(40058, 'invalid sp_no');
    return {
      body: {
        errcode: 0,
        errmsg: 'ok',
        info: {
          sp_no: i.spNo,
          sp_name: i.spName,
          sp_status: i.spStatus,
          template_id: i.templateId,
          apply_time: i.applyTime,
          applyer: { userid: i.applicant, partyid: '1' },
          batch_applyer: [],
          sp_record: [
            {
              sp_status: i.spStatus === 1 ? 1 : i.spStatus === 3 ? 3 : 2,
              approverattr: 1,
              details: [
                {
                  approver: { userid: 'manager01' },
                  speech: '',
                  sp_status: i.spStatus === 1 ? 1 : i.spStatus === 3 ? 3 : 2,
                  sptime: i.decidedAt ?? 0,
                  media_id: [],
                },
              ],
            },
          ],
          notifyer: [],
          apply_data: { contents: i.form },
          comments: [],
        },
      },
    };
  }

  function approvalInfo(ctx: SimCtx): SimReply {
    requireToken(ctx);
    const b = body(ctx);
    const start = Number(b.starttime);
    const end = Number(b.endtime);
    if (!Number.isFinite(start) || !Number.isFinite(end)) throw new ApiError(40058, 'invalid starttime/endtime');
    const size = Math.min(Math.max(Number(b.size) || 100, 1), 100);
    const cursor = Number(b.new_cursor) || 0;
    const filters = Array.isArray(b.filters) ? (b.filters as { key?: string; value?: string }[]) : [];
    const all = [...instances.values()]
      .filter((i) => i.applyTime >= start && i.applyTime <= end)
      .filter((i) =>
        filters.every((f) =>
          f.key === 'template_id'
            ? i.templateId === f.value
            : f.key === 'sp_status'
              ? String(i.spStatus) === f.value
              : f.key === 'creator'
                ? i.applicant === f.value
                : true
        )
      )
      .sort((a, c) => a.applyTime - c.applyTime)
      .map((i) => i.spNo);
    const list = all.slice(cursor, cursor + size);
    const more = cursor + size < all.length;
    return {
      body: { errcode: 0, errmsg: 'ok', sp_no_list: list, new_next_cursor: more ? String(cursor + size) : '' },
    };
  }

  function messageSend(ctx: SimCtx): SimReply {
    requireToken(ctx);
    const b = body(ctx);
    if (String(b.agentid) !== options.agentId) throw new ApiError(301002, 'not allow to operate another agent');
    const touser = str(b.touser);
    const msgtype = str(b.msgtype);
    if (!touser) throw new ApiError(40058, 'invalid touser');
    if (!msgtype) throw new ApiError(40008, 'invalid message type');
    const content = b[msgtype];
    if (!content || typeof content !== 'object') throw new ApiError(41016, `missing ${msgtype}`);
    // enable_duplicate_check: the same message within the interval is not sent again (reference §5.5).
    const now = Date.now();
    if (Number(b.enable_duplicate_check) === 1) {
      const key = createHash('sha256')
        .update(JSON.stringify([touser, msgtype, content]))
        .digest('hex');
      const interval = (Number(b.duplicate_check_interval) || 1800) * 1000;
      const previous = dedupe.get(key);
      if (previous && now - previous.at < interval) {
        return { body: { errcode: 0, errmsg: 'ok', invaliduser: '', msgid: previous.msgid } };
      }
      const msgid = randomBytes(24).toString('base64url');
      dedupe.set(key, { msgid, at: now });
      messages.push({
        msgid,
        touser,
        agentid: Number(b.agentid),
        msgtype,
        content,
        create_time: new Date(now).toISOString(),
      });
      return { body: { errcode: 0, errmsg: 'ok', invaliduser: '', msgid } };
    }
    const msgid = randomBytes(24).toString('base64url');
    messages.push({
      msgid,
      touser,
      agentid: Number(b.agentid),
      msgtype,
      content,
      create_time: new Date(now).toISOString(),
    });
    return { body: { errcode: 0, errmsg: 'ok', invaliduser: '', msgid } };
  }

  // ---- /_sim ----

  function reset(): void {
    instances.clear();
    messages.length = 0;
    dedupe.clear();
    queue.reset();
    faults = {};
  }

  function revokeTokens(): void {
    tokens.clear();
  }

  const router = new SimRouter()
    .add('GET', '/cgi-bin/gettoken', getToken)
    .add('POST', '/cgi-bin/oa/getapprovaldetail', approvalDetail)
    .add('POST', '/cgi-bin/oa/getapprovalinfo', approvalInfo)
    .add('POST', '/cgi-bin/message/send', messageSend)
    .add('POST', '/_sim/approval/instances', (ctx) => ({
      body: createInstance((ctx.body ?? {}) as unknown as CreateWeComInstanceInput),
    }))
    .add('GET', '/_sim/approval/instances', () => ({ body: [...instances.values()] }))
    .add('POST', '/_sim/approval/instances/:sp_no/status', (ctx) => {
      setStatus(ctx.params.sp_no!, ctx.body?.status as string, { deliver: ctx.body?.deliver as boolean | undefined });
      return { body: { sp_no: ctx.params.sp_no, status: ctx.body?.status } };
    })
    .add('POST', '/_sim/events', (ctx) => {
      const xml = str(ctx.body?.xml);
      if (!xml) throw new SimInputError('xml (a decrypted WeCom message) is required');
      deliverXml(xml);
      return { body: { queued: true } };
    })
    .add('POST', '/_sim/url-verification', async () => ({ body: await verifyUrl() }))
    .add('GET', '/_sim/messages', () => ({ body: messages }))
    .add('GET', '/_sim/comments', () => ({ body: [] }))
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

  async function applyFaults(method: string, path: string): Promise<void> {
    if (faults.latencyMs) await sleep(faults.latencyMs);
    if (faults.rateLimit && rate.exceeded(faults.rateLimit.perSecond)) {
      throw new ApiError(45009, 'api freq out of limit');
    }
    const fail = takeFailPath(faults, method, path);
    if (fail) throw new ApiError(Number(fail.code), fail.msg ?? 'simulated failure');
    if (faults.errorRate && Math.random() < faults.errorRate) throw new ApiError(-1, 'system busy');
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const isSim = url.pathname.startsWith('/_sim/');
    try {
      const raw = await readBody(req);
      const found = router.match(method, url.pathname);
      if (!isSim) await applyFaults(method, url.pathname);
      if (found === undefined || found === 'method') {
        if (!isSim) {
          sendJson(res, 404, { errcode: 404, errmsg: 'not found' });
          return;
        }
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
      if (err instanceof ApiError) sendJson(res, 200, { errcode: err.errcode, errmsg: err.message });
      else if (err instanceof SimInputError) sendJson(res, 400, { error: err.message });
      else sendJson(res, 500, { errcode: -1, errmsg: `simulator error: ${(err as Error).message}` });
    }
  }

  const http = await listen(handle, options.port ?? 0, host);

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    queue.close();
    closing.abort();
    await http.close();
  }

  return {
    url: http.url,
    port: http.port,
    close,
    createInstance,
    setStatus,
    deliverXml,
    verifyUrl,
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
    comments: () => [],
    deliveries: () => [...queue.deliveries],
    waitForDeliveries: (opts) => queue.waitFor(opts, 'wecom simulator'),
  };
}
