import { readFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { percentile, r, table } from './stats';

/**
 * Where an approval's time goes, step by step, from its workflow history (B2's `--breakdown`, and standalone over
 * the histories B2 saved: `node --import tsx bench/lib/where-time-goes.ts .bench-out/b2-histories.json`).
 *
 * A history up to the requester's message is a chain of round trips through the task queues:
 *   event posted → WorkflowExecutionStarted → [workflow task: scheduled → started → completed]
 *   → [activity: scheduled → started → completed] → [workflow task …] → … → notifyRequester completed.
 * Each workflow task and each activity gives a `wait` segment (scheduled → started: the server's dispatch through its
 * task queue, and the poller's turn) and a `run` segment (started → completed: the worker's own work plus the
 * completion's round trip). Segments are named by their position on the path (`WFT 2`, `activity createWhitelisted`),
 * so the same step of every approval lines up; the first segment (`event → started`) needs the event's send time.
 * The steps after the message (the audit comment, the workflow task that makes the grant active) are reported too:
 * they are not part of B2's latency, but show what the workflow does after it.
 */
const T = temporal.api.enums.v1.EventType;

export interface Segment {
  name: string;
  ms: number;
  /** Before the requester's message was sent (part of B2's latency), or after it. */
  beforeMessage: boolean;
}

type History = temporal.api.history.v1.IHistory;

/** The ordered segments of one history; `sentAt` (ms) adds the ingress part (event posted → workflow started). */
export function segmentsOf(history: History, sentAt?: number, until = 'notifyRequester'): Segment[] {
  const out: Segment[] = [];
  const scheduled = new Map<number, { name: string; at: number }>();
  const started = new Map<number, number>();
  let wftScheduledAt = 0;
  let wftStartedAt = 0;
  let wft = 0;
  let before = true;
  let stop = false;
  for (const e of history.events ?? []) {
    if (stop) break;
    const at = tsToMs(e.eventTime);
    switch (e.eventType) {
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        if (sentAt !== undefined)
          out.push({ name: 'event posted → workflow started', ms: at - sentAt, beforeMessage: before });
        break;
      case T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
        wftScheduledAt = at;
        break;
      case T.EVENT_TYPE_WORKFLOW_TASK_STARTED:
        wft += 1;
        wftStartedAt = at;
        out.push({ name: `WFT ${wft} wait`, ms: at - wftScheduledAt, beforeMessage: before });
        break;
      case T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
      case T.EVENT_TYPE_WORKFLOW_TASK_FAILED:
      case T.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
        out.push({ name: `WFT ${wft} run`, ms: at - wftStartedAt, beforeMessage: before });
        break;
      case T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: {
        const name = e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
        scheduled.set(Number(e.eventId), { name, at });
        break;
      }
      case T.EVENT_TYPE_ACTIVITY_TASK_STARTED: {
        const sid = Number(e.activityTaskStartedEventAttributes?.scheduledEventId);
        const s = scheduled.get(sid);
        started.set(sid, at);
        // A retried activity's started event carries the last attempt's start: the wait includes the retries.
        if (s) out.push({ name: `${s.name} wait`, ms: at - s.at, beforeMessage: before });
        break;
      }
      case T.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: {
        const sid = Number(e.activityTaskCompletedEventAttributes?.scheduledEventId);
        const s = scheduled.get(sid);
        out.push({ name: `${s?.name ?? '?'} run`, ms: at - (started.get(sid) ?? at), beforeMessage: before });
        if (s?.name === until) before = false;
        else if (!before && s) stop = true; // one step past the message is enough to see what follows
        break;
      }
      default:
        break;
    }
  }
  return out;
}

/** Activities started straight from the workflow task's completion (eager dispatch) show as a 0-ms wait. */
export interface SegmentSummary {
  name: string;
  beforeMessage: boolean;
  count: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
}

/** Per segment name (in path order), over many histories. */
export function summariseSegments(all: Segment[][]): SegmentSummary[] {
  const order: string[] = [];
  const byName = new Map<string, { before: boolean; values: number[] }>();
  for (const segs of all) {
    for (const s of segs) {
      let e = byName.get(s.name);
      if (!e) {
        e = { before: s.beforeMessage, values: [] };
        byName.set(s.name, e);
        order.push(s.name);
      }
      e.values.push(s.ms);
    }
  }
  return order.map((name) => {
    const { before, values } = byName.get(name)!;
    const sorted = [...values].sort((a, b) => a - b);
    return {
      name,
      beforeMessage: before,
      count: sorted.length,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      mean: sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1),
    };
  });
}

/** Totals per kind of segment (the ingress, queue waits, worker runs), per approval, up to the message. */
export function kindTotals(all: Segment[][]): SegmentSummary[] {
  const kinds: [string, (s: Segment) => boolean][] = [
    ['ingress (event → started)', (s) => s.name.startsWith('event posted')],
    ['workflow tasks waiting', (s) => /^WFT \d+ wait$/.test(s.name)],
    ['workflow tasks running', (s) => /^WFT \d+ run$/.test(s.name)],
    ['activities waiting', (s) => !s.name.startsWith('WFT') && s.name.endsWith(' wait')],
    ['activities running', (s) => !s.name.startsWith('WFT') && !s.name.startsWith('event') && s.name.endsWith(' run')],
  ];
  return summariseSegments(
    all.map((segs) =>
      kinds.map(([name, match]) => ({
        name,
        beforeMessage: true,
        ms: segs.filter((s) => s.beforeMessage && match(s)).reduce((a, s) => a + s.ms, 0),
      }))
    )
  );
}

export function breakdownTable(all: Segment[][]): string {
  const rows = (list: SegmentSummary[]) => list.map((s) => [s.name, s.count, r(s.p50), r(s.p90), r(s.p99), r(s.mean)]);
  const segs = summariseSegments(all);
  const before = segs.filter((s) => s.beforeMessage);
  const after = segs.filter((s) => !s.beforeMessage);
  return [
    table([
      ['step, up to the requester’s message (from histories)', 'n', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms'],
      ...rows(before),
      ['sum of the step means', '', '', '', '', r(before.reduce((a, s) => a + s.mean, 0))],
    ]),
    table([['after the message (not in B2)', 'n', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms'], ...rows(after)]),
    table([
      ['per approval, up to the message', 'n', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms'],
      ...rows(kindTotals(all)),
    ]),
  ].join('\n\n');
}

/** Fetch the histories of a run (for saving) — raw protobuf objects as JSON. */
export async function fetchHistories(
  client: Client,
  runs: { workflowId: string; sentAt: number }[],
  limit = 8
): Promise<{ workflowId: string; sentAt: number; history: History }[]> {
  const out: { workflowId: string; sentAt: number; history: History }[] = new Array(runs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, runs.length) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= runs.length) return;
        const run = runs[i]!;
        out[i] = { ...run, history: await client.workflow.getHandle(run.workflowId).fetchHistory() };
      }
    })
  );
  return out;
}

/** Histories as written by B2 (`.bench-out/b2-histories.json`): protobuf JSON, turned back into messages. */
export function readHistories(file: string): { workflowId: string; sentAt: number; history: History }[] {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as { workflowId: string; sentAt: number; history: unknown }[];
  return raw.map((h) => ({
    ...h,
    history: temporal.api.history.v1.History.fromObject(h.history as Record<string, unknown>),
  }));
}

export function historiesJson(list: { workflowId: string; sentAt: number; history: History }[]): string {
  return JSON.stringify(
    list.map((h) => ({
      workflowId: h.workflowId,
      sentAt: h.sentAt,
      history: temporal.api.history.v1.History.toObject(h.history as temporal.api.history.v1.History, {
        longs: String,
        enums: Number,
        defaults: false,
      }),
    }))
  );
}

if (require.main === module) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error('usage: node --import tsx bench/lib/where-time-goes.ts <b2-histories.json>…');
    process.exit(2);
  }
  for (const file of files) {
    const list = readHistories(file);
    console.log(`${file}: ${list.length} histories\n`);
    console.log(breakdownTable(list.map((h) => segmentsOf(h.history, h.sentAt))));
    console.log('');
  }
}
