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
  /** ERS CSRF check ("Enable CSRF Check" in the ERS settings); off by default on every release. */
  csrf: boolean;
}

export interface ClearPassProfile {
  version: ClearPassVersion;
}

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
    ise: { version: vendor === 'ise' ? (version as IseVersion) : '3.3', csrf: knobs.iseCsrf ?? false },
    clearpass: { version: vendor === 'clearpass' ? (version as ClearPassVersion) : '6.12' },
  };
}
