import type Router from '@koa/router';
import type { InboundDeps } from '../../ingress/inbound';
import { acceptEvent, readRawBody } from '../shared/webhook';
import { decodeWeComEcho, decodeWeComRequest, type WeComSecurity } from './envelope';

/**
 * `GET,POST /webhook/wecom`: WeCom's receive-message URL. GET answers the decrypted echostr as plain text (URL
 * verification, reference dingtalk-wecom.md §5.1). POST answers 200 with an empty body — what WeCom accepts for
 * events — only once the event is durably accepted; 4xx for forged or malformed requests. When Temporal is
 * unreachable the answer (503) is held past WeCom's 5 s: doc 90930 says WeCom pushes again only after a connection
 * failure or a time-out, doc 90238 after any non-200, and a time-out is retried under both. The outcome is in the
 * `x-approval-plus-outcome` header.
 */
export function mountWeComWebhook(
  router: Router,
  deps: InboundDeps & { security: WeComSecurity; limitBytes?: number }
): void {
  const limit = deps.limitBytes ?? 256 * 1024;

  router.get('/webhook/wecom', async function wecomVerify(ctx) {
    const plaintext = decodeWeComEcho(ctx.query, deps.security);
    deps.metrics.events.inc({ platform: 'wecom', type: 'url_verification', outcome: 'echo' });
    ctx.type = 'text/plain';
    ctx.body = plaintext;
  });

  router.post('/webhook/wecom', async function wecomWebhook(ctx) {
    const receivedAt = Date.now();
    const event = decodeWeComRequest(await readRawBody(ctx, limit), ctx.query, deps.security);
    await acceptEvent(ctx, deps, event, {
      platform: 'wecom',
      receivedAt,
      whenUnavailable: 'outlast-deadline',
      answer: (c) => {
        c.status = 200;
        c.type = 'text/plain';
        c.body = '';
      },
    });
  });
}
