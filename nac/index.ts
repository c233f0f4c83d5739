import type { NacAdapter } from './adapter';
import type { NacConfig } from './config';
import { createClearPassAdapter } from './clearpass';
import { createIseAdapter } from './ise';

export { ClearPassAdapter } from './clearpass';
export { IseAdapter } from './ise';

/**
 * The adapter for `NAC_DRIVER`. `sim` is the adapter of the vendor the simulator's profile names (`NAC_SIM_PROFILE`,
 * ISE by default) pointed at the simulator, and reports its driver as 'sim'.
 */
export function createNacAdapter(config: NacConfig): NacAdapter {
  switch (config.driver) {
    case 'ise':
      return createIseAdapter(config);
    case 'clearpass':
      return createClearPassAdapter(config);
    case 'sim':
      return config.simProfile.startsWith('clearpass')
        ? createClearPassAdapter(config, 'sim')
        : createIseAdapter(config, 'sim');
  }
}
