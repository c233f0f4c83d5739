import type { WeComConfig } from '../../config/config';
import type { PlatformInbound } from '../../ingress/inbound';
import { mountWeComWebhook } from './webhook';

/** WeCom's way in: the app's receive-message URL (`GET,POST /webhook/wecom`). */
export function wecomInbound(wecom: WeComConfig): PlatformInbound {
  return {
    platform: 'wecom',
    mountWebhook: (router, deps) =>
      mountWeComWebhook(router, {
        ...deps,
        security: { token: wecom.token, encodingAesKey: wecom.encodingAesKey, corpId: wecom.corpId },
      }),
  };
}
