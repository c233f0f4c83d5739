import type { WeComConfig } from '../../config/config';
import { IntegrationError, classifyHttpStatus, type IntegrationErrorKind } from '../../domain/errors';
import type { ApprovalInstance, ApprovalStatus, RequesterMessage } from '../../domain/types';
import type { ApprovalPlatform, ReconcileWindow } from '../platform';
import { mapWeComForm } from './form';

/**
 * WeCom implementation of ApprovalPlatform over plain fetch (reference dingtalk-wecom.md §5.4, §5.5):
 * - token: `GET {base}/cgi-bin/gettoken?corpid=&corpsecret=` → `{access_token, expires_in}`, cached per app;
 * - detail: `POST {base}/cgi-bin/oa/getapprovaldetail?access_token= {sp_no}` → `info` (template_id, sp_status,
 *   applyer.userid, apply_data.contents[] controls);
 * - message: `POST {base}/cgi-bin/message/send?access_token=` text message to the applicant, with WeCom's own
 *   duplicate check on (the same content within the interval is sent once, so a retried activity is harmless);
 * - list (reconcile): `POST {base}/cgi-bin/oa/getapprovalinfo` filtered by template_id and sp_status 2.
 * WeCom has no API to comment on an approval application, so `commentOnInstance` does nothing (the audit trail is
 * the workflow history and the message to the requester).
 * Errors are `{errcode, errmsg}` (HTTP 200): 40014 / 42001 / 41001 drop the cached token and are retryable; 45009
 * (and 45033 / 45011) are rate limits; -1 (system busy) is transient.
 */

const SYSTEM = 'wecom';

export interface WeComPlatformLogger {
  debug(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
}

export interface WeComPlatformOptions {
  logger?: WeComPlatformLogger;
  timeoutMs?: number;
}

export type WeComPlatform = ApprovalPlatform & { resetTokens(): void };

/** Token missing / invalid / expired. */
const TOKEN_CODES = new Set([40014, 42001, 41001]);
/** 45009 API call frequency exceeded, 45011 too frequent, 45033 concurrency limit. */
const RATE_CODES = new Set([45009, 45011, 45033]);
const TRANSIENT_CODES = new Set([-1]);
/** Bad corpid / secret, no privilege, app not allowed to call the approval API, IP not allowed. */
const AUTH_CODES = new Set([40001, 40013, 40056, 48002, 60011, 60020, 301002]);

interface Failure {
  status?: number;
  code?: number;
  message?: string;
  network?: string;
}

function classify(f: Failure): IntegrationErrorKind {
  if (f.network !== undefined) return 'transient';
  if (f.code !== undefined) {
    if (RATE_CODES.has(f.code)) return 'rate-limited';
    if (TOKEN_CODES.has(f.code) || TRANSIENT_CODES.has(f.code)) return 'transient';
    if (AUTH_CODES.has(f.code)) return 'auth';
  }
  if (f.status !== undefined && f.status !== 200) return classifyHttpStatus(f.status);
  return 'invalid';
}

function toError(op: string, f: Failure): IntegrationError {
  const msg =
    f.network !== undefined
      ? `wecom ${op} failed: ${f.network}`
      : `wecom ${op} failed: ${[
          f.status !== undefined && f.status !== 200 ? `HTTP ${f.status}` : undefined,
          `errcode ${f.code ?? '?'}`,
          f.message,
        ]
          .filter(Boolean)
          .join(' ')}`;
  const kind = classify(f);
  return new IntegrationError(msg, kind, {
    system: SYSTEM,
    status: f.status,
    code: f.code ?? f.network,
    retryAfterMs: kind === 'rate-limited' ? 1000 : undefined,
  });
}

function invalid(message: string): IntegrationError {
  return new IntegrationError(message, 'invalid', { system: SYSTEM });
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** info.sp_status (the same codes as the callback's SpStatus, reference §5.3). */
export function wecomStatus(spStatus: unknown): ApprovalStatus | undefined {
  switch (Number(spStatus)) {
    case 1:
      return 'PENDING';
    case 2:
    case 10: // paid: only an approved application gets paid
      return 'APPROVED';
    case 3:
      return 'REJECTED';
    case 4:
      return 'CANCELED';
    case 6:
      return 'REVERTED';
    case 7:
      return 'DELETED';
    default:
      return undefined;
  }
}

/** Text messages are limited to 2048 bytes. */
const MAX_TEXT_BYTES = 2000;

export function renderWeComText(message: RequesterMessage): string {
  const text = [message.title, ...message.lines, message.instanceId ? `审批单号 / approval ${message.instanceId}` : '']
    .filter((l) => l !== '')
    .join('\n');
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= MAX_TEXT_BYTES) return text;
  // Cut on a character boundary.
  return `${new TextDecoder().decode(bytes.subarray(0, MAX_TEXT_BYTES)).replace(/\uFFFD+$/, '')}…`;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

export function createWeComPlatform(config: WeComConfig, opts: WeComPlatformOptions = {}): WeComPlatform {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const base = config.baseUrl.replace(/\/+$/, '');
  let cached: Promise<CachedToken> | undefined;

  async function fetchJson(
    op: string,
    url: string,
    init: { method: string; body?: unknown }
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    let res: Response;
    try {
      res = await fetch(url, {
        method: init.method,
        headers: {
          accept: 'application/json',
          ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
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
      throw toError(op, { status: res.status, message: 'answer is not JSON' });
    }
    return { status: res.status, body };
  }

  function failureOf(status: number, body: Record<string, unknown>): Failure {
    return {
      status,
      code: typeof body.errcode === 'number' ? body.errcode : undefined,
      message: typeof body.errmsg === 'string' ? body.errmsg : undefined,
    };
  }

  async function fetchToken(): Promise<CachedToken> {
    const q = new URLSearchParams({ corpid: config.corpId, corpsecret: config.corpSecret });
    const { status, body } = await fetchJson('gettoken', `${base}/cgi-bin/gettoken?${q}`, { method: 'GET' });
    if (status !== 200 || body.errcode !== 0 || typeof body.access_token !== 'string') {
      const f = failureOf(status, body);
      const err = toError('gettoken', f);
      // Rate limits and "system busy" are worth retrying; any other refusal of corpid / secret is configuration.
      const retryable = f.code !== undefined && (RATE_CODES.has(f.code) || TRANSIENT_CODES.has(f.code));
      if (f.code !== undefined && !retryable) throw new IntegrationError(err.message, 'auth', err.details);
      throw err;
    }
    const ttl = Number(body.expires_in) > 0 ? Number(body.expires_in) : 7200;
    return { token: body.access_token, expiresAt: Date.now() + ttl * 1000 };
  }

  async function token(): Promise<string> {
    const current = cached;
    if (current) {
      try {
        const t = await current;
        if (t.expiresAt - Date.now() > 5 * 60_000) return t.token;
      } catch {
        // fetch again
      }
      if (cached !== current) return token();
    }
    const next = fetchToken();
    cached = next;
    next.catch(() => {
      if (cached === next) cached = undefined;
    });
    return (await next).token;
  }

  async function call(op: string, path: string, body: unknown): Promise<Record<string, unknown>> {
    const t = await token();
    const res = await fetchJson(op, `${base}${path}?access_token=${encodeURIComponent(t)}`, { method: 'POST', body });
    if (res.status === 200 && res.body.errcode === 0) return res.body;
    const f = failureOf(res.status, res.body);
    if (f.code !== undefined && TOKEN_CODES.has(f.code)) {
      cached = undefined;
      opts.logger?.warn({ system: SYSTEM, op, code: f.code }, 'wecom access_token rejected; dropped');
    }
    throw toError(op, f);
  }

  async function getInstance(instanceId: string): Promise<ApprovalInstance> {
    if (!instanceId) throw invalid('wecom getInstance: empty sp_no');
    const body = await call('getInstance', '/cgi-bin/oa/getapprovaldetail', { sp_no: instanceId });
    const info = asRecord(body.info);
    if (!info) throw invalid(`wecom getInstance ${instanceId}: response has no info`);
    const status = wecomStatus(info.sp_status);
    if (!status) throw invalid(`wecom instance ${instanceId}: unknown sp_status ${JSON.stringify(info.sp_status)}`);
    const applyer = asRecord(info.applyer);
    const requesterId = typeof applyer?.userid === 'string' ? applyer.userid : '';
    if (!requesterId) throw invalid(`wecom instance ${instanceId}: no applyer.userid`);
    const applyTime = Number(info.apply_time);
    // The detail has no end time; the last approver's `sptime` is when it was decided.
    let decidedAt: number | undefined;
    for (const node of Array.isArray(info.sp_record) ? info.sp_record : []) {
      for (const d of Array.isArray(asRecord(node)?.details) ? (asRecord(node)!.details as unknown[]) : []) {
        const rec = asRecord(d);
        const t = Number(rec?.sptime ?? rec?.sp_time);
        if (Number.isFinite(t) && t > 0) decidedAt = Math.max(decidedAt ?? 0, t * 1000);
      }
    }
    const applyData = asRecord(info.apply_data);
    return {
      platform: 'wecom',
      instanceId: typeof info.sp_no === 'string' && info.sp_no ? info.sp_no : instanceId,
      approvalCode: typeof info.template_id === 'string' ? info.template_id : '',
      approvalName: typeof info.sp_name === 'string' && info.sp_name ? info.sp_name : undefined,
      status,
      requesterId,
      requesterUserId: requesterId,
      form: mapWeComForm(applyData?.contents),
      startTime: Number.isFinite(applyTime) && applyTime > 0 ? applyTime * 1000 : undefined,
      endTime: status === 'PENDING' ? undefined : decidedAt,
    };
  }

  async function notifyRequester(requesterId: string, message: RequesterMessage): Promise<{ messageId: string }> {
    const body = await call('notifyRequester', '/cgi-bin/message/send', {
      touser: requesterId,
      msgtype: 'text',
      agentid: Number(config.agentId),
      text: { content: renderWeComText(message) },
      enable_duplicate_check: 1,
      duplicate_check_interval: 14_400,
    });
    const invalidUser = typeof body.invaliduser === 'string' ? body.invaliduser : '';
    if (invalidUser.split('|').includes(requesterId)) {
      throw new IntegrationError(`wecom notifyRequester: ${requesterId} is not a valid recipient`, 'invalid', {
        system: SYSTEM,
        code: 'invaliduser',
      });
    }
    const msgid = body.msgid;
    if (typeof msgid !== 'string' || !msgid) throw invalid('wecom notifyRequester: response has no msgid');
    return { messageId: msgid };
  }

  async function commentOnInstance(): Promise<void> {
    // No WeCom API adds a comment to an approval application (reference §5.4 lists none); deliberately a no-op.
  }

  async function listInstances(approvalCode: string, window: ReconcileWindow): Promise<string[]> {
    const [fromMs, toMs] = [window.submittedSinceMs, window.toMs];
    const out: string[] = [];
    let cursor = '';
    for (let page = 0; page < 1000; page++) {
      const body = await call('listInstances', '/cgi-bin/oa/getapprovalinfo', {
        starttime: String(Math.floor(fromMs / 1000)),
        endtime: String(Math.floor(toMs / 1000)),
        new_cursor: cursor,
        size: 100,
        filters: [
          { key: 'template_id', value: approvalCode },
          { key: 'sp_status', value: '2' },
        ],
      });
      const list = Array.isArray(body.sp_no_list) ? (body.sp_no_list as unknown[]) : [];
      out.push(...list.filter((x): x is string => typeof x === 'string'));
      const next = typeof body.new_next_cursor === 'string' ? body.new_next_cursor : '';
      if (!next || next === cursor) break;
      cursor = next;
    }
    return out;
  }

  return {
    name: 'wecom',
    getInstance,
    notifyRequester,
    commentOnInstance,
    listInstances,
    resetTokens() {
      cached = undefined;
    },
  };
}
