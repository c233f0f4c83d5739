import type { AppConfig } from '../../config/config';
import type { PlatformInbound } from '../../ingress/inbound';
import { startFeishuLongConnection } from './long-connection';
import { mountFeishuWebhook } from './webhook';

/** Feishu's ways in: the request URL (`POST /webhook/feishu`), and with FEISHU_EVENT_MODE=ws the long connection. */
export function feishuInbound(config: AppConfig): PlatformInbound {
  const { appId, encryptKey, verificationToken } = config.feishu;
  return {
    platform: 'feishu',
    mountWebhook: (router, deps) =>
      mountFeishuWebhook(router, { ...deps, security: { appId, encryptKey, verificationToken } }),
    ...(config.feishu.eventMode === 'ws'
      ? { startReceiver: ({ client, logger }) => startFeishuLongConnection(config, client, logger) }
      : {}),
  };
}
