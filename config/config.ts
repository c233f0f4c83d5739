import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { bool, optionalNonEmpty, port } from './env-values';
import { canonicalTimeZone, hostTimeZone } from '../domain/time-zone';
import { parseDurationMs } from '../domain/duration';
import { PLATFORM_NAMES } from '../domain/types';
import {
  buildForwardRoute,
  forwardingEnvShape,
  forwardRetryFrom,
  type ForwardingConfig,
  type ForwardRoute,
} from '../forwarding/config';
import { buildDingTalkConfig, dingtalkEnvShape, type DingTalkConfig } from '../platforms/dingtalk/config';
import { buildWeComConfig, wecomEnvShape, type WeComConfig } from '../platforms/wecom/config';
import { buildNacConfig, nacEnvShape, type NacConfig } from '../nac/config';
import { buildFeishuConfig, feishuEnvShape, feishuWantsSandbox, type FeishuConfig } from '../platforms/feishu/config';

export type { DingTalkConfig, FeishuConfig, NacConfig, WeComConfig };

/**
 * The one place configuration is read. Validated once at start-up: a bad value stops the process with one line
 * naming the variable (`ConfigError`). Secrets are kept in the object but never logged (see `redactedConfig`).
 */

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * WORKER_MAX_CACHED_WORKFLOWS' default: measured with B4 (docs/benchmarks.md) so a worker holding 5,000 live grants
 * stays within 400 MiB RSS. The SDK's own default grows with the heap limit (2,310 runs at a 4 GiB heap: 1.4 GiB).
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 100;

export const envSchema = z.object({
  PORT: port.default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `auto`: human-readable lines in a terminal, JSON lines otherwise; `pretty` or `json` to choose. */
  LOG_FORMAT: z.enum(['auto', 'pretty', 'json']).default('auto'),
  SANDBOX: z.enum(['auto', 'true', 'false']).default('auto'),
  DATA_DIR: z.string().min(1).default('.data'),
  APPROVAL_PLUS_CONFIG: optionalNonEmpty,
  /** IANA zone in which messages and comments show times (default: the host's zone). */
  APPROVAL_PLUS_TIMEZONE: optionalNonEmpty.pipe(
    z
      .string()
      .refine((name) => canonicalTimeZone(name) !== undefined, 'must be an IANA time zone name like Asia/Shanghai')
      .optional()
  ),

  ...feishuEnvShape,

  ...nacEnvShape,

  TEMPORAL_ADDRESS: optionalNonEmpty,
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_UI_PORT: port.default(8233),
  TEMPORAL_API_KEY: optionalNonEmpty,
  TEMPORAL_TLS: bool.default(false),
  /** The Temporal SDK's Prometheus exporter in the worker (`host:port`; empty = off), via Runtime.install. */
  TEMPORAL_METRICS_ADDRESS: optionalNonEmpty.pipe(
    z
      .string()
      .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:]+):\d{1,5}$/, 'must be host:port, like 0.0.0.0:9464')
      .optional()
  ),
  /** The worker process's own /healthz, /readyz and /metrics (0 = off). */
  WORKER_HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /**
   * How long a stopping worker lets running activities finish before cancelling them; it is forced 5 s later, so keep
   * grace + 5 s inside the container's stop grace period (compose: 30 s).
   */
  WORKER_SHUTDOWN_GRACE: z
    .string()
    .regex(/^\d+(ms|s|m)$/, 'must be a duration like 20s, 500ms, 1m')
    .default('20s'),
  /**
   * The worker's sticky cache of workflow runs (Temporal SDK `maxCachedWorkflows`). Every live grant is an open run;
   * the cache, not the number of grants, sets the worker's memory (~0.35 MiB per cached run, B4). A run outside the
   * cache is replayed from its history when its timer fires or a signal arrives. 0 = no cache (every task replays).
   */
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce
    .number()
    .int('must be a whole number')
    .min(0, 'must be 0 (no cache) or more')
    .refine((n) => n === 0 || n >= 2, 'must be 0 (no cache) or at least 2')
    .default(DEFAULT_MAX_CACHED_WORKFLOWS),

  ADMIN_TOKEN: optionalNonEmpty.pipe(z.string().min(16, 'must be at least 16 characters').optional()),
  REMINDER_LEAD: z
    .string()
    .regex(/^\d+(ms|s|m|h|d)$/, 'must be a duration like 1d, 12h, 30m')
    .default('1d'),
  /** How often the reconcile Schedule runs (`off` = no schedule), how far back it looks, and whether it fixes. */
  RECONCILE_INTERVAL: z
    .string()
    .regex(/^(off|\d+(m|h|d))$/, 'must be a duration like 1h, 30m, 1d, or off')
    .default('1h'),
  RECONCILE_LOOKBACK: z
    .string()
    .regex(/^\d+(m|h|d)$/, 'must be a duration like 24h, 2d')
    .default('24h'),
  RECONCILE_FIX: bool.default(false),
  /** How long an approval may take from submission to approval: reconcile lists instances submitted that far back. */
  RECONCILE_APPROVAL_MAX_AGE: z
    .string()
    .regex(/^\d+(h|d)$/, 'must be a duration like 14d, 72h')
    .default('14d'),
  ...forwardingEnvShape,
  ...dingtalkEnvShape,
  ...wecomEnvShape,
});

export type Env = z.infer<typeof envSchema>;

/** Every variable the schema reads (test/compose.test.ts checks deployment files against it). */
export const ENV_VARIABLES = Object.keys(envSchema.shape) as (keyof Env)[];
/** Read outside the schema: the prebuilt workflow bundle (app/stack.ts), the `temporal` binary (temporal/find-cli.ts). */
export const PROCESS_ENV_VARIABLES = ['WORKFLOW_BUNDLE', 'TEMPORAL_CLI_PATH'] as const;

const routeSchema = z.object({
  platform: z.enum(PLATFORM_NAMES),
  approval_code: z.string().min(1),
  automation: z.enum(['nac-whitelist']),
  fields: z.object({
    macs: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    duration: z.string().min(1).optional(),
  }),
});
// Each entry is checked against its automation's schema in loadRoutesFile (forward routes: forwarding/config.ts).
const routeHeadSchema = z.looseObject({
  platform: z.enum(PLATFORM_NAMES),
  approval_code: z.string().min(1),
  automation: z.enum(['nac-whitelist', 'forward']),
});
const routesFileSchema = z.object({ routes: z.array(routeHeadSchema).min(1) });

export interface Route {
  platform: 'feishu' | 'dingtalk' | 'wecom';
  approvalCode: string;
  automation: 'nac-whitelist';
  /** Form widget names or ids holding MACs (text, textarea, or a detail-table column). */
  macFields: string[];
  durationField?: string;
}

export interface AppConfig {
  sandbox: boolean;
  port: number;
  host: string;
  logLevel: Env['LOG_LEVEL'];
  logFormat: Env['LOG_FORMAT'];
  dataDir: string;
  routesFile: string;
  routes: Route[];
  /** `automation: forward` routes and the delivery retry policy. */
  forwarding: ForwardingConfig;
  feishu: FeishuConfig;
  feishuSimPort: number;
  /** Set when DingTalk is enabled (a route names it, or DINGTALK_APP_KEY is set). */
  dingtalk?: DingTalkConfig;
  dingtalkSimPort: number;
  /** Set when WeCom is enabled (a route names it, or WECOM_CORP_ID is set). */
  wecom?: WeComConfig;
  wecomSimPort: number;
  nac: NacConfig;
  nacSimPort: number;
  temporal: { address?: string; namespace: string; uiPort: number; apiKey?: string; tls: boolean };
  /** The worker process: its HTTP endpoint (0 = off), the SDK's metrics exporter, shutdown grace, workflow cache. */
  worker: { httpPort: number; temporalMetricsAddress?: string; shutdownGraceMs: number; maxCachedWorkflows: number };
  adminToken?: string;
  reminderLead: string;
  reconcile: { interval: string | 'off'; lookback: string; fix: boolean; approvalMaxAge: string };
  /** APPROVAL_PLUS_TIMEZONE (canonical IANA name), or the host's zone. */
  timeZone: string;
}

const projectRoot = path.resolve(__dirname, '..');
export const SANDBOX_ROUTES_FILE = path.join(projectRoot, 'config', 'routes.sandbox.yaml');

/** Load and validate the configuration; throws ConfigError with one line naming the bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    const shown = name in env && !/SECRET|PASSWORD|TOKEN|KEY/.test(name) ? ` (got ${JSON.stringify(env[name])})` : '';
    throw new ConfigError(`invalid ${name}: ${issue.message}${shown}`);
  }
  const e = parsed.data;
  const sandbox = e.SANDBOX === 'true' || (e.SANDBOX === 'auto' && feishuWantsSandbox(e));
  const feishu = buildFeishuConfig(e, {
    sandbox,
    fail: (line: string): never => {
      throw new ConfigError(line);
    },
  });

  const nac = buildNacConfig(e, {
    sandbox,
    fail: (line: string): never => {
      throw new ConfigError(line);
    },
  });

  const routesFile = e.APPROVAL_PLUS_CONFIG ?? (sandbox ? SANDBOX_ROUTES_FILE : undefined);
  if (!routesFile) throw new ConfigError('missing APPROVAL_PLUS_CONFIG: path to the routes file (YAML)');
  const { routes, forwards } = loadRoutesFile(routesFile, env);
  const routed = (p: Route['platform']) => [...routes, ...forwards].some((r) => r.platform === p);
  const platformCtx = (p: Route['platform']) => ({
    sandbox,
    routed: routed(p),
    routesFile,
    fail: (line: string): never => {
      throw new ConfigError(line);
    },
  });
  const dingtalk = buildDingTalkConfig(e, platformCtx('dingtalk'));
  const wecom = buildWeComConfig(e, platformCtx('wecom'));
  const fail = (line: string): never => {
    throw new ConfigError(line);
  };

  return {
    sandbox,
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    dataDir: path.resolve(e.DATA_DIR),
    routesFile,
    routes,
    forwarding: { routes: forwards, retry: forwardRetryFrom(e, fail) },
    feishu,
    feishuSimPort: e.FEISHU_SIM_PORT,
    dingtalk,
    dingtalkSimPort: e.DINGTALK_SIM_PORT,
    wecom,
    wecomSimPort: e.WECOM_SIM_PORT,
    nac,
    nacSimPort: e.NAC_SIM_PORT,
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      uiPort: e.TEMPORAL_UI_PORT,
      apiKey: e.TEMPORAL_API_KEY,
      tls: e.TEMPORAL_TLS,
    },
    worker: {
      httpPort: e.WORKER_HTTP_PORT,
      temporalMetricsAddress: e.TEMPORAL_METRICS_ADDRESS,
      shutdownGraceMs: parseDurationMs(e.WORKER_SHUTDOWN_GRACE),
      maxCachedWorkflows: e.WORKER_MAX_CACHED_WORKFLOWS,
    },
    adminToken: e.ADMIN_TOKEN,
    reminderLead: e.REMINDER_LEAD,
    reconcile: {
      interval: e.RECONCILE_INTERVAL,
      lookback: e.RECONCILE_LOOKBACK,
      fix: e.RECONCILE_FIX,
      approvalMaxAge: e.RECONCILE_APPROVAL_MAX_AGE,
    },
    timeZone: e.APPROVAL_PLUS_TIMEZONE ? canonicalTimeZone(e.APPROVAL_PLUS_TIMEZONE)! : hostTimeZone(),
  };
}

/** The nac-whitelist routes of a routes file (forward routes: `loadRoutesFile`). */
export function loadRoutes(file: string, env: NodeJS.ProcessEnv = process.env): Route[] {
  return loadRoutesFile(file, env).routes;
}

/** Both kinds of route; forward subscribers' secrets are read from `env`. */
export function loadRoutesFile(file: string, env: NodeJS.ProcessEnv): { routes: Route[]; forwards: ForwardRoute[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ConfigError(`invalid APPROVAL_PLUS_CONFIG: cannot read ${file}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      `invalid APPROVAL_PLUS_CONFIG: ${file} is not valid YAML (${(err as Error).message.split('\n')[0]})`
    );
  }
  const parsed = routesFileSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`invalid APPROVAL_PLUS_CONFIG: ${file}: ${issue.path.join('.')}: ${issue.message}`);
  }
  const seen = new Set<string>();
  const routes: Route[] = [];
  const forwards: ForwardRoute[] = [];
  const subscribers: Parameters<typeof buildForwardRoute>[3] = new Map();
  const fail = (line: string): never => {
    throw new ConfigError(line);
  };
  parsed.data.routes.forEach((head, i) => {
    // An approval code may have one route per automation (e.g. nac-whitelist and forward).
    const key = `${head.platform}:${head.approval_code}:${head.automation}`;
    if (seen.has(key)) throw new ConfigError(`invalid APPROVAL_PLUS_CONFIG: ${file}: routes.${i}: duplicate ${key}`);
    seen.add(key);
    if (head.automation === 'forward') {
      forwards.push(buildForwardRoute(head, `routes.${i}`, env, subscribers, fail, file));
      return;
    }
    const nac = routeSchema.safeParse(head);
    if (!nac.success) {
      const issue = nac.error.issues[0]!;
      throw new ConfigError(
        `invalid APPROVAL_PLUS_CONFIG: ${file}: routes.${i}.${issue.path.join('.')}: ${issue.message}`
      );
    }
    const r = nac.data;
    if (r.approval_code === '*')
      throw new ConfigError(
        `invalid APPROVAL_PLUS_CONFIG: ${file}: routes.${i}.approval_code: "*" is only for forward routes`
      );
    routes.push({
      platform: r.platform,
      approvalCode: r.approval_code,
      automation: r.automation,
      macFields: Array.isArray(r.fields.macs) ? r.fields.macs : [r.fields.macs],
      durationField: r.fields.duration,
    });
  });
  return { routes, forwards };
}

export function findRoute(routes: Route[], platform: Route['platform'], approvalCode: string): Route | undefined {
  return routes.find((r) => r.platform === platform && r.approvalCode === approvalCode);
}

/** For logs: the configuration with every secret replaced by a marker. */
export function redactedConfig(c: AppConfig): Record<string, unknown> {
  return {
    sandbox: c.sandbox,
    port: c.port,
    routes: c.routes.map((r) => `${r.platform}:${r.approvalCode}→${r.automation}`),
    forwards: c.forwarding.routes.map(
      (r) => `${r.platform}:${r.approvalCode}→${r.subscribers.map((s) => `${s.name} ${s.url}`).join(', ')}`
    ),
    feishu: {
      appId: c.feishu.appId,
      baseUrl: c.feishu.baseUrl,
      eventMode: c.feishu.eventMode,
      encryptKey: !!c.feishu.encryptKey,
    },
    dingtalk: c.dingtalk && { appKey: c.dingtalk.appKey, baseUrl: c.dingtalk.baseUrl, eventMode: c.dingtalk.eventMode },
    wecom: c.wecom && { corpId: c.wecom.corpId, agentId: c.wecom.agentId, baseUrl: c.wecom.baseUrl },
    nac:
      c.nac.driver === 'freeradius'
        ? {
            driver: c.nac.driver,
            // Host, port and database only: the URL's user and password stay out of the log.
            database: c.nac.databaseUrl && databaseWhere(c.nac.databaseUrl),
            group: c.nac.freeradiusGroup ?? 'none',
            usernameFormat: c.nac.radiusUsernameFormat,
            maxRps: c.nac.maxRps,
            coa: c.nac.coa,
            coaPort: c.nac.radiusCoaPort,
            coaSecret: !!c.nac.radiusCoaSecret,
          }
        : {
            driver: c.nac.driver,
            baseUrl: c.nac.baseUrl,
            maxRps: c.nac.maxRps,
            iseGroup: c.nac.iseGroup,
            coa: c.nac.coa,
            ...(c.nac.driver === 'sim' ? { simProfile: c.nac.simProfile } : {}),
          },
    temporal: { address: c.temporal.address ?? 'embedded', namespace: c.temporal.namespace },
    worker: {
      httpPort: c.worker.httpPort || 'off',
      temporalMetrics: c.worker.temporalMetricsAddress ?? 'off',
      shutdownGraceMs: c.worker.shutdownGraceMs,
      maxCachedWorkflows: c.worker.maxCachedWorkflows,
    },
    timeZone: c.timeZone,
    adminApi: c.adminToken ? 'on' : 'off',
  };
}

/** `postgres://user:secret@db:5432/radius?…` → `db:5432/radius`. */
function databaseWhere(url: string): string {
  const u = new URL(url);
  return `${u.host}${u.pathname}`;
}
