import { z } from 'zod';
import { optionalNonEmpty, port, url } from '../../config/env-values';

/**
 * FEISHU_* variables (config/config.ts spreads `feishuEnvShape` into its schema and calls `buildFeishuConfig`).
 * Feishu is always on: without an app id and secret the process runs in sandbox mode, where the Feishu simulator
 * stands in for open.feishu.cn and missing values take the sandbox defaults.
 */

export interface FeishuConfig {
  appId: string;
  appSecret: string;
  encryptKey?: string;
  verificationToken?: string;
  baseUrl: string;
  eventMode: 'http' | 'ws';
  commentUserId?: string;
}

/**
 * The only app ids the SDK's long-connection client starts with: `WSClient.start()` tests this and otherwise logs
 * "invalid appId" and returns, leaving the client idle for ever (node-sdk `ws-client/index.ts` `start`, f54b49f;
 * 1.74.0 `lib/index.js` L102791). The webhook and the API client take any `cli_…` id.
 */
export const SDK_WS_APP_ID = /^cli_[0-9a-fA-F]{16}$/;

export const FEISHU_SANDBOX_DEFAULTS = {
  FEISHU_APP_ID: 'cli_a1b2c3d4e5f6a7b8',
  FEISHU_APP_SECRET: 'sandbox-app-secret',
  FEISHU_ENCRYPT_KEY: 'sandbox-encrypt-key',
  FEISHU_VERIFICATION_TOKEN: 'sandbox-verification-token',
} as const;

export const feishuEnvShape = {
  FEISHU_APP_ID: optionalNonEmpty.pipe(
    z
      .string()
      .regex(/^cli_[0-9a-zA-Z]+$/, 'must look like cli_xxxxxxxxxxxxxxxx')
      .optional()
  ),
  FEISHU_APP_SECRET: optionalNonEmpty,
  FEISHU_ENCRYPT_KEY: optionalNonEmpty,
  FEISHU_VERIFICATION_TOKEN: optionalNonEmpty,
  FEISHU_BASE_URL: optionalNonEmpty.pipe(url.optional()),
  FEISHU_SIM_PORT: port.default(3100),
  FEISHU_EVENT_MODE: z.enum(['http', 'ws']).default('http'),
  /**
   * Which approval status event the app is set up for: v1 `approval_instance`, the only one supported (v2 needs a
   * user-token instance subscription, see buildFeishuConfig). Exists so that asking for v2 stops with one line.
   */
  FEISHU_APPROVAL_EVENTS: z.string().min(1).default('v1'),
  /** Who authors the audit comment on the instance; defaults to the requester. */
  FEISHU_COMMENT_USER_ID: optionalNonEmpty,
};

const _envSchema = z.object(feishuEnvShape);
type FeishuEnv = z.infer<typeof _envSchema>;

/** Sandbox mode: no app id or secret configured (SANDBOX=auto). */
export function feishuWantsSandbox(e: FeishuEnv): boolean {
  return !e.FEISHU_APP_ID || !e.FEISHU_APP_SECRET;
}

export function buildFeishuConfig(
  e: FeishuEnv,
  ctx: { sandbox: boolean; fail: (line: string) => never }
): FeishuConfig {
  const pick = <K extends keyof typeof FEISHU_SANDBOX_DEFAULTS>(k: K): string | undefined =>
    e[k] ?? (ctx.sandbox ? FEISHU_SANDBOX_DEFAULTS[k] : undefined);
  if (!ctx.sandbox) {
    for (const name of ['FEISHU_APP_ID', 'FEISHU_APP_SECRET'] as const) {
      if (!e[name]) ctx.fail(`missing ${name}: required outside sandbox mode`);
    }
  }
  const appId = pick('FEISHU_APP_ID')!;
  if (e.FEISHU_EVENT_MODE === 'ws' && !SDK_WS_APP_ID.test(appId)) {
    ctx.fail(
      "invalid FEISHU_APP_ID: with FEISHU_EVENT_MODE=ws it must be cli_ and 16 hex digits, the only form the SDK's long connection starts with"
    );
  }
  // v2 approval.instance.status_changed_v4 arrives only after POST /approval/v4/instances/subscription made with a
  // *user* access token, and then only for approvals that user is involved in or manages (sdk code-gen
  // approval.ts `instance.subscription`; lark-cli lark-event-approval: "--as user"). ApprovalPlus holds no user
  // token; v1 approval_instance needs only the per-code subscription it makes at start-up. README: Feishu console.
  if (e.FEISHU_APPROVAL_EVENTS !== 'v1') {
    ctx.fail(
      `invalid FEISHU_APPROVAL_EVENTS: only v1 is supported (subscribe 审批实例状态变更 v1.0, approval_instance): v2 approval.instance.status_changed_v4 needs a user-token instance subscription ApprovalPlus cannot make`
    );
  }
  return {
    appId,
    appSecret: pick('FEISHU_APP_SECRET')!,
    encryptKey: pick('FEISHU_ENCRYPT_KEY'),
    verificationToken: pick('FEISHU_VERIFICATION_TOKEN'),
    baseUrl: e.FEISHU_BASE_URL ?? (ctx.sandbox ? `http://127.0.0.1:${e.FEISHU_SIM_PORT}` : 'https://open.feishu.cn'),
    eventMode: e.FEISHU_EVENT_MODE,
    commentUserId: e.FEISHU_COMMENT_USER_ID,
  };
}
