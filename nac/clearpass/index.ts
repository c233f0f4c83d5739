import type { NacConfig } from '../config';
import { ClearPassAdapter } from './adapter';

export { ClearPassAdapter } from './adapter';

/** The Aruba ClearPass adapter for a validated configuration (`driver` 'sim' when pointed at the simulator). */
export function createClearPassAdapter(config: NacConfig, driver: 'clearpass' | 'sim' = 'clearpass'): ClearPassAdapter {
  return new ClearPassAdapter({
    baseUrl: config.baseUrl,
    timeoutMs: config.timeoutMs,
    maxRps: config.maxRps,
    caFile: config.caFile,
    tlsInsecure: config.tlsInsecure,
    driver,
    clientId: required(config.clientId, 'NAC_CLIENT_ID'),
    clientSecret: required(config.clientSecret, 'NAC_CLIENT_SECRET'),
    reauthProfiles: config.clearpassReauthProfiles,
    coa: config.coa,
  });
}

function required(value: string | undefined, name: string): string {
  // loadConfig already checks these; this guards hand-built configs (tests, tools).
  if (!value) throw new Error(`missing ${name}: required for this NAC driver`);
  return value;
}
