import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { parseExtendUntil } from '../domain/extension';
import { toWorkflowId } from '../ingress/routes/admin';
import { cancelSignal, extendUpdate, statusQuery, type GrantStatus } from '../workflows/definitions';
import { configOrExit, connectClient, uiLink } from './common';

/** `approval-plus status <instance>` */
export async function runStatus(instance: string, opts: { json?: boolean }): Promise<void> {
  const config = configOrExit();
  const { client, close } = await connectClient(config);
  const workflowId = toWorkflowId(instance);
  try {
    const handle = client.workflow.getHandle(workflowId);
    const desc = await handle.describe();
    let status: GrantStatus | undefined;
    let result: unknown;
    if (desc.status.name === 'RUNNING') status = await handle.query(statusQuery);
    else if (desc.status.name === 'COMPLETED') result = await handle.result();
    if (opts.json) {
      console.log(JSON.stringify({ workflowId, execution: desc.status.name, status, result }, null, 2));
      return;
    }
    console.log(`${workflowId}  (${desc.status.name.toLowerCase()}, started ${desc.startTime.toISOString()})`);
    console.log(`  ${await desc.staticSummary()}`);
    const s = status ?? (result as GrantStatus | undefined);
    if (s) {
      if (status) console.log(`  phase:   ${status.phase}`);
      if ('outcome' in (s as object)) console.log(`  outcome: ${(s as unknown as { outcome: string }).outcome}`);
      console.log(`  expires: ${s.expiresAt ?? 'never'}`);
      if (status?.lastError) console.log(`  last error: ${status.lastError}`);
      for (const m of s.macs ?? [])
        console.log(`    ${m.mac.padEnd(20)} ${m.state}${m.detail ? `  (${m.detail})` : ''}`);
    }
    console.log(`  ${uiLink(config, workflowId)}`);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new Error(`no workflow ${workflowId}`);
    throw err;
  } finally {
    await close();
  }
}

/** `approval-plus cancel <instance> --reason "…"` */
export async function runCancel(instance: string, opts: { reason: string; by?: string }): Promise<void> {
  const config = configOrExit();
  const { client, close } = await connectClient(config);
  const workflowId = toWorkflowId(instance);
  try {
    await client.workflow.getHandle(workflowId).signal(cancelSignal, { reason: opts.reason, by: opts.by ?? 'cli' });
    console.log(`cancel sent to ${workflowId}: the grant is being revoked and the requester told.`);
    console.log(`follow it: npx approval-plus status ${instance}`);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError)
      throw new Error(`no live grant ${workflowId} (never started, or already ended)`);
    throw err;
  } finally {
    await close();
  }
}

/** `approval-plus extend <instance> --until 2026-12-31|30d|permanent [--reason …]` */
export async function runExtend(
  instance: string,
  opts: { until: string; reason?: string; by?: string }
): Promise<void> {
  const config = configOrExit();
  const { expiresAt } = parseExtendUntil(opts.until, Date.now());
  const { client, close } = await connectClient(config);
  const workflowId = toWorkflowId(instance);
  try {
    const status = await client.workflow.getHandle(workflowId).executeUpdate(extendUpdate, {
      args: [{ expiresAt, reason: opts.reason, by: opts.by ?? 'cli' }],
    });
    console.log(`${workflowId}: access now ${status.expiresAt ? `expires ${status.expiresAt}` : 'permanent'}.`);
    console.log('the requester was told; the reminder moves with the expiry.');
  } catch (err) {
    if (err instanceof WorkflowNotFoundError)
      throw new Error(`no live grant ${workflowId} (never started, or already ended)`);
    if (err instanceof WorkflowUpdateFailedError)
      throw new Error(`extension refused: ${(err.cause as Error | undefined)?.message ?? err.message}`);
    throw err;
  } finally {
    await close();
  }
}
