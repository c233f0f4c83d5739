/**
 * `forwardEventWorkflow`: one platform event delivered to one subscriber, durably. One run per event and subscriber
 * (`forward-<platform>-<eventId>-<subscriber>`, REJECT_DUPLICATE); one activity, retried by Temporal with
 * exponential back-off for up to FORWARD_RETRY_FOR. Ends Completed when the receiver answered 2xx, Failed when it
 * refused the event (3xx / 4xx other than 408, 409, 429) or retries ran out; `approval-plus forward resend` re-sends.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  TimeoutFailure,
  proxyActivities,
  setCurrentDetails,
} from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import type { ForwardActivities } from '../activities/forward';
import type { ForwardDelivery, ForwardEventInput } from '../forwarding/model';

export const FORWARD_FAILED = 'ForwardFailed';

function human(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** What went wrong, in one line: the receiver's answer, or that retries ran out and the last answer. */
function reasonOf(err: unknown, retryForMs: number): string {
  let timedOut = false;
  let last: string | undefined;
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    // When the next retry would start after the schedule-to-close deadline, the server fails the activity with the
    // last attempt's failure and retry state TIMEOUT, with no TimeoutFailure in the chain: retries ran out all the same.
    if (e instanceof ActivityFailure && e.retryState === RetryState.TIMEOUT) timedOut = true;
    if (e instanceof TimeoutFailure) {
      timedOut = true;
      // The server attaches the last attempt's failure to the time-out; the SDK leaves it in the raw proto only.
      last ??= e.failure?.cause?.message ?? undefined;
    } else if (e instanceof ApplicationFailure) last = e.message;
  }
  if (timedOut) return `gave up after ${human(retryForMs)} of retries${last ? `; last: ${last}` : ''}`;
  return last ?? (err instanceof Error ? err.message : String(err));
}

export async function forwardEventWorkflow(input: ForwardEventInput): Promise<ForwardDelivery> {
  const { retry, subscriber } = input;
  const { deliverWebhook } = proxyActivities<ForwardActivities>({
    startToCloseTimeout: retry.requestTimeoutMs + 5000,
    scheduleToCloseTimeout: retry.retryForMs,
    retry: {
      initialInterval: retry.initialIntervalMs,
      backoffCoefficient: retry.backoffCoefficient,
      maximumInterval: retry.maximumIntervalMs,
    },
  });
  const until = new Date(Date.now() + retry.retryForMs).toISOString();
  setCurrentDetails(
    [
      `**Delivering** to \`${subscriber}\` (${input.url}), webhook-id \`${input.webhookId}\`.`,
      `Retried with back-off (${human(retry.initialIntervalMs)} × ${retry.backoffCoefficient}, at most ` +
        `${human(retry.maximumIntervalMs)} apart) until ${until}; the pending activity shows the attempt and the last failure.`,
    ].join('\n\n')
  );
  try {
    const delivery = await deliverWebhook.executeWithOptions(
      { summary: `POST ${input.event.eventType} to ${subscriber}` },
      [input]
    );
    setCurrentDetails(
      `**Delivered** to \`${subscriber}\`: HTTP ${delivery.status} on attempt ${delivery.attempt}, ${delivery.deliveredAt}.`
    );
    return delivery;
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const reason = reasonOf(err, retry.retryForMs);
    setCurrentDetails(
      `**Not delivered** to \`${subscriber}\`: ${reason}.\n\nRe-send once the receiver is fixed: ` +
        `\`approval-plus forward resend <this workflow id>\`.`
    );
    throw ApplicationFailure.create({
      type: FORWARD_FAILED,
      message: `not delivered to ${subscriber}: ${reason}`,
      nonRetryable: true,
      cause: err,
    });
  }
}
