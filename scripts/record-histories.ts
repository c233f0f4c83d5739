/**
 * Records real workflow histories for the replay guard (test/replay.test.ts): runs each scenario on a throw-away
 * stack and exports the run with `temporal workflow show --output json`. Run it on the code of a release before a
 * workflow change (e.g. in a `git worktree` of the last tag) so that the new code is proved to replay the old runs.
 *
 *   node --import tsx scripts/record-histories.ts [outDir] [scenario…]
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { findTemporalCli } from '../temporal/find-cli';
import { startOptionsFor, timingFor } from '../ingress/event-processor';
import { workflowIdFor } from '../workflows/definitions';
import { startTestStack, type TestStack } from '../test/support/harness';

/** A run to export: the latest run of a workflow id, or one run of a Continue-As-New chain. */
type Recorded = string | { workflowId: string; runId: string };

const scenarios: Record<string, (t: TestStack) => Promise<Recorded[]>> = {
  /** A grant with an expiry: reminder timer, reminder card, expiry timer, undo. */
  async 'reminded-then-expired'(t) {
    const id = workflowIdFor('feishu', t.createApproval('00:1B:44:77:00:01', { duration: '5秒' }));
    await t.waitForPhase(id, ['active']);
    await t.client.workflow.getHandle(id).result();
    return [id];
  },
  /** Two grants of one device: the first one's undo finds the second one's tag and leaves the device alone. */
  async 'overlapping-grants'(t) {
    const first = workflowIdFor('feishu', t.createApproval('00:1B:44:77:00:02', { duration: '4秒' }));
    await t.waitForPhase(first, ['active']);
    const second = workflowIdFor('feishu', t.createApproval('00:1B:44:77:00:02', { duration: '1天' }));
    await t.waitForPhase(second, ['active']);
    await t.client.workflow.getHandle(first).result();
    await t.client.workflow.getHandle(second).signal('cancel', { reason: 'recording over' });
    await t.client.workflow.getHandle(second).result();
    return [first, second];
  },
  /** An `extend` update on a live grant, then expiry at the new time. */
  async 'extended-then-expired'(t) {
    const id = workflowIdFor('feishu', t.createApproval('00:1B:44:77:00:03', { duration: '3秒' }));
    const s = await t.waitForPhase(id, ['active']);
    await t.client.workflow.getHandle(id).executeUpdate('extend', {
      args: [{ expiresAt: new Date(Date.parse(s.expiresAt!) + 3000).toISOString(), by: 'recording' }],
    });
    await t.client.workflow.getHandle(id).result();
    return [id];
  },
  /**
   * 0.3: a connected device the NAC knew (create refused → prior state → whitelist → CoA), a new one (create only),
   * then cancel: restore, delete, and a CoA after each.
   */
  async 'coa-granted-then-cancelled'(t) {
    t.nacSim!.connect({ mac: '00:1B:44:77:00:04', nasIp: '10.9.0.2' });
    const id = workflowIdFor('feishu', t.createApproval('00:1B:44:77:00:04 00:1B:44:77:00:05', { duration: '1天' }));
    await t.waitForPhase(id, ['active']);
    t.nacSim!.connect({ mac: '00:1B:44:77:00:05', nasIp: '10.9.0.2' });
    await t.client.workflow.getHandle(id).signal('cancel', { reason: 'recording over' });
    await t.client.workflow.getHandle(id).result();
    return [id];
  },
  /**
   * 0.5: a grant that continues as new (after 25 events here) across three extensions, then is cancelled: every run of the chain, the first ending in Continue-As-New, the last starting from carried state.
   */
  async 'continued-as-new'(t) {
    const instance = t.createApproval('00:1B:44:77:00:06', { duration: '1天', deliver: false });
    const opts = startOptionsFor(t.config.routes[0]!, 'feishu', instance, timingFor(t.config), { source: 'recording' });
    opts.args[0].continueAsNewAfterEvents = 25;
    const handle = await t.client.workflow.start('nacWhitelistWorkflow', opts);
    const s = await t.waitForPhase(opts.workflowId, ['active']);
    for (const days of [2, 3, 4]) {
      await handle.executeUpdate('extend', {
        args: [{ expiresAt: new Date(Date.parse(s.expiresAt!) + days * 86_400_000).toISOString(), by: 'recording' }],
      });
    }
    await t.client.workflow.getHandle(opts.workflowId).signal('cancel', { reason: 'recording over' });
    await t.client.workflow.getHandle(opts.workflowId).result();
    const runs: Recorded[] = [];
    for await (const wf of t.client.workflow.list({ query: `WorkflowId = '${opts.workflowId}'` }))
      runs.push({ workflowId: wf.workflowId, runId: wf.runId });
    return runs.reverse();
  },
};

async function main() {
  const [outDir = path.join(__dirname, '..', 'test', 'histories'), ...names] = process.argv.slice(2);
  const label = process.env.HISTORY_LABEL ?? 'current';
  const cli = await findTemporalCli();
  mkdirSync(outDir, { recursive: true });
  const t = await startTestStack({ env: { REMINDER_LEAD: '2s' } });
  try {
    for (const name of names.length ? names : Object.keys(scenarios)) {
      const run = scenarios[name];
      if (!run) throw new Error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(', ')}`);
      const ids = await run(t);
      for (const [i, rec] of ids.entries()) {
        const run = typeof rec === 'string' ? ['-w', rec] : ['-w', rec.workflowId, '-r', rec.runId];
        const { stdout } = await promisify(execFile)(
          cli,
          ['workflow', 'show', ...run, '--address', t.temporalAddress, '--output', 'json'],
          { maxBuffer: 64 * 1024 * 1024 }
        );
        const file = path.join(outDir, `nac-whitelist-${name}${ids.length > 1 ? `-${i + 1}` : ''}.${label}.json`);
        writeFileSync(file, stdout);
        console.log(`recorded ${file}`);
      }
    }
  } finally {
    await t.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
