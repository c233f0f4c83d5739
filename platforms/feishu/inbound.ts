import type { AppConfig } from '../../config/config';
import type { PlatformInbound } from '../../ingress/inbound';
import { startFeishuLongConnection } from './long-connection';
import { mountFeishuWebhook } from './webhook';

/**
 * Feishu's ways in, one at a time as the console's 订阅方式 is: the request URL (`POST /webhook/feishu`), or with
 * FEISHU_EVENT_MODE=ws the long connection (then the webhook is not mounted: nothing is sent to it).
 */
export function feishuInbound(config: AppConfig): PlatformInbound {
  const { appId, encryptKey, verificationToken } = config.feishu;
  if (config.feishu.eventMode === 'ws') {
    return {
      platform: 'feishu',
      startReceiver: ({ client, logger }) => startFeishuLongConnection(config, client, logger),
    };
  }
  return {
    platform: 'feishu',
    mountWebhook: (router, deps) =>
      mountFeishuWebhook(router, { ...deps, security: { appId, encryptKey, verificationToken } }),
  };
}
