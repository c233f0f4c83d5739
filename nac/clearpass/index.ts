import { httpSettings, requiredSetting as required, type NacConfig } from '../config';
import type { NacHttpHooks } from '../http';
import { ClearPassAdapter } from './adapter';

export { ClearPassAdapter } from './adapter';

/** The Aruba ClearPass adapter for a validated configuration (`driver` 'sim' when pointed at the simulator). */
export function createClearPassAdapter(
  config: NacConfig,
  driver: 'clearpass' | 'sim' = 'clearpass',
  hooks: NacHttpHooks = {}
): ClearPassAdapter {
  return new ClearPassAdapter({
    ...httpSettings(config, hooks),
    driver,
    clientId: required(config.clientId, 'NAC_CLIENT_ID'),
    clientSecret: required(config.clientSecret, 'NAC_CLIENT_SECRET'),
    reauthProfiles: config.clearpassReauthProfiles,
    coa: config.coa,
  });
}
