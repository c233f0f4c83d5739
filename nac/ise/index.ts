import type { NacConfig } from '../config';
import { IseAdapter } from './adapter';

export { IseAdapter } from './adapter';

/** The Cisco ISE adapter for a validated configuration (`driver` 'sim' when pointed at the simulator). */
export function createIseAdapter(config: NacConfig, driver: 'ise' | 'sim' = 'ise'): IseAdapter {
  return new IseAdapter({
    baseUrl: config.baseUrl,
    timeoutMs: config.timeoutMs,
    maxRps: config.maxRps,
    caFile: config.caFile,
    tlsInsecure: config.tlsInsecure,
    driver,
    username: required(config.username, 'NAC_USERNAME'),
    password: required(config.password, 'NAC_PASSWORD'),
    group: config.iseGroup,
    mntUrl: config.iseMntUrl,
    mntUsername: config.iseMntUsername,
    mntPassword: config.iseMntPassword,
    openApiUrl: config.iseOpenApiUrl,
    customAttributes: config.iseCustomAttributes,
    coa: config.coa,
  });
}

function required(value: string | undefined, name: string): string {
  // loadConfig already checks these; this guards hand-built configs (tests, tools).
  if (!value) throw new Error(`missing ${name}: required for this NAC driver`);
  return value;
}
