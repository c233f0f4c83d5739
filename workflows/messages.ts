/**
 * The texts the requester and the approval's audit trail receive. Pure functions of the workflow's state, so they are
 * safe in workflow code. Bilingual (zh / en) like the rest of the requester-facing text.
 *
 * Platform-neutral: lines are plain text, never markup (each platform escapes them for its own format: Feishu lark_md,
 * DingTalk markdown, WeCom text), so form text quoted here cannot turn into markup. Lines starting with LIST_ITEM are
 * list items a platform may shorten ("and N more") to fit its size limit. Times are ISO-8601 UTC instants
 * (`toISOString`): replay-safe; the activity that delivers a text shows them in APPROVAL_PLUS_TIMEZONE (localiseTimes).
 */
import type { RequesterMessage } from '../domain/types';
import type { MacStatus } from './definitions';

export interface MessageContext {
  grantId: string;
  instanceId: string;
  approvalName?: string;
  invalid: { input: string; reason: string }[];
  randomised: string[];
  expiresAt?: string;
  expiryLabel?: string;
}

/** Starts a list item; a platform that must shorten a message drops list items first (see moreItemsLine). */
export const LIST_ITEM = '• ';

/** What the requester typed, quoted; localiseTimes leaves quoted text as it was typed. */
function quoteInput(input: string): string {
  return `“${input.replace(/[“”]/g, '"')}”`;
}

const RANDOMISED_ADVICE =
  '以下地址是随机（私有）MAC，设备可能会更换它：请在该 Wi‑Fi 的设置中关闭“私有地址/随机 MAC”。' +
  ' / These are randomised (private) MACs that the device may change: turn off "private address" for this Wi‑Fi.';

function expiryLine(ctx: MessageContext): string {
  return ctx.expiresAt ? `有效期至 / valid until: ${ctx.expiresAt}` : '有效期：永久 / valid: permanently';
}

function invalidLines(ctx: MessageContext): string[] {
  if (ctx.invalid.length === 0) return [];
  // Quoted, not backticked: no platform has inline code in its message format (Feishu lark_md shows them literally).
  return [
    '未处理的输入 / not processed:',
    ...ctx.invalid.map((i) => `${LIST_ITEM}${quoteInput(i.input)}: ${i.reason}`),
  ];
}

function randomisedLines(ctx: MessageContext): string[] {
  return ctx.randomised.length ? [RANDOMISED_ADVICE, ...ctx.randomised.map((m) => `• ${m}`)] : [];
}

const RECONNECT_ADVICE =
  '以下设备已连接但未能立即刷新授权：请断开 Wi‑Fi 后重新连接，新的权限才会生效。' +
  ' / These devices are connected but their access could not be refreshed: disconnect from the Wi‑Fi and connect again for the change to take effect.';

/** Devices whose Change of Authorization failed after they were whitelisted: the requester reconnects them. */
function reconnectLines(macs: MacStatus[]): string[] {
  const failed = macs.filter((m) => m.state === 'granted' && m.coa === 'failed');
  return failed.length ? [RECONNECT_ADVICE, ...failed.map((m) => `• ${m.mac}`)] : [];
}

export function grantedMessage(ctx: MessageContext, macs: MacStatus[]): RequesterMessage {
  const granted = macs.filter((m) => m.state === 'granted');
  const partial = ctx.invalid.length > 0;
  return {
    kind: partial ? 'partially-granted' : 'granted',
    title: partial ? 'Wi‑Fi 接入已部分开通 / Wi‑Fi access partly granted' : 'Wi‑Fi 接入已开通 / Wi‑Fi access granted',
    lines: [
      `已加入白名单的设备 / devices whitelisted (${granted.length}):`,
      ...granted.map((m) => `• ${m.mac}`),
      expiryLine(ctx),
      ...reconnectLines(macs),
      ...invalidLines(ctx),
      ...randomisedLines(ctx),
    ],
    idempotencyKey: `${ctx.grantId}:granted`,
    instanceId: ctx.instanceId,
  };
}

export function failedMessage(ctx: MessageContext, reason: string, macs: MacStatus[]): RequesterMessage {
  return {
    kind: 'failed',
    title: 'Wi‑Fi 接入未能开通 / Wi‑Fi access could not be granted',
    lines: [
      `原因 / reason: ${reason}`,
      '已撤销本次的全部更改，请联系 IT 或稍后重新提交。 / Every change made for this request was undone; contact IT or submit again later.',
      ...macs.map((m) => `• ${m.mac}: ${m.state}${m.detail ? ` (${m.detail})` : ''}`),
      ...invalidLines(ctx),
    ],
    idempotencyKey: `${ctx.grantId}:failed`,
    instanceId: ctx.instanceId,
  };
}

export function rejectedInputMessage(ctx: MessageContext, missingFields: string[]): RequesterMessage {
  return {
    kind: 'rejected-input',
    title: '未找到有效的 MAC 地址 / No valid MAC address found',
    lines: [
      '审批已通过，但表单中没有可以加入白名单的 MAC 地址。 / The approval passed, but the form holds no MAC address that can be whitelisted.',
      ...invalidLines(ctx),
      ...(missingFields.length ? [`表单缺少字段 / form fields missing: ${missingFields.join(', ')}`] : []),
      '格式示例 / example: AA:BB:CC:DD:EE:FF',
    ],
    idempotencyKey: `${ctx.grantId}:rejected`,
    instanceId: ctx.instanceId,
  };
}

export function revokedMessage(
  ctx: MessageContext,
  reason: string,
  expired: boolean,
  macs: MacStatus[]
): RequesterMessage {
  return {
    kind: 'revoked',
    title: expired ? 'Wi‑Fi 接入已到期 / Wi‑Fi access expired' : 'Wi‑Fi 接入已撤销 / Wi‑Fi access revoked',
    lines: [
      `原因 / reason: ${reason}`,
      ...macs.map((m) =>
        m.state === 'handed-over' ? `• ${m.mac}: 仍由后续审批授权 / still granted by a later approval` : `• ${m.mac}`
      ),
    ],
    idempotencyKey: `${ctx.grantId}:${expired ? 'expired' : 'revoked'}`,
    instanceId: ctx.instanceId,
  };
}

export function reminderMessage(ctx: MessageContext, macs: MacStatus[]): RequesterMessage {
  return {
    kind: 'expiry-reminder',
    title: 'Wi‑Fi 接入即将到期 / Wi‑Fi access expires soon',
    lines: [
      expiryLine(ctx),
      '如需继续使用，请重新提交审批。 / To keep access, submit a new approval.',
      ...macs.map((m) => `• ${m.mac}`),
    ],
    idempotencyKey: `${ctx.grantId}:reminder:${ctx.expiresAt ?? ''}`.slice(0, 200),
    instanceId: ctx.instanceId,
  };
}

export function extendedMessage(
  ctx: MessageContext,
  macs: MacStatus[],
  n: number,
  by?: string,
  reason?: string
): RequesterMessage {
  return {
    kind: 'extended',
    title: 'Wi‑Fi 接入已延期 / Wi‑Fi access extended',
    lines: [
      expiryLine(ctx),
      ...(reason ? [`原因 / reason: ${reason}`] : []),
      ...(by ? [`操作人 / by: ${by}`] : []),
      ...macs.map((m) => `• ${m.mac}`),
    ],
    idempotencyKey: `${ctx.grantId}:extended:${n}`,
    instanceId: ctx.instanceId,
  };
}

/** The audit comment left on the approval instance. */
export function auditComment(event: string, macs: MacStatus[], extra?: string): string {
  const list = macs.map((m) => `${m.mac}=${m.state}`).join(', ');
  return `[ApprovalPlus] ${event}${list ? `: ${list}` : ''}${extra ? ` (${extra})` : ''}`;
}

/** An approved modification moved the grant to new devices or a new duration: what changed, and what holds now. */
export function amendedMessage(
  ctx: MessageContext,
  changeInstanceId: string,
  change: { added: string[]; removed: string[]; failed: string[] },
  macs: MacStatus[]
): RequesterMessage {
  const unchanged = macs.filter((m) => m.state === 'granted' && !change.added.includes(m.mac));
  return {
    kind: 'changed',
    title: 'Wi‑Fi 接入已按修改后的审批调整 / Wi‑Fi access changed by the modified approval',
    lines: [
      ...(change.added.length ? ['新增 / added:', ...change.added.map((m) => `• ${m}`)] : []),
      ...(change.removed.length ? ['已移除 / removed:', ...change.removed.map((m) => `• ${m}`)] : []),
      ...(change.failed.length ? ['未能添加 / could not be added:', ...change.failed.map((m) => `• ${m}`)] : []),
      ...(unchanged.length ? [`未变 / unchanged: ${unchanged.length}`] : []),
      expiryLine(ctx),
      ...reconnectLines(macs),
      ...invalidLines(ctx),
    ],
    idempotencyKey: `${ctx.grantId}:changed:${changeInstanceId}`.slice(0, 200),
    instanceId: changeInstanceId,
  };
}

/** An approved modification arrived after its request's access had already ended: nothing was granted. */
export function changeNotAppliedMessage(ctx: MessageContext, originalInstanceId: string): RequesterMessage {
  return {
    kind: 'failed',
    title: 'Wi‑Fi 接入修改未生效 / Wi‑Fi access change not applied',
    lines: [
      `原审批 ${originalInstanceId} 的接入已结束，修改不会重新开通。请提交新的申请。 / The access of the original approval ${originalInstanceId} has already ended; a modification does not grant it again. Please submit a new request.`,
    ],
    idempotencyKey: `${ctx.grantId}:change-not-applied`,
    instanceId: ctx.instanceId,
  };
}

/** Replaces the list items a platform had to leave out to fit its size limit. */
export function moreItemsLine(count: number): string {
  return `${LIST_ITEM}…以及另外 ${count} 项 / and ${count} more`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Throws RangeError for a zone Intl does not know (config validates APPROVAL_PLUS_TIMEZONE with it at start-up). */
function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'longOffset',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * "2026-12-08 18:00 (UTC+08:00)": an instant in `timeZone` (an IANA name) with its offset, so a reader in another
 * zone still knows the moment. Deterministic: Intl with an explicit zone depends only on its input (and tzdata).
 */
export function formatInstant(ms: number, timeZone: string): string {
  const parts: Record<string, string> = {};
  for (const p of formatterFor(timeZone).formatToParts(ms)) parts[p.type] = p.value;
  // 'GMT+08:00', or a bare 'GMT' for a zero offset on some ICU versions.
  const offset = (parts.timeZoneName ?? 'GMT').replace(/^GMT/, '') || '+00:00';
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} (UTC${offset})`;
}

const ISO_INSTANT = /\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?Z\b/g;

/** Every ISO-8601 UTC instant in `text` shown in `timeZone` (formatInstant); text quoted from the form is left alone. */
export function localiseTimes(text: string, timeZone: string): string {
  return text
    .split(/(“[^”]*”)/)
    .map((part) =>
      part.startsWith('“') ? part : part.replace(ISO_INSTANT, (iso) => formatInstant(Date.parse(iso), timeZone))
    )
    .join('');
}

/** The message as the requester reads it in `timeZone`; the idempotency key stays as it was (it dedupes retries). */
export function localiseMessage(message: RequesterMessage, timeZone: string): RequesterMessage {
  return {
    ...message,
    title: localiseTimes(message.title, timeZone),
    lines: message.lines.map((line) => localiseTimes(line, timeZone)),
  };
}
