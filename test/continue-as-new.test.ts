import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startOptionsFor, timingFor } from '../ingress/event-processor';
import { normaliseMac } from '../domain/mac';
import { priorFromHistory } from '../reconcile/reconciler';
import {
  cancelSignal,
  extendUpdate,
  holdingsQuery,
  refreshSignal,
  statusQuery,
  workflowIdFor,
} from '../workflows/definitions';
import type { NacWhitelistResult } from '../workflows/nac-whitelist.workflow';
import { ROOT, startTestStack, until, type TestStack } from './support/harness';

/**
 * Grants that outlive their history (issue #14), on the real dev server: a grant continues as new at safe points,
 * carrying its whole state, and everything after — reminders, extensions, hand-over, undo, reconcile — behaves as if
 * it had been one run. The grants here continue as new after 25 history events (the default is 1,000), so a few
 * extensions and reminders make several runs.
 */
const norm = (mac: string) => {
  const r = normaliseMac(mac);
  if (!r.ok) throw new Error(`bad MAC in test: ${mac}`);
  return r.mac;
};

describe('long-lived grants: Continue-As-New (real Temporal dev server)', () => {
  let t: TestStack;
  before(async () => {
    t = await startTestStack({ env: { REMINDER_LEAD: '2s' } });
  });
  after(async () => {
    await t?.close();
  });

  /** Start a grant for a new approval ourselves, as the ingress would, with a small history budget. */
  const grant = async (macs: string, duration: string, extra: { continueAsNewAfterEvents?: number } = {}) => {
    const instance = t.createApproval(macs, { duration, deliver: false });
    const opts = startOptionsFor(t.config.routes[0]!, 'feishu', instance, timingFor(t.config), { source: 'test' });
    opts.args[0].continueAsNewAfterEvents = extra.continueAsNewAfterEvents ?? 25;
    await t.client.workflow.start('nacWhitelistWorkflow', opts);
    const id = workflowIdFor('feishu', instance);
    await t.waitForPhase(id, ['active']);
    return { id, instance, handle: t.client.workflow.getHandle(id) };
  };
  /** Every run of a workflow id, oldest first, from visibility. */
  const runs = async (id: string) => {
    const all: { runId: string; status: string }[] = [];
    for await (const wf of t.client.workflow.list({ query: `WorkflowId = '${id}'` }))
      all.push({ runId: wf.runId, status: wf.status.name });
    return all.reverse();
  };
  const messagesFor = (instance: string) =>
    t
      .feishuSim!.messages()
      .filter((m) => JSON.stringify(m.content).includes(instance))
      .map((m) => JSON.stringify(m.content));
  const seed = (mac: string, group: string, description: string) =>
    t.nacSim!.store.seed({
      mac,
      group,
      description,
      staticGroupAssignment: false,
      customAttributes: { AssetTag: description.slice(-4) },
    } as never);
  const reminders = (instance: string) => messagesFor(instance).filter((m) => /expires soon/.test(m)).length;

  it('extended and reminded across several runs, then cancelled: the NAC is exactly as before', async () => {
    const known = '00:1B:44:99:00:01';
    const fresh = '00:1B:44:99:00:02';
    seed(known, 'RegisteredDevices', 'meeting-room display, asset 7701');
    const before = await t.iseEndpoint(known);
    const g = await grant(`${known} ${fresh}`, '5秒');
    const granted = await g.handle.query(statusQuery);
    assert.ok(granted.grantedAt, 'the status says when access began');

    // Five rounds: the reminder fires (2 s before expiry), then an extension moves the expiry 4 s on.
    const expiries: string[] = [granted.expiresAt!];
    for (let round = 1; round <= 5; round++) {
      await until(`reminder ${round}`, () => (reminders(g.instance) >= round ? true : undefined));
      const expiresAt = new Date(Date.now() + 4000).toISOString();
      await g.handle.executeUpdate(extendUpdate, { args: [{ expiresAt, by: 'test' }] });
      expiries.push(expiresAt);
    }
    const chain = await until('several runs in visibility', async () => {
      const all = await runs(g.id);
      return all.length >= 3 ? all : undefined;
    });
    assert.ok(chain.slice(0, -1).every((r) => r.status === 'CONTINUED_AS_NEW'));
    assert.equal(chain.at(-1)!.status, 'RUNNING');

    // The current run carries everything: devices, expiry, when access began, what undo restores.
    const now = await g.handle.query(statusQuery);
    assert.equal(now.phase, 'active');
    assert.equal(now.expiresAt, expiries.at(-1));
    assert.equal(now.grantedAt, granted.grantedAt);
    assert.deepEqual(
      now.macs.map((m) => [m.mac, m.state]),
      [
        [known, 'granted'],
        [fresh, 'granted'],
      ]
    );
    const holdings = await g.handle.query(holdingsQuery);
    assert.deepEqual(holdings.map((h) => h.mac).sort(), [norm(known), norm(fresh)].sort());
    assert.equal(holdings.find((h) => h.mac === norm(fresh))!.prior, null, 'created by the grant');
    assert.equal(holdings.find((h) => h.mac === norm(known))!.prior!.group, before!.groupId);

    await g.handle.signal(cancelSignal, { reason: 'test over' });
    const r = (await g.handle.result()) as NacWhitelistResult;
    assert.equal(r.outcome, 'revoked');
    assert.deepEqual(await t.iseEndpoint(known), before, 'the pre-existing endpoint is back exactly');
    assert.equal(await t.iseEndpoint(fresh), null, 'the endpoint the grant created is gone');

    // Each message exactly once, across runs: granted, five extensions, a reminder per expiry, revoked.
    const msgs = messagesFor(g.instance);
    assert.equal(msgs.filter((m) => /access granted/.test(m)).length, 1);
    assert.equal(msgs.filter((m) => /access extended/.test(m)).length, 5);
    const reminded = reminders(g.instance);
    assert.ok(reminded === 5 || reminded === 6, `one reminder per expiry (${reminded})`);
    assert.equal(msgs.filter((m) => /access revoked/.test(m)).length, 1);
  });

  it('an idle grant continues as new on `refresh`; the hand-over between overlapping grants crosses runs', async () => {
    const mac = '00:1B:44:99:00:03';
    seed(mac, 'Profiled', 'laptop profiled by ISE, asset 7703');
    const before = await t.iseEndpoint(mac);
    const first = await grant(mac, '1天', { continueAsNewAfterEvents: 1000 });
    const second = await grant(mac, '永久', { continueAsNewAfterEvents: 1000 });
    assert.match(String((await t.iseEndpoint(mac))!.description), new RegExp(`grant=${second.id}`));

    // Both continue as new while they hold the device: the second carries the first's tag as its prior.
    for (const g of [first, second]) {
      await g.handle.signal(refreshSignal);
      await until(`a second run of ${g.id}`, async () => ((await runs(g.id)).length >= 2 ? true : undefined));
      assert.equal((await g.handle.query(statusQuery)).phase, 'active');
    }
    const carried = (await second.handle.query(holdingsQuery))[0]!;
    assert.equal(carried.prior?.tag?.grantId, first.id);

    // The first ends: it hands the original prior state over to the second's current run.
    await first.handle.signal(cancelSignal, { reason: 'first over' });
    const r1 = (await first.handle.result()) as NacWhitelistResult;
    assert.equal(r1.macs[0]!.state, 'handed-over');
    await until('the second grant to adopt the prior state', async () => {
      const [h] = await second.handle.query(holdingsQuery);
      return h && !h.prior?.tag ? true : undefined;
    });
    // The second continues as new once more and then ends: exactly the pre-approval endpoint.
    await second.handle.signal(refreshSignal);
    await until(`a third run of ${second.id}`, async () => ((await runs(second.id)).length >= 3 ? true : undefined));
    await second.handle.signal(cancelSignal, { reason: 'second over' });
    const r2 = (await second.handle.result()) as NacWhitelistResult;
    assert.equal(r2.macs[0]!.state, 'restored');
    assert.deepEqual(await t.iseEndpoint(mac), before);
  });

  it('reconcile --fix restores from the last run after the first runs were deleted', async () => {
    const known = '00:1B:44:99:00:04';
    const fresh = '00:1B:44:99:00:05';
    seed(known, 'RegisteredDevices', 'badge printer, asset 7704');
    const before = await t.iseEndpoint(known);
    const g = await grant(`${known} ${fresh}`, '1天', { continueAsNewAfterEvents: 1000 });
    for (let i = 0; i < 2; i++) {
      await g.handle.signal(refreshSignal);
      await until(`run ${i + 2}`, async () => ((await runs(g.id)).length >= i + 2 ? true : undefined));
    }
    const chain = await runs(g.id);
    // The earlier runs age out of retention: here they are deleted outright.
    for (const r of chain.slice(0, -1))
      await t.client.workflowService.deleteWorkflowExecution({
        namespace: t.config.temporal.namespace,
        workflowExecution: { workflowId: g.id, runId: r.runId },
      });
    await until('the first runs to be gone', async () => ((await runs(g.id)).length === 1 ? true : undefined));
    // An operator mistake: terminating skips every undo, leaving both entries behind with the grant's tag.
    await g.handle.terminate('simulating an operator mistake');
    assert.match(String((await t.iseEndpoint(known))!.description), new RegExp(`grant=${g.id}`));

    // The last run's own history holds the carried state (what reconcile reads when no worker answers).
    const fromHistory = await priorFromHistory(t.client, g.id, norm(known));
    assert.equal(fromHistory.found, true);
    assert.equal(fromHistory.snapshot?.group, before!.groupId);

    const fixed = await promisify(execFile)(
      process.execPath,
      [path.join(ROOT, 'bin', 'approval-plus.mjs'), 'reconcile', '--since', '1h', '--fix'],
      { cwd: ROOT, env: { ...process.env, ...t.env } }
    );
    assert.match(fixed.stdout, /restored .*prior state: grant state/);
    assert.match(fixed.stdout, /deleted .*prior state: grant state/);
    assert.deepEqual(await t.iseEndpoint(known), before, 'the pre-existing endpoint is back exactly as it was');
    assert.equal(await t.iseEndpoint(fresh), null, 'the endpoint the grant created is gone');
  });
});
