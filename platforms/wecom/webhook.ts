import type Router from '@koa/router';
import getRawBody from 'raw-body';
import type { Logger } from '../../app/logger';
import type { EventProcessor } from '../../ingress/event-processor';
import { HttpError } from '../../ingress/http-error';
import type { IngressMetrics } from '../../ingress/metrics';
import { bodyTooLarge } from '../../ingress/middleware/raw-json-body';
import { decodeWeComEcho, decodeWeComRequest, type WeComSecurity } from './envelope';

/**
 * `GET,POST /webhook/wecom`: WeCom's receive-message URL. GET answers the decrypted echostr as plain text (URL
 * verification, reference dingtalk-wecom.md §5.1). POST answers 200 with an empty body — what WeCom accepts for
 * events — only once the event is durably accepted; 4xx for forged or malformed requests; 503 (via the
 * EventProcessor) when Temporal is unreachable. The outcome is in the `x-approval-plus-outcome` header.
 */
export function mountWeComWebhook(
  router: Router,
  deps: {
    security: WeComSecurity;
    processor: EventProcessor;
    metrics: IngressMetrics;
    logger: Logger;
    limitBytes?: number;
  }
): void {
  const limit = deps.limitBytes ?? 256 * 1024;

  router.get('/webhook/wecom', async function wecomVerify(ctx) {
    const plaintext = decodeWeComEcho(ctx.query, deps.security);
    deps.metrics.events.inc({ platform: 'wecom', type: 'url_verification', outcome: 'echo' });
    ctx.type = 'text/plain';
    ctx.body = plaintext;
  });

  router.post('/webhook/wecom', async function wecomWebhook(ctx) {
    const declared = Number(ctx.get('content-length'));
    if (Number.isFinite(declared) && declared > limit) throw bodyTooLarge(ctx, limit);
    let raw: Buffer;
    try {
      raw = await getRawBody(ctx.req, { limit });
    } catch (err) {
      if ((err as { type?: string }).type === 'entity.too.large') throw bodyTooLarge(ctx, limit);
      throw new HttpError(400, 'unreadable_body', 'request body could not be read');
    }
    const event = decodeWeComRequest(raw, ctx.query, deps.security);
    try {
      const result = await deps.processor.process(event);
      deps.metrics.events.inc({ platform: 'wecom', type: event.eventType, outcome: result.outcome });
      deps.logger.info(
        {
          platform: 'wecom',
          eventId: event.eventId,
          type: event.eventType,
          outcome: result.outcome,
          workflows: result.workflowIds,
        },
        'event accepted'
      );
      ctx.set('x-approval-plus-outcome', result.outcome);
      ctx.status = 200;
      ctx.type = 'text/plain';
      ctx.body = '';
    } catch (err) {
      deps.metrics.events.inc({ platform: 'wecom', type: event.eventType, outcome: 'error' });
      throw err;
    }
  });
}
