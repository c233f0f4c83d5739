import { requiredSetting as required, type NacConfig } from '../config';
import type { NacHttpHooks } from '../http';
import { FreeRadiusAdapter } from './adapter';

export { FreeRadiusAdapter } from './adapter';

/** The FreeRADIUS (SQL module on PostgreSQL) adapter for a validated configuration. */
export function createFreeRadiusAdapter(config: NacConfig, hooks: NacHttpHooks = {}): FreeRadiusAdapter {
  return new FreeRadiusAdapter({
    databaseUrl: required(config.databaseUrl, 'NAC_DATABASE_URL'),
    group: config.freeradiusGroup,
    usernameFormat: config.radiusUsernameFormat ?? 'aabbccddeeff',
    timeoutMs: config.timeoutMs,
    maxRps: config.maxRps,
    caFile: config.caFile,
    tlsInsecure: config.tlsInsecure,
    coa: config.coa,
    coaPort: config.radiusCoaPort,
    coaSecret: config.radiusCoaSecret,
    ...hooks,
  });
}
