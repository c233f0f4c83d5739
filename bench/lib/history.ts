import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';

/**
 * Where an approval's time went, from its workflow history: from the workflow's start to the completion of the
 * activity that notified the requester, split into time waiting in task queues (workflow and activity tasks
 * scheduled → started) and time running (started → completed), per activity type.
 */
const T = temporal.api.enums.v1.EventType;

export interface Breakdown {
  /** WorkflowExecutionStarted → the notify activity completed. */
  totalMs: number;
  workflowTaskQueueMs: number;
  workflowTaskRunMs: number;
  activityQueueMs: number;
  activityRunMs: Record<string, number>;
  /** Attempts beyond the first, over all activities. */
  activityRetries: number;
  startedAt: number;
}

export async function historyBreakdown(
  client: Client,
  workflowId: string,
  until = 'notifyRequester'
): Promise<Breakdown> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const b: Breakdown = {
    totalMs: NaN,
    workflowTaskQueueMs: 0,
    workflowTaskRunMs: 0,
    activityQueueMs: 0,
    activityRunMs: {},
    activityRetries: 0,
    startedAt: NaN,
  };
  const scheduled = new Map<number, { name: string; at: number }>();
  const started = new Map<number, number>();
  let wftScheduledAt = 0;
  let wftStartedAt = 0;
  for (const e of history.events ?? []) {
    const at = tsToMs(e.eventTime);
    const id = Number(e.eventId);
    switch (e.eventType) {
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        b.startedAt = at;
        break;
      case T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
        wftScheduledAt = at;
        break;
      case T.EVENT_TYPE_WORKFLOW_TASK_STARTED:
        wftStartedAt = at;
        b.workflowTaskQueueMs += at - wftScheduledAt;
        break;
      case T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
      case T.EVENT_TYPE_WORKFLOW_TASK_FAILED:
      case T.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
        b.workflowTaskRunMs += at - wftStartedAt;
        break;
      case T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        scheduled.set(id, { name: e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?', at });
        break;
      case T.EVENT_TYPE_ACTIVITY_TASK_STARTED: {
        const s = scheduled.get(Number(e.activityTaskStartedEventAttributes?.scheduledEventId));
        // The started event of a retried activity carries the last attempt's start; the wait includes the retries.
        if (s) b.activityQueueMs += at - s.at;
        b.activityRetries += Math.max(0, (e.activityTaskStartedEventAttributes?.attempt ?? 1) - 1);
        started.set(Number(e.activityTaskStartedEventAttributes?.scheduledEventId), at);
        break;
      }
      case T.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: {
        const sid = Number(e.activityTaskCompletedEventAttributes?.scheduledEventId);
        const s = scheduled.get(sid);
        const name = s?.name ?? '?';
        b.activityRunMs[name] = (b.activityRunMs[name] ?? 0) + (at - (started.get(sid) ?? at));
        if (name === until) {
          b.totalMs = at - b.startedAt;
          return b;
        }
        break;
      }
      default:
        break;
    }
  }
  return b;
}
