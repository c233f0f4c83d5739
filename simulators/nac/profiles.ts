/**
 * Version profiles of the NAC simulator (`NAC_SIM_PROFILE`): each reproduces what one vendor release does
 * differently, every quirk with the source it follows (see shared/reference/nac-field-notes.md for the findings).
 * The simulator serves both vendors' APIs on one port; the profile names the release of one vendor, the other
 * vendor's API runs as its newest profile.
 */

export type IseVersion = '2.7' | '3.3';
export type ClearPassVersion = '6.11' | '6.12';

export interface IseProfile {
  version: IseVersion;
  /**
   * ERS CSRF check (API Settings › "Enable CSRF Check for Enhanced Security"): off by default (ciscoisesdk
   * `DEFAULT_USES_CSRF_TOKEN = False`; the recorded 2.7/3.0 labs of falkowich/pyise-ers took token-less POSTs).
   */
  csrf: boolean;
  /**
   * The node the simulator plays: the PAN (ERS read/write) or a PSN (ERS read only: "you may only read objects from
   * an ISE Policy Service Node", community.cisco.com "ISE ERS API Examples").
   */
  node: IseNodeRole;
  /** The ERS account's admin group: ERS Admin (full) or ERS Operator ("GET request only", DevNet setting-up). */
  account: IseAccountRole;
  /** ERS session idle time-out; the CSRF token dies with the session (ISE 2.4 admin guide: 60 s). */
  sessionIdleMs: number;
  /** Endpoint custom attributes defined on the box (type String) before any OpenAPI POST; default none. */
  customAttributes: string[];
  /**
   * What ERS does with a custom attribute that is not defined (unknown; I): `drop` it silently (the one hint,
   * netgraph-connect "Managed Attributes": values "never reach ISE") or `reject` the whole write (400).
   */
  undefinedCustomAttributes: 'drop' | 'reject';
}

export type IseNodeRole = 'pan' | 'psn';
export type IseAccountRole = 'admin' | 'operator';

export interface ClearPassProfile {
  version: ClearPassVersion;
  /**
   * PUT /api/endpoint/{id} refuses a body without `profile` (422). The 6.12.2+ API says PUT requires
   * ['mac_address','status','profile'] (aruba/pyclearpass 6532d3c and f0fcc3d; vendor OAS 6.12.7 and 6.14
   * `EndpointReplace.required`), 6.11.5 only ['mac_address','status'] (pyclearpass 91f3274); a recorded box of unknown
   * version accepted a PUT without it (techservicesillinois/clearpass-api cassettes/test_enable_mac.yaml). So: on by
   * default on 6.12 (the spec), a knob turns it off (the recording); always off on 6.11.
   */
  putRequiresProfile: boolean;
  /**
   * The API client's operator-profile privileges as `/api/oauth/privileges` lists them, enforced per route (403
   * "Access denied"). `#` = read-only, `?` = allowed, no prefix = full (mathias-granlund/netloom
   * clearpass_privilege_mapping.md, a live CPPM).
   */
  privileges: string[];
  /**
   * A PATCH attribute value `"--For-Delete--"` deletes the attribute (CPPM 6.8.7 and later: PowerAruba/PowerArubaCP
   * 853ad46, citing the 6.8.7 release notes). Off models a box that stores the marker like any value (I: what a
   * release before the fix did), so restore's read-back check can be exercised.
   */
  deleteMarker: boolean;
}

/**
 * What an API client gets unless a test takes something away: the baseline every API client has
 * (`?api_index`, `api_docs`, `apigility`: netloom "Baseline Effective Privileges"), full endpoints (`cppm_endpoints`,
 * netloom) and the Guest Manager session privileges (`guest_sessions`, `guest_sessions_history`: netloom
 * clearpass_privilege_discovery_bruteforce_round2 — what enabling `guestmanager` grants).
 */
export const CLEARPASS_DEFAULT_PRIVILEGES: readonly string[] = [
  '?api_index',
  'api_docs',
  'apigility',
  'cppm_endpoints',
  'guest_sessions',
  'guest_sessions_history',
];

export interface NacSimProfile {
  /** The profile's name, e.g. `ise-2.7`. */
  name: NacSimProfileName;
  /** Which vendor the name selects (the adapter `NAC_DRIVER=sim` uses). */
  vendor: 'ise' | 'clearpass';
  ise: IseProfile;
  clearpass: ClearPassProfile;
}

export const NAC_SIM_PROFILES = ['ise-2.7', 'ise-3.3', 'clearpass-6.11', 'clearpass-6.12'] as const;
export type NacSimProfileName = (typeof NAC_SIM_PROFILES)[number];
export const DEFAULT_NAC_SIM_PROFILE: NacSimProfileName = 'ise-3.3';

export interface ProfileKnobs {
  /** ISE ERS CSRF check on or off (default off, as ISE ships). */
  iseCsrf?: boolean;
  /** ISE: the node ERS is asked on, `pan` (default) or `psn` (writes refused). */
  iseNode?: IseNodeRole;
  /** ISE: the ERS account's role, `admin` (default) or `operator` (GET only). */
  iseAccount?: IseAccountRole;
  /** ISE: ERS session idle time-out in ms (default 60 000). */
  iseSessionIdleMs?: number;
  /** ISE: endpoint custom attribute names defined up front (default none). */
  iseCustomAttributes?: string[];
  /** ISE: an undefined custom attribute in an ERS write is dropped (default) or rejects the write. */
  iseUndefinedCustomAttributes?: 'drop' | 'reject';
  /** ClearPass 6.12: PUT refuses a body without `profile` (default on; ignored on 6.11, which never requires it). */
  clearpassPutRequiresProfile?: boolean;
  /** ClearPass operator-profile privileges of the API client (default CLEARPASS_DEFAULT_PRIVILEGES). */
  clearpassPrivileges?: string[];
  /** ClearPass PATCH `"--For-Delete--"` deletes an attribute (default on, as since CPPM 6.8.7). */
  clearpassDeleteMarker?: boolean;
}

export function isNacSimProfileName(name: string): name is NacSimProfileName {
  return (NAC_SIM_PROFILES as readonly string[]).includes(name);
}

export function nacSimProfile(
  name: NacSimProfileName = DEFAULT_NAC_SIM_PROFILE,
  knobs: ProfileKnobs = {}
): NacSimProfile {
  const [vendor, version] = name.split('-') as ['ise' | 'clearpass', string];
  return {
    name,
    vendor,
    ise: iseProfile(vendor === 'ise' ? (version as IseVersion) : '3.3', knobs),
    clearpass: clearPassProfile(vendor === 'clearpass' ? (version as ClearPassVersion) : '6.12', knobs),
  };
}

const CLEARPASS_KNOBS = ['clearpassPutRequiresProfile', 'clearpassPrivileges', 'clearpassDeleteMarker'] as const;

/** The ClearPass knobs that are set (undefined ones left out, so a merge keeps the current value). */
export function clearpassKnobsOf(k: ProfileKnobs): ProfileKnobs {
  return Object.fromEntries(CLEARPASS_KNOBS.filter((key) => k[key] !== undefined).map((key) => [key, k[key]]));
}

/** `/_sim/profile` ClearPass knobs, or the one-line reason they are malformed. */
export function clearpassKnobsFromBody(body: Record<string, unknown> | undefined): ProfileKnobs | string {
  const b = body ?? {};
  for (const k of ['clearpassPutRequiresProfile', 'clearpassDeleteMarker'] as const) {
    if (b[k] !== undefined && typeof b[k] !== 'boolean') return `${k} must be a boolean`;
  }
  const p = b.clearpassPrivileges;
  if (p !== undefined && (!Array.isArray(p) || !p.every((x) => typeof x === 'string'))) {
    return 'clearpassPrivileges must be an array of strings';
  }
  return clearpassKnobsOf(b as ProfileKnobs);
}

function clearPassProfile(version: ClearPassVersion, knobs: ProfileKnobs): ClearPassProfile {
  return {
    version,
    putRequiresProfile: version === '6.12' && (knobs.clearpassPutRequiresProfile ?? true),
    privileges: [...(knobs.clearpassPrivileges ?? CLEARPASS_DEFAULT_PRIVILEGES)],
    deleteMarker: knobs.clearpassDeleteMarker ?? true,
  };
}

/** The ISE ERS session idle time-out: "ERS session idle timeout is 60 sec" (ISE 2.4 admin guide). */
export const ISE_SESSION_IDLE_MS = 60_000;

const ISE_KNOBS = [
  'iseCsrf',
  'iseNode',
  'iseAccount',
  'iseSessionIdleMs',
  'iseCustomAttributes',
  'iseUndefinedCustomAttributes',
] as const;

function iseProfile(version: IseVersion, knobs: ProfileKnobs): IseProfile {
  return {
    version,
    csrf: knobs.iseCsrf ?? false,
    node: knobs.iseNode ?? 'pan',
    account: knobs.iseAccount ?? 'admin',
    sessionIdleMs: knobs.iseSessionIdleMs ?? ISE_SESSION_IDLE_MS,
    customAttributes: [...(knobs.iseCustomAttributes ?? [])],
    undefinedCustomAttributes: knobs.iseUndefinedCustomAttributes ?? 'drop',
  };
}

/** The ISE knobs that are set (undefined ones left out, so a merge keeps the current value). */
export function iseKnobsOf(k: ProfileKnobs): ProfileKnobs {
  return Object.fromEntries(ISE_KNOBS.filter((key) => k[key] !== undefined).map((key) => [key, k[key]]));
}

/** `/_sim/profile` ISE knobs, or the one-line reason they are malformed. */
export function iseKnobsFromBody(body: Record<string, unknown> | undefined): ProfileKnobs | string {
  const b = body ?? {};
  if (b.iseCsrf !== undefined && typeof b.iseCsrf !== 'boolean') return 'iseCsrf must be a boolean';
  if (b.iseNode !== undefined && b.iseNode !== 'pan' && b.iseNode !== 'psn') return 'iseNode must be pan or psn';
  if (b.iseAccount !== undefined && b.iseAccount !== 'admin' && b.iseAccount !== 'operator') {
    return 'iseAccount must be admin or operator';
  }
  const idle = b.iseSessionIdleMs;
  if (idle !== undefined && !(typeof idle === 'number' && Number.isFinite(idle) && idle > 0)) {
    return 'iseSessionIdleMs must be a positive number';
  }
  const names = b.iseCustomAttributes;
  if (names !== undefined && (!Array.isArray(names) || !names.every((x) => typeof x === 'string'))) {
    return 'iseCustomAttributes must be an array of strings';
  }
  const undef = b.iseUndefinedCustomAttributes;
  if (undef !== undefined && undef !== 'drop' && undef !== 'reject') {
    return 'iseUndefinedCustomAttributes must be drop or reject';
  }
  return iseKnobsOf(b as ProfileKnobs);
}
