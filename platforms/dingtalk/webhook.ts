import type Router from '@koa/router';
import type { Logger } from '../../app/logger';
import { decodeDingTalkRequest, dingtalkSuccessReply, type DingTalkSecurity } from './envelope';
import type { EventProcessor } from '../../ingress/event-processor';
import type { IngressMetrics } from '../../ingress/metrics';
import { rawJsonBody } from '../../ingress/middleware/raw-json-body';

/**
 * `POST /webhook/dingtalk`: the DingTalk HTTP-push callback URL. Answers the encrypted "success" JSON only once the
 * event is durably accepted (or needs nothing); a clear 4xx for what is forged or malformed; 503 (via the
 * EventProcessor) when Temporal is unreachable, so DingTalk pushes again. The outcome is also given in the
 * `x-approval-plus-outcome` header: DingTalk checks the JSON's fields, so the body carries nothing else.
 */
export function mountDingTalkWebhook(
  router: Router,
  deps: {
    security: DingTalkSecurity;
    processor: EventProcessor;
    metrics: IngressMetrics;
    logger: Logger;
    limitBytes?: number;
  }
): void {
  router.post(
    '/webhook/dingtalk',
    rawJsonBody({ limitBytes: deps.limitBytes ?? 256 * 1024 }),
    async function dingtalkWebhook(ctx) {
      const decoded = decodeDingTalkRequest(ctx.request.rawBody!, ctx.query, deps.security);
      if (decoded.kind === 'check_url') {
        deps.metrics.events.inc({ platform: 'dingtalk', type: decoded.eventType, outcome: 'check_url' });
        ctx.set('x-approval-plus-outcome', 'check_url');
        ctx.body = dingtalkSuccessReply(deps.security);
        return;
      }
      const { event } = decoded;
      try {
        const result = await deps.processor.process(event);
        deps.metrics.events.inc({ platform: 'dingtalk', type: event.eventType, outcome: result.outcome });
        deps.logger.info(
          {
            platform: 'dingtalk',
            eventId: event.eventId,
            type: event.eventType,
            outcome: result.outcome,
            workflows: result.workflowIds,
          },
          'event accepted'
        );
        ctx.set('x-approval-plus-outcome', result.outcome);
        ctx.body = dingtalkSuccessReply(deps.security);
      } catch (err) {
        deps.metrics.events.inc({ platform: 'dingtalk', type: event.eventType, outcome: 'error' });
        throw err;
      }
    }
  );
}
