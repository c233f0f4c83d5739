import { createHash, randomBytes } from 'node:crypto';
import { cdata, wecomEchoQuery, wecomRequest } from '../shared/callback-signer';
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
 * WeCom (企业微信) simulator: the API subset ApprovalPlus calls (reference dingtalk-wecom.md §5.4, §5.5) with WeCom's
 * envelope (HTTP 200 `{errcode, errmsg, …}`) and token flow, and the approval callback pushed the way WeCom does
 * (§5.1–§5.3): `sys_approval_change` XML, encrypted for the CorpID and signed, POSTed to the receive URL; any HTTP 200
 * within 5 s counts as received (an empty body is what WeCom accepts for events). WeCom pushes again three times,
 * 5 s apart here (× redeliveryScale), then gives up. The two docs disagree on what is retried, so both are modelled
 * (`retryOn`): 'timeout-only' (90930, updated 2024/12/13: "仅针对网络连接失败或者网络请求超时情况重试", the
 * default) and 'any-failure' (90238: any non-200). Also as the docs say:
 * - getapprovalinfo lists by submission time, at most 31 days per call (301025 beyond), and with a self-built app's
 *   token only applicants inside the app's visible range (91816); without the 审批数据权限 grant it answers 301055;
 * - message/send: recipients outside the visible range come back in `invaliduser` (lower-cased), those without a
 *   licence in `unlicenseduser`, with errcode 0; every recipient refused is 81013 (90236);
 * - batch applications carry `batch_applyer` and no `applyer` (91983, "和applyer字段互斥");
 * - 45009 blocks an API 60 s after its per-minute limit and 60 min after its per-hour one (90312).
 * WeCom has no API to comment on an approval, so `/_sim/comments` stays empty. `/_sim/*` is the unauthenticated
 * control API for tests and sandbox mode.
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
  /** "企业微信服务器在五秒内收不到响应会断掉连接" (90930): 5000. */
  deliveryTimeoutMs?: number;
  /** What WeCom pushes again after: 'timeout-only' (90930, default) or 'any-failure' (90238). */
  retryOn?: 'timeout-only' | 'any-failure';
  tokenTtlSeconds?: number;
}

/** The app as WeCom sees it: who is inside its visible range, who has a licence, what it was granted. */
export interface WeComSimApp {
  /** Userids outside the app's 可见范围 (visible range): refused as message recipients, unlisted by getapprovalinfo. */
  outsideVisibleRange?: string[];
  /** Userids inside the range without a 基础接口许可: `unlicenseduser`. */
  unlicensed?: string[];
  /** 审批 → API → 审批数据权限: without it getapprovalinfo answers 301055. Default true. */
  approvalDataPermission?: boolean;
  /**
   * When every recipient is refused: 81013 (90236, the default), or errcode 0 with them listed (I: the doc counts
   * unlicensed users as 无权限, which makes 81013 the reading; 'ok' lets a client be tested against the other).
   */
  allRefused?: '81013' | 'ok';
}

/** WeCom-only faults on top of the shared ones (`/_sim/faults`). */
export interface WeComSimFaults extends SimFaults {
  /** Calls of one API allowed per minute / per hour before 45009 blocks it for 60 s / 60 min (90312). */
  frequency?: { perMinute?: number; perHour?: number };
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
  /** A batch application (批量申请): the actual applicants' userids, instead of `userid`. */
  batch_userids?: string[];
  form: WeComControlInput[];
  /** APPROVED (default), PENDING, REJECTED, CANCELED, REVERTED, DELETED, PAID, or the numeric sp_status. */
  status?: string | number;
  deliver?: boolean;
  sp_name?: string;
  sp_no?: string;
  /** When it was submitted, Unix seconds; default now. */
  apply_time?: number;
}

export interface WeComSimMessage {
  msgid: string;
  touser: string;
  /** The recipients it reached (not refused). */
  delivered_to: string[];
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
  setRetryOn(retryOn: 'timeout-only' | 'any-failure'): void;
  setApp(app: WeComSimApp): void;
  setFaults(faults: WeComSimFaults): void;
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
  /** One applicant, or a batch application's actual applicants. */
  applicants: string[];
  batch: boolean;
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
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
/** "起始时间跨度不能超过31天" (91816). */
const MAX_LIST_SPAN_S = 31 * 86_400;

function parseStatus(status: unknown): number {
  if (typeof status === 'number' && Object.values(WECOM_STATUS_CODES).includes(status)) return status;
  if (typeof status === 'string' && WECOM_STATUS_CODES[status] !== undefined) return WECOM_STATUS_CODES[status];
  throw new SimInputError(`status must be one of ${Object.keys(WECOM_STATUS_CODES).join(', ')} (or the number)`);
}

/**
 * 45009 per API: over its per-minute count it is blocked for 60 s, over its per-hour count for 60 min ("按分钟拦截则被
 * 屏蔽60秒，按小时拦截则被屏蔽60分钟", 90312).
 */
class FrequencyLimits {
  private readonly calls = new Map<string, number[]>();
  private readonly blockedUntil = new Map<string, number>();

  blocked(path: string, limits: { perMinute?: number; perHour?: number }): boolean {
    const now = Date.now();
    if ((this.blockedUntil.get(path) ?? 0) > now) return true;
    const recent = (this.calls.get(path) ?? []).filter((t) => now - t < HOUR_MS);
    recent.push(now);
    this.calls.set(path, recent);
    if (limits.perHour !== undefined && recent.length > limits.perHour) {
      this.blockedUntil.set(path, now + HOUR_MS);
      return true;
    }
    if (limits.perMinute !== undefined && recent.filter((t) => now - t < MINUTE_MS).length > limits.perMinute) {
      this.blockedUntil.set(path, now + MINUTE_MS);
      return true;
    }
    return false;
  }

  clear(): void {
    this.calls.clear();
    this.blockedUntil.clear();
  }
}

export async function startWeComSimulator(options: WeComSimulatorOptions): Promise<WeComSimulator> {
  const host = options.host ?? '127.0.0.1';
  const deliveryTimeoutMs = options.deliveryTimeoutMs ?? 5000;
  let retryOn = options.retryOn ?? 'timeout-only';
  let webhookUrl = options.webhookUrl;

  const instances = new Map<string, SimInstance>();
  const messages: WeComSimMessage[] = [];
  const dedupe = new Map<string, { msgid: string; at: number }>();
  const tokens = new SimTokens((options.tokenTtlSeconds ?? 7200) * 1000);
  let faults: WeComSimFaults = {};
  let app: WeComSimApp = {};
  const rate = new RateWindow();
  const frequency = new FrequencyLimits();
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
      const durationMs = Date.now() - started;
      if (res.status === 200) return { ok: true, status: 200, durationMs };
      // An answer, but not 200: pushed again only under 90238's reading.
      return { ok: false, status: res.status, durationMs, final: retryOn === 'timeout-only' };
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
      // A batch application's callback Applyer is not documented: its first applicant here (I).
      `<Applyer><UserId>${cdata(i.applicants[0]!)}</UserId><Party>${cdata('1')}</Party></Applyer>`,
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
    const single = str(input.userid) ?? str(input.user_id);
    const batch = Array.isArray(input.batch_userids) ? input.batch_userids.filter((u) => str(u)) : [];
    if (!templateId) throw new SimInputError('template_id (or approval_code) is required');
    if (!single && batch.length === 0) throw new SimInputError('userid (or user_id, or batch_userids) is required');
    if (single && batch.length > 0) throw new SimInputError('userid and batch_userids exclude each other');
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
      applicants: single ? [single] : batch,
      batch: !single,
      form: input.form.map((c, i) => ({
        ...c,
        id: c.id ?? `${c.control}-${1_700_000_000_000 + i}`,
        title: typeof c.title === 'string' ? [{ text: c.title, lang: 'zh_CN' }] : c.title,
      })),
      spStatus,
      applyTime: typeof input.apply_time === 'number' ? Math.floor(input.apply_time) : now,
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

  /** Token errors (global error codes 90313): 41001 missing, 40014 invalid, 42001 expired. */
  function requireToken(ctx: SimCtx): void {
    const check = tokens.check(ctx.query.get('access_token'));
    if (check === 'missing') throw new ApiError(41001, 'access_token missing');
    if (check === 'unknown') throw new ApiError(40014, 'invalid access_token');
    if (check === 'expired') throw new ApiError(42001, 'access_token expired');
  }

  function body(ctx: SimCtx): Record<string, unknown> {
    if (!ctx.body) throw new ApiError(47001, 'data format error');
    return ctx.body;
  }

  function getToken(ctx: SimCtx): SimReply {
    if (ctx.query.get('corpid') !== options.corpId) throw new ApiError(40013, 'invalid corpid');
    if (ctx.query.get('corpsecret') !== options.corpSecret) throw new ApiError(40001, 'invalid credential');
    return { body: { errcode: 0, errmsg: 'ok', access_token: tokens.issue(), expires_in: tokens.ttlSeconds } };
  }

  const outsideRange = (userid: string) =>
    (app.outsideVisibleRange ?? []).some((u) => u.toLowerCase() === userid.toLowerCase());
  const unlicensed = (userid: string) => (app.unlicensed ?? []).some((u) => u.toLowerCase() === userid.toLowerCase());

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
          // "batch_applyer: 批量申请人信息（和applyer字段互斥）", each "实际申请人userid" (91983).
          ...(i.batch
            ? { batch_applyer: i.applicants.map((userid) => ({ userid })) }
            : { applyer: { userid: i.applicants[0], partyid: '1' } }),
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

  /**
   * getapprovalinfo (91816): starttime/endtime are 审批单提交的时间范围 (submission time), endtime after starttime and
   * at most 31 days apart (301025 otherwise, "请求参数错误"); size ≤ 100; filters are ANDed between keys. A page is
   * `size` applications before those outside the visible range are removed, so it may hold fewer ("返回的sp_no_list
   * 个数可能和size不一致"); `new_next_cursor` is absent on the last page.
   */
  function approvalInfo(ctx: SimCtx): SimReply {
    requireToken(ctx);
    if (app.approvalDataPermission === false) throw new ApiError(301055, '无审批应用数据拉取权限');
    const b = body(ctx);
    const start = Number(b.starttime);
    const end = Number(b.endtime);
    if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start || end - start > MAX_LIST_SPAN_S) {
      throw new ApiError(301025, '审批开放接口参数错误: endtime must be after starttime, at most 31 days');
    }
    const size = b.size === undefined ? 100 : Number(b.size);
    if (!(size >= 1 && size <= 100)) throw new ApiError(301025, '审批开放接口参数错误: size must be 1–100');
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
                ? i.applicants.includes(String(f.value))
                : true
        )
      )
      .sort((a, c) => a.applyTime - c.applyTime);
    const page = all.slice(cursor, cursor + size).filter((i) => !i.applicants.every(outsideRange));
    const more = cursor + size < all.length;
    return {
      body: {
        errcode: 0,
        errmsg: 'ok',
        sp_no_list: page.map((i) => i.spNo),
        ...(more ? { new_next_cursor: String(cursor + size) } : {}),
      },
    };
  }

  /**
   * message/send (90236): touser "u1|u2"; recipients outside the visible range in `invaliduser` and those without a
   * licence in `unlicenseduser`, lower-cased ("返回包中的userid，不区分大小写，统一转为小写"); every one refused → 81013.
   */
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
    const recipients = touser.split('|').filter(Boolean);
    const invalid = recipients.filter(outsideRange);
    const noLicence = recipients.filter((r) => !outsideRange(r) && unlicensed(r));
    const reached = recipients.filter((r) => !invalid.includes(r) && !noLicence.includes(r));
    if (reached.length === 0 && (app.allRefused ?? '81013') === '81013') {
      throw new ApiError(81013, 'user & party & tag all invalid');
    }
    const refusals = {
      invaliduser: invalid.map((u) => u.toLowerCase()).join('|'),
      ...(noLicence.length ? { unlicenseduser: noLicence.map((u) => u.toLowerCase()).join('|') } : {}),
    };
    const now = Date.now();
    const record = (msgid: string) =>
      messages.push({
        msgid,
        touser,
        delivered_to: reached,
        agentid: Number(b.agentid),
        msgtype,
        content,
        create_time: new Date(now).toISOString(),
      });
    // enable_duplicate_check: the same message within the interval is not sent again (reference §5.5).
    if (Number(b.enable_duplicate_check) === 1) {
      const key = createHash('sha256')
        .update(JSON.stringify([touser, msgtype, content]))
        .digest('hex');
      const interval = (Number(b.duplicate_check_interval) || 1800) * 1000;
      const previous = dedupe.get(key);
      if (previous && now - previous.at < interval) {
        return { body: { errcode: 0, errmsg: 'ok', ...refusals, msgid: previous.msgid } };
      }
      const msgid = randomBytes(24).toString('base64url');
      dedupe.set(key, { msgid, at: now });
      if (reached.length) record(msgid);
      return { body: { errcode: 0, errmsg: 'ok', ...refusals, msgid } };
    }
    const msgid = randomBytes(24).toString('base64url');
    if (reached.length) record(msgid);
    return { body: { errcode: 0, errmsg: 'ok', ...refusals, msgid } };
  }

  // ---- /_sim ----

  function reset(): void {
    instances.clear();
    messages.length = 0;
    dedupe.clear();
    queue.reset();
    frequency.clear();
    faults = {};
    app = {};
  }

  function revokeTokens(): void {
    tokens.clear();
  }

  function setFaults(next: WeComSimFaults | Record<string, unknown>): WeComSimFaults {
    const b = next as Record<string, unknown>;
    const parsed: WeComSimFaults = parseFaults(b, { numericCodes: true });
    const f = b.frequency as WeComSimFaults['frequency'];
    if (f !== undefined) {
      if (typeof f !== 'object' || f === null) throw new SimInputError('frequency must be {perMinute?, perHour?}');
      parsed.frequency = {
        ...(f.perMinute !== undefined ? { perMinute: Number(f.perMinute) } : {}),
        ...(f.perHour !== undefined ? { perHour: Number(f.perHour) } : {}),
      };
    }
    faults = parsed;
    frequency.clear();
    return parsed;
  }

  function setApp(next: WeComSimApp): void {
    app = { ...next };
  }

  const router = addControlRoutes(
    new SimRouter()
      .add('GET', '/cgi-bin/gettoken', getToken)
      .add('POST', '/cgi-bin/oa/getapprovaldetail', approvalDetail)
      .add('POST', '/cgi-bin/oa/getapprovalinfo', approvalInfo)
      .add('POST', '/cgi-bin/message/send', messageSend)
      .add('POST', '/_sim/url-verification', async () => ({ body: await verifyUrl() }))
      .add('POST', '/_sim/app', (ctx) => {
        setApp((ctx.body ?? {}) as WeComSimApp);
        return { body: app };
      }),
    {
      createInstance: (b) => createInstance(b as unknown as CreateWeComInstanceInput),
      setStatus: (spNo, status, opts) => {
        setStatus(spNo, status as string, opts);
        return { sp_no: spNo, status };
      },
      deliverEvent: (b) => {
        const xml = str(b.xml);
        if (!xml) throw new SimInputError('xml (a decrypted WeCom message) is required');
        deliverXml(xml);
        return { queued: true };
      },
      instances: () => [...instances.values()],
      messages: () => messages,
      comments: () => [],
      deliveries: () => queue.deliveries,
      setFaults,
      clearFaults: () => void setFaults({}),
      revokeTokens,
      reset,
    }
  );

  async function applyFaults(method: string, path: string): Promise<void> {
    if (faults.latencyMs) await sleep(faults.latencyMs);
    if (faults.rateLimit && rate.exceeded(faults.rateLimit.perSecond)) {
      throw new ApiError(45009, 'api freq out of limit');
    }
    if (faults.frequency && frequency.blocked(path, faults.frequency)) {
      throw new ApiError(45009, 'api freq out of limit');
    }
    const fail = takeFailPath(faults, method, path);
    if (fail) throw new ApiError(Number(fail.code), fail.msg ?? 'simulated failure');
    if (faults.errorRate && Math.random() < faults.errorRate) throw new ApiError(-1, 'system busy');
  }

  const handle = simHandler({
    router,
    beforeApi: ({ method, path }) => applyFaults(method, path),
    notFound: () => ({ status: 404, body: { errcode: 404, errmsg: 'not found' } }),
    apiError: (err) => (err instanceof ApiError ? { body: { errcode: err.errcode, errmsg: err.message } } : undefined),
  });

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
    setRetryOn: (r) => {
      retryOn = r;
    },
    setApp,
    setFaults: (f) => void setFaults(f),
    clearFaults: () => void setFaults({}),
    revokeTokens,
    reset,
    messages: () => [...messages],
    comments: () => [],
    deliveries: () => [...queue.deliveries],
    waitForDeliveries: (opts) => queue.waitFor(opts, 'wecom simulator'),
  };
}
