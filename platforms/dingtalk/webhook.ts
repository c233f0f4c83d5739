import type Router from '@koa/router';
import type { InboundDeps } from '../../ingress/inbound';
import { rawJsonBody } from '../../ingress/middleware/raw-json-body';
import { acceptEvent } from '../shared/webhook';
import { decodeDingTalkRequest, dingtalkSuccessReply, type DingTalkSecurity } from './envelope';

/**
 * `POST /webhook/dingtalk`: the DingTalk HTTP-push callback URL. Answers the encrypted "success" JSON only once the
 * event is durably accepted (or needs nothing); a clear 4xx for what is forged or malformed; 503 (via the
 * EventProcessor) when Temporal is unreachable, so DingTalk pushes again ("钉钉服务器将持续推送下去", reference §1.5).
 * The outcome is also given in the `x-approval-plus-outcome` header: DingTalk checks the JSON's fields, so the body
 * carries nothing else.
 */
export function mountDingTalkWebhook(
  router: Router,
  deps: InboundDeps & { security: DingTalkSecurity; limitBytes?: number }
): void {
  const answer = (ctx: { body: unknown }) => {
    ctx.body = dingtalkSuccessReply(deps.security);
  };
  router.post(
    '/webhook/dingtalk',
    rawJsonBody({ limitBytes: deps.limitBytes ?? 256 * 1024 }),
    async function dingtalkWebhook(ctx) {
      const decoded = decodeDingTalkRequest(ctx.request.rawBody!, ctx.query, deps.security);
      if (decoded.kind === 'check_url') {
        deps.metrics.events.inc({ platform: 'dingtalk', type: decoded.eventType, outcome: 'check_url' });
        ctx.set('x-approval-plus-outcome', 'check_url');
        answer(ctx);
        return;
      }
      await acceptEvent(ctx, deps, decoded.event, { platform: 'dingtalk', answer });
    }
  );
}
