import { z } from 'zod';
import { parseDurationMs } from '../domain/duration';
import { PLATFORM_NAMES, type PlatformName } from '../domain/types';
import type { ForwardRetry } from './model';
import { secretKey } from './signing';

/**
 * The `automation: forward` routes of the routes file, and the FORWARD_* variables. config/config.ts calls these and
 * turns `fail(message)` into its one-line ConfigError.
 */

export interface ForwardSubscriber {
  name: string;
  url: string;
  /** The variable the secret came from (for messages; the value is never logged). */
  secretEnv: string;
  /** `whsec_<base64>`, validated. */
  secret: string;
}

export interface ForwardRoute {
  platform: PlatformName;
  /** An approval code, or `*` for every approval code of the platform. */
  approvalCode: string;
  automation: 'forward';
  includeRaw: boolean;
  subscribers: ForwardSubscriber[];
}

export interface ForwardingConfig {
  routes: ForwardRoute[];
  retry: ForwardRetry;
}

export const ANY_APPROVAL_CODE = '*';

const subscriberSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be 1–63 lowercase letters, digits, "-" or "_" (it is part of an id)'),
  url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
  secret_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the name of an environment variable'),
});

export const forwardRouteSchema = z.strictObject({
  platform: z.enum(PLATFORM_NAMES),
  approval_code: z.string().min(1),
  automation: z.literal('forward'),
  include_raw: z.boolean().default(false),
  subscribers: z.array(subscriberSchema).min(1, 'at least one subscriber'),
});

/** Stops with one complete ConfigError line. */
type Fail = (line: string) => never;

/**
 * Validate one forward route (`where` = `routes.<i>`) and resolve its secrets from `env`. `known` collects the
 * subscribers seen so far: a name is one receiver everywhere (its id is part of workflow ids and webhook-ids), so
 * the same name on two routes must have the same url and secret_env.
 */
export function buildForwardRoute(
  raw: unknown,
  where: string,
  env: NodeJS.ProcessEnv,
  known: Map<string, { sub: ForwardSubscriber; where: string }>,
  failConfig: Fail,
  file: string
): ForwardRoute {
  const fail: Fail = (msg) => failConfig(`invalid APPROVAL_PLUS_CONFIG: ${file}: ${msg}`);
  const parsed = forwardRouteSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    fail(`${[where, ...issue.path].join('.')}: ${issue.message}`);
  }
  const r = parsed.data;
  const names = new Set<string>();
  const subscribers = r.subscribers.map((s, j) => {
    const at = `${where}.subscribers.${j}`;
    if (names.has(s.name)) fail(`${at}.name: subscriber ${s.name} is listed twice`);
    names.add(s.name);
    const earlier = known.get(s.name);
    if (earlier && (earlier.sub.url !== s.url || earlier.sub.secretEnv !== s.secret_env)) {
      fail(`${at}: subscriber ${s.name} is defined with another url or secret_env at ${earlier.where}`);
    }
    const secret = env[s.secret_env];
    if (!secret)
      failConfig(`missing ${s.secret_env}: the Standard Webhooks secret (whsec_…) of forward subscriber ${s.name}`);
    try {
      secretKey(secret);
    } catch (err) {
      failConfig(`invalid ${s.secret_env}: ${(err as Error).message} (secret of forward subscriber ${s.name})`);
    }
    const sub: ForwardSubscriber = { name: s.name, url: s.url, secretEnv: s.secret_env, secret };
    if (!earlier) known.set(s.name, { sub, where: at });
    return sub;
  });
  return {
    platform: r.platform,
    approvalCode: r.approval_code,
    automation: 'forward',
    includeRaw: r.include_raw,
    subscribers,
  };
}

/** Forward routes matching an approval event: its exact code, and `*`. */
export function findForwardRoutes(
  routes: readonly ForwardRoute[],
  platform: PlatformName,
  approvalCode: string
): ForwardRoute[] {
  return routes.filter(
    (r) => r.platform === platform && (r.approvalCode === approvalCode || r.approvalCode === ANY_APPROVAL_CODE)
  );
}

/** Every subscriber once, by name. */
export function allSubscribers(routes: readonly ForwardRoute[]): ForwardSubscriber[] {
  const byName = new Map<string, ForwardSubscriber>();
  for (const r of routes) for (const s of r.subscribers) if (!byName.has(s.name)) byName.set(s.name, s);
  return [...byName.values()];
}

const duration = z.string().regex(/^\d+(ms|s|m|h|d)$/, 'must be a duration like 500ms, 5s, 1h, 1d');

/** The FORWARD_* variables, merged into config/config.ts's environment schema. */
export const forwardingEnvShape = {
  FORWARD_RETRY_INITIAL: duration.default('5s'),
  FORWARD_RETRY_BACKOFF: z.coerce.number().min(1).max(10).default(2),
  FORWARD_RETRY_MAX_INTERVAL: duration.default('1h'),
  FORWARD_RETRY_FOR: duration.default('24h'),
  FORWARD_TIMEOUT: duration.default('15s'),
};

export function forwardRetryFrom(
  e: {
    FORWARD_RETRY_INITIAL: string;
    FORWARD_RETRY_BACKOFF: number;
    FORWARD_RETRY_MAX_INTERVAL: string;
    FORWARD_RETRY_FOR: string;
    FORWARD_TIMEOUT: string;
  },
  fail: Fail
): ForwardRetry {
  const retry: ForwardRetry = {
    initialIntervalMs: parseDurationMs(e.FORWARD_RETRY_INITIAL),
    backoffCoefficient: e.FORWARD_RETRY_BACKOFF,
    maximumIntervalMs: parseDurationMs(e.FORWARD_RETRY_MAX_INTERVAL),
    retryForMs: parseDurationMs(e.FORWARD_RETRY_FOR),
    requestTimeoutMs: parseDurationMs(e.FORWARD_TIMEOUT),
  };
  if (retry.initialIntervalMs < 1) fail('invalid FORWARD_RETRY_INITIAL: must be at least 1ms');
  if (retry.requestTimeoutMs < 100) fail('invalid FORWARD_TIMEOUT: must be at least 100ms');
  if (retry.maximumIntervalMs < retry.initialIntervalMs)
    fail('invalid FORWARD_RETRY_MAX_INTERVAL: must not be shorter than FORWARD_RETRY_INITIAL');
  if (retry.retryForMs <= retry.requestTimeoutMs)
    fail('invalid FORWARD_RETRY_FOR: must be longer than FORWARD_TIMEOUT');
  return retry;
}
