import { type NacConfig } from '../config/config';
import { type NacAdapter } from './adapter';
import { ClearPassAdapter } from './clearpass/adapter';
import { IseAdapter } from './ise/adapter';

export { ClearPassAdapter } from './clearpass/adapter';
export { IseAdapter } from './ise/adapter';

/** The adapter for `NAC_DRIVER`; `sim` is the ISE ERS adapter pointed at the simulator (driver reported as 'sim'). */
export function createNacAdapter(config: NacConfig): NacAdapter {
  const http = {
    baseUrl: config.baseUrl,
    timeoutMs: config.timeoutMs,
    maxRps: config.maxRps,
    caFile: config.caFile,
    tlsInsecure: config.tlsInsecure,
  };
  switch (config.driver) {
    case 'ise':
    case 'sim':
      return new IseAdapter({
        ...http,
        driver: config.driver,
        username: required(config.username, 'NAC_USERNAME'),
        password: required(config.password, 'NAC_PASSWORD'),
        group: config.iseGroup,
      });
    case 'clearpass':
      return new ClearPassAdapter({
        ...http,
        clientId: required(config.clientId, 'NAC_CLIENT_ID'),
        clientSecret: required(config.clientSecret, 'NAC_CLIENT_SECRET'),
      });
  }
}

function required(value: string | undefined, name: string): string {
  // loadConfig already checks these; this guards hand-built configs (tests, tools).
  if (!value) throw new Error(`missing ${name}: required for this NAC driver`);
  return value;
}
