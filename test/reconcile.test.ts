import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { RECONCILE_SCHEDULE_ID } from '../reconcile/schedule';
import { tagAttributes, tagDescription } from '../nac/tag';
import { workflowIdFor } from '../workflows/definitions';
import type { ReconcileResult } from '../workflows/reconcile.workflow';
import { ROOT, startTestStack, until, type TestStack } from './support/harness';

/** Reconcile from the CLI and as a Temporal Schedule, on the real dev server. */
describe('reconcile (real Temporal dev server)', () => {
  let t: TestStack;
  before(async () => {
    t = await startTestStack({ env: { RECONCILE_INTERVAL: '1h', RECONCILE_LOOKBACK: '2h' } });
  });
  after(async () => {
    await t?.close();
  });
  const cli = (...args: string[]) =>
    // Asynchronously: the simulators it talks to run in this process.
    promisify(execFile)(process.execPath, [path.join(ROOT, 'bin', 'approval-plus.mjs'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...t.env },
    });
  const runsOf = async (id: string) => {
    let runs = 0;
    for await (const _ of t.client.workflow.list({ query: `WorkflowId = '${id}'` })) runs++;
    return runs;
  };

  it('the worker creates the reconcile Schedule from configuration', async () => {
    const desc = await t.client.schedule.getHandle(RECONCILE_SCHEDULE_ID).describe();
    assert.equal(desc.action.type, 'startWorkflow');
    assert.equal(desc.action.workflowType, 'reconcileWorkflow');
    assert.deepEqual(
      desc.spec.intervals?.map((i) => i.every),
      [3_600_000]
    );
    assert.equal(desc.policies.overlap, 'SKIP');
  });

  it('a scheduled run starts a missed approval once; the next run starts nothing', async () => {
    const instance = t.createApproval('00:1B:44:88:00:01', { deliver: false });
    const id = workflowIdFor('feishu', instance);
    const schedule = t.client.schedule.getHandle(RECONCILE_SCHEDULE_ID);
    const runReconcile = async (n: number): Promise<ReconcileResult> => {
      await schedule.trigger();
      const run = await until('the scheduled reconcile run', async () => {
        const d = await schedule.describe();
        return d.info.recentActions.length >= n ? d.info.recentActions[n - 1]!.action.workflow : undefined;
      });
      return (await t.client.workflow.getHandle(run.workflowId, run.firstExecutionRunId).result()) as ReconcileResult;
    };
    const first = await runReconcile(1);
    assert.deepEqual(first.missed.started, [id]);
    await t.waitForPhase(id, ['active']);
    assert.ok(await t.iseEndpoint('00:1B:44:88:00:01'));
    const second = await runReconcile(2);
    assert.deepEqual(second.missed.started, []);
    assert.ok(second.missed.checked >= 1);
    assert.equal(await runsOf(id), 1);
    await t.client.workflow.getHandle(id).signal('cancel', { reason: 'test over' });
    await t.client.workflow.getHandle(id).result();
  });

  it('an entry left by a terminated grant is reported, then restored exactly from the grant state with --fix', async () => {
    const mac = '00:1B:44:88:00:02';
    t.nacSim!.store.seed({
      mac,
      group: 'RegisteredDevices',
      description: 'printer, asset 9001',
      staticGroupAssignment: false,
      customAttributes: { AssetTag: '9001' },
    } as never);
    const before = await t.iseEndpoint(mac);
    const fresh = '00:1B:44:88:00:03'; // no endpoint before: --fix removes it
    const instance = t.createApproval(`${mac} ${fresh}`);
    const id = workflowIdFor('feishu', instance);
    await t.waitForPhase(id, ['active']);
    // Terminate skips every compensation: the whitelist entries are left behind with this grant's tag.
    await t.client.workflow.getHandle(id).terminate('simulating an operator mistake');
    assert.match(String((await t.iseEndpoint(mac))!.description), /ApprovalPlus grant=/);

    const report = await cli('reconcile', '--since', '1h');
    assert.match(report.stdout, new RegExp(`orphan\\s+00:1b:44:88:00:02|orphan\\s+001b44880002`, 'i'));
    assert.match(report.stdout, /2 without a live grant/);
    assert.match(report.stdout, /terminated/);
    assert.ok(await t.iseEndpoint(fresh), 'reporting changes nothing');

    const fixed = await cli('reconcile', '--since', '1h', '--fix');
    assert.match(fixed.stdout, /restored .*prior state: grant state/);
    assert.match(fixed.stdout, /deleted .*prior state: grant state/);
    assert.deepEqual(await t.iseEndpoint(mac), before, 'the pre-existing endpoint is back exactly as it was');
    assert.equal(await t.iseEndpoint(fresh), null, 'the endpoint the grant created is gone');
    const again = await cli('reconcile', '--since', '1h');
    assert.match(again.stdout, /0 without a live grant/);
  });

  it('--since must be a duration', async () => {
    await assert.rejects(cli('reconcile', '--since', 'yesterday'), (err: { stderr: string }) =>
      /--since: invalid duration "yesterday"/.test(err.stderr)
    );
  });
});

/**
 * Reconcile `--fix` never deletes an endpoint that existed before its grant: with the grant's history it restores the
 * prior state exactly; without it (retention, or deleted) it leaves the endpoint alone and reports it for review,
 * while an endpoint the grant created is still removed. Per vendor: ClearPass is where a tag attribute left behind
 * by a restore made the endpoint look like the grant's own (field notes row 11).
 */
for (const vendor of [
  { driver: 'ise', profile: 'ise-3.3' },
  { driver: 'clearpass', profile: 'clearpass-6.12' },
] as const) {
  describe(`reconcile --fix never deletes a pre-existing endpoint (${vendor.profile})`, () => {
    let t: TestStack;
    before(async () => {
      t = await startTestStack({ env: { NAC_DRIVER: vendor.driver, NAC_SIM_PROFILE: vendor.profile } });
    });
    after(async () => {
      await t?.close();
    });
    const cli = (...args: string[]) =>
      promisify(execFile)(process.execPath, [path.join(ROOT, 'bin', 'approval-plus.mjs'), ...args], {
        cwd: ROOT,
        env: { ...process.env, ...t.env },
      });
    const record = (mac: string) => {
      const ep = t.nacSim!.store.byMac(mac.toLowerCase().replace(/[^0-9a-f]/g, ''));
      if (!ep) return undefined;
      const { updatedAt: _u, ...rest } = ep;
      return rest;
    };
    /**
     * An endpoint as a grant leaves it whose history has aged out of retention: tagged, its grant unknown to
     * Temporal. (The dev server keeps a deleted run's history for a while, so retention is played by a grant id
     * Temporal never saw.)
     */
    const seedOrphan = (mac: string, grantId: string, origin: 'created' | 'existing') => {
      const tag = { grantId, owner: 'x', approvalCode: '7C468A54-8745-2245-9675-08B7C63E7A85', origin } as const;
      t.nacSim!.store.seed({
        mac,
        status: 'Known',
        groupId: t.nacSim!.whitelistGroupId,
        staticGroupAssignment: true,
        description: tagDescription(tag),
        ...(vendor.driver === 'clearpass' ? { attributes: tagAttributes(tag, ' ') } : {}),
      } as never);
    };

    it('restores from history, and without history deletes only what the grant created', async () => {
      const known = '00:1B:44:99:00:01'; // whitelisted by hand before any approval
      const fresh = '00:1B:44:99:00:02';
      t.nacSim!.store.seed({
        mac: known,
        group: 'RegisteredDevices',
        status: 'Known',
        description: 'conference phone, asset 7001',
        customAttributes: { AssetTag: '7001' },
        attributes: { Owner: 'facilities' },
      } as never);
      const before = record(known);

      // Grant 1, then an operator's terminate: its entries stay behind; --fix restores from its history.
      const first = workflowIdFor('feishu', t.createApproval(`${known} ${fresh}`));
      await t.waitForPhase(first, ['active']);
      await t.client.workflow.getHandle(first).terminate('simulating an operator mistake');
      const fixed = await cli('reconcile', '--since', '1h', '--fix');
      assert.match(fixed.stdout, /restored .*prior state: grant state/);
      assert.deepEqual(record(known), before, 'back exactly as it was, no ApprovalPlus attribute left');
      assert.equal(record(fresh), undefined);

      // Entries whose grant's history is gone: the one the grant created is removed (its tag says so), the one
      // that existed before is left for review, never deleted.
      seedOrphan(known, 'feishu-AGED-OUT-1', 'existing');
      seedOrphan(fresh, 'feishu-AGED-OUT-1', 'created');
      const blind = await cli('reconcile', '--since', '1h', '--fix');
      assert.match(
        blind.stdout,
        /review\s+\S+\s+\(grant feishu-AGED-OUT-1 is unknown to Temporal; prior state: unknown \(history gone\): existed before the grant, left for review\)/
      );
      assert.match(blind.stdout, /deleted\s+\S+\s+\(.*created by the grant, removed\)/);
      assert.ok(record(known), 'the pre-existing endpoint is still there');
      assert.equal(record(fresh), undefined, 'the endpoint the grant created is gone');
    });

    it('a tag left behind by an older release (no origin) and no history: left for review, not deleted', async () => {
      const mac = '00:1B:44:99:00:03';
      const tag = 'ApprovalPlus grant=feishu-GONE-1 owner=x code=7C468A54-8745-2245-9675-08B7C63E7A85 expires=never';
      // What a 0.2 restore could leave on ClearPass: the description put back, the tag attributes not.
      t.nacSim!.store.seed({
        mac,
        status: 'Known',
        ...(vendor.driver === 'clearpass'
          ? {
              description: 'badge reader',
              attributes: { 'ApprovalPlus Grant': 'feishu-GONE-1', 'ApprovalPlus Owner': 'x', Owner: 'security' },
            }
          : { description: tag, groupId: t.nacSim!.whitelistGroupId, staticGroupAssignment: true }),
      } as never);
      const out = await cli('reconcile', '--since', '1h', '--fix');
      assert.match(out.stdout, /review\s+/);
      assert.ok(record(mac), 'not deleted');
    });
  });
}
