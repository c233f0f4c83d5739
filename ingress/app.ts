import Router from '@koa/router';
import type { Client } from '@temporalio/client';
import Koa from 'koa';
import type { Logger } from '../app/logger';
import type { AppConfig } from '../config/config';
import type { ForwardingConfig } from '../forwarding/config';
import type { NacAdapter } from '../nac/adapter';
import { EventProcessor } from './event-processor';
import type { PlatformInbound } from './inbound';
import { createMetrics, type IngressMetrics } from './metrics';
import { errorHandler } from './middleware/error-handler';
import { mountAdminApi } from './routes/admin';
import { mountHealth, temporalReadiness, workerPresence, type ReadinessCheck } from './routes/health';

export interface IngressDeps {
  config: Pick<AppConfig, 'routes' | 'adminToken' | 'temporal'>;
  client: Client;
  logger: Logger;
  reminderLeadMs: number;
  nacStepTimeoutMs?: number;
  extraReadiness?: ReadinessCheck[];
  budgetMs?: number;
  metrics?: IngressMetrics;
  /** Forward routes and their retry policy (config.forwarding); none: nothing is forwarded. */
  forwarding?: ForwardingConfig;
  /** The platforms' ways in whose webhooks this ingress serves (`createInbounds(config)`). */
  inbounds: PlatformInbound[];
  /** The NAC, for the operator API's read-only whois; called on first use. None: `/api/whois` answers 503. */
  nac?: () => NacAdapter;
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
  for (const inbound of deps.inbounds) inbound.mountWebhook?.(router, { processor, metrics, logger: deps.logger });
  mountHealth(router, {
    checks: [
      temporalReadiness(deps.client, deps.config.temporal.namespace),
      workerPresence(deps.client, deps.config.temporal.namespace),
      ...(deps.extraReadiness ?? []),
    ],
    metrics,
  });
  mountAdminApi(router, { client: deps.client, processor, adminToken: deps.config.adminToken, nac: deps.nac });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return { app, processor, metrics };
}
