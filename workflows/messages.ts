/**
 * The texts the requester and the approval's audit trail receive. Pure functions of the workflow's state, so they are
 * safe in workflow code. Bilingual (zh / en) like the rest of the requester-facing text.
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

const RANDOMISED_ADVICE =
  '以下地址是随机（私有）MAC，设备可能会更换它：请在该 Wi‑Fi 的设置中关闭“私有地址/随机 MAC”。' +
  ' / These are randomised (private) MACs that the device may change: turn off "private address" for this Wi‑Fi.';

function expiryLine(ctx: MessageContext): string {
  return ctx.expiresAt ? `有效期至 / valid until: ${ctx.expiresAt}` : '有效期：永久 / valid: permanently';
}

function invalidLines(ctx: MessageContext): string[] {
  if (ctx.invalid.length === 0) return [];
  return ['未处理的输入 / not processed:', ...ctx.invalid.map((i) => `• \`${i.input}\`: ${i.reason}`)];
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
