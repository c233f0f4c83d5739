import { z } from 'zod';
import { optionalNonEmpty, port, url } from '../../config/env-values';

/**
 * WECOM_* variables (config/config.ts spreads `wecomEnvShape` into its schema and calls `buildWeComConfig`). WeCom is
 * enabled when a route names it or WECOM_CORP_ID is set; in sandbox mode missing values take the sandbox defaults and
 * the WeCom simulator stands in for qyapi.weixin.qq.com.
 */

export interface WeComConfig {
  /** The CorpID: the callback's receiveid and ToUserName, and the token's corpid. */
  corpId: string;
  /** The self-built app's Secret (it must be in 审批 → 可调用接口的应用). */
  corpSecret: string;
  agentId: string;
  /** 接收消息 → Token and EncodingAESKey (43 chars). */
  token: string;
  encodingAesKey: string;
  baseUrl: string;
}

export const WECOM_SANDBOX_DEFAULTS = {
  WECOM_CORP_ID: 'ww5a1d0c0sandbox01',
  WECOM_CORP_SECRET: 'sandbox-wecom-corp-secret',
  WECOM_AGENT_ID: '1000002',
  WECOM_TOKEN: 'sandboxwecomtoken',
  WECOM_ENCODING_AES_KEY: 'SandboxWeComEncodingAesKey0123456789abcdefg',
} as const;

export const wecomEnvShape = {
  WECOM_CORP_ID: optionalNonEmpty,
  WECOM_CORP_SECRET: optionalNonEmpty,
  WECOM_AGENT_ID: optionalNonEmpty.pipe(z.string().regex(/^\d+$/, 'must be the numeric AgentId').optional()),
  WECOM_TOKEN: optionalNonEmpty.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9]{1,32}$/, 'must be at most 32 letters or digits (接收消息 → Token)')
      .optional()
  ),
  WECOM_ENCODING_AES_KEY: optionalNonEmpty.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9]{43}$/, 'must be the 43-character EncodingAESKey (letters and digits)')
      .optional()
  ),
  WECOM_BASE_URL: optionalNonEmpty.pipe(url.optional()),
  WECOM_SIM_PORT: port.default(3400),
};

const _envSchema = z.object(wecomEnvShape);
type WeComEnv = z.infer<typeof _envSchema>;

/** Undefined when WeCom is not enabled (no route names it and WECOM_CORP_ID is unset). */
export function buildWeComConfig(
  e: WeComEnv,
  ctx: { sandbox: boolean; routed: boolean; routesFile: string; fail: (line: string) => never }
): WeComConfig | undefined {
  if (!ctx.routed && !e.WECOM_CORP_ID) return undefined;
  const pick = <K extends keyof typeof WECOM_SANDBOX_DEFAULTS>(k: K): string | undefined =>
    e[k] ?? (ctx.sandbox ? WECOM_SANDBOX_DEFAULTS[k] : undefined);
  const why = ctx.routed ? `the routes in ${ctx.routesFile} name wecom` : 'WECOM_CORP_ID is set';
  for (const name of Object.keys(WECOM_SANDBOX_DEFAULTS) as (keyof typeof WECOM_SANDBOX_DEFAULTS)[]) {
    if (!pick(name)) ctx.fail(`missing ${name}: required because ${why} (outside sandbox mode)`);
  }
  return {
    corpId: pick('WECOM_CORP_ID')!,
    corpSecret: pick('WECOM_CORP_SECRET')!,
    agentId: pick('WECOM_AGENT_ID')!,
    token: pick('WECOM_TOKEN')!,
    encodingAesKey: pick('WECOM_ENCODING_AES_KEY')!,
    baseUrl: e.WECOM_BASE_URL ?? (ctx.sandbox ? `http://127.0.0.1:${e.WECOM_SIM_PORT}` : 'https://qyapi.weixin.qq.com'),
  };
}
