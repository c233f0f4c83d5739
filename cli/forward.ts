import {
  WorkflowFailedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { allSubscribers } from '../forwarding/config';
import { FORWARD_WORKFLOW_TYPE, type ForwardDelivery, type ForwardEventInput } from '../forwarding/model';
import { startForward, type ForwardMemo } from '../forwarding/start';
import { configOrExit, connectClient, uiLink } from './common';

/**
 * `approval-plus forward list [--failed]` and `approval-plus forward resend <workflowId>`.
 *
 * A re-send is a new run, `<original id>-resend-<n>`, with the original event and the same webhook-id (so a receiver
 * that already has it can dedupe), under the retry policy configured now. The failed run stays as it was: its history
 * is the record of what the receiver answered. A failure counts as resolved once one of its re-sends delivered or is
 * still trying; `--failed` lists only the unresolved ones.
 */

const RESEND = /-resend-(\d+)$/;
const baseId = (id: string) => id.replace(RESEND, '');
const FAILED = new Set(['FAILED', 'TIMED_OUT', 'TERMINATED', 'CANCELLED']);

interface Row {
  workflowId: string;
  status: string;
  subscriber: string;
  event: string;
  started: string;
  detail?: string;
  failed: boolean;
  resendOf?: string;
  resolvedBy?: string;
}

async function failureOf(client: Client, workflowId: string, runId: string): Promise<string | undefined> {
  try {
    await client.workflow.getHandle(workflowId, runId).result();
    return undefined;
  } catch (err) {
    if (err instanceof WorkflowFailedError) return err.cause?.message ?? err.message;
    return (err as Error).message;
  }
}

/** While retrying: the attempt and the last failure of the pending delivery. */
async function progressOf(client: Client, workflowId: string): Promise<string | undefined> {
  const desc = await client.workflow.getHandle(workflowId).describe();
  const pending = desc.raw.pendingActivities?.[0];
  if (!pending) return 'starting';
  const last = pending.lastFailure?.message;
  const next = pending.nextAttemptScheduleTime?.seconds
    ? `, next attempt ${new Date(Number(pending.nextAttemptScheduleTime.seconds) * 1000).toISOString()}`
    : '';
  return `attempt ${pending.attempt ?? 1}${last ? ` — last: ${last}` : ''}${next}`;
}

function toRow(wf: WorkflowExecutionInfo): Row {
  const memo = (wf.memo ?? {}) as Partial<ForwardMemo>;
  const event = [memo.eventType, memo.instanceId, memo.status].filter(Boolean).join(' ');
  return {
    workflowId: wf.workflowId,
    status: wf.status.name.toLowerCase().replace('_', '-'),
    failed: FAILED.has(wf.status.name),
    subscriber: memo.subscriber ?? '?',
    event: event || '?',
    started: wf.startTime.toISOString().replace(/\.\d+Z$/, 'Z'),
    resendOf: memo.resendOf,
  };
}

/** The re-send of `base` that delivered, or else one still trying. */
async function resolution(client: Client, base: string): Promise<string | undefined> {
  let trying: string | undefined;
  for (let n = 1; ; n++) {
    const id = `${base}-resend-${n}`;
    try {
      const { status } = await client.workflow.getHandle(id).describe();
      if (status.name === 'COMPLETED') return id;
      if (status.name === 'RUNNING') trying = id;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return trying;
      throw err;
    }
  }
}

export async function listForwards(client: Client, opts: { failed?: boolean; limit?: number } = {}): Promise<Row[]> {
  const limit = opts.limit ?? 50;
  const query =
    `WorkflowType = '${FORWARD_WORKFLOW_TYPE}'` +
    (opts.failed ? ` AND ExecutionStatus != 'Running' AND ExecutionStatus != 'Completed'` : '');
  const rows: Row[] = [];
  const resolved = new Map<string, string | undefined>();
  let scanned = 0;
  for await (const wf of client.workflow.list({ query })) {
    if (rows.length >= limit || ++scanned > 10_000) break;
    const row = toRow(wf);
    if (FAILED.has(wf.status.name)) {
      const base = baseId(wf.workflowId);
      if (!resolved.has(base)) resolved.set(base, await resolution(client, base));
      row.resolvedBy = resolved.get(base);
      if (opts.failed && row.resolvedBy) continue;
      row.detail = await failureOf(client, wf.workflowId, wf.runId);
    } else if (wf.status.name === 'RUNNING') {
      row.detail = await progressOf(client, wf.workflowId).catch(() => undefined);
    }
    rows.push(row);
  }
  return rows;
}

/** `approval-plus forward list [--failed] [--limit n] [--json]` */
export async function runForwardList(opts: { failed?: boolean; limit?: string; json?: boolean }): Promise<void> {
  const config = configOrExit();
  const { client, close } = await connectClient(config);
  try {
    const rows = await listForwards(client, { failed: opts.failed, limit: Number(opts.limit ?? 50) || 50 });
    if (opts.json) {
      console.log(JSON.stringify(rows, null, 2));
      return;
    }
    if (rows.length === 0) {
      console.log(opts.failed ? 'no failed forwards waiting for a re-send' : 'no forwarded events yet');
      return;
    }
    const w = (k: keyof Row, min: number) => Math.max(min, ...rows.map((r) => String(r[k] ?? '').length));
    const [ws, wi, wsub] = [w('status', 6), w('workflowId', 11), w('subscriber', 10)];
    console.log(
      `${'STATUS'.padEnd(ws)}  ${'WORKFLOW ID'.padEnd(wi)}  ${'SUBSCRIBER'.padEnd(wsub)}  STARTED               EVENT`
    );
    for (const r of rows) {
      console.log(
        `${r.status.padEnd(ws)}  ${r.workflowId.padEnd(wi)}  ${r.subscriber.padEnd(wsub)}  ${r.started}  ${r.event}`
      );
      if (r.detail) console.log(`  ↳ ${r.detail}`);
      if (r.resolvedBy) console.log(`  ↳ re-sent as ${r.resolvedBy}`);
    }
    if (rows.some((r) => r.failed && !r.resolvedBy))
      console.log(`\nre-send one: npx approval-plus forward resend <workflow id>`);
  } finally {
    await close();
  }
}

async function originalInput(client: Client, workflowId: string): Promise<ForwardEventInput> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new Error(`${workflowId}: no input in its history`);
  return defaultPayloadConverter.fromPayload<ForwardEventInput>(payload);
}

/** Start the next free `<base>-resend-<n>` for a closed forward run; REJECT_DUPLICATE makes concurrent re-sends safe. */
export async function resendForward(
  client: Client,
  workflowId: string,
  current: { retry: ForwardEventInput['retry']; urls: Map<string, string> },
  opts: { force?: boolean } = {}
): Promise<{ workflowId: string; input: ForwardEventInput }> {
  let desc;
  try {
    desc = await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new Error(`no forward run ${workflowId}`);
    throw err;
  }
  if (desc.type !== FORWARD_WORKFLOW_TYPE) throw new Error(`${workflowId} is a ${desc.type}, not a forwarded event`);
  if (desc.status.name === 'RUNNING') {
    throw new Error(`${workflowId} is still retrying (${await progressOf(client, workflowId)}); re-send once it ended`);
  }
  if (desc.status.name === 'COMPLETED' && !opts.force) {
    const d = (await client.workflow.getHandle(workflowId).result()) as ForwardDelivery;
    throw new Error(
      `${workflowId} was delivered (HTTP ${d.status}, ${d.deliveredAt}); --force sends it again with the same webhook-id`
    );
  }
  const base = baseId(workflowId);
  const fixedBy = desc.status.name === 'COMPLETED' ? undefined : await resolution(client, base);
  if (fixedBy && !opts.force) {
    throw new Error(`${workflowId} was already re-sent as ${fixedBy}; --force sends it once more`);
  }
  const original = await originalInput(client, workflowId);
  const url = current.urls.get(original.subscriber);
  if (!url) throw new Error(`subscriber ${original.subscriber} is no longer in the routes file`);
  const input: ForwardEventInput = { ...original, url, retry: current.retry, resendOf: workflowId };
  for (let n = 1; n <= 1000; n++) {
    const started = await startForward(client, input, `${base}-resend-${n}`);
    if (started.outcome === 'started') return { workflowId: started.workflowId, input };
  }
  throw new Error(`${base} has been re-sent 1000 times already`);
}

/** `approval-plus forward resend <workflowId> [--force] [--wait]` */
export async function runForwardResend(workflowId: string, opts: { force?: boolean; wait?: boolean }): Promise<void> {
  const config = configOrExit();
  const { client, close } = await connectClient(config);
  try {
    const urls = new Map(allSubscribers(config.forwarding.routes).map((s) => [s.name, s.url]));
    const { workflowId: id, input } = await resendForward(
      client,
      workflowId,
      { retry: config.forwarding.retry, urls },
      opts
    );
    console.log(`re-sending ${workflowId} as ${id}`);
    console.log(
      `  to ${input.subscriber} (${input.url}), webhook-id ${input.webhookId} (unchanged: the receiver can dedupe)`
    );
    console.log(`  ${uiLink(config, id)}`);
    if (!opts.wait) {
      console.log(`follow it: npx approval-plus forward list`);
      return;
    }
    try {
      const d = (await client.workflow.getHandle(id).result()) as ForwardDelivery;
      console.log(`delivered: HTTP ${d.status} on attempt ${d.attempt}, ${d.deliveredAt}`);
    } catch (err) {
      if (err instanceof WorkflowFailedError) throw new Error(err.cause?.message ?? err.message);
      throw err;
    }
  } finally {
    await close();
  }
}
