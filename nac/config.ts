import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { bool, optionalNonEmpty, port, url } from '../config/env-values';
import { isNacSimProfileName, NAC_SIM_PROFILES, type NacSimProfileName } from '../simulators/nac/profiles';
import type { CoaMode, NacDriver } from './adapter';
import { RADIUS_USERNAME_FORMATS, type RadiusUsernameFormat } from './freeradius/username';
import type { NacHttpHooks } from './http';

/**
 * NAC_* variables (config/config.ts spreads `nacEnvShape` into its schema and calls `buildNacConfig`, turning
 * `fail(line)` into its one-line ConfigError). In sandbox mode the NAC simulator stands in for the appliance:
 * `NAC_DRIVER=sim` talks to it with the adapter of the vendor its profile (`NAC_SIM_PROFILE`) names, and `ise` or
 * `clearpass` without `NAC_BASE_URL` talk to it too.
 */

export interface NacConfig {
  driver: NacDriver;
  /** ISE: the PAN's ERS (`https://ise-pan:9060`); ClearPass: `https://cppm.example.com`. */
  baseUrl: string;
  /** ISE ERS admin (ERS Admin group). */
  username?: string;
  password?: string;
  /** ClearPass API client (client credentials grant). */
  clientId?: string;
  clientSecret?: string;
  /** The ISE endpoint identity group that is the whitelist. */
  iseGroup: string;
  maxRps: number;
  timeoutMs: number;
  caFile?: string;
  tlsInsecure: boolean;
  /** Change of Authorization after a device is whitelisted or revoked. */
  coa: CoaMode;
  /** ISE Monitoring (MnT) REST API, for sessions and CoA: its base URL and an account with the MnT Admin role. */
  iseMntUrl: string;
  iseMntUsername?: string;
  iseMntPassword?: string;
  /** ISE's OpenAPI (`/api/v1`, port 443), where endpoint custom attributes are defined. */
  iseOpenApiUrl: string;
  /** `auto`: write the tag into custom attributes when they are defined; `create`: define them; `off`: never. */
  iseCustomAttributes: 'auto' | 'create' | 'off';
  /**
   * ClearPass: the RADIUS CoA enforcement profile(s) a re-authentication applies (`NAC_COA=reauth`), e.g.
   * `[Cisco - Reauthenticate Session]`; ClearPass's session-action CoA cannot run without one.
   */
  clearpassReauthProfiles: string[];
  /** FreeRADIUS: its SQL database (`postgres://…`), the group with the VLAN replies, the NAS's User-Name format. */
  databaseUrl?: string;
  freeradiusGroup?: string;
  radiusUsernameFormat?: RadiusUsernameFormat;
  /** FreeRADIUS CoA: the NASes' Dynamic Authorization port and the secret for a NAS not in the `nas` table. */
  radiusCoaPort?: number;
  radiusCoaSecret?: string;
  /** The simulator's version profile (sandbox, tests) and whether its ERS CSRF check is on. */
  simProfile: NacSimProfileName;
  simIseCsrf: boolean;
}

export const NAC_SANDBOX_DEFAULTS = {
  NAC_USERNAME: 'ers-admin',
  NAC_PASSWORD: 'sandbox-ers-password',
  NAC_CLIENT_ID: 'approval-plus',
  NAC_CLIENT_SECRET: 'sandbox-client-secret',
} as const;

/** A RADIUS CoA template ClearPass ships (I: the name as ClearPass lists it; any configured one works the same). */
const SANDBOX_REAUTH_PROFILE = '[Cisco - Reauthenticate Session]';

export const nacEnvShape = {
  NAC_DRIVER: optionalNonEmpty.pipe(z.enum(['ise', 'clearpass', 'freeradius', 'sim']).optional()),
  NAC_BASE_URL: optionalNonEmpty.pipe(url.optional()),
  NAC_USERNAME: optionalNonEmpty,
  NAC_PASSWORD: optionalNonEmpty,
  NAC_CLIENT_ID: optionalNonEmpty,
  NAC_CLIENT_SECRET: optionalNonEmpty,
  NAC_ISE_GROUP: z.string().min(1).default('ApprovalPlus-WiFi'),
  NAC_MAX_RPS: z.coerce.number().positive().max(1000).default(10),
  NAC_SIM_PORT: port.default(3200),
  NAC_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(15_000),
  NAC_CA_FILE: optionalNonEmpty,
  NAC_TLS_INSECURE: bool.default(false),
  NAC_COA: z.enum(['reauth', 'disconnect', 'off']).default('reauth'),
  NAC_ISE_MNT_URL: optionalNonEmpty.pipe(url.optional()),
  NAC_ISE_MNT_USERNAME: optionalNonEmpty,
  NAC_ISE_MNT_PASSWORD: optionalNonEmpty,
  NAC_ISE_OPENAPI_URL: optionalNonEmpty.pipe(url.optional()),
  NAC_ISE_CUSTOM_ATTRIBUTES: z.enum(['auto', 'create', 'off']).default('auto'),
  NAC_CLEARPASS_REAUTH_PROFILE: optionalNonEmpty,
  NAC_SIM_PROFILE: optionalNonEmpty.pipe(
    z
      .string()
      .refine(isNacSimProfileName, `must be one of ${NAC_SIM_PROFILES.join(', ')}`)
      .optional()
  ),
  NAC_SIM_ISE_CSRF: bool.default(false),
  NAC_DATABASE_URL: optionalNonEmpty.pipe(
    z
      .string()
      .refine((v) => /^postgres(ql)?:\/\/[^/]/.test(v) && URL.canParse(v), 'must be a postgres:// URL')
      .optional()
  ),
  NAC_FREERADIUS_GROUP: optionalNonEmpty,
  NAC_RADIUS_USERNAME_FORMAT: z.enum(RADIUS_USERNAME_FORMATS).default('aabbccddeeff'),
  NAC_RADIUS_COA_PORT: port.default(3799),
  NAC_RADIUS_COA_SECRET: optionalNonEmpty,
};

const _envSchema = z.object(nacEnvShape);
type NacEnv = z.infer<typeof _envSchema>;

export function buildNacConfig(e: NacEnv, ctx: { sandbox: boolean; fail: (line: string) => never }): NacConfig {
  const pick = <K extends keyof typeof NAC_SANDBOX_DEFAULTS>(k: K): string | undefined =>
    e[k] ?? (ctx.sandbox ? NAC_SANDBOX_DEFAULTS[k] : undefined);
  const driver = e.NAC_DRIVER ?? (ctx.sandbox ? 'sim' : undefined);
  if (!driver) return ctx.fail('missing NAC_DRIVER: set ise, clearpass, freeradius or sim');
  if (driver === 'freeradius' && !e.NAC_DATABASE_URL) {
    return ctx.fail(
      "missing NAC_DATABASE_URL: required for NAC_DRIVER=freeradius (FreeRADIUS's PostgreSQL database, postgres://user:password@host/radius)"
    );
  }
  const simUrl = `http://127.0.0.1:${e.NAC_SIM_PORT}`;
  // FreeRADIUS is reached by SQL, not HTTP: no base URL (its HTTP settings are unused).
  const baseUrl = e.NAC_BASE_URL ?? (driver === 'sim' || driver === 'freeradius' || ctx.sandbox ? simUrl : undefined);
  if (!baseUrl) return ctx.fail(`missing NAC_BASE_URL: required for NAC_DRIVER=${driver}`);
  const simProfile =
    (e.NAC_SIM_PROFILE as NacSimProfileName | undefined) ?? (driver === 'clearpass' ? 'clearpass-6.12' : 'ise-3.3');
  const vendor = driver === 'sim' ? (simProfile.startsWith('clearpass') ? 'clearpass' : 'ise') : driver;
  const username = pick('NAC_USERNAME');
  const password = pick('NAC_PASSWORD');
  const clientId = pick('NAC_CLIENT_ID');
  const clientSecret = pick('NAC_CLIENT_SECRET');
  if (vendor === 'ise' && (!username || !password)) {
    ctx.fail(`missing ${username ? 'NAC_PASSWORD' : 'NAC_USERNAME'}: required for NAC_DRIVER=${driver}`);
  }
  if (vendor === 'clearpass' && (!clientId || !clientSecret)) {
    ctx.fail(`missing ${clientId ? 'NAC_CLIENT_SECRET' : 'NAC_CLIENT_ID'}: required for NAC_DRIVER=${driver}`);
  }
  const reauthProfiles = (e.NAC_CLEARPASS_REAUTH_PROFILE ?? (ctx.sandbox ? SANDBOX_REAUTH_PROFILE : ''))
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (vendor === 'clearpass' && e.NAC_COA === 'reauth' && reauthProfiles.length === 0) {
    ctx.fail(
      'missing NAC_CLEARPASS_REAUTH_PROFILE: NAC_COA=reauth on ClearPass needs the enforcement profile that re-authenticates a session (e.g. "[Cisco - Reauthenticate Session]"), or set NAC_COA=disconnect'
    );
  }
  if (e.NAC_CA_FILE) {
    try {
      readFileSync(e.NAC_CA_FILE);
    } catch {
      ctx.fail(`invalid NAC_CA_FILE: cannot read ${e.NAC_CA_FILE}`);
    }
  }
  return {
    driver,
    baseUrl,
    username,
    password,
    clientId,
    clientSecret,
    iseGroup: e.NAC_ISE_GROUP,
    maxRps: e.NAC_MAX_RPS,
    timeoutMs: e.NAC_TIMEOUT_MS,
    caFile: e.NAC_CA_FILE,
    tlsInsecure: e.NAC_TLS_INSECURE,
    coa: e.NAC_COA,
    // MnT and the OpenAPI answer on the node's HTTPS port (443), not ERS's 9060; the simulator serves all on one.
    iseMntUrl: e.NAC_ISE_MNT_URL ?? withoutErsPort(baseUrl),
    iseMntUsername: e.NAC_ISE_MNT_USERNAME ?? username,
    iseMntPassword: e.NAC_ISE_MNT_PASSWORD ?? password,
    iseOpenApiUrl: e.NAC_ISE_OPENAPI_URL ?? withoutErsPort(baseUrl),
    iseCustomAttributes: e.NAC_ISE_CUSTOM_ATTRIBUTES,
    clearpassReauthProfiles: reauthProfiles,
    databaseUrl: e.NAC_DATABASE_URL,
    freeradiusGroup: e.NAC_FREERADIUS_GROUP,
    radiusUsernameFormat: e.NAC_RADIUS_USERNAME_FORMAT,
    radiusCoaPort: e.NAC_RADIUS_COA_PORT,
    radiusCoaSecret: e.NAC_RADIUS_COA_SECRET,
    simProfile,
    simIseCsrf: e.NAC_SIM_ISE_CSRF,
  };
}

/** `https://ise-pan:9060` → `https://ise-pan` (the same node's port 443). */
function withoutErsPort(baseUrl: string): string {
  const u = new URL(baseUrl);
  if (u.port === '9060') u.port = '';
  return u.toString().replace(/\/+$/, '');
}

/** The HTTP settings every vendor's client takes from the configuration, plus the caller's hooks (metrics, cancel). */
export function httpSettings(config: NacConfig, hooks: NacHttpHooks = {}) {
  const { baseUrl, timeoutMs, maxRps, caFile, tlsInsecure } = config;
  return { baseUrl, timeoutMs, maxRps, caFile, tlsInsecure, ...hooks };
}

/** A credential a vendor factory needs: loadConfig checks it already; this guards hand-built configs (tests, tools). */
export function requiredSetting(value: string | undefined, name: string): string {
  if (!value) throw new Error(`missing ${name}: required for this NAC driver`);
  return value;
}
