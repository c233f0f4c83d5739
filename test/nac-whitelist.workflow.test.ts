import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CancelledFailure, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { spawnSync } from 'node:child_process';
import { cancelSignal, workflowIdFor } from '../workflows/definitions';
import type { NacWhitelistResult } from '../workflows/nac-whitelist.workflow';
import { ROOT, startTestStack, until, type TestStack } from './support/harness';

/**
 * The Wi‑Fi access automation on a real Temporal dev server, with the Feishu and NAC simulators. Assertions read the
 * NAC simulator's state through its Cisco ISE ERS API and the Feishu simulator's record of what the app sent.
 */
describe('nac-whitelist workflow (real Temporal dev server)', () => {
  let t: TestStack;
  before(async () => {
    t = await startTestStack();
  });
  after(async () => {
    await t?.close();
  });
  beforeEach(() => {
    t.nacSim!.clearFaults();
  });

  const whitelistGroupId = () => t.nacSim!.whitelistGroupId;
  const messagesFor = (instance: string) =>
    t.feishuSim!.messages().filter((m) => JSON.stringify(m.content).includes(instance));
  const result = (id: string) => t.client.workflow.getHandle(id).result() as Promise<NacWhitelistResult>;

  it('whitelists several MACs given in mixed formats and tells the requester', async () => {
    const instance = t.createApproval('00:1B:44:11:3A:01，001b.4411.3a02\n00-1B-44-11-3A-03 001B44113A04', {
      duration: '7天',
    });
    const id = workflowIdFor('feishu', instance);
    const status = await t.waitForPhase(id, ['active']);
    assert.deepEqual(
      status.macs.map((m) => [m.mac, m.state]),
      ['00:1B:44:11:3A:01', '00:1B:44:11:3A:02', '00:1B:44:11:3A:03', '00:1B:44:11:3A:04'].map((m) => [m, 'granted'])
    );
    for (const mac of ['00:1B:44:11:3A:01', '00:1B:44:11:3A:02', '00:1B:44:11:3A:03', '00:1B:44:11:3A:04']) {
      const ep = await t.iseEndpoint(mac);
      assert.ok(ep, `${mac} exists in ISE`);
      assert.equal(ep.groupId, whitelistGroupId());
      assert.equal(ep.staticGroupAssignment, true);
      assert.match(String(ep.description), new RegExp(`grant=${id}`));
    }
    assert.ok(status.expiresAt && Date.parse(status.expiresAt) > Date.now() + 6 * 86_400_000);
    const cards = messagesFor(instance);
    assert.equal(cards.length, 1);
    assert.match(JSON.stringify(cards[0]!.content), /Wi‑Fi access granted/);
    assert.equal(t.feishuSim!.comments().filter((c) => c.instance_code === instance).length, 1);

    // Record this run's history for the replay test (committed under test/histories/ when RECORD_HISTORIES=1).
    await t.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'test over' });
    assert.equal((await result(id)).outcome, 'revoked');
    if (process.env.RECORD_HISTORIES) {
      const shown = spawnSync(
        process.env.TEMPORAL_CLI_PATH ?? 'temporal',
        ['workflow', 'show', '-w', id, '--address', t.temporalAddress, '--output', 'json'],
        { encoding: 'utf8' }
      );
      assert.equal(shown.status, 0, shown.stderr);
      mkdirSync(path.join(ROOT, 'test', 'histories'), { recursive: true });
      writeFileSync(path.join(ROOT, 'test', 'histories', 'nac-whitelist-granted-then-cancelled.json'), shown.stdout);
    }
    for (const mac of ['00:1B:44:11:3A:01', '00:1B:44:11:3A:04']) assert.equal(await t.iseEndpoint(mac), null);
  });

  it('moves a pre-existing endpoint into the whitelist and restores it exactly on undo', async () => {
    const mac = '00:1B:44:11:3B:01';
    t.nacSim!.store.seed({
      mac,
      group: 'RegisteredDevices',
      description: 'meeting-room display, asset 4471',
      staticGroupAssignment: false,
      customAttributes: { AssetTag: '4471', Site: 'SH-3F' },
    } as never);
    const before = await t.iseEndpoint(mac);
    assert.ok(before);
    const instance = t.createApproval(mac);
    const id = workflowIdFor('feishu', instance);
    await t.waitForPhase(id, ['active']);
    const during = await t.iseEndpoint(mac);
    assert.equal(during!.groupId, whitelistGroupId());
    assert.equal(during!.id, before.id, 'the same endpoint was updated, not re-created');

    await t.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'no longer needed', by: 'test' });
    const r = await result(id);
    assert.equal(r.outcome, 'revoked');
    assert.deepEqual(
      r.macs.map((m) => m.state),
      ['restored']
    );
    assert.deepEqual(await t.iseEndpoint(mac), before, 'restored exactly, not deleted');
  });

  it('undoes the first two MACs when the third fails permanently, and tells the requester why', async () => {
    const macs = ['00:1B:44:11:3C:01', '00:1B:44:11:3C:02', '00:1B:44:11:3C:03'];
    t.nacSim!.setFaults({ rules: [{ mac: macs[2]!, status: 400, method: 'POST' }] });
    const instance = t.createApproval(macs.join(' '));
    const id = workflowIdFor('feishu', instance);
    // The simulator delivers the approval event asynchronously: wait until the run exists, then for its result.
    await until('the run to start', () =>
      t.client.workflow
        .getHandle(id)
        .describe()
        .then(() => true)
        .catch((e: unknown) => (e instanceof WorkflowNotFoundError ? undefined : Promise.reject(e)))
    );
    const r = await result(id);
    assert.equal(r.outcome, 'failed');
    assert.deepEqual(
      r.macs.map((m) => m.state),
      ['removed', 'removed', 'failed']
    );
    for (const mac of macs) assert.equal(await t.iseEndpoint(mac), null, `${mac} is not left behind`);
    const cards = messagesFor(instance);
    assert.equal(cards.length, 1);
    const text = JSON.stringify(cards[0]!.content);
    assert.match(text, /could not be granted/);
    assert.match(text, /HTTP 400|400/, 'the NAC error reaches the requester');
  });

  it('never lifts a security block: a blocked device fails the grant, the rest is undone, the requester is told', async () => {
    const [free, blocked] = ['00:1B:44:11:3C:11', '00:1B:44:11:3C:12'];
    t.nacSim!.store.seed({ mac: blocked, group: 'Blocked List', description: 'reported stolen' } as never);
    const blockedBefore = await t.iseEndpoint(blocked);
    const instance = t.createApproval(`${free} ${blocked}`);
    const id = workflowIdFor('feishu', instance);
    const status = await t.waitForPhase(id, ['failed']);
    assert.deepEqual(
      status.macs.map((m) => m.state),
      ['removed', 'failed']
    );
    assert.equal(await t.iseEndpoint(free), null);
    assert.deepEqual(await t.iseEndpoint(blocked), blockedBefore);
    const text = JSON.stringify(messagesFor(instance)[0]!.content);
    assert.match(text, /never lifts a security block/);
  });

  it('survives a NAC time-out after the write committed: no duplicate, not mistaken for pre-existing', async () => {
    const mac = '00:1B:44:11:3D:01';
    t.nacSim!.setFaults({ rules: [{ mac, timeoutAfterCommit: true, times: 1 }], hangMs: 3000 });
    const instance = t.createApproval(mac);
    const id = workflowIdFor('feishu', instance);
    const status = await t.waitForPhase(id, ['active']);
    assert.equal(status.macs[0]!.state, 'granted');
    const all = (t.nacSim!.store.list() as { mac: string }[]).filter(
      (e) => e.mac.replace(/[^0-9a-f]/gi, '').toLowerCase() === '001b44113d01'
    );
    assert.equal(all.length, 1, 'exactly one endpoint');
    const creates = t.nacSim!.requests({ mac }).filter((r) => r.method === 'POST');
    assert.ok(creates.length >= 1);
    await t.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'test over' });
    const r = await result(id);
    assert.deepEqual(
      r.macs.map((m) => m.state),
      ['removed'],
      'undo deletes it: it did not exist before'
    );
    assert.equal(await t.iseEndpoint(mac), null);
  });

  it('reports invalid and randomised MACs to the requester and makes no NAC call for invalid ones', async () => {
    t.nacSim!.clearRequests();
    const instance = t.createApproval(
      '00:1B:44:11:3E:01, FF:FF:FF:FF:FF:FF, 01:00:5E:00:00:01, DA:A1:19:5C:3E:01, 00:1B:44:11:3E'
    );
    const id = workflowIdFor('feishu', instance);
    const status = await t.waitForPhase(id, ['active']);
    const byState = Object.fromEntries(status.macs.map((m) => [m.mac, m.state]));
    assert.equal(byState['00:1B:44:11:3E:01'], 'granted');
    assert.equal(byState['DA:A1:19:5C:3E:01'], 'granted');
    assert.equal(status.macs.find((m) => m.mac === 'DA:A1:19:5C:3E:01')!.randomised, true);
    assert.equal(status.macs.filter((m) => m.state === 'invalid').length, 3);
    const touched = new Set(
      t
        .nacSim!.requests()
        .map((r) => r.mac)
        .filter(Boolean)
    );
    assert.equal(touched.size, 2, `only the two valid MACs reach the NAC (${[...touched].join(', ')})`);
    const text = JSON.stringify(messagesFor(instance)[0]!.content);
    assert.match(text, /partly granted/);
    assert.match(text, /broadcast/);
    assert.match(text, /multicast/);
    assert.match(text, /randomised/);
    await t.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'test over' });
    await result(id);
  });

  it('the cancel signal during a run undoes what was done so far', async () => {
    t.nacSim!.setFaults({ latencyMs: 400 });
    const macs = ['00:1B:44:11:3F:01', '00:1B:44:11:3F:02', '00:1B:44:11:3F:03', '00:1B:44:11:3F:04'];
    const instance = t.createApproval(macs.join('\n'));
    const id = workflowIdFor('feishu', instance);
    await until('first MAC whitelisted', async () => ((await t.iseEndpoint(macs[0]!)) ? true : undefined));
    await t.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'requester withdrew', by: 'test' });
    const r = await result(id);
    assert.equal(r.outcome, 'revoked');
    assert.equal(r.reason, 'requester withdrew');
    t.nacSim!.clearFaults();
    for (const mac of macs) assert.equal(await t.iseEndpoint(mac), null);
    assert.match(JSON.stringify(messagesFor(instance).at(-1)!.content), /revoked/);
  });

  it('Temporal cancellation during a run undoes the same way and ends cancelled', async () => {
    t.nacSim!.setFaults({ latencyMs: 400 });
    const macs = ['00:1B:44:11:40:01', '00:1B:44:11:40:02', '00:1B:44:11:40:03'];
    const instance = t.createApproval(macs.join('\n'));
    const id = workflowIdFor('feishu', instance);
    await until('first MAC whitelisted', async () => ((await t.iseEndpoint(macs[0]!)) ? true : undefined));
    await t.client.workflow.getHandle(id).cancel();
    await assert.rejects(
      result(id),
      (err: unknown) => err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure
    );
    t.nacSim!.clearFaults();
    for (const mac of macs) assert.equal(await t.iseEndpoint(mac), null);
    assert.match(JSON.stringify(messagesFor(instance).at(-1)!.content), /revoked/);
  });
});
