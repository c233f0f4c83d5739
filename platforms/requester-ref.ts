import { createHash } from 'node:crypto';
import type { PlatformName } from '../domain/types';

/**
 * The opaque requester id stored in the `RequesterRef` search attribute: lets a leaver event find that person's live
 * grants without putting a platform user id (personal data) into Temporal's unencrypted visibility store.
 */
export function requesterRef(platform: PlatformName, requesterId: string): string {
  return createHash('sha256').update(`approval-plus:${platform}:${requesterId}`).digest('hex').slice(0, 24);
}
