import { z } from 'zod';
import { optionalNonEmpty, port, url } from '../../config/env-values';

/**
 * DINGTALK_* variables (config/config.ts spreads `dingtalkEnvShape` into its schema and calls `buildDingTalkConfig`,
 * turning `fail(line)` into its one-line ConfigError). DingTalk is enabled when a route names it or DINGTALK_APP_KEY
 * is set; in sandbox mode missing values take the sandbox defaults and the DingTalk simulator stands in for
 * api.dingtalk.com and oapi.dingtalk.com.
 */

export interface DingTalkConfig {
  appKey: string;
  appSecret: string;
  /** HTTP push: the console's `加密 aes_key` (43 chars) and `签名 token`. Unused in stream mode. */
  aesKey?: string;
  token?: string;
  /**
   * The owner key the HTTP push is encrypted for (reference dingtalk-wecom.md §1.3): the AppKey for console
   * subscriptions (default), the CorpId for legacy `register_call_back`, the SuiteKey for ISV apps.
   */
  ownerKey: string;
  /** When set, events carrying another CorpId are refused. */
  corpId?: string;
  /** The app's AgentId, for work notifications to the requester. */
  agentId?: string;
  /** api.dingtalk.com (v1.0 APIs, token, stream gateway). */
  baseUrl: string;
  /** oapi.dingtalk.com (legacy token and work notifications). */
  oapiBaseUrl: string;
  eventMode: 'http' | 'stream';
}

export const DINGTALK_SANDBOX_DEFAULTS = {
  DINGTALK_APP_KEY: 'dingsandboxappkey0001',
  DINGTALK_APP_SECRET: 'sandbox-dingtalk-app-secret',
  DINGTALK_AES_KEY: 'SandboxDingTalkAesKey0123456789abcdefghijkl',
  DINGTALK_TOKEN: 'sandboxdingtalktoken',
  DINGTALK_AGENT_ID: '300000001',
} as const;

export const dingtalkEnvShape = {
  DINGTALK_APP_KEY: optionalNonEmpty,
  DINGTALK_APP_SECRET: optionalNonEmpty,
  DINGTALK_AES_KEY: optionalNonEmpty.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9]{43}$/, 'must be the 43-character aes_key (letters and digits) from the console')
      .optional()
  ),
  DINGTALK_TOKEN: optionalNonEmpty.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9]{3,32}$/, "must be 3–32 letters or digits (the console's 签名 token)")
      .optional()
  ),
  DINGTALK_OWNER_KEY: optionalNonEmpty,
  DINGTALK_CORP_ID: optionalNonEmpty,
  DINGTALK_AGENT_ID: optionalNonEmpty.pipe(z.string().regex(/^\d+$/, 'must be the numeric AgentId').optional()),
  DINGTALK_BASE_URL: optionalNonEmpty.pipe(url.optional()),
  DINGTALK_OAPI_BASE_URL: optionalNonEmpty.pipe(url.optional()),
  DINGTALK_SIM_PORT: port.default(3300),
  DINGTALK_EVENT_MODE: z.enum(['http', 'stream']).default('http'),
};

const _envSchema = z.object(dingtalkEnvShape);
type DingTalkEnv = z.infer<typeof _envSchema>;

/** Undefined when DingTalk is not enabled (no route names it and DINGTALK_APP_KEY is unset). */
export function buildDingTalkConfig(
  e: DingTalkEnv,
  ctx: { sandbox: boolean; routed: boolean; routesFile: string; fail: (line: string) => never }
): DingTalkConfig | undefined {
  if (!ctx.routed && !e.DINGTALK_APP_KEY) return undefined;
  const pick = <K extends keyof typeof DINGTALK_SANDBOX_DEFAULTS>(k: K): string | undefined =>
    e[k] ?? (ctx.sandbox ? DINGTALK_SANDBOX_DEFAULTS[k] : undefined);
  const why = ctx.routed ? `the routes in ${ctx.routesFile} name dingtalk` : 'DINGTALK_APP_KEY is set';
  const required: (keyof typeof DINGTALK_SANDBOX_DEFAULTS)[] = ['DINGTALK_APP_KEY', 'DINGTALK_APP_SECRET'];
  if (e.DINGTALK_EVENT_MODE === 'http') required.push('DINGTALK_AES_KEY', 'DINGTALK_TOKEN');
  required.push('DINGTALK_AGENT_ID');
  for (const name of required) {
    if (!pick(name)) ctx.fail(`missing ${name}: required because ${why} (outside sandbox mode)`);
  }
  const simUrl = `http://127.0.0.1:${e.DINGTALK_SIM_PORT}`;
  const appKey = pick('DINGTALK_APP_KEY')!;
  return {
    appKey,
    appSecret: pick('DINGTALK_APP_SECRET')!,
    aesKey: pick('DINGTALK_AES_KEY'),
    token: pick('DINGTALK_TOKEN'),
    ownerKey: e.DINGTALK_OWNER_KEY ?? appKey,
    corpId: e.DINGTALK_CORP_ID,
    agentId: pick('DINGTALK_AGENT_ID'),
    baseUrl: e.DINGTALK_BASE_URL ?? (ctx.sandbox ? simUrl : 'https://api.dingtalk.com'),
    // In sandbox mode one simulator serves both hosts, so a DINGTALK_BASE_URL pointing at it covers oapi too.
    oapiBaseUrl:
      e.DINGTALK_OAPI_BASE_URL ?? (ctx.sandbox ? (e.DINGTALK_BASE_URL ?? simUrl) : 'https://oapi.dingtalk.com'),
    eventMode: e.DINGTALK_EVENT_MODE,
  };
}
