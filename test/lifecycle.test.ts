import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import { workflowIdFor } from '../workflows/definitions';
import type { NacWhitelistResult } from '../workflows/nac-whitelist.workflow';
import { ROOT, startTestStack, until, type TestStack } from './support/harness';

/** Grant lifecycle on the real dev server: expiry with a reminder first, the leaver event, operator API, reconcile. */
describe('grant lifecycle (real Temporal dev server)', () => {
  let t: TestStack;
  const adminToken = 'test-admin-token-0123456789';
  before(async () => {
    t = await startTestStack({ env: { REMINDER_LEAD: '2s', ADMIN_TOKEN: adminToken } });
  });
  after(async () => {
    await t?.close();
  });
  const result = (id: string) => t.client.workflow.getHandle(id).result() as Promise<NacWhitelistResult>;
  const cardsFor = (instance: string) =>
    t
      .feishuSim!.messages()
      .filter((m) => JSON.stringify(m.content).includes(instance))
      .map((m) => JSON.stringify(m.content));

  it('revokes at expiry after reminding the requester, leaving the NAC as it was', async () => {
    const mac = '00:1B:44:55:00:01';
    const instance = t.createApproval(mac, { duration: '5秒' });
    const id = workflowIdFor('feishu', instance);
    const active = await t.waitForPhase(id, ['active']);
    assert.ok(active.expiresAt);
    assert.ok(await t.iseEndpoint(mac));
    const r = await result(id);
    assert.equal(r.outcome, 'expired');
    assert.equal(await t.iseEndpoint(mac), null);
    const cards = cardsFor(instance);
    assert.equal(cards.length, 3, 'granted, reminder, expired');
    assert.match(cards[0]!, /access granted/);
    assert.match(cards[1]!, /expires soon/);
    assert.match(cards[2]!, /expired/);
  });

  it("a leaver's live grants are all revoked; another requester's grant is untouched", async () => {
    const a1 = t.createApproval('00:1B:44:55:01:01', { openId: 'ou_leaver' });
    const a2 = t.createApproval('00:1B:44:55:01:02', { openId: 'ou_leaver' });
    const b = t.createApproval('00:1B:44:55:01:03', { openId: 'ou_stayer' });
    for (const i of [a1, a2, b]) await t.waitForPhase(workflowIdFor('feishu', i), ['active']);
    // Visibility (the RequesterRef search attribute) is eventually consistent: wait until both grants are listed.
    await until('visibility', async () => {
      let n = 0;
      for await (const _ of t.client.workflow.list({ query: `ExecutionStatus = 'Running' AND GrantPhase = 'active'` }))
        n++;
      return n >= 3 ? true : undefined;
    });
    t.feishuSim!.deleteUser('ou_leaver');
    for (const i of [a1, a2]) {
      const r = await result(workflowIdFor('feishu', i));
      assert.equal(r.outcome, 'revoked');
      assert.match(r.reason ?? '', /left the company/);
    }
    assert.equal(await t.iseEndpoint('00:1B:44:55:01:01'), null);
    assert.equal(await t.iseEndpoint('00:1B:44:55:01:02'), null);
    assert.ok(await t.iseEndpoint('00:1B:44:55:01:03'), 'the other requester keeps access');
    const other = await t.client.workflow.getHandle(workflowIdFor('feishu', b)).describe();
    assert.equal(other.status.name, 'RUNNING');
  });

  it('the operator API refuses a missing or wrong token and works with the right one', async () => {
    const instance = t.createApproval('00:1B:44:55:02:01');
    const id = workflowIdFor('feishu', instance);
    await t.waitForPhase(id, ['active']);
    const url = `${t.ingressUrl}/api/approvals/${instance}`;
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(url, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 403);
    const ok = await fetch(url, { headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(ok.status, 200);
    const body = (await ok.json()) as { status: { phase: string; macs: { mac: string }[] } };
    assert.equal(body.status.phase, 'active');
    assert.equal(body.status.macs[0]!.mac, '00:1B:44:55:02:01');
    const cancel = await fetch(`${url}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'security review', by: 'ops' }),
    });
    assert.equal(cancel.status, 202);
    assert.equal((await result(id)).outcome, 'revoked');
    assert.equal(await t.iseEndpoint('00:1B:44:55:02:01'), null);
  });

  it('reconcile starts a missed approval once; a second reconcile starts nothing', async () => {
    const instance = t.createApproval('00:1B:44:55:03:01', { deliver: false });
    const id = workflowIdFor('feishu', instance);
    // Asynchronously: the simulators it talks to run in this process.
    const reconcile = () =>
      promisify(execFile)(
        process.execPath,
        [path.join(ROOT, 'bin', 'approval-plus.mjs'), 'reconcile', '--since', '1h'],
        {
          cwd: ROOT,
          env: { ...process.env, ...t.env },
        }
      );
    const first = await reconcile();
    assert.match(first.stdout, new RegExp(`started\\s+${id}`));
    await t.waitForPhase(id, ['active']);
    const second = await reconcile();
    assert.match(second.stdout, / 0 started/);
    let runs = 0;
    for await (const _ of t.client.workflow.list({ query: `WorkflowId = '${id}'` })) runs++;
    assert.equal(runs, 1);
    try {
      await t.client.workflow.getHandle(id).signal('cancel', { reason: 'test over' });
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  });
});
