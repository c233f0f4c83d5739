import type { WeComConfig } from '../../config/config';
import { classifyHttpStatus, IntegrationError } from '../../domain/errors';
import type { ApprovalInstance, ApprovalStatus, RequesterMessage } from '../../domain/types';
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
import { mapWeComForm } from './form';

/**
 * WeCom implementation of ApprovalPlatform over plain fetch (reference dingtalk-wecom.md §5.4, §5.5):
 * - token: `GET {base}/cgi-bin/gettoken?corpid=&corpsecret=` → `{access_token, expires_in}`, cached per app;
 * - detail: `POST {base}/cgi-bin/oa/getapprovaldetail?access_token= {sp_no}` → `info` (template_id, sp_status,
 *   applyer.userid or batch_applyer[].userid, apply_data.contents[] controls);
 * - message: `POST {base}/cgi-bin/message/send?access_token=` text message to the applicant(s), with WeCom's own
 *   duplicate check on (the same content within the interval is sent once, so a retried activity is harmless);
 * - list (reconcile): `POST {base}/cgi-bin/oa/getapprovalinfo` by submission time in spans of at most 31 days,
 *   filtered by template_id and sp_status (2 approved, 10 paid).
 * WeCom has no API to comment on an approval application, so `commentOnInstance` does nothing (the audit trail is
 * the workflow history and the message to the requester).
 * Errors are `{errcode, errmsg}` (HTTP 200, platforms/shared/api-client.ts): 40014 / 42001 / 41001 drop the cached
 * token and the call is made once more; 45009 waits as long as WeCom blocks; 45033 and -1 are retried with back-off.
 */

const SYSTEM = 'wecom';

export type WeComPlatformOptions = PlatformClientOptions;

export type WeComPlatform = ApprovalPlatform & { resetTokens(): void };

/** Token missing / invalid / expired (global error codes 90313; WeCom now answers 40014 on expiry too). */
const TOKEN_CODES = new Set([40014, 42001, 41001]);
/** 45009 接口调用超过限制 (per-minute / per-hour limits, 90312). */
const FREQUENCY_CODE = 45009;
/** 45033 接口并发调用超过限制: too many at once; an ordinary back-off is enough. (45011 is WeChat's, not WeCom's.) */
const CONCURRENCY_CODE = 45033;
const TRANSIENT_CODES = new Set([-1]);
/**
 * Configuration: bad secret / corpid (40001, 40013), bad agent (40056), no API permission (48002, 60011), IP not
 * allowed (60020), another app's agent (301002), no approval-data permission for getapprovalinfo (301055, 91816).
 */
const AUTH_CODES = new Set([40001, 40013, 40056, 48002, 60011, 60020, 301002, 301055]);
/** getapprovalinfo: 301112 "请缩小查询时间范围重试" (91816); a span over 31 days is 301025, never asked for here. */
const NARROW_THE_SPAN = 301112;

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/**
 * How long a 45009 blocks. "按分钟拦截则被屏蔽60秒，按小时拦截则被屏蔽60分钟" (90312), and the errcode does not say
 * which limit tripped. So a block is first taken for a per-minute one (wait until 60 s after it began); one that is
 * still there after that is the per-hour one (wait until 60 min after it began) (I). A success ends it.
 */
export class FrequencyBlocks {
  private readonly since = new Map<string, number>();
  constructor(private readonly now: () => number = Date.now) {}

  retryAfterMs(api: string): number {
    const now = this.now();
    let since = this.since.get(api);
    if (since === undefined || now - since >= HOUR_MS) {
      since = now;
      this.since.set(api, since);
    }
    const elapsed = now - since;
    // One second past the block's end, so the retry does not land on its last instant.
    return (elapsed < MINUTE_MS ? MINUTE_MS : HOUR_MS) - elapsed + 1000;
  }

  ended(api: string): void {
    this.since.delete(api);
  }
}

function invalid(message: string): IntegrationError {
  return new IntegrationError(message, 'invalid', { system: SYSTEM });
}

/** WeCom answers HTTP 200 `{errcode, errmsg}`; errcode 0 is success. */
function failureOf(answer: ApiAnswer): ApiFailure | undefined {
  if (answer.status === 200 && answer.body.errcode === 0) return undefined;
  return {
    status: answer.status,
    code: typeof answer.body.errcode === 'number' ? answer.body.errcode : undefined,
    message:
      typeof answer.body.errmsg === 'string' ? answer.body.errmsg : answer.json ? undefined : 'answer is not JSON',
  };
}

/** "userid1|userid2" → its ids, lower-cased: WeCom lowercases the userids it returns (90236). */
function idsOf(list: unknown): string[] {
  return typeof list === 'string'
    ? list
        .split('|')
        .filter(Boolean)
        .map((id) => id.toLowerCase())
    : [];
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

/** getapprovalinfo: "起始时间跨度不能超过31天" (91816); a minute short of it, so a call is never on the edge. */
const LIST_SPAN_MS = 31 * 86_400_000 - MINUTE_MS;
/** "一次拉取调用最多拉取100个审批记录" (91816). */
const LIST_PAGE_SIZE = 100;
/** The approved statuses reconcile wants: 2 已通过, 10 已支付 (only an approved application gets paid). */
const LISTED_STATUSES = ['2', '10'];

export function createWeComPlatform(config: WeComConfig, opts: WeComPlatformOptions = {}): WeComPlatform {
  const now = opts.now ?? Date.now;
  const base = config.baseUrl.replace(/\/+$/, '');
  const blocks = new FrequencyBlocks(now);

  function classify(f: ApiFailure, op: string): Classified {
    if (f.code === FREQUENCY_CODE) return { kind: 'rate-limited', retryAfterMs: blocks.retryAfterMs(op) };
    if (f.code === CONCURRENCY_CODE) return { kind: 'rate-limited' };
    if (f.code !== undefined) {
      if (TOKEN_CODES.has(f.code as number) || TRANSIENT_CODES.has(f.code as number)) return { kind: 'transient' };
      if (AUTH_CODES.has(f.code as number)) return { kind: 'auth' };
    }
    if (f.status !== undefined && f.status !== 200) return { kind: classifyHttpStatus(f.status) };
    return { kind: 'invalid' };
  }

  const client = createApiClient({
    system: SYSTEM,
    timeoutMs: opts.timeoutMs ?? 10_000,
    classify,
    succeeded: (op) => blocks.ended(op),
    logger: opts.logger,
  });

  const tokens = new TokenCache(async () => {
    const q = new URLSearchParams({ corpid: config.corpId, corpsecret: config.corpSecret });
    const answer = await client.request('gettoken', `${base}/cgi-bin/gettoken?${q}`, { method: 'GET' });
    const token = answer.body.access_token;
    if (typeof token !== 'string' || failureOf(answer)) {
      // Rate limits and "system busy" are worth retrying; any other refusal of corpid / secret is configuration
      // (and retrying a bad secret gets the IP banned for an hour, 90313 45009 help).
      throw client.credentialError('gettoken', failureOf(answer) ?? { message: 'no access_token answered' });
    }
    blocks.ended('gettoken');
    return { token, ttlSeconds: ttlSecondsOf(answer.body.expires_in) };
  }, now);

  const family: TokenFamily = {
    tokens,
    failureOf,
    isTokenRejection: (f) => typeof f.code === 'number' && TOKEN_CODES.has(f.code),
  };

  function call(op: string, path: string, body: unknown): Promise<Record<string, unknown>> {
    return client.authorized(op, family, (token) =>
      client.request(op, `${base}${path}?access_token=${encodeURIComponent(token)}`, { method: 'POST', body })
    );
  }

  async function getInstance(instanceId: string): Promise<ApprovalInstance> {
    if (!instanceId) throw invalid('wecom getInstance: empty sp_no');
    const body = await call('getInstance', '/cgi-bin/oa/getapprovaldetail', { sp_no: instanceId });
    const info = asRecord(body.info);
    if (!info) throw invalid(`wecom getInstance ${instanceId}: response has no info`);
    const status = wecomStatus(info.sp_status);
    if (!status) throw invalid(`wecom instance ${instanceId}: unknown sp_status ${JSON.stringify(info.sp_status)}`);
    const requester = requesterOf(info);
    if (!requester) throw invalid(`wecom instance ${instanceId}: neither applyer.userid nor batch_applyer`);
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
      requesterId: requester.requesterId,
      requesterUserId: requester.requesterUserId,
      form: mapWeComForm(applyData?.contents),
      startTime: Number.isFinite(applyTime) && applyTime > 0 ? applyTime * 1000 : undefined,
      endTime: status === 'PENDING' ? undefined : decidedAt,
    };
  }

  async function notifyRequester(requesterId: string, message: RequesterMessage): Promise<{ messageId: string }> {
    // A batch application's requester is its applicants joined the way `touser` takes them ("u1|u2").
    const recipients = requesterId.split('|').filter(Boolean);
    const body = await call('notifyRequester', '/cgi-bin/message/send', {
      touser: requesterId,
      msgtype: 'text',
      agentid: Number(config.agentId),
      text: { content: renderWeComText(message) },
      enable_duplicate_check: 1,
      duplicate_check_interval: 14_400,
    });
    // 90236: some recipients refused and errcode still 0 — invaliduser (not in the app's visible range, or no such
    // user; lower-cased) and unlicenseduser (in range but no 基础接口许可: not delivered either). Every recipient
    // refused is usually errcode 81013, which classifies as `invalid`; the same with errcode 0 is refused here too.
    const invalidUsers = new Set(idsOf(body.invaliduser));
    const unlicensed = new Set(idsOf(body.unlicenseduser));
    const refused = recipients.filter((r) => invalidUsers.has(r.toLowerCase()) || unlicensed.has(r.toLowerCase()));
    if (refused.length === recipients.length) {
      const why = refused.every((r) => unlicensed.has(r.toLowerCase()))
        ? 'has no WeCom licence for the API (unlicenseduser)'
        : "is not a valid recipient (not in the app's visible range, or unknown)";
      throw new IntegrationError(`wecom notifyRequester: ${requesterId} ${why}`, 'invalid', {
        system: SYSTEM,
        code: refused.every((r) => unlicensed.has(r.toLowerCase())) ? 'unlicenseduser' : 'invaliduser',
      });
    }
    if (refused.length > 0) {
      opts.logger?.warn(
        { system: SYSTEM, op: 'notifyRequester', refused: refused.length, of: recipients.length },
        'wecom delivered the message to only some applicants'
      );
    }
    const msgid = body.msgid;
    if (typeof msgid !== 'string' || !msgid) throw invalid('wecom notifyRequester: response has no msgid');
    return { messageId: msgid };
  }

  async function commentOnInstance(): Promise<void> {
    // No WeCom API adds a comment to an approval application (reference §5.4 lists none); deliberately a no-op.
  }

  /** The sp_nos submitted in [fromS, toS] (seconds) with one status; halves the span when WeCom asks (301112, I). */
  async function listSpan(approvalCode: string, status: string, fromS: number, toS: number): Promise<string[]> {
    const out: string[] = [];
    let cursor = '';
    for (let page = 0; page < 1000; page++) {
      let body: Record<string, unknown>;
      try {
        body = await call('listInstances', '/cgi-bin/oa/getapprovalinfo', {
          starttime: String(fromS),
          endtime: String(toS),
          new_cursor: cursor,
          size: LIST_PAGE_SIZE,
          filters: [
            { key: 'template_id', value: approvalCode },
            { key: 'sp_status', value: status },
          ],
        });
      } catch (err) {
        const code = (err as IntegrationError).details?.code;
        if (code === NARROW_THE_SPAN && page === 0 && toS - fromS > 3600) {
          const mid = Math.floor((fromS + toS) / 2);
          return [
            ...(await listSpan(approvalCode, status, fromS, mid)),
            ...(await listSpan(approvalCode, status, mid, toS)),
          ];
        }
        throw err;
      }
      const list = Array.isArray(body.sp_no_list) ? (body.sp_no_list as unknown[]) : [];
      out.push(...list.filter((x): x is string => typeof x === 'string'));
      // "当返回结果没有该字段时表示审批单已经拉取完" (91816); the list may be shorter than size, so only the cursor says.
      const next = typeof body.new_next_cursor === 'string' ? body.new_next_cursor : '';
      if (!next || next === cursor) break;
      cursor = next;
    }
    return out;
  }

  async function listInstances(approvalCode: string, window: ReconcileWindow): Promise<string[]> {
    const ids = new Set<string>();
    for (let from = window.submittedSinceMs; from < window.toMs; from += LIST_SPAN_MS) {
      const to = Math.min(window.toMs, from + LIST_SPAN_MS);
      for (const status of LISTED_STATUSES) {
        for (const id of await listSpan(approvalCode, status, Math.floor(from / 1000), Math.ceil(to / 1000))) {
          ids.add(id);
        }
      }
    }
    return [...ids];
  }

  return {
    name: 'wecom',
    getInstance,
    notifyRequester,
    commentOnInstance,
    listInstances,
    resetTokens() {
      tokens.drop();
    },
  };
}

/**
 * Who asked. `applyer` normally; a batch application (批量申请) has `batch_applyer` instead — "和applyer字段互斥",
 * each entry the "实际申请人userid" (91983). The application is theirs, all of them: the requester is their userids
 * joined with `|`, which is how message/send addresses several users (90236), so every applicant is told; the first is
 * the tenant-stable id.
 */
export function requesterOf(
  info: Record<string, unknown>
): { requesterId: string; requesterUserId: string } | undefined {
  const single = asRecord(info.applyer)?.userid;
  if (typeof single === 'string' && single) return { requesterId: single, requesterUserId: single };
  const batch = Array.isArray(info.batch_applyer) ? (info.batch_applyer as unknown[]) : [];
  const ids = [
    ...new Set(batch.map((b) => asRecord(b)?.userid).filter((u): u is string => typeof u === 'string' && u !== '')),
  ];
  if (ids.length === 0) return undefined;
  return { requesterId: ids.join('|'), requesterUserId: ids[0]! };
}
