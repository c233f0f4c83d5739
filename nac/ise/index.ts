import { httpSettings, requiredSetting as required, type NacConfig } from '../config';
import type { NacHttpHooks } from '../http';
import { IseAdapter } from './adapter';

export { IseAdapter } from './adapter';

/** The Cisco ISE adapter for a validated configuration (`driver` 'sim' when pointed at the simulator). */
export function createIseAdapter(
  config: NacConfig,
  driver: 'ise' | 'sim' = 'ise',
  hooks: NacHttpHooks = {}
): IseAdapter {
  return new IseAdapter({
    ...httpSettings(config, hooks),
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
