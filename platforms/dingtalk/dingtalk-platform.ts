import { createHash } from 'node:crypto';
import type { DingTalkConfig } from '../../config/config';
import { classifyHttpStatus, IntegrationError, parseRetryAfter } from '../../domain/errors';
import type { Amendment, ApprovalInstance, ApprovalStatus, RequesterMessage } from '../../domain/types';
import type { ApprovalPlatform, ReconcileWindow } from '../platform';
import {
  asRecord,
  createApiClient,
  TokenCache,
  ttlSecondsOf,
  type ApiAnswer,
  type ApiFailure,
  type Classified,
  type PlatformClientOptions,
  type TokenFamily,
} from '../shared/api-client';
import { mapDingTalkForm } from './form';

/**
 * DingTalk implementation of ApprovalPlatform over plain fetch (reference dingtalk-wecom.md §2.3, §2.4):
 * - instance detail: `GET {api}/v1.0/workflow/processInstances?processInstanceId=` with `x-acs-dingtalk-access-token`,
 *   the token from `POST {api}/v1.0/oauth2/accessToken {appKey, appSecret}`;
 * - the approval code (processCode): the detail API does not return it, so it is confirmed through
 *   `POST {api}/v1.0/workflow/processes/instanceIds/query` (the instance ids of one processCode, by start time),
 *   for each DingTalk process code routed here. An instance found under none of them reports approvalCode '' and the
 *   workflow ignores it as not routed — the webhook's processCode is never trusted alone;
 * - requester message: work notification `POST {oapi}/topapi/message/corpconversation/asyncsend_v2?access_token=`
 *   with the legacy token (`GET {oapi}/gettoken?appkey=&appsecret=`): reference §2.3 says the two tokens look
 *   interchangeable but that is not documented, so each API family gets its own;
 * - audit comment: `POST {api}/v1.0/workflow/processInstances/comments {processInstanceId, text, commentUserId}`
 *   (the official SDK's `AddProcessInstanceComment`, workflow_1_0). DingTalk shows it as written by `commentUserId`,
 *   the requester here (there is no app author). Comments have no dedupe key, so the instance's operation records
 *   are read first for our marker;
 * - reconcile: the failed-push list, then the instance ids by start time (`listInstances`).
 * Every failure leaves as an IntegrationError (platforms/shared/api-client.ts): v1.0 errors are `HTTP 4xx/5xx
 * {code, message}`, legacy ones HTTP 200 `{errcode, errmsg}` (through the TOP gateway: errcode 88 with a `sub_code`);
 * a rejected token is dropped and the call made once more; throttles wait as long as DingTalk blocks.
 */

const SYSTEM = 'dingtalk';

export interface DingTalkPlatformOptions extends PlatformClientOptions {
  /** The DingTalk process codes routed here (routes file, platform: dingtalk). */
  processCodes: readonly string[];
}

export type DingTalkPlatform = ApprovalPlatform & {
  /** Drop cached tokens (tests). */
  resetTokens(): void;
};

// ---- error classification -------------------------------------------------------------------------------------

/** Legacy (oapi) codes that refuse the token itself (invalid, expired, missing): drop it, try once more. */
const LEGACY_TOKEN_CODES = new Set([40014, 42001, 41001]);
/**
 * Legacy per-second limits (how-to-process-api-throttling: 90002 all apps on one API, 90018 one app, 90019 an ISV app
 * per organisation): the penalty ends within the second ("处罚将在 … 结束", 3p logs).
 */
const LEGACY_QPS_CODES = new Set([90002, 90018, 90019]);
/** 90006 is the per-minute limit (I: the per-second codes' sibling): wait the minute out. */
const LEGACY_QPM_CODES = new Set([90006]);
const LEGACY_TRANSIENT_CODES = new Set([-1]);
/**
 * Configuration, not worth retrying: 90020 the organisation's monthly API quota (help-detail-1061621972), 60011 the
 * app lacks the permission, 60020 the caller's IP is not in the app's allow-list (3p gateway answers).
 */
const LEGACY_AUTH_CODES = new Set([90020, 60011, 60020]);

/** Our name for DingTalk's IP throttle, which answers without any code of its own. */
export const IP_THROTTLED = 'IpThrottled';
/** "触发限流,会禁止调用5分钟" (DingTalk throttling FAQ, copy at tianjinsc.cn/default/894239.html). */
const IP_THROTTLE_MS = 5 * 60_000;

/**
 * DingTalk's IP throttle (one IP calling all APIs more than 10,000 times in 20 s) blocks that IP for 5 minutes and
 * answers with no errcode: an HTML page, or `{"status":1111,"wait":5,"source":"x5","punish":"deny","uuid":…}` (same
 * FAQ). `wait` is read as minutes, the FAQ's 5 (I); which HTTP status comes with it is not said (I: 200, 403, 429).
 * Returns how long to wait, or undefined for an ordinary answer.
 */
export function ipThrottleMs(answer: ApiAnswer): number | undefined {
  if (!answer.json) return [200, 403, 429].includes(answer.status) ? IP_THROTTLE_MS : undefined;
  const b = answer.body;
  if ('errcode' in b || 'code' in b || (b.punish === undefined && b.status !== 1111)) return undefined;
  const wait = Number(b.wait);
  return wait >= 1 && wait <= 60 ? wait * 60_000 : IP_THROTTLE_MS;
}

/**
 * The code of a legacy answer. `/topapi/*` goes through the TOP gateway, which wraps the real code:
 * `{"errcode":88,"sub_code":"40014","sub_msg":"不合法的access_token","errmsg":"ding talk error[subcode=40014,submsg=…]"}`
 * (recorded probe log "无凭证探测日志（dingtalk，2026-09-11）" P8/P11; cryozerolabs/n8n-nodes-dingtalk#12;
 * 007gzs/dingtalk-sdk#52). The sub_code is what happened; numeric ones are compared as numbers.
 */
export function legacyCode(body: Record<string, unknown>): string | number | undefined {
  const errcode = body.errcode;
  if (errcode !== 88) return typeof errcode === 'number' ? errcode : undefined;
  const sub =
    typeof body.sub_code === 'string' || typeof body.sub_code === 'number'
      ? String(body.sub_code)
      : /subcode=([^,\]]+)/.exec(String(body.errmsg ?? ''))?.[1];
  if (!sub) return 88;
  return /^-?\d+$/.test(sub) ? Number(sub) : sub;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function throttled(answer: ApiAnswer): ApiFailure | undefined {
  const waitMs = ipThrottleMs(answer);
  if (waitMs === undefined) return undefined;
  return {
    status: answer.status,
    code: IP_THROTTLED,
    message: 'DingTalk throttles this IP (an answer without a code)',
    retryAfterMs: waitMs,
  };
}

/** v1.0: HTTP 200 with JSON is success; errors are `HTTP 4xx/5xx {code, message, requestid}`. */
function v1FailureOf(answer: ApiAnswer): ApiFailure | undefined {
  const throttle = throttled(answer);
  if (throttle) return throttle;
  if (answer.status === 200 && answer.json) return undefined;
  return {
    status: answer.status,
    code: str(answer.body.code),
    message: str(answer.body.message) ?? (answer.json ? undefined : 'answer is not JSON'),
    retryAfterMs: parseRetryAfter(answer.headers.get('retry-after')),
  };
}

/** Legacy oapi: `errcode` 0 is success. */
function legacyFailureOf(answer: ApiAnswer): ApiFailure | undefined {
  const throttle = throttled(answer);
  if (throttle) return throttle;
  if (answer.status === 200 && answer.body.errcode === 0) return undefined;
  return {
    status: answer.status,
    code: legacyCode(answer.body),
    message: str(answer.body.sub_msg) ?? str(answer.body.errmsg) ?? (answer.json ? undefined : 'answer is not JSON'),
    retryAfterMs: parseRetryAfter(answer.headers.get('retry-after')),
  };
}

/**
 * A v1.0 token refused: `InvalidAuthentication` with HTTP 400 (satorijs/satori#240, ClouGence/open-cdm#342, probe P6).
 */
function isV1TokenCode(code: unknown): boolean {
  return typeof code === 'string' && (code === 'InvalidAuthentication' || /invalid.*token/i.test(code));
}

export function classifyDingTalkFailure(f: ApiFailure): Classified {
  const code = f.code;
  if (code === IP_THROTTLED) return { kind: 'rate-limited', retryAfterMs: f.retryAfterMs ?? IP_THROTTLE_MS };
  if (typeof code === 'string') {
    // how-to-process-api-throttling: Forbidden.AccessDenied.QpsLimitForApi / …ForAppkeyAndApi / QpmLimit…
    if (/^Forbidden\.AccessDenied\.Qps/.test(code))
      return { kind: 'rate-limited', retryAfterMs: f.retryAfterMs ?? 1000 };
    if (/^Forbidden\.AccessDenied\.Qpm/.test(code))
      return { kind: 'rate-limited', retryAfterMs: f.retryAfterMs ?? 60_000 };
    if (code === 'Forbidden.AccessDenied.ApiCountLimitForOrg') return { kind: 'auth' };
    if (isV1TokenCode(code)) return { kind: 'transient' };
    if (/accesstoken/i.test(code)) return { kind: /permission|denied/i.test(code) ? 'auth' : 'transient' };
    if (/notexist|notfound/i.test(code)) return { kind: 'not-found' };
  } else if (typeof code === 'number') {
    if (LEGACY_QPS_CODES.has(code)) return { kind: 'rate-limited', retryAfterMs: f.retryAfterMs ?? 1000 };
    if (LEGACY_QPM_CODES.has(code)) return { kind: 'rate-limited', retryAfterMs: f.retryAfterMs ?? 60_000 };
    if (LEGACY_TOKEN_CODES.has(code) || LEGACY_TRANSIENT_CODES.has(code)) return { kind: 'transient' };
    if (LEGACY_AUTH_CODES.has(code)) return { kind: 'auth' };
  }
  if (f.status === 429) return { kind: 'rate-limited', retryAfterMs: f.retryAfterMs };
  if (f.status !== undefined && f.status !== 200) return { kind: classifyHttpStatus(f.status) };
  return { kind: 'invalid' };
}

function invalid(message: string): IntegrationError {
  return new IntegrationError(message, 'invalid', { system: SYSTEM });
}

// ---- mapping --------------------------------------------------------------------------------------------------

/** v1.0 status/result → the normalised vocabulary (reference §2.3: COMPLETED + agree = approved). */
export function dingtalkStatus(status: unknown, result: unknown): ApprovalStatus | undefined {
  switch (status) {
    case 'COMPLETED':
      return result === 'agree' ? 'APPROVED' : result === 'refuse' ? 'REJECTED' : undefined;
    case 'TERMINATED':
    case 'CANCELED':
      return 'CANCELED';
    case 'NEW':
    case 'RUNNING':
      return 'PENDING';
    default:
      return undefined;
  }
}

/** v1.0 times are "2022-08-31T11:52Z" (UTC, minute precision); epoch ms strings are accepted too. */
export function parseDingTalkTime(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v;
  if (typeof v !== 'string' || v.trim() === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v) || undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?Z$/.exec(v.trim());
  if (m) return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +(m[6] ?? 0));
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

/** Short marker appended to audit comments so a retry can see the comment already exists. */
function commentMarker(idempotencyKey: string): string {
  const key = /^[\w.:-]{1,40}$/.test(idempotencyKey)
    ? idempotencyKey
    : createHash('sha256').update(idempotencyKey, 'utf8').digest('hex').slice(0, 16);
  return `[ap:${key}]`;
}

const MAX_MARKDOWN_CHARS = 4000;

/** The work notification: markdown (title + lines), links back to nothing (the app has no page of its own). */
export function renderDingTalkMessage(message: RequesterMessage): Record<string, unknown> {
  let text = [
    `### ${message.title}`,
    ...message.lines,
    message.instanceId ? `审批 / approval ${message.instanceId}` : '',
  ]
    .filter((l) => l !== '')
    .join('  \n');
  if (text.length > MAX_MARKDOWN_CHARS) text = `${text.slice(0, MAX_MARKDOWN_CHARS)}…`;
  return { msgtype: 'markdown', markdown: { title: message.title.slice(0, 60), text } };
}

// ---- the platform ---------------------------------------------------------------------------------------------

/** ListProcessInstanceIds: `maxResults` "最多传20" (SDK workflow_1_0 ListProcessInstanceIdsRequest). */
const LIST_PAGE_SIZE = 20;
/**
 * ListProcessInstanceIds filters on the start time (审批实例开始时间, SDK model) and refuses a startTime more than
 * 365 days back, with the misleading `invalidEndTime` (3p client code that met it, DingTalk.OAPI.Process). No span
 * limit per call is stated in the SDK model or docs.
 */
const LIST_MAX_AGE_MS = 365 * 86_400_000;

export function createDingTalkPlatform(config: DingTalkConfig, opts: DingTalkPlatformOptions): DingTalkPlatform {
  const now = opts.now ?? Date.now;
  const api = config.baseUrl.replace(/\/+$/, '');
  const oapi = config.oapiBaseUrl.replace(/\/+$/, '');
  const client = createApiClient({
    system: SYSTEM,
    timeoutMs: opts.timeoutMs ?? 10_000,
    classify: classifyDingTalkFailure,
    logger: opts.logger,
  });

  // -- tokens --

  const v1Tokens = new TokenCache(async () => {
    const answer = await client.request('accessToken', `${api}/v1.0/oauth2/accessToken`, {
      method: 'POST',
      body: { appKey: config.appKey, appSecret: config.appSecret },
    });
    const token = answer.body.accessToken;
    if (answer.status !== 200 || typeof token !== 'string') {
      throw client.credentialError('accessToken', v1FailureOf(answer) ?? { message: 'no accessToken answered' });
    }
    return { token, ttlSeconds: ttlSecondsOf(answer.body.expireIn) };
  }, now);

  const legacyTokens = new TokenCache(async () => {
    const q = new URLSearchParams({ appkey: config.appKey, appsecret: config.appSecret });
    const answer = await client.request('gettoken', `${oapi}/gettoken?${q}`, { method: 'GET' });
    const token = answer.body.access_token;
    if (answer.status !== 200 || answer.body.errcode !== 0 || typeof token !== 'string') {
      throw client.credentialError('gettoken', legacyFailureOf(answer) ?? { message: 'no access_token answered' });
    }
    return { token, ttlSeconds: ttlSecondsOf(answer.body.expires_in) };
  }, now);

  const v1Family: TokenFamily = {
    tokens: v1Tokens,
    failureOf: v1FailureOf,
    isTokenRejection: (f) => isV1TokenCode(f.code),
  };
  const legacyFamily: TokenFamily = {
    tokens: legacyTokens,
    failureOf: legacyFailureOf,
    isTokenRejection: (f) => typeof f.code === 'number' && LEGACY_TOKEN_CODES.has(f.code),
  };

  /** A v1.0 call: HTTP 200 + JSON is success; anything else is classified. */
  function v1(op: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    return client.authorized(op, v1Family, (token) =>
      client.request(op, `${api}${path}`, { method, headers: { 'x-acs-dingtalk-access-token': token }, body })
    );
  }

  /** A legacy oapi call: `errcode` 0 is success. */
  function legacy(op: string, path: string, body: unknown): Promise<Record<string, unknown>> {
    const sep = path.includes('?') ? '&' : '?';
    return client.authorized(op, legacyFamily, (token) =>
      client.request(op, `${oapi}${path}${sep}access_token=${encodeURIComponent(token)}`, { method: 'POST', body })
    );
  }

  // -- API --

  async function rawInstance(instanceId: string): Promise<Record<string, unknown>> {
    if (!instanceId) throw invalid('dingtalk getInstance: empty instance id');
    const body = await v1(
      'getInstance',
      'GET',
      `/v1.0/workflow/processInstances?processInstanceId=${encodeURIComponent(instanceId)}`
    );
    const result = asRecord(body.result);
    if (!result) throw invalid(`dingtalk getInstance ${instanceId}: response has no result`);
    return result;
  }

  async function listIds(
    op: string,
    processCode: string,
    fromMs: number,
    toMs: number,
    statuses?: string[]
  ): Promise<string[]> {
    const ids: string[] = [];
    let nextToken = 0;
    for (let page = 0; page < 500; page++) {
      const body = await v1(op, 'POST', '/v1.0/workflow/processes/instanceIds/query', {
        processCode,
        startTime: Math.floor(fromMs),
        endTime: Math.floor(toMs),
        nextToken,
        maxResults: LIST_PAGE_SIZE,
        ...(statuses ? { statuses } : {}),
      });
      const result = asRecord(body.result);
      const list = Array.isArray(result?.list) ? (result.list as unknown[]) : [];
      ids.push(...list.filter((x): x is string => typeof x === 'string'));
      const next = Number(result?.nextToken);
      if (!result?.nextToken || !Number.isFinite(next) || next <= nextToken) break;
      nextToken = next;
    }
    return ids;
  }

  /** Which routed processCode this instance belongs to (by listing around its creation minute), or ''. */
  /** How far back an attached instance's original is looked for when the API does not name it (I: 31 days). */
  const ATTACHED_SEARCH_MS = 31 * 86_400_000;
  const ATTACHED_SEARCH_MAX = 200;

  async function processCodeOf(instanceId: string, createdMs: number | undefined): Promise<string> {
    if (createdMs === undefined) return '';
    // createTime has minute precision: look one minute either side of it.
    const from = createdMs - 60_000;
    const to = createdMs + 120_000;
    for (const code of opts.processCodes) {
      const ids = await listIds('resolveProcessCode', code, from, to);
      if (ids.includes(instanceId)) return code;
    }
    return '';
  }

  async function getInstance(instanceId: string): Promise<ApprovalInstance> {
    const r = await rawInstance(instanceId);
    const status = dingtalkStatus(r.status, r.result);
    if (!status) {
      throw invalid(
        `dingtalk instance ${instanceId}: unknown status ${JSON.stringify(r.status)}/${JSON.stringify(r.result)}`
      );
    }
    const requesterId = typeof r.originatorUserId === 'string' ? r.originatorUserId : '';
    if (!requesterId) throw invalid(`dingtalk instance ${instanceId}: no originatorUserId`);
    const startTime = parseDingTalkTime(r.createTime);
    const approvalCode = await processCodeOf(instanceId, startTime);
    const amends = await amendmentOf(instanceId, r, approvalCode, startTime);
    return {
      platform: 'dingtalk',
      instanceId,
      approvalCode,
      approvalName: typeof r.title === 'string' && r.title ? r.title : undefined,
      // An approved instance that an approved REVOKE attached instance has withdrawn is no longer approved.
      status: status === 'APPROVED' && !amends && (await revokedByAttached(r)) ? 'REVERTED' : status,
      requesterId,
      requesterUserId: requesterId,
      form: mapDingTalkForm(r.formComponentValues),
      startTime,
      endTime: parseDingTalkTime(r.finishTime),
      ...(amends ? { amends } : {}),
    };
  }

  /**
   * Attached instances (workflow_1_0 GetProcessInstance, aliyun/dingtalk-sdk model comments): "当已经通过的审批实例
   * 被修改或撤销，会生成一个新的实例，作为原有审批实例的附属" — a modified or revoked approved instance gets a new
   * attached instance with `bizAction` MODIFY or REVOKE, listed in the original's `attachedProcessInstanceIds`; the
   * original stays COMPLETED/agree. Newer models name the original in `mainProcessInstanceId`; without it the
   * original is found among the template's instances started up to ATTACHED_SEARCH_MS before, by its attached list.
   */
  async function amendmentOf(
    instanceId: string,
    r: Record<string, unknown>,
    processCode: string,
    startTime: number | undefined
  ): Promise<Amendment | undefined> {
    const kind = r.bizAction === 'MODIFY' ? 'modify' : r.bizAction === 'REVOKE' ? 'revoke' : undefined;
    if (!kind) return undefined;
    const named = typeof r.mainProcessInstanceId === 'string' && r.mainProcessInstanceId ? r.mainProcessInstanceId : '';
    if (named) return { kind, instanceId: named };
    if (processCode && startTime !== undefined) {
      const candidates = await listIds(
        'findMainInstance',
        processCode,
        startTime - ATTACHED_SEARCH_MS,
        startTime + 60_000
      );
      for (const id of candidates.slice(-ATTACHED_SEARCH_MAX).reverse()) {
        if (id === instanceId) continue;
        const attached = (await rawInstance(id)).attachedProcessInstanceIds;
        if (Array.isArray(attached) && attached.includes(instanceId)) return { kind, instanceId: id };
      }
    }
    // Never treat a change as a request of its own: without its original it cannot be applied, and must not grant.
    throw invalid(`dingtalk instance ${instanceId} is a ${r.bizAction} of an earlier approval that could not be found`);
  }

  /** "依次遍历它的附属列表" (walk its attached list in turn): an approved REVOKE among them withdrew this approval. */
  async function revokedByAttached(r: Record<string, unknown>): Promise<boolean> {
    const attached = Array.isArray(r.attachedProcessInstanceIds) ? (r.attachedProcessInstanceIds as unknown[]) : [];
    for (const id of attached) {
      if (typeof id !== 'string' || !id) continue;
      const a = await rawInstance(id);
      if (a.bizAction === 'REVOKE' && dingtalkStatus(a.status, a.result) === 'APPROVED') return true;
    }
    return false;
  }

  async function notifyRequester(requesterId: string, message: RequesterMessage): Promise<{ messageId: string }> {
    if (!config.agentId) throw new IntegrationError('DINGTALK_AGENT_ID is not set', 'auth', { system: SYSTEM });
    // DingTalk itself drops the same content to the same user within a day (reference §2.4), which makes a retried
    // activity harmless; the idempotency key is not sent.
    const body = await legacy('notifyRequester', '/topapi/message/corpconversation/asyncsend_v2', {
      agent_id: Number(config.agentId),
      userid_list: requesterId,
      to_all_user: false,
      msg: renderDingTalkMessage(message),
    });
    const taskId = body.task_id;
    if (taskId === undefined || taskId === null) throw invalid('dingtalk notifyRequester: response has no task_id');
    return { messageId: String(taskId) };
  }

  async function commentOnInstance(
    instance: Pick<ApprovalInstance, 'instanceId' | 'requesterId'>,
    text: string,
    idempotencyKey: string
  ): Promise<void> {
    const marker = commentMarker(idempotencyKey);
    const current = await rawInstance(instance.instanceId);
    const records = Array.isArray(current.operationRecords) ? (current.operationRecords as unknown[]) : [];
    if (records.some((r) => String(asRecord(r)?.remark ?? '').includes(marker))) return;
    await v1('commentOnInstance', 'POST', '/v1.0/workflow/processInstances/comments', {
      processInstanceId: instance.instanceId,
      text: `${text} ${marker}`,
      commentUserId: instance.requesterId,
    });
  }

  // -- reconcile --

  /**
   * The failed-push list: DingTalk keeps the events it could not deliver (`GET /v1.0/event/callbacks/failedResults`,
   * SDK event_1_0 GetCallBackFaileResult: `beginTime`/`endTime` ms, at most 200 a call, `hasMore`), and each call
   * clears what the previous call returned (event-subscription-and-data-push FAQ, reference §4.1). So it is read in one
   * place, here: every approval event of a routed processCode is kept until `listInstances` of that code takes it.
   * It finds instances whose push failed however long before their approval they were submitted. Best effort: a
   * failure to read it is logged and the listing by start time still runs.
   */
  const failedPushes = new Map<string, Set<string>>();
  async function readFailedPushes(window: ReconcileWindow): Promise<void> {
    const routed = new Set(opts.processCodes);
    for (let call = 0; call < 100; call++) {
      const q = new URLSearchParams({
        beginTime: String(Math.floor(window.submittedSinceMs)),
        endTime: String(Math.floor(window.toMs)),
      });
      const body = await v1('failedPushes', 'GET', `/v1.0/event/callbacks/failedResults?${q}`);
      const list = Array.isArray(body.failedList) ? (body.failedList as unknown[]) : [];
      for (const item of list) {
        const entry = asRecord(item);
        let data: Record<string, unknown> | undefined;
        try {
          data = asRecord(JSON.parse(String(entry?.callBackData ?? '')));
        } catch {
          data = undefined;
        }
        const tag = str(entry?.callBackTag) ?? str(data?.EventType);
        const code = str(data?.processCode);
        const id = str(data?.processInstanceId);
        if (tag !== 'bpms_instance_change' || !code || !id || !routed.has(code)) continue;
        const ids = failedPushes.get(code) ?? new Set<string>();
        ids.add(id);
        failedPushes.set(code, ids);
      }
      if (body.hasMore !== true || list.length === 0) break;
    }
  }

  async function listInstances(approvalCode: string, window: ReconcileWindow): Promise<string[]> {
    try {
      await readFailedPushes(window);
    } catch (err) {
      opts.logger?.warn(
        { system: SYSTEM, op: 'failedPushes', err: (err as Error).message },
        'dingtalk failed-push list not read; listing by start time only'
      );
    }
    const failed = [...(failedPushes.get(approvalCode) ?? [])];
    failedPushes.delete(approvalCode);
    const from = Math.max(window.submittedSinceMs, now() - LIST_MAX_AGE_MS + 60_000);
    const listed =
      from < window.toMs ? await listIds('listInstances', approvalCode, from, window.toMs, ['COMPLETED']) : [];
    return [...new Set([...failed, ...listed])];
  }

  return {
    name: 'dingtalk',
    getInstance,
    notifyRequester,
    commentOnInstance,
    listInstances,
    resetTokens() {
      v1Tokens.drop();
      legacyTokens.drop();
    },
  };
}
