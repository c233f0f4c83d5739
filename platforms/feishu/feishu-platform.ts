import { createHash } from 'node:crypto';
import * as lark from '@larksuiteoapi/node-sdk';
import type { FeishuConfig } from '../../config/config';
import { IntegrationError, classifyHttpStatus, type IntegrationErrorKind } from '../../domain/errors';
import { definitionHasField, describeDefinition, fillCellNames, hasNamelessCells } from '../../domain/mac';
import type { ApprovalInstance, ApprovalStatus, FormWidget, RequesterMessage } from '../../domain/types';
import { LIST_ITEM, moreItemsLine } from '../../workflows/messages';
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

/** A routed approval's configured form fields, as the start-up check needs them. */
export interface RoutedForm {
  approvalCode: string;
  macFields: string[];
  durationField?: string;
}

export type FeishuPlatform = ApprovalPlatform & {
  /** Subscribe each approval definition so Feishu sends its events (1390007 "already subscribed" is success). */
  subscribeApprovals(codes: string[]): Promise<void>;
  /**
   * Read each routed approval's definition once and name every configured field (widget or detail-table column) it
   * lacks, or the definition that could not be read: one line each, for the start-up log. Never throws.
   */
  checkRoutedForms(routes: RoutedForm[]): Promise<string[]>;
};

// ---- error classification -------------------------------------------------------------------------------------

/** "The length of the message content reaches its limit" (doc: im-v1/message/create). */
const MESSAGE_TOO_LONG = 230025;
// Codes per doc: 通用错误码 (server-docs/api-call-guide/generic-error-code) unless another page is named.
const RATE_LIMIT_CODES = new Set([99991400, 230020, 1000004, 1000005]);
/**
 * The tenant_access_token was refused: 99991661 "Need a token", 99991663 invalid or expired, 99991665 "invalid tenant
 * code" (tenant_access_token 非法). The cached token is dropped and the call made once more with a fresh one.
 */
const TOKEN_INVALID_CODES = new Set([99991661, 99991663, 99991665]);
/**
 * Configuration or permission, not fixed by retrying: 10014 app unauthorized, 10015 wrong app secret, 99991401 IP
 * denied, 99991662 app not in use, 99991672 scope missing, 99991673 app not installed, 99991676 token lacks the
 * permission, 1390009 no operation permission (doc: instance/get). 99991677 is a *user* token's expiry: this app uses
 * only tenant tokens, so it means a misconfigured call.
 */
const AUTH_CODES = new Set([10014, 10015, 99991401, 99991662, 99991672, 99991673, 99991676, 99991677, 1390009]);
/** The request is wrong: 10003 invalid parameter, 1390001 param is invalid (doc: instance/get), 230001, 230025. */
const INVALID_CODES = new Set([10003, 1390001, 230001, MESSAGE_TOO_LONG]);
/** 1390003 instance code not found, 1390002 approval code not found (doc: instance/get, approval/get). */
const NOT_FOUND_CODES = new Set([1390002, 1390003]);
/**
 * The requester cannot be messaged (doc: im-v1/message/create): 230013 outside the bot's availability ("如果目标用户
 * 已离职，也会报错 230013"), 230029 user has resigned. Not retried; the run records why.
 */
const UNREACHABLE_RECIPIENT_CODES = new Set([230013, 230029]);
/** "There have been some errors. Please try again later" (HTTP 400, doc: instance/get). */
const TRANSIENT_CODES = new Set([1395001]);
const ALREADY_SUBSCRIBED = 1390007;
/** "user_id or open_id not found" (doc: instance/get); what a comment authored by a leaver gets is (I). */
const USER_NOT_FOUND = 1390004;

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
    if (NOT_FOUND_CODES.has(code) || UNREACHABLE_RECIPIENT_CODES.has(code)) return 'not-found';
    if (AUTH_CODES.has(code)) return 'auth';
    if (INVALID_CODES.has(code)) return 'invalid';
  }
  if (f.status !== undefined && f.status !== 200) return classifyHttpStatus(f.status);
  return 'invalid';
}

/** What the operator reads first for codes whose msg alone does not say what to do. */
function hintFor(code: number | undefined): string | undefined {
  if (code !== undefined && UNREACHABLE_RECIPIENT_CODES.has(code)) {
    return "the requester cannot be reached on Feishu (resigned, or outside the app's availability range)";
  }
  if (code === MESSAGE_TOO_LONG) return "the card is larger than Feishu's 30 KB limit";
  return undefined;
}

function describeFailure(op: string, f: FeishuFailure): string {
  if (f.network !== undefined) return `feishu ${op} failed: ${f.network}`;
  const hint = hintFor(f.code);
  const parts = [f.status !== undefined ? `HTTP ${f.status}` : undefined, `code ${f.code ?? '?'}`, f.msg];
  return `feishu ${op} failed: ${hint ? `${hint}: ` : ''}${parts.filter(Boolean).join(' ')}`;
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
  changed: 'blue',
  failed: 'red',
  revoked: 'red',
  'rejected-input': 'red',
};

/**
 * "卡片消息、富文本消息请求体最大不能超过 30 KB", else 230025 (doc: im-v1/message/create). The limit is on the request
 * body in bytes: UTF-8 (a CJK character is 3 bytes) with the card as a JSON string inside the JSON body.
 */
export const CARD_REQUEST_LIMIT_BYTES = 30 * 1024;
/** Our budget leaves room because "消息中包含样式标签，会使实际消息体长度大于您输入的请求体长度" (same doc). */
export const CARD_REQUEST_BUDGET_BYTES = CARD_REQUEST_LIMIT_BYTES - 2 * 1024;
const MAX_TITLE_CHARS = 100;

/**
 * Characters lark_md would read as markup, written as HTML entities ("需要对特殊字符进行 HTML 转义 … 转义后的格式为
 * `&#实体编号;`", doc: 消息卡片 Markdown, using-markdown-tags, whose text-lark_md section this is; the same table in
 * feishu-cards rich-text). `<` and `>` stop `<at id=all>`, `<font>`, `<a href>` and `<text_tag>`; `[`, `]`, `(`, `)`
 * links; `*`, `_`, `~` emphasis; `:` emoji codes such as `:OK:`; `&` an entity typed into the form (I: that `&#38;` is
 * decoded like the listed ones). Everything else of the documented table is escaped too.
 */
const LARK_MD_SPECIAL = /[&<>*~\-!/\\[\]()#:+"'`$_]/g;

/** `text` shown literally in a lark_md element: no markup, no mention, no link. */
export function escapeLarkMd(text: string): string {
  return text.replace(LARK_MD_SPECIAL, (c) => `&#${c.codePointAt(0)};`);
}

/** Cut to `max` characters (code points, so no surrogate pair is split) with an ellipsis. */
function cut(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max).join('')}…`;
}

/**
 * The lines with each run of list items (LIST_ITEM) cut to `maxItems`, the rest summed up as "and N more", and every
 * line cut to `maxChars`. Nothing else is dropped: the message keeps its reason, expiry and advice.
 */
function shortenLines(lines: readonly string[], maxItems: number, maxChars: number): string[] {
  const out: string[] = [];
  let run = 0;
  let dropped = 0;
  const closeRun = () => {
    if (dropped > 0) out.push(moreItemsLine(dropped));
    run = 0;
    dropped = 0;
  };
  for (const line of lines) {
    if (!line.startsWith(LIST_ITEM)) {
      closeRun();
      out.push(cut(line, maxChars));
    } else if (run < maxItems) {
      run += 1;
      out.push(cut(line, maxChars));
    } else dropped += 1;
  }
  closeRun();
  return out;
}

function cardOf(message: RequesterMessage, lines: readonly string[]): Record<string, unknown> {
  const elements: Record<string, unknown>[] = [
    { tag: 'div', text: { tag: 'lark_md', content: lines.map(escapeLarkMd).join('\n') } },
  ];
  if (message.instanceId) {
    elements.push({
      tag: 'note',
      elements: [{ tag: 'plain_text', content: `Approval ${message.instanceId}` }],
    });
  }
  // No `wide_screen_mode`: deprecated, cards are wide by default.
  return {
    config: { enable_forward: false },
    header: {
      template: CARD_COLOURS[message.kind],
      title: { tag: 'plain_text', content: cut(message.title, MAX_TITLE_CHARS) },
    },
    elements,
  };
}

/** The message-create request body exactly as the SDK sends it (JSON), so its size is the size Feishu checks. */
export function cardRequestBody(
  receiveId: string,
  card: Record<string, unknown>,
  uuid: string
): { receive_id: string; msg_type: 'interactive'; content: string; uuid: string } {
  return { receive_id: receiveId, msg_type: 'interactive', content: JSON.stringify(card), uuid };
}

function requestBytes(body: unknown): number {
  return Buffer.byteLength(JSON.stringify(body), 'utf8');
}

/** The largest n in [0, max] with ok(n), given ok is monotonic and ok(0) is not known to hold (then 0). */
function largest(max: number, ok: (n: number) => boolean): number {
  let [lo, hi] = [0, max];
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ok(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The interactive card (message-card JSON 1.0) sent to the requester; header colour follows the message kind. Lines
 * are plain text, escaped for lark_md. The card is fitted to the request budget by bytes: first the fewest list
 * items are left out ("and N more"), then, only if the other lines alone are too long, each line is cut.
 */
export function renderRequesterCard(
  message: RequesterMessage,
  opts: { receiveId?: string; uuid?: string; budgetBytes?: number } = {}
): Record<string, unknown> {
  const budget = opts.budgetBytes ?? CARD_REQUEST_BUDGET_BYTES;
  const sized = (lines: readonly string[]) => {
    const card = cardOf(message, lines);
    return { card, bytes: requestBytes(cardRequestBody(opts.receiveId ?? '', card, opts.uuid ?? '')) };
  };
  const full = sized(message.lines);
  if (full.bytes <= budget) return full.card;
  const longestLine = Math.max(0, ...message.lines.map((l) => Array.from(l).length));
  const fits = (maxItems: number, maxChars: number) =>
    sized(shortenLines(message.lines, maxItems, maxChars)).bytes <= budget;
  const maxItems = largest(message.lines.length, (n) => fits(n, longestLine));
  const maxChars = fits(maxItems, longestLine) ? longestLine : largest(longestLine, (n) => fits(0, n));
  return sized(shortenLines(message.lines, maxItems, maxChars)).card;
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
  reverted_instance_code?: string;
  modified_instance_code?: string;
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
    // A 撤销 / 修改 instance names the instance it changes ("仅在查询撤销/修改实例时显示该字段", doc: instance/get).
    ...(data.reverted_instance_code
      ? { amends: { kind: 'revoke' as const, instanceId: data.reverted_instance_code } }
      : data.modified_instance_code
        ? { amends: { kind: 'modify' as const, instanceId: data.modified_instance_code } }
        : {}),
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

/** What the instance read-back says about who acted (doc: instance/get, task_list and timeline). */
interface InstanceTasks {
  task_list?: { status?: string; open_id?: string; end_time?: string }[];
  timeline?: { type?: string; open_id?: string }[];
}

/** An approval definition's name and form widgets (doc: approval/get; `form` is a JSON string like an instance's). */
interface ApprovalDefinition {
  name?: string;
  widgets: FormWidget[];
}

/** The documented maximum page size of the comment list (doc: instance-comment/list). */
const COMMENT_PAGE_SIZE = 1000;

/** "单次查询时间范围不要超过10小时" (doc: instance/list, start_time / end_time): the span of one list call. */
export const LIST_SPAN_MS = 10 * 3_600_000;

/**
 * [fromMs, toMs) as list calls of at most LIST_SPAN_MS each, by creation time. Consecutive spans share their boundary
 * millisecond, so an instance created exactly on it is listed whichever bounds Feishu includes (duplicates are
 * merged by the caller).
 */
export function listSpans(fromMs: number, toMs: number): [number, number][] {
  const spans: [number, number][] = [];
  const end = Math.ceil(toMs);
  for (let start = Math.floor(fromMs); start < end;) {
    const stop = Math.min(start + LIST_SPAN_MS, end);
    spans.push([start, stop]);
    if (stop >= end) break;
    start = stop - 1;
  }
  return spans;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
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

  /**
   * Run one SDK call; `acceptCodes` are Feishu codes that mean success for this operation. A refused tenant token is
   * dropped and the call made once more with a fresh one (a refused call was not carried out, so repeating is safe).
   */
  async function call<T extends FeishuBody>(op: string, fn: () => Promise<T>, acceptCodes: number[] = []): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let failure: FeishuFailure;
      try {
        const res = await fn();
        const code = res?.code ?? 0;
        if (code === 0 || acceptCodes.includes(code)) return res;
        failure = { status: 200, code, msg: res.msg };
      } catch (err) {
        failure = failureFromThrown(err);
        if (failure.code !== undefined && acceptCodes.includes(failure.code)) {
          return { code: failure.code, msg: failure.msg } as T;
        }
      }
      if (failure.code !== undefined && TOKEN_INVALID_CODES.has(failure.code)) {
        cache.values.clear();
        opts.logger?.warn(
          { system: SYSTEM, op, code: failure.code, attempt },
          'feishu tenant token rejected; cached token dropped'
        );
        if (attempt === 1) continue;
      }
      throw toIntegrationError(op, failure);
    }
  }

  async function instanceData(instanceId: string): Promise<InstanceData & InstanceTasks> {
    if (!instanceId) throw invalid('feishu getInstance: empty instance id');
    const res = await call('getInstance', () =>
      client.approval.v4.instance.get({
        path: { instance_id: encodeURIComponent(instanceId) },
        params: { user_id_type: 'open_id' },
      })
    );
    if (!res.data) throw invalid(`feishu getInstance ${instanceId}: response has no data`);
    return res.data as InstanceData & InstanceTasks;
  }

  /** Definitions change rarely and their API allows 100 calls a minute (doc: approval/get): kept a few minutes. */
  const definitions = new Map<string, { at: number; definition: Promise<ApprovalDefinition> }>();
  const DEFINITION_TTL_MS = 5 * 60_000;

  async function fetchDefinition(approvalCode: string): Promise<ApprovalDefinition> {
    const res = await call('getApprovalDefinition', () =>
      client.approval.v4.approval.get({ path: { approval_code: encodeURIComponent(approvalCode) } })
    );
    const data = res.data as { approval_name?: string; form?: string } | undefined;
    return { name: data?.approval_name || undefined, widgets: parseForm(data?.form, `definition ${approvalCode}`) };
  }

  function definitionOf(approvalCode: string, opts: { fresh?: boolean } = {}): Promise<ApprovalDefinition> {
    const cached = definitions.get(approvalCode);
    if (cached && !opts.fresh && Date.now() - cached.at < DEFINITION_TTL_MS) return cached.definition;
    const definition = fetchDefinition(approvalCode);
    definitions.set(approvalCode, { at: Date.now(), definition });
    // A failed read is not kept: the next caller asks again.
    definition.catch(() => {
      if (definitions.get(approvalCode)?.definition === definition) definitions.delete(approvalCode);
    });
    return definition;
  }

  async function getInstance(instanceId: string): Promise<ApprovalInstance> {
    const instance = mapInstance(instanceId, await instanceData(instanceId));
    // Detail-table cells may come without `name` (doc: instance/get): their column names are in the definition.
    if (!instance.approvalCode || !hasNamelessCells(instance.form)) return instance;
    let form = fillCellNames(instance.form, (await definitionOf(instance.approvalCode)).widgets);
    // A column the cached definition does not know was added since: read the definition again, once.
    if (hasNamelessCells(form)) {
      form = fillCellNames(instance.form, (await definitionOf(instance.approvalCode, { fresh: true })).widgets);
    }
    return { ...instance, form };
  }

  async function checkRoutedForms(routes: RoutedForm[]): Promise<string[]> {
    const problems: string[] = [];
    for (const route of routes) {
      let definition: ApprovalDefinition;
      try {
        definition = await fetchDefinition(route.approvalCode);
      } catch (err) {
        problems.push(`feishu approval ${route.approvalCode}: its form definition could not be read (${errText(err)})`);
        continue;
      }
      const configured = [
        ...route.macFields.map((field) => ({ field, as: 'fields.macs' })),
        ...(route.durationField ? [{ field: route.durationField, as: 'fields.duration' }] : []),
      ];
      for (const { field, as } of configured) {
        if (definitionHasField(definition.widgets, field)) continue;
        problems.push(
          `feishu approval ${route.approvalCode}${definition.name ? ` (${definition.name})` : ''}: ${as} "${field}" ` +
            `is not a widget or detail-table column of its form (name, id or custom id); the form has: ` +
            `${describeDefinition(definition.widgets) || 'no widgets'}`
        );
      }
    }
    return problems;
  }

  async function notifyRequester(requesterId: string, message: RequesterMessage): Promise<{ messageId: string }> {
    const uuid = messageUuid(message.idempotencyKey);
    const card = renderRequesterCard(message, { receiveId: requesterId, uuid });
    const res = await call('notifyRequester', () =>
      client.im.v1.message.create({
        params: { receive_id_type: 'open_id' },
        data: cardRequestBody(requesterId, card, uuid),
      })
    );
    const messageId = res.data?.message_id;
    if (!messageId) throw invalid('feishu notifyRequester: response has no message_id');
    return { messageId };
  }

  /**
   * The instance's comments that still stand. The documented response has only `comments` (no paging fields) and
   * page_size goes up to 1000 (doc: instance-comment/list); deleted ones (`is_delete` 1) no longer count.
   */
  async function commentTexts(instanceId: string, userId: string): Promise<string[]> {
    const res = await call('listComments', () =>
      client.approval.v4.instanceComment.list({
        path: { instance_id: encodeURIComponent(instanceId) },
        params: { user_id_type: 'open_id', user_id: userId, page_size: COMMENT_PAGE_SIZE },
      })
    );
    const data = res.data as { comments?: { content?: string; is_delete?: number }[] } | undefined;
    return (data?.comments ?? []).filter((c) => c.is_delete !== 1).map((c) => commentText(c.content));
  }

  async function commentAs(instanceId: string, userId: string, text: string, marker: string): Promise<void> {
    // Comments have no dedupe key: look for our marker first so a retried activity does not comment twice.
    const existing = await commentTexts(instanceId, userId);
    if (existing.some((t) => t.includes(marker))) return;
    await call('commentOnInstance', () =>
      client.approval.v4.instanceComment.create({
        path: { instance_id: encodeURIComponent(instanceId) },
        // `user_id` is the comment's author (doc: instance-comment/create).
        params: { user_id_type: 'open_id', user_id: userId },
        // "飞书审批中自定义审批填写 false，其他情况填写 true" (doc: instance-comment/create): routed approvals are
        // custom approvals (审批管理后台 → 创建自定义审批, doc: 原生审批接入指南), so the approval bot is not disabled.
        data: { content: JSON.stringify({ text: `${text} ${marker}` }), disable_bot: false },
      })
    );
  }

  /** Who approved the instance (the last approved task's user), to author a comment the requester cannot. */
  async function approverOf(instanceId: string): Promise<string | undefined> {
    const data = await instanceData(instanceId);
    const approved = (data.task_list ?? []).filter((t) => t.status === 'APPROVED' && t.open_id);
    approved.sort((a, b) => (epochMs(a.end_time) ?? 0) - (epochMs(b.end_time) ?? 0));
    const passed = (data.timeline ?? []).filter((t) => t.type === 'PASS' && t.open_id);
    return approved.at(-1)?.open_id ?? passed.at(-1)?.open_id;
  }

  async function commentOnInstance(
    instance: Pick<ApprovalInstance, 'instanceId' | 'requesterId'>,
    text: string,
    idempotencyKey: string
  ): Promise<void> {
    const marker = commentMarker(idempotencyKey);
    // FEISHU_COMMENT_USER_ID (a service account) is the recommended author; without it, the requester.
    const author = config.commentUserId ?? instance.requesterId;
    try {
      await commentAs(instance.instanceId, author, text, marker);
    } catch (err) {
      // A requester who has left is no longer a user Feishu accepts: the approver authors the audit comment instead.
      const userGone = err instanceof IntegrationError && err.details.code === USER_NOT_FOUND;
      if (!userGone || config.commentUserId) throw err;
      const approver = await approverOf(instance.instanceId);
      if (!approver || approver === author) throw err;
      opts.logger?.warn(
        { system: SYSTEM, instanceId: instance.instanceId },
        'feishu audit comment: the requester is not a user any more; the approver authors it'
      );
      await commentAs(instance.instanceId, approver, text, marker);
    }
  }

  async function listInstances(approvalCode: string, window: ReconcileWindow): Promise<string[]> {
    const codes = new Set<string>();
    for (const [fromMs, toMs] of listSpans(window.submittedSinceMs, window.toMs)) {
      let pageToken: string | undefined;
      do {
        const res = await call('listInstances', () =>
          client.approval.v4.instance.list({
            params: {
              approval_code: approvalCode,
              start_time: String(fromMs),
              end_time: String(toMs),
              page_size: 100,
              page_token: pageToken,
            },
          })
        );
        for (const code of res.data?.instance_code_list ?? []) codes.add(code);
        pageToken = res.data?.has_more && res.data.page_token ? res.data.page_token : undefined;
      } while (pageToken);
    }
    return [...codes];
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
    checkRoutedForms,
  };
}
