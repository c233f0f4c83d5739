import type { Context } from 'koa';
import getRawBody from 'raw-body';
import type { PlatformName } from '../../domain/types';
import type { InboundEvent } from '../../ingress/events';
import { ANSWER_DEADLINE_MS } from '../../ingress/event-processor';
import { HttpError, TemporalUnavailableError } from '../../ingress/http-error';
import type { InboundDeps } from '../../ingress/inbound';
import { bodyTooLarge } from '../../ingress/middleware/raw-json-body';

/**
 * The accept-and-answer flow the DingTalk and WeCom webhooks share: hand the decoded event to the EventProcessor,
 * count and log the outcome, put it in the `x-approval-plus-outcome` header (the body is the platform's), and answer
 * the way the platform wants (`answer`) only once the event is durably accepted. When Temporal is unavailable the
 * EventProcessor throws TemporalUnavailableError (a 503), so the platform pushes the event again; with
 * `whenUnavailable: 'outlast-deadline'` that answer is held until the platform's deadline has passed, for platforms
 * that may push again only after a time-out (WeCom 90930).
 */
export interface AcceptOptions {
  platform: PlatformName;
  /** Send the platform's acknowledgement (DingTalk: the encrypted "success" JSON; WeCom: an empty 200). */
  answer: (ctx: Context) => void;
  whenUnavailable?: 'answer-503' | 'outlast-deadline';
  /** When the request arrived (for 'outlast-deadline'); default: now. */
  receivedAt?: number;
}

export async function acceptEvent(
  ctx: Context,
  deps: Pick<InboundDeps, 'processor' | 'metrics' | 'logger'>,
  event: InboundEvent,
  opts: AcceptOptions
): Promise<void> {
  const receivedAt = opts.receivedAt ?? Date.now();
  try {
    const result = await deps.processor.process(event);
    deps.metrics.events.inc({ platform: opts.platform, type: event.eventType, outcome: result.outcome });
    deps.logger.info(
      {
        platform: opts.platform,
        eventId: event.eventId,
        type: event.eventType,
        outcome: result.outcome,
        workflows: result.workflowIds,
      },
      'event accepted'
    );
    ctx.set('x-approval-plus-outcome', result.outcome);
    opts.answer(ctx);
  } catch (err) {
    deps.metrics.events.inc({ platform: opts.platform, type: event.eventType, outcome: 'error' });
    if (err instanceof TemporalUnavailableError && opts.whenUnavailable === 'outlast-deadline') {
      // The platform has given up on this request by then and counts it as timed out, which it retries under
      // every reading of its docs; a quick 503 it may not retry.
      const wait = receivedAt + ANSWER_DEADLINE_MS[opts.platform] + 500 - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    throw err;
  }
}

/** The raw body of a non-JSON webhook (WeCom's XML), within a size limit: 413 beyond it, 400 when unreadable. */
export async function readRawBody(ctx: Context, limitBytes: number): Promise<Buffer> {
  const declared = Number(ctx.get('content-length'));
  if (Number.isFinite(declared) && declared > limitBytes) throw bodyTooLarge(ctx, limitBytes);
  try {
    return await getRawBody(ctx.req, { limit: limitBytes });
  } catch (err) {
    if ((err as { type?: string }).type === 'entity.too.large') throw bodyTooLarge(ctx, limitBytes);
    throw new HttpError(400, 'unreadable_body', 'request body could not be read');
  }
}
