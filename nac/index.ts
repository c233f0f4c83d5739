import type { NacAdapter } from './adapter';
import type { NacConfig } from './config';
import { createClearPassAdapter } from './clearpass';
import { createFreeRadiusAdapter } from './freeradius';
import { createIseAdapter } from './ise';
import type { NacHttpHooks } from './http';

export { ClearPassAdapter } from './clearpass';
export { FreeRadiusAdapter } from './freeradius';
export { IseAdapter } from './ise';

/**
 * The adapter for `NAC_DRIVER`. `sim` is the adapter of the vendor the simulator's profile names (`NAC_SIM_PROFILE`,
 * ISE by default) pointed at the simulator, and reports its driver as 'sim'. `hooks` reach every HTTP client the
 * adapter makes (the worker's NAC metrics and activity cancellation).
 */
export function createNacAdapter(config: NacConfig, hooks: NacHttpHooks = {}): NacAdapter {
  switch (config.driver) {
    case 'ise':
      return createIseAdapter(config, 'ise', hooks);
    case 'clearpass':
      return createClearPassAdapter(config, 'clearpass', hooks);
    case 'freeradius':
      return createFreeRadiusAdapter(config, hooks);
    case 'sim':
      return config.simProfile.startsWith('clearpass')
        ? createClearPassAdapter(config, 'sim', hooks)
        : createIseAdapter(config, 'sim', hooks);
  }
}
