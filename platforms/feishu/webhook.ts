import type Router from '@koa/router';
import type { Logger } from '../../app/logger';
import type { EventProcessor } from '../../ingress/event-processor';
import { decodeFeishuRequest, type FeishuSecurity } from './envelope';
import type { IngressMetrics } from '../../ingress/metrics';
import { rawJsonBody } from '../../ingress/middleware/raw-json-body';

/** `POST /webhook/feishu`: the Feishu event subscription request URL. */
export function mountFeishuWebhook(
  router: Router,
  deps: {
    security: FeishuSecurity;
    processor: EventProcessor;
    metrics: IngressMetrics;
    logger: Logger;
    limitBytes?: number;
  }
): void {
  router.post(
    '/webhook/feishu',
    rawJsonBody({ limitBytes: deps.limitBytes ?? 256 * 1024 }),
    async function feishuWebhook(ctx) {
      const decoded = decodeFeishuRequest(ctx.request.rawBody!, ctx.headers, deps.security);
      if (decoded.kind === 'challenge') {
        ctx.body = { challenge: decoded.challenge };
        return;
      }
      if (decoded.kind === 'unreadable') {
        // 200 so that Feishu neither redelivers it nor holds later events of the instance behind it (envelope.ts).
        deps.metrics.events.inc({ platform: 'feishu', type: 'unreadable', outcome: 'unreadable' });
        deps.logger.error(
          { platform: 'feishu', error: decoded.error.id },
          `feishu event acknowledged but not processed: ${decoded.error.message}`
        );
        ctx.body = { msg: 'success', outcome: 'unreadable', error: decoded.error.id, message: decoded.error.message };
        return;
      }
      const { event } = decoded;
      try {
        const result = await deps.processor.process(event);
        deps.metrics.events.inc({ platform: 'feishu', type: event.eventType, outcome: result.outcome });
        deps.logger.info(
          { eventId: event.eventId, type: event.eventType, outcome: result.outcome, workflows: result.workflowIds },
          'event accepted'
        );
        ctx.body = { msg: 'success', outcome: result.outcome };
      } catch (err) {
        deps.metrics.events.inc({ platform: 'feishu', type: event.eventType, outcome: 'error' });
        throw err;
      }
    }
  );
}
