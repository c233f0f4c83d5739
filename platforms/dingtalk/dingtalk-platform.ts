import { createHash } from 'node:crypto';
import type { DingTalkConfig } from '../../config/config';
import { IntegrationError, classifyHttpStatus, parseRetryAfter, type IntegrationErrorKind } from '../../domain/errors';
import type { ApprovalInstance, ApprovalStatus, RequesterMessage } from '../../domain/types';
import type { ApprovalPlatform, ReconcileWindow } from '../platform';
import { mapDingTalkForm } from './form';

/**
 * DingTalk implementation of ApprovalPlatform over plain fetch (reference dingtalk-wecom.md §2.3, §2.4):
 * - instance detail: `GET {api}/v1.0/workflow/processInstances?processInstanceId=` with `x-acs-dingtalk-access-token`,
 *   the token from `POST {api}/v1.0/oauth2/accessToken {appKey, appSecret}`;
 * - the approval code (processCode): the detail API does not return it, so it is confirmed through
 *   `POST {api}/v1.0/workflow/processes/instanceIds/query` (the instance ids of one processCode, by creation time),
 *   for each DingTalk process code routed here. An instance found under none of them reports approvalCode '' and the
 *   workflow ignores it as not routed — the webhook's processCode is never trusted alone;
 * - requester message: work notification `POST {oapi}/topapi/message/corpconversation/asyncsend_v2?access_token=`
 *   with the legacy token (`GET {oapi}/gettoken?appkey=&appsecret=`): reference §2.3 says the two tokens look
 *   interchangeable but that is not documented, so each API family gets its own;
 * - audit comment: `POST {api}/v1.0/workflow/processInstances/comments {processInstanceId, text, commentUserId}`.
 *   Not in the reference; the path and fields are those of the official SDK's `AddProcessInstanceComment`
 *   (workflow_1_0). Comments have no dedupe key, so the instance's operation records are read first for our marker.
 * Every failure leaves as an IntegrationError: v1.0 errors are `HTTP 4xx/5xx {code, message}`, legacy ones HTTP 200
 * `{errcode, errmsg}`; rate limits (Forbidden.AccessDenied.Qp*, 90002, 90018) are retryable, a rejected token is
 * dropped from the cache and the call is retryable.
 */

const SYSTEM = 'dingtalk';

export interface DingTalkPlatformLogger {
  debug(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
}

export interface DingTalkPlatformOptions {
  logger?: DingTalkPlatformLogger;
  timeoutMs?: number;
  /** The DingTalk process codes routed here (routes file, platform: dingtalk). */
  processCodes: readonly string[];
}

export type DingTalkPlatform = ApprovalPlatform & {
  /** Drop cached tokens (tests). */
  resetTokens(): void;
};

// ---- error classification -------------------------------------------------------------------------------------

/** Legacy (oapi) errcodes: token invalid / expired → drop the token, retry. */
const LEGACY_TOKEN_CODES = new Set([40014, 42001, 41001]);
/** Legacy rate limits: 90002 global QPS, 90018 app QPS (how-to-process-api-throttling). 90006/90019 are QPM/QPH. */
const LEGACY_RATE_CODES = new Set([90002, 90006, 90018, 90019]);
const LEGACY_TRANSIENT_CODES = new Set([-1]);
/** Monthly call quota of a standard-edition org: retrying today does not help. */
const LEGACY_QUOTA_CODES = new Set([90020]);

interface Failure {
  status?: number;
  code?: string | number;
  message?: string;
  retryAfterMs?: number;
  network?: string;
}

function classify(f: Failure): IntegrationErrorKind {
  if (f.network !== undefined) return 'transient';
  const code = f.code;
  if (typeof code === 'string') {
    if (/^Forbidden\.AccessDenied\.Qp[sm]Limit/.test(code)) return 'rate-limited';
    if (code === 'Forbidden.AccessDenied.ApiCountLimitForOrg') return 'auth';
    if (code === 'InvalidAuthentication' || /accesstoken/i.test(code)) {
      return /permission|denied/i.test(code) ? 'auth' : 'transient';
    }
    if (/notexist|notfound/i.test(code)) return 'not-found';
  } else if (typeof code === 'number') {
    if (LEGACY_RATE_CODES.has(code)) return 'rate-limited';
    if (LEGACY_TOKEN_CODES.has(code) || LEGACY_TRANSIENT_CODES.has(code)) return 'transient';
    if (LEGACY_QUOTA_CODES.has(code)) return 'auth';
  }
  if (f.status === 429) return 'rate-limited';
  if (f.status === 401) return 'transient'; // token rejected: dropped, a retry fetches a new one
  if (f.status !== undefined && f.status !== 200) return classifyHttpStatus(f.status);
  return 'invalid';
}

function isTokenRejection(f: Failure): boolean {
  if (typeof f.code === 'number') return LEGACY_TOKEN_CODES.has(f.code);
  if (typeof f.code === 'string' && (f.code === 'InvalidAuthentication' || /invalid.*token/i.test(f.code))) return true;
  return f.status === 401;
}

function toError(op: string, f: Failure): IntegrationError {
  const msg =
    f.network !== undefined
      ? `dingtalk ${op} failed: ${f.network}`
      : `dingtalk ${op} failed: ${[
          f.status !== undefined ? `HTTP ${f.status}` : undefined,
          `code ${f.code ?? '?'}`,
          f.message,
        ]
          .filter(Boolean)
          .join(' ')}`;
  return new IntegrationError(msg, classify(f), {
    system: SYSTEM,
    status: f.status,
    code: f.code ?? f.network,
    retryAfterMs: f.retryAfterMs ?? (classify(f) === 'rate-limited' ? 1000 : undefined),
  });
}

function invalid(message: string): IntegrationError {
  return new IntegrationError(message, 'invalid', { system: SYSTEM });
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
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

interface CachedToken {
  token: string;
  expiresAt: number;
}

export function createDingTalkPlatform(config: DingTalkConfig, opts: DingTalkPlatformOptions): DingTalkPlatform {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const api = config.baseUrl.replace(/\/+$/, '');
  const oapi = config.oapiBaseUrl.replace(/\/+$/, '');
  const tokens: { v1?: Promise<CachedToken>; legacy?: Promise<CachedToken> } = {};

  async function fetchJson(
    op: string,
    url: string,
    init: { method: string; headers?: Record<string, string>; body?: unknown }
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
    let res: Response;
    try {
      res = await fetch(url, {
        method: init.method,
        headers: {
          accept: 'application/json',
          ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...init.headers,
        },
        body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      throw toError(op, {
        network: e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message),
      });
    }
    const text = await res.text().catch(() => '');
    let body: Record<string, unknown> = {};
    try {
      body = asRecord(JSON.parse(text)) ?? {};
    } catch {
      if (res.ok) throw toError(op, { status: res.status, message: 'answer is not JSON' });
    }
    return { status: res.status, body, headers: res.headers };
  }

  function failureOf(status: number, body: Record<string, unknown>, headers: Headers): Failure {
    return {
      status,
      code: (body.code as string | undefined) ?? (body.errcode as number | undefined),
      message: (body.message as string | undefined) ?? (body.errmsg as string | undefined),
      retryAfterMs: parseRetryAfter(headers.get('retry-after')),
    };
  }

  // -- tokens --

  async function fetchV1Token(): Promise<CachedToken> {
    const { status, body, headers } = await fetchJson('accessToken', `${api}/v1.0/oauth2/accessToken`, {
      method: 'POST',
      body: { appKey: config.appKey, appSecret: config.appSecret },
    });
    if (status !== 200 || typeof body.accessToken !== 'string') {
      const f = failureOf(status, body, headers);
      // A refused app key / secret is configuration, whatever status DingTalk uses for it.
      const kind = classify(f);
      throw new IntegrationError(toError('accessToken', f).message, kind === 'invalid' ? 'auth' : kind, {
        system: SYSTEM,
        status,
        code: f.code,
        retryAfterMs: f.retryAfterMs,
      });
    }
    const ttl = Number(body.expireIn) > 0 ? Number(body.expireIn) : 7200;
    return { token: body.accessToken, expiresAt: Date.now() + ttl * 1000 };
  }

  async function fetchLegacyToken(): Promise<CachedToken> {
    const q = new URLSearchParams({ appkey: config.appKey, appsecret: config.appSecret });
    const { status, body, headers } = await fetchJson('gettoken', `${oapi}/gettoken?${q}`, { method: 'GET' });
    if (status !== 200 || body.errcode !== 0 || typeof body.access_token !== 'string') {
      const f = failureOf(status, body, headers);
      const kind = classify(f);
      throw new IntegrationError(toError('gettoken', f).message, kind === 'invalid' ? 'auth' : kind, {
        system: SYSTEM,
        status,
        code: f.code,
        retryAfterMs: f.retryAfterMs,
      });
    }
    const ttl = Number(body.expires_in) > 0 ? Number(body.expires_in) : 7200;
    return { token: body.access_token, expiresAt: Date.now() + ttl * 1000 };
  }

  /** Cached, single-flight, refreshed 5 minutes before expiry; a failed fetch is not cached. */
  async function token(kind: 'v1' | 'legacy'): Promise<string> {
    const current = tokens[kind];
    if (current) {
      try {
        const t = await current;
        if (t.expiresAt - Date.now() > 5 * 60_000) return t.token;
      } catch {
        // fall through: fetch again
      }
      if (tokens[kind] !== current) return token(kind);
    }
    const next = kind === 'v1' ? fetchV1Token() : fetchLegacyToken();
    tokens[kind] = next;
    next.catch(() => {
      if (tokens[kind] === next) tokens[kind] = undefined;
    });
    return (await next).token;
  }

  function dropToken(kind: 'v1' | 'legacy', op: string, f: Failure): void {
    tokens[kind] = undefined;
    opts.logger?.warn({ system: SYSTEM, op, code: f.code, status: f.status }, 'dingtalk token rejected; dropped');
  }

  /** A v1.0 call: HTTP 200 + JSON is success; anything else is classified. */
  async function v1(op: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const t = await token('v1');
    const res = await fetchJson(op, `${api}${path}`, {
      method,
      headers: { 'x-acs-dingtalk-access-token': t },
      body,
    });
    if (res.status === 200) return res.body;
    const f = failureOf(res.status, res.body, res.headers);
    if (isTokenRejection(f)) dropToken('v1', op, f);
    throw toError(op, f);
  }

  /** A legacy oapi call: `errcode` 0 is success. */
  async function legacy(op: string, path: string, body: unknown): Promise<Record<string, unknown>> {
    const t = await token('legacy');
    const sep = path.includes('?') ? '&' : '?';
    const res = await fetchJson(op, `${oapi}${path}${sep}access_token=${encodeURIComponent(t)}`, {
      method: 'POST',
      body,
    });
    if (res.status === 200 && res.body.errcode === 0) return res.body;
    const f = failureOf(res.status, res.body, res.headers);
    if (isTokenRejection(f)) dropToken('legacy', op, f);
    throw toError(op, f);
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
        maxResults: 20,
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
    return {
      platform: 'dingtalk',
      instanceId,
      approvalCode: await processCodeOf(instanceId, startTime),
      approvalName: typeof r.title === 'string' && r.title ? r.title : undefined,
      status,
      requesterId,
      requesterUserId: requesterId,
      form: mapDingTalkForm(r.formComponentValues),
      startTime,
      endTime: parseDingTalkTime(r.finishTime),
    };
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

  async function listInstances(approvalCode: string, window: ReconcileWindow): Promise<string[]> {
    return listIds('listInstances', approvalCode, window.submittedSinceMs, window.toMs, ['COMPLETED']);
  }

  return {
    name: 'dingtalk',
    getInstance,
    notifyRequester,
    commentOnInstance,
    listInstances,
    resetTokens() {
      tokens.v1 = undefined;
      tokens.legacy = undefined;
    },
  };
}
