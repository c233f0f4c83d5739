import { createHash } from 'node:crypto';
import * as lark from '@larksuiteoapi/node-sdk';
import type { FeishuConfig } from '../../config/config';
import { IntegrationError, classifyHttpStatus, type IntegrationErrorKind } from '../../domain/errors';
import type { ApprovalInstance, ApprovalStatus, FormWidget, RequesterMessage } from '../../domain/types';
import type { ApprovalPlatform, ReconcileWindow } from '../platform';

/**
 * Feishu implementation of ApprovalPlatform on @larksuiteoapi/node-sdk. Every failure leaves here as an
 * IntegrationError classified per reference §5: the SDK throws AxiosError for non-2xx answers and resolves with
 * `code != 0` for HTTP 200 ones, so both paths funnel into one classifier.
 */

const SYSTEM = 'feishu';

/** pino-compatible subset; the platform logs only summaries (never tokens, secrets or bodies). */
export interface FeishuPlatformLogger {
  debug(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
}

export interface FeishuPlatformOptions {
  logger?: FeishuPlatformLogger;
  /** Per-request timeout; the SDK has none by default. */
  timeoutMs?: number;
}

export type FeishuPlatform = ApprovalPlatform & {
  /** Subscribe each approval definition so Feishu sends its events (1390007 "already subscribed" is success). */
  subscribeApprovals(codes: string[]): Promise<void>;
};

// ---- error classification -------------------------------------------------------------------------------------

const RATE_LIMIT_CODES = new Set([99991400, 230020, 1000004, 1000005]);
/** Tenant token missing/invalid/expired: the cached token must go, a retry fetches a fresh one. */
const TOKEN_INVALID_CODES = new Set([99991661, 99991663, 99991677]);
const AUTH_CODES = new Set([10003, 10014, 10015, 99991401, 99991662, 99991672, 99991673, 99991676, 1390009]);
const NOT_FOUND_CODES = new Set([1390003]);
/** "There have been some errors. Please try again later." */
const TRANSIENT_CODES = new Set([1395001]);
const ALREADY_SUBSCRIBED = 1390007;

/** What Feishu told us about a failed call, stripped of everything sensitive. */
interface FeishuFailure {
  status?: number;
  code?: number;
  msg?: string;
  retryAfterMs?: number;
  /** Network-level failure (no HTTP answer): ECONNREFUSED, ECONNABORTED, … */
  network?: string;
}

interface AxiosLikeError {
  isAxiosError: true;
  code?: string;
  message: string;
  response?: { status: number; data?: unknown; headers?: Record<string, unknown> };
}

function isAxiosLike(err: unknown): err is AxiosLikeError {
  return typeof err === 'object' && err !== null && (err as { isAxiosError?: unknown }).isAxiosError === true;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function numberOrUndefined(v: unknown): number | undefined {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

/** `x-ogw-ratelimit-reset` is seconds until the window resets (reference §5.2). */
function retryAfterFromHeaders(headers: Record<string, unknown> | undefined): number | undefined {
  const raw = headers?.['x-ogw-ratelimit-reset'];
  const secs = numberOrUndefined(Array.isArray(raw) ? raw[0] : raw);
  return secs === undefined ? undefined : Math.max(0, secs * 1000);
}

function failureFromThrown(err: unknown): FeishuFailure {
  if (isAxiosLike(err)) {
    if (!err.response) return { network: err.code ?? 'network error' };
    const body = asRecord(err.response.data);
    return {
      status: err.response.status,
      code: numberOrUndefined(body?.code),
      msg: typeof body?.msg === 'string' ? body.msg : undefined,
      retryAfterMs: retryAfterFromHeaders(err.response.headers),
    };
  }
  // The SDK's token manager turns an HTTP-200 token failure into a plain Error with this wording.
  const message = err instanceof Error ? err.message : String(err);
  const token = /failed to get tenant_access_token, code: (\d+), msg: (.*)$/.exec(message);
  if (token) return { code: Number(token[1]), msg: token[2] };
  return { network: message };
}

function classifyFailure(f: FeishuFailure): IntegrationErrorKind {
  if (f.network !== undefined) return 'transient';
  const code = f.code;
  if (f.status === 429 || (code !== undefined && RATE_LIMIT_CODES.has(code))) return 'rate-limited';
  if (code !== undefined) {
    if (TOKEN_INVALID_CODES.has(code) || TRANSIENT_CODES.has(code)) return 'transient';
    if (NOT_FOUND_CODES.has(code)) return 'not-found';
    if (AUTH_CODES.has(code)) return 'auth';
  }
  if (f.status !== undefined && f.status !== 200) return classifyHttpStatus(f.status);
  return 'invalid';
}

function describeFailure(op: string, f: FeishuFailure): string {
  if (f.network !== undefined) return `feishu ${op} failed: ${f.network}`;
  const parts = [f.status !== undefined ? `HTTP ${f.status}` : undefined, `code ${f.code ?? '?'}`, f.msg];
  return `feishu ${op} failed: ${parts.filter(Boolean).join(' ')}`;
}

function toIntegrationError(op: string, f: FeishuFailure): IntegrationError {
  return new IntegrationError(describeFailure(op, f), classifyFailure(f), {
    system: SYSTEM,
    status: f.status,
    code: f.code ?? f.network,
    retryAfterMs: f.retryAfterMs,
  });
}

// ---- SDK plumbing ---------------------------------------------------------------------------------------------

/**
 * A private axios instance: a timeout (the SDK sets none), no env proxy (localhost simulators), and the same
 * body-unwrapping interceptor as the SDK's default instance, which generated methods depend on.
 */
function createHttpInstance(timeoutMs: number): lark.HttpInstance {
  const http = lark.defaultHttpInstance.create({ timeout: timeoutMs, proxy: false });
  http.interceptors.response.use((resp) => {
    const wantHeaders = (resp.config as { $return_headers?: boolean }).$return_headers;
    const unwrapped: unknown = wantHeaders ? { data: resp.data, headers: resp.headers } : resp.data;
    return unwrapped as typeof resp;
  });
  // With the unwrapping interceptor it resolves to bodies, which is what HttpInstance describes.
  return http as unknown as lark.HttpInstance;
}

/** Only status, Feishu code/msg and the error message survive; config, headers and bodies are dropped. */
function summarizeSdkLogArg(arg: unknown): string {
  if (typeof arg === 'string') return arg.slice(0, 200);
  const obj = asRecord(arg);
  if (!obj) return String(arg);
  const response = asRecord(obj.response);
  const data = asRecord(response?.data) ?? obj;
  const parts = [
    typeof obj.message === 'string' ? obj.message.slice(0, 200) : undefined,
    response?.status !== undefined ? `HTTP ${String(response.status)}` : undefined,
    data.code !== undefined ? `code ${String(data.code)}` : undefined,
    typeof data.msg === 'string' ? data.msg.slice(0, 200) : undefined,
  ];
  return parts.filter(Boolean).join(' ') || 'sdk error';
}

/** The SDK logs raw AxiosErrors (request config incl. app_secret); pass on only status/code summaries. */
function sdkLogger(logger: FeishuPlatformLogger | undefined): lark.Logger {
  const forward = (...args: unknown[]): void => {
    if (!logger) return;
    const summary = args.flat(3).map(summarizeSdkLogArg);
    logger.debug({ system: SYSTEM, sdk: summary }, 'feishu sdk log');
  };
  return { error: forward, warn: forward, info: forward, debug: forward, trace: forward };
}

interface FeishuBody {
  code?: number;
  msg?: string;
}

// ---- rendering ------------------------------------------------------------------------------------------------

const CARD_COLOURS: Record<RequesterMessage['kind'], string> = {
  granted: 'green',
  'partially-granted': 'orange',
  'expiry-reminder': 'orange',
  extended: 'green',
  failed: 'red',
  revoked: 'red',
  'rejected-input': 'red',
};

/** Card JSON is limited to 30 KB (reference §3.4); keep a margin for the header and note. */
const MAX_CARD_BODY_CHARS = 20_000;

/** The interactive card (message-card JSON) sent to the requester; header colour follows the message kind. */
export function renderRequesterCard(message: RequesterMessage): Record<string, unknown> {
  let body = message.lines.join('\n');
  if (body.length > MAX_CARD_BODY_CHARS) body = `${body.slice(0, MAX_CARD_BODY_CHARS)}\n…`;
  const elements: Record<string, unknown>[] = [{ tag: 'div', text: { tag: 'lark_md', content: body } }];
  if (message.instanceId) {
    elements.push({
      tag: 'note',
      elements: [{ tag: 'plain_text', content: `Approval ${message.instanceId}` }],
    });
  }
  return {
    config: { wide_screen_mode: true, enable_forward: false },
    header: { template: CARD_COLOURS[message.kind], title: { tag: 'plain_text', content: message.title } },
    elements,
  };
}

/** Feishu's message `uuid` is at most 50 characters; longer keys are hashed (deterministically). */
export function messageUuid(idempotencyKey: string): string {
  if (idempotencyKey.length <= 50) return idempotencyKey;
  return `h-${createHash('sha256').update(idempotencyKey, 'utf8').digest('hex').slice(0, 40)}`;
}

/** Short marker appended to audit comments so a retry can see the comment already exists. */
export function commentMarker(idempotencyKey: string): string {
  const key = /^[\w.:-]{1,40}$/.test(idempotencyKey)
    ? idempotencyKey
    : createHash('sha256').update(idempotencyKey, 'utf8').digest('hex').slice(0, 16);
  return `[ap:${key}]`;
}

// ---- instance mapping -----------------------------------------------------------------------------------------

const STATUSES: readonly ApprovalStatus[] = [
  'PENDING',
  'APPROVED',
  'REJECTED',
  'CANCELED',
  'DELETED',
  'REVERTED',
  'OVERTIME_CLOSE',
  'OVERTIME_RECOVER',
];

function invalid(message: string): IntegrationError {
  return new IntegrationError(message, 'invalid', { system: SYSTEM });
}

/** `form` is a JSON string of widgets; detail tables (`fieldList`) carry rows of widgets in `value`. */
export function parseForm(form: unknown, instanceId: string): FormWidget[] {
  if (form === undefined || form === '') return [];
  let parsed: unknown;
  try {
    parsed = typeof form === 'string' ? JSON.parse(form) : form;
  } catch {
    throw invalid(`feishu instance ${instanceId}: form is not valid JSON`);
  }
  if (!Array.isArray(parsed)) throw invalid(`feishu instance ${instanceId}: form is not an array`);
  return parsed.map((w, i) => {
    const widget = asRecord(w);
    if (!widget || typeof widget.type !== 'string') {
      throw invalid(`feishu instance ${instanceId}: form widget ${i} has no type`);
    }
    return {
      ...widget,
      id: String(widget.id ?? ''),
      name: String(widget.name ?? ''),
      type: widget.type,
      value: widget.value,
    };
  });
}

/** Feishu times are epoch-ms strings; "0" means "not yet" (e.g. end_time of a pending instance). */
function epochMs(v: unknown): number | undefined {
  const n = numberOrUndefined(v);
  return n === undefined || n <= 0 ? undefined : n;
}

interface InstanceData {
  approval_code?: string;
  approval_name?: string;
  instance_code?: string;
  status?: string;
  reverted?: boolean;
  open_id?: string;
  user_id?: string;
  form?: string;
  start_time?: string;
  end_time?: string;
}

export function mapInstance(instanceId: string, data: InstanceData): ApprovalInstance {
  // The instance API reports a revoked approval as reverted=true next to its original status.
  const status = data.reverted ? 'REVERTED' : data.status;
  if (!STATUSES.includes(status as ApprovalStatus)) {
    throw invalid(`feishu instance ${instanceId}: unknown status ${JSON.stringify(status)}`);
  }
  if (!data.open_id) throw invalid(`feishu instance ${instanceId}: no requester open_id`);
  return {
    platform: 'feishu',
    instanceId: data.instance_code || instanceId,
    approvalCode: data.approval_code ?? '',
    approvalName: data.approval_name || undefined,
    status: status as ApprovalStatus,
    requesterId: data.open_id,
    requesterUserId: data.user_id || undefined,
    form: parseForm(data.form, instanceId),
    startTime: epochMs(data.start_time),
    endTime: epochMs(data.end_time),
  };
}

function commentText(content: unknown): string {
  if (typeof content !== 'string') return '';
  try {
    const parsed = asRecord(JSON.parse(content));
    return typeof parsed?.text === 'string' ? parsed.text : content;
  } catch {
    return content;
  }
}

// ---- the platform ---------------------------------------------------------------------------------------------

export function createFeishuPlatform(config: FeishuConfig, opts: FeishuPlatformOptions = {}): FeishuPlatform {
  // Our own cache: the SDK's global one is shared per appId and never invalidated on 99991663.
  const cache = new lark.DefaultCache();
  const client = new lark.Client({
    appId: config.appId,
    appSecret: config.appSecret,
    domain: config.baseUrl.replace(/\/+$/, ''),
    cache,
    httpInstance: createHttpInstance(opts.timeoutMs ?? 10_000),
    loggerLevel: lark.LoggerLevel.error,
    logger: sdkLogger(opts.logger),
  });

  function onFailure(op: string, f: FeishuFailure): IntegrationError {
    if (f.code !== undefined && TOKEN_INVALID_CODES.has(f.code)) {
      cache.values.clear();
      opts.logger?.warn({ system: SYSTEM, op, code: f.code }, 'feishu tenant token rejected; cached token dropped');
    }
    return toIntegrationError(op, f);
  }

  /** Run one SDK call; `acceptCodes` are Feishu codes that mean success for this operation. */
  async function call<T extends FeishuBody>(op: string, fn: () => Promise<T>, acceptCodes: number[] = []): Promise<T> {
    let res: T;
    try {
      res = await fn();
    } catch (err) {
      const f = failureFromThrown(err);
      if (f.code !== undefined && acceptCodes.includes(f.code)) return { code: f.code, msg: f.msg } as T;
      throw onFailure(op, f);
    }
    const code = res?.code ?? 0;
    if (code !== 0 && !acceptCodes.includes(code)) throw onFailure(op, { status: 200, code, msg: res.msg });
    return res;
  }

  async function getInstance(instanceId: string): Promise<ApprovalInstance> {
    if (!instanceId) throw invalid('feishu getInstance: empty instance id');
    const res = await call('getInstance', () =>
      client.approval.v4.instance.get({
        path: { instance_id: encodeURIComponent(instanceId) },
        params: { user_id_type: 'open_id' },
      })
    );
    if (!res.data) throw invalid(`feishu getInstance ${instanceId}: response has no data`);
    return mapInstance(instanceId, res.data as InstanceData);
  }

  async function notifyRequester(requesterId: string, message: RequesterMessage): Promise<{ messageId: string }> {
    const res = await call('notifyRequester', () =>
      client.im.v1.message.create({
        params: { receive_id_type: 'open_id' },
        data: {
          receive_id: requesterId,
          msg_type: 'interactive',
          content: JSON.stringify(renderRequesterCard(message)),
          uuid: messageUuid(message.idempotencyKey),
        },
      })
    );
    const messageId = res.data?.message_id;
    if (!messageId) throw invalid('feishu notifyRequester: response has no message_id');
    return { messageId };
  }

  async function listCommentTexts(instanceId: string, userId: string): Promise<string[]> {
    const texts: string[] = [];
    let pageToken: string | undefined;
    do {
      const res = await call('listComments', () =>
        client.approval.v4.instanceComment.list({
          path: { instance_id: encodeURIComponent(instanceId) },
          params: { user_id_type: 'open_id', user_id: userId, page_size: 100, page_token: pageToken },
        })
      );
      const data = res.data as { comments?: { content?: string }[]; has_more?: boolean; page_token?: string };
      for (const c of data?.comments ?? []) texts.push(commentText(c.content));
      pageToken = data?.has_more && data.page_token ? data.page_token : undefined;
    } while (pageToken);
    return texts;
  }

  async function commentOnInstance(
    instance: Pick<ApprovalInstance, 'instanceId' | 'requesterId'>,
    text: string,
    idempotencyKey: string
  ): Promise<void> {
    const userId = config.commentUserId ?? instance.requesterId;
    const marker = commentMarker(idempotencyKey);
    // Comments have no dedupe key: look for our marker first so a retried activity does not comment twice.
    const existing = await listCommentTexts(instance.instanceId, userId);
    if (existing.some((t) => t.includes(marker))) return;
    await call('commentOnInstance', () =>
      client.approval.v4.instanceComment.create({
        path: { instance_id: encodeURIComponent(instance.instanceId) },
        params: { user_id_type: 'open_id', user_id: userId },
        data: { content: JSON.stringify({ text: `${text} ${marker}` }) },
      })
    );
  }

  async function listInstances(approvalCode: string, window: ReconcileWindow): Promise<string[]> {
    const [fromMs, toMs] = [window.submittedSinceMs, window.toMs];
    const codes: string[] = [];
    let pageToken: string | undefined;
    do {
      const res = await call('listInstances', () =>
        client.approval.v4.instance.list({
          params: {
            approval_code: approvalCode,
            start_time: String(Math.floor(fromMs)),
            end_time: String(Math.floor(toMs)),
            page_size: 100,
            page_token: pageToken,
          },
        })
      );
      codes.push(...(res.data?.instance_code_list ?? []));
      pageToken = res.data?.has_more && res.data.page_token ? res.data.page_token : undefined;
    } while (pageToken);
    return codes;
  }

  async function subscribeApprovals(codes: string[]): Promise<void> {
    for (const code of codes) {
      await call(
        'subscribeApproval',
        () => client.approval.v4.approval.subscribe({ path: { approval_code: encodeURIComponent(code) } }),
        [ALREADY_SUBSCRIBED]
      );
    }
  }

  return {
    name: 'feishu',
    getInstance,
    notifyRequester,
    commentOnInstance,
    listInstances,
    subscribeApprovals,
  };
}
