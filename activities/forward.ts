import { activityInfo, cancellationSignal, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { Agent, request } from 'undici';
import { parseRetryAfter } from '../domain/errors';
import type { ForwardSubscriber } from '../forwarding/config';
import { forwardBody, type ForwardDelivery, type ForwardEventInput } from '../forwarding/model';
import { secretKey, signedHeaders } from '../forwarding/signing';

/** Failure types of `deliverWebhook`, as the Temporal UI and `forward list` show them. */
export const FORWARD_FAILURE = {
  /** 3xx, or a 4xx other than 408/409/429: the receiver refused this event; retrying will not help. */
  rejected: 'ForwardRejected',
  /** 408/409/429/5xx: retried with back-off (429/503 honour Retry-After). */
  retryableStatus: 'ForwardRetryableStatus',
  /** Connection refused/reset, DNS, TLS, or no answer within FORWARD_TIMEOUT: retried. */
  unreachable: 'ForwardUnreachable',
  /** This worker has no subscriber of that name (routes file changed?): retried, another worker may have it. */
  unknownSubscriber: 'ForwardUnknownSubscriber',
} as const;

const RETRYABLE_4XX = new Set([408, 409, 429]);
const SNIPPET_BYTES = 300;

/**
 * Forwarding's one activity: POST the event to one subscriber, signed the Standard Webhooks way with a fresh
 * timestamp on every attempt and the same `webhook-id` on all of them. 2xx = delivered; every other outcome becomes
 * an ApplicationFailure whose retryability the workflow's retry policy acts on.
 */
export function createForwardActivities(deps: { subscribers: ForwardSubscriber[]; userAgent?: string }) {
  const byName = new Map(deps.subscribers.map((s) => [s.name, { url: s.url, key: secretKey(s.secret) }]));
  const agent = new Agent({ keepAliveTimeout: 10_000, connect: { timeout: 10_000 } });
  const userAgent = deps.userAgent ?? 'ApprovalPlus-Forwarder/1';

  return {
    async deliverWebhook(input: ForwardEventInput): Promise<ForwardDelivery> {
      const { attempt } = activityInfo();
      const sub = byName.get(input.subscriber);
      if (!sub) {
        throw ApplicationFailure.create({
          type: FORWARD_FAILURE.unknownSubscriber,
          message: `subscriber ${input.subscriber} is not in this worker's routes file`,
        });
      }
      const body = forwardBody(input);
      const headers = {
        'content-type': 'application/json',
        'user-agent': userAgent,
        ...signedHeaders(sub.key, input.webhookId, body),
      };
      const timeoutMs = input.retry.requestTimeoutMs;
      let status: number;
      let retryAfter: string | undefined;
      let location: string | undefined;
      let snippet = '';
      try {
        const res = await request(sub.url, {
          method: 'POST',
          headers,
          body,
          dispatcher: agent,
          signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), cancellationSignal()]),
        });
        status = res.statusCode;
        retryAfter = header(res.headers['retry-after']);
        location = header(res.headers.location);
        snippet = await readSnippet(res.body);
      } catch (err) {
        if (cancellationSignal().aborted) throw err;
        const reason = (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : networkReason(err);
        throw ApplicationFailure.create({
          type: FORWARD_FAILURE.unreachable,
          message: `${input.subscriber} unreachable (attempt ${attempt}): ${reason}`,
          details: [{ subscriber: input.subscriber, url: sub.url, attempt }],
        });
      }

      const said = snippet ? `: ${snippet}` : '';
      if (status >= 200 && status < 300) {
        log.info('event forwarded', { subscriber: input.subscriber, webhookId: input.webhookId, status, attempt });
        return { webhookId: input.webhookId, url: sub.url, status, attempt, deliveredAt: new Date().toISOString() };
      }
      const details = [{ subscriber: input.subscriber, url: sub.url, status, attempt }];
      if (status >= 500 || RETRYABLE_4XX.has(status)) {
        const afterMs = parseRetryAfter(retryAfter);
        const { initialIntervalMs, maximumIntervalMs } = input.retry;
        throw ApplicationFailure.create({
          type: FORWARD_FAILURE.retryableStatus,
          message: `${input.subscriber} answered HTTP ${status} (attempt ${attempt})${said}`,
          details,
          // The receiver's own back-off, kept within the configured interval bounds.
          nextRetryDelay:
            afterMs === undefined ? undefined : Math.min(maximumIntervalMs, Math.max(initialIntervalMs, afterMs)),
        });
      }
      const what =
        status >= 300 && status < 400
          ? `HTTP ${status} redirect${location ? ` to ${location}` : ''} (redirects are not followed: update the subscriber's url)`
          : `HTTP ${status}${said}`;
      throw ApplicationFailure.create({
        type: FORWARD_FAILURE.rejected,
        message: `${input.subscriber} refused the event: ${what}`,
        nonRetryable: true,
        details,
      });
    },
  };
}

export type ForwardActivities = ReturnType<typeof createForwardActivities>;

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The start of the receiver's answer, one line, for the failure message; the rest is discarded. */
async function readSnippet(body: AsyncIterable<Buffer> & { destroy(): unknown }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= SNIPPET_BYTES) break;
  }
  body.destroy();
  const text = Buffer.concat(chunks).subarray(0, SNIPPET_BYTES).toString('utf8').replace(/\s+/g, ' ').trim();
  return size > SNIPPET_BYTES ? `${text}…` : text;
}

function networkReason(err: unknown): string {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR') return `${code}${e instanceof Error ? ` (${e.message})` : ''}`;
  }
  return (err as Error).message;
}
