import type { AppConfig, DingTalkConfig } from '../../config/config';
import type { PlatformInbound } from '../../ingress/inbound';
import { startDingTalkStream } from './stream';
import { mountDingTalkWebhook } from './webhook';

/** DingTalk's way in: the HTTP push (`POST /webhook/dingtalk`) or, with DINGTALK_EVENT_MODE=stream, Stream mode. */
export function dingtalkInbound(config: AppConfig & { dingtalk: DingTalkConfig }): PlatformInbound {
  const dt = config.dingtalk;
  if (dt.eventMode === 'stream') {
    return { platform: 'dingtalk', startReceiver: ({ client, logger }) => startDingTalkStream(config, client, logger) };
  }
  return {
    platform: 'dingtalk',
    mountWebhook: (router, deps) => {
      if (!dt.aesKey || !dt.token) return; // loadConfig requires both in http mode
      mountDingTalkWebhook(router, {
        ...deps,
        security: { token: dt.token, aesKey: dt.aesKey, ownerKey: dt.ownerKey, corpId: dt.corpId },
      });
    },
  };
}
