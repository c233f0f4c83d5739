import { IntegrationError } from '../domain/errors';
import { formatMac } from '../domain/mac';

/**
 * A device that security has blocked (ISE Blocked List, ClearPass status Disabled) is never whitelisted by an
 * approval: the grant fails (its other devices are undone) and the requester reads this reason.
 */
export function blockedError(system: string, mac: string, where: string): IntegrationError {
  return new IntegrationError(
    `${formatMac(mac, 'colon-upper')} ${where} on the NAC: an approval never lifts a security block; ask the security team to unblock it first`,
    'conflict',
    { system, code: 'blocked' }
  );
}
