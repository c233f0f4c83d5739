import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { parseDurationMs } from '../domain/duration';
import { startOptionsFor, timingFor } from '../ingress/event-processor';
import { createNacAdapter } from '../nac';
import { createFeishuPlatform } from '../platforms/feishu/feishu-platform';
import { workflowIdFor } from '../workflows/definitions';
import { configOrExit, connectClient } from './common';

async function isLive(client: Client, workflowId: string): Promise<boolean | undefined> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

/**
 * `approval-plus reconcile [--since 24h] [--fix]`: approved instances of routed codes with no workflow are started
 * (the REJECT_DUPLICATE id policy makes a second reconcile start nothing); whitelist entries tagged by ApprovalPlus
 * whose grant is not live are reported, and removed with --fix.
 */
export async function runReconcile(opts: { since: string; fix?: boolean }): Promise<void> {
  const config = configOrExit();
  const sinceMs = parseDurationMs(opts.since);
  const { client, close } = await connectClient(config);
  const platform = createFeishuPlatform(config.feishu);
  const nac = createNacAdapter(config.nac);
  const now = Date.now();
  let started = 0;
  let checked = 0;
  try {
    for (const route of config.routes.filter((r) => r.platform === 'feishu')) {
      const ids = (await platform.listInstances?.(route.approvalCode, now - sinceMs, now)) ?? [];
      process.stderr.write(`approval ${route.approvalCode}: ${ids.length} instance(s) in the last ${opts.since}\n`);
      for (const id of ids) {
        checked++;
        const workflowId = workflowIdFor('feishu', id);
        if ((await isLive(client, workflowId)) !== undefined) continue;
        const instance = await platform.getInstance(id);
        if (instance.status !== 'APPROVED') continue;
        try {
          await client.workflow.start(
            'nacWhitelistWorkflow',
            startOptionsFor(route, 'feishu', id, timingFor(config), { source: 'reconcile' })
          );
          started++;
          console.log(`started  ${workflowId}  (approved, no workflow)`);
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        }
      }
    }
    const tagged = await nac.listTagged();
    let orphans = 0;
    for (const e of tagged) {
      if (!e.tag || (await isLive(client, e.tag.grantId))) continue;
      orphans++;
      if (opts.fix) {
        const done = await nac.restore(e.mac, null, e.tag.grantId);
        console.log(`removed  ${e.mac}  (grant ${e.tag.grantId} is not live: ${done})`);
      } else {
        console.log(`orphan   ${e.mac}  (grant ${e.tag.grantId} is not live; --fix removes it)`);
      }
    }
    console.log(
      `reconcile: ${checked} instance(s) checked, ${started} started; ${tagged.length} whitelist entr(ies) checked, ${orphans} without a live grant${opts.fix ? ' removed' : ''}.`
    );
  } finally {
    await close();
  }
}
