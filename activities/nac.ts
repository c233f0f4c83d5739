import { Context } from '@temporalio/activity';
import type {
  CoaMode,
  CoaResult,
  CreateResult,
  EndpointSnapshot,
  EnsureResult,
  GrantTag,
  NacAdapter,
} from '../nac/adapter';
import { classified } from './classify';

/**
 * NAC activities, run on the rate-limited NAC task queue. Each does one logical step, so the workflow records the
 * prior state before any write that could replace it, and registers the compensation in between.
 */
export function createNacActivities(deps: { nac: NacAdapter; coa: CoaMode }) {
  const { nac } = deps;
  return classified({
    async lookupEndpoint(mac: string): Promise<EndpointSnapshot | null> {
      return nac.lookup(mac);
    },
    /** One request for a device the NAC has never seen; `exists` hands back the prior state to record. */
    async createWhitelisted(mac: string, tag: GrantTag): Promise<CreateResult> {
      return nac.createWhitelisted(mac, tag);
    },
    /**
     * Whitelist an existing endpoint. `known` (what the create step just read) saves a read on the first attempt;
     * a retry reads again, since the endpoint may have changed (or our own write may have committed) meanwhile.
     */
    async whitelistEndpoint(mac: string, tag: GrantTag, known?: EndpointSnapshot): Promise<EnsureResult> {
      const firstAttempt = Context.current().info.attempt === 1;
      return nac.ensureWhitelisted(mac, tag, firstAttempt ? known : undefined);
    },
    async restoreEndpoint(
      mac: string,
      prior: EndpointSnapshot | null,
      grantId: string
    ): Promise<'restored' | 'deleted' | 'skipped'> {
      return nac.restore(mac, prior, grantId);
    },
    /** Change of Authorization after a device's access changed, as `NAC_COA` says (read when it runs). */
    async changeOfAuthorization(mac: string): Promise<CoaResult> {
      if (deps.coa === 'off') return { outcome: 'off' };
      return nac.changeOfAuthorization(mac, deps.coa);
    },
  });
}

export type NacActivities = ReturnType<typeof createNacActivities>;
