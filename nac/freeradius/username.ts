import { formatMac, type MacStyle } from '../../domain/mac';

/**
 * How the NAS writes a device's MAC as the MAB User-Name (`NAC_RADIUS_USERNAME_FORMAT`). FreeRADIUS's SQL module
 * looks rows up by the exact User-Name it received (`WHERE Username = '%{SQL-User-Name}'`, Debian's
 * mods-config/sql/main/postgresql/queries.conf), so the rows must be written in the format the NAS sends: Cisco
 * switches send `aabbccddeeff` by default (`mab request format attribute 1` changes it), Aruba and many access points
 * `AABBCCDDEEFF` or `aa:bb:…`, RFC 3580 style is `AA-BB-CC-DD-EE-FF`.
 */
export const RADIUS_USERNAME_FORMATS = [
  'aabbccddeeff',
  'AA-BB-CC-DD-EE-FF',
  'aa:bb:cc:dd:ee:ff',
  'AABBCCDDEEFF',
] as const;
export type RadiusUsernameFormat = (typeof RADIUS_USERNAME_FORMATS)[number];

const STYLE: Record<RadiusUsernameFormat, MacStyle | 'bare-upper'> = {
  aabbccddeeff: 'bare-lower',
  'AA-BB-CC-DD-EE-FF': 'dash-upper',
  'aa:bb:cc:dd:ee:ff': 'colon-lower',
  AABBCCDDEEFF: 'bare-upper',
};

/** The User-Name (and User-Password) a NAS sends for this normalised MAC. */
export function radiusUsername(mac: string, format: RadiusUsernameFormat): string {
  const style = STYLE[format];
  return style === 'bare-upper' ? mac.toUpperCase() : formatMac(mac, style);
}

/** The normalised MAC (12 lower-case hex digits) a User-Name stands for, or undefined when it is not a MAC. */
export function macOfUsername(username: string): string | undefined {
  const hex = username.replace(/[-:.]/g, '').toLowerCase();
  return /^[0-9a-f]{12}$/.test(hex) ? hex : undefined;
}
