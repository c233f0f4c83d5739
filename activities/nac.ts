import type { EndpointSnapshot, EnsureResult, GrantTag, NacAdapter } from '../nac/adapter';
import { classified } from './classify';

/**
 * NAC activities, run on the rate-limited NAC task queue. Each does one logical step so the workflow can record the
 * prior state (lookup) before the write, and register the compensation in between.
 */
export function createNacActivities(deps: { nac: NacAdapter }) {
  const { nac } = deps;
  return classified({
    async lookupEndpoint(mac: string): Promise<EndpointSnapshot | null> {
      return nac.lookup(mac);
    },
    async whitelistEndpoint(mac: string, tag: GrantTag): Promise<EnsureResult> {
      return nac.ensureWhitelisted(mac, tag);
    },
    async restoreEndpoint(
      mac: string,
      prior: EndpointSnapshot | null,
      grantId: string
    ): Promise<'restored' | 'deleted' | 'skipped'> {
      return nac.restore(mac, prior, grantId);
    },
  });
}

export type NacActivities = ReturnType<typeof createNacActivities>;
