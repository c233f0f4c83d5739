import type { Logger } from '../app/logger';
import type { PlatformInbound } from '../ingress/inbound';
import { dingtalkInbound } from './dingtalk/inbound';
import { feishuInbound } from './feishu/inbound';
import { wecomInbound } from './wecom/inbound';
import type { AppConfig } from '../config/config';
import type { PlatformName } from '../domain/types';
import { createDingTalkPlatform } from './dingtalk/dingtalk-platform';
import { createFeishuPlatform, type FeishuPlatform } from './feishu/feishu-platform';
import type { ApprovalPlatform } from './platform';
import { createWeComPlatform } from './wecom/wecom-platform';

export type Platforms = Partial<Record<PlatformName, ApprovalPlatform>> & { feishu: FeishuPlatform };

/** Every configured platform's client: Feishu always, DingTalk and WeCom when the configuration enables them. */
export function createPlatforms(
  config: Pick<AppConfig, 'feishu' | 'dingtalk' | 'wecom' | 'routes'>,
  opts: { logger?: Logger } = {}
): Platforms {
  const platforms: Platforms = { feishu: createFeishuPlatform(config.feishu, opts) };
  if (config.dingtalk) {
    const processCodes = config.routes.filter((r) => r.platform === 'dingtalk').map((r) => r.approvalCode);
    platforms.dingtalk = createDingTalkPlatform(config.dingtalk, { ...opts, processCodes });
  }
  if (config.wecom) platforms.wecom = createWeComPlatform(config.wecom, opts);
  return platforms;
}

/** Every configured platform's way in (webhooks and receivers), for the ingress and the stack. */
export function createInbounds(config: AppConfig): PlatformInbound[] {
  const inbounds = [feishuInbound(config)];
  if (config.dingtalk) inbounds.push(dingtalkInbound({ ...config, dingtalk: config.dingtalk }));
  if (config.wecom) inbounds.push(wecomInbound(config.wecom));
  return inbounds;
}
