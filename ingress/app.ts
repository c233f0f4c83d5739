import Router from '@koa/router';
import type { Client } from '@temporalio/client';
import Koa from 'koa';
import type { Logger } from '../app/logger';
import type { AppConfig } from '../config/config';
import type { ForwardingConfig } from '../forwarding/config';
import { EventProcessor } from './event-processor';
import { createMetrics, type IngressMetrics } from './metrics';
import { errorHandler } from './middleware/error-handler';
import { mountAdminApi } from './routes/admin';
import { mountDingTalkWebhook } from './routes/dingtalk';
import { mountFeishuWebhook } from './routes/feishu';
import { mountHealth, temporalReadiness, type ReadinessCheck } from './routes/health';
import { mountWeComWebhook } from './routes/wecom';

export interface IngressDeps {
  config: Pick<AppConfig, 'routes' | 'feishu' | 'adminToken' | 'temporal'> &
    Partial<Pick<AppConfig, 'dingtalk' | 'wecom'>>;
  client: Client;
  logger: Logger;
  reminderLeadMs: number;
  nacStepTimeoutMs?: number;
  extraReadiness?: ReadinessCheck[];
  budgetMs?: number;
  metrics?: IngressMetrics;
  /** Forward routes and their retry policy (config.forwarding); none: nothing is forwarded. */
  forwarding?: ForwardingConfig;
}

/** The Koa ingress, without listening: tests drive `app.callback()`, the server module listens. */
export function createIngress(deps: IngressDeps): { app: Koa; processor: EventProcessor; metrics: IngressMetrics } {
  const metrics = deps.metrics ?? createMetrics();
  const processor = new EventProcessor({
    client: deps.client,
    routes: deps.config.routes,
    reminderLeadMs: deps.reminderLeadMs,
    nacStepTimeoutMs: deps.nacStepTimeoutMs,
    logger: deps.logger,
    budgetMs: deps.budgetMs,
    forwarding: deps.forwarding,
  });
  const app = new Koa({ proxy: false });
  app.silent = true; // the error handler logs; Koa's default would print stacks to stderr
  app.use(errorHandler(deps.logger));
  app.use(async function webhookTimer(ctx, next) {
    if (!ctx.path.startsWith('/webhook/')) return next();
    const end = metrics.webhookSeconds.startTimer({ platform: ctx.path.split('/')[2] });
    try {
      await next();
    } finally {
      end({ status: String(ctx.status) });
    }
  });
  const router = new Router();
  mountFeishuWebhook(router, {
    security: {
      appId: deps.config.feishu.appId,
      encryptKey: deps.config.feishu.encryptKey,
      verificationToken: deps.config.feishu.verificationToken,
    },
    processor,
    metrics,
    logger: deps.logger,
  });
  const dingtalk = deps.config.dingtalk;
  // Stream mode feeds the processor from app/stack.ts; the HTTP callback exists only in http mode.
  if (dingtalk && dingtalk.eventMode === 'http' && dingtalk.aesKey && dingtalk.token) {
    mountDingTalkWebhook(router, {
      security: {
        token: dingtalk.token,
        aesKey: dingtalk.aesKey,
        ownerKey: dingtalk.ownerKey,
        corpId: dingtalk.corpId,
      },
      processor,
      metrics,
      logger: deps.logger,
    });
  }
  const wecom = deps.config.wecom;
  if (wecom) {
    mountWeComWebhook(router, {
      security: { token: wecom.token, encodingAesKey: wecom.encodingAesKey, corpId: wecom.corpId },
      processor,
      metrics,
      logger: deps.logger,
    });
  }
  mountHealth(router, {
    checks: [temporalReadiness(deps.client, deps.config.temporal.namespace), ...(deps.extraReadiness ?? [])],
    metrics,
  });
  mountAdminApi(router, { client: deps.client, processor, adminToken: deps.config.adminToken });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return { app, processor, metrics };
}
