import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { normalizeMac } from '../simulators/nac/store';
import { cancelSignal, workflowIdFor, type GrantStatus } from '../workflows/definitions';
import type { NacWhitelistResult } from '../workflows/nac-whitelist.workflow';
import { APPROVAL_CODE, startTestStack, until, type TestStack } from './support/harness';

/**
 * Revoke (撤销) and modify (修改) instances on Feishu, on the real dev server: an approved revoke instance ends its
 * original's grant, an approved modify instance moves it to the new form (devices no longer listed revoked, new ones
 * granted, unchanged ones untouched), and neither ever grants on its own: a request has one live grant at most.
 */
describe('Feishu revoke and modify instances (real Temporal dev server)', () => {
  let t: TestStack;
  before(async () => {
    t = await startTestStack();
  });
  after(async () => {
    await t?.close();
  });

  const form = (macs: string, duration?: string) => [
    { id: 'widget_reason', name: '申请事由', type: 'input', value: 'integration test' },
    { id: 'widget_macs', name: 'MAC地址', type: 'textarea', value: macs },
    ...(duration ? [{ id: 'widget_duration', name: '有效期', type: 'radioV2', value: duration }] : []),
  ];
  const create = (macs: string, extra: { reverts?: string; modifies?: string; deliver?: boolean; duration?: string }) =>
    t.feishuSim!.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: 'ou_amend_requester',
      form: form(macs, extra.duration),
      ...extra,
    }).instance_code;
  const handle = (instance: string) => t.client.workflow.getHandle(workflowIdFor('feishu', instance));
  /** The run's result, once its event has been delivered and the run exists. */
  const result = async (instance: string) => {
    await until(`the run of ${instance}`, () =>
      handle(instance)
        .describe()
        .then(
          () => true,
          () => undefined
        )
    );
    return (await handle(instance).result()) as NacWhitelistResult;
  };
  const endpoint = (mac: string) => t.nacSim!.store.byMac(normalizeMac(mac)!);
  const writesFor = (mac: string) => t.nacSim!.requests({ mac }).filter((r) => r.write).length;
  const liveGrants = async () => {
    const ids: string[] = [];
    for await (const wf of t.client.workflow.list({
      query: `ExecutionStatus = 'Running' AND ApprovalCode = '${APPROVAL_CODE}'`,
    }))
      ids.push(wf.workflowId);
    return ids;
  };

  it('an approved revoke instance ends the original grant and grants nothing itself', async () => {
    const original = create('00:1B:44:AA:01:01 00:1B:44:AA:01:02', {});
    await t.waitForPhase(workflowIdFor('feishu', original), ['active']);
    assert.ok(endpoint('00:1B:44:AA:01:01'));

    const revoke = create('00:1B:44:AA:01:01 00:1B:44:AA:01:02', { reverts: original });
    const applied = await result(revoke);
    assert.equal(applied.outcome, 'applied-to-original');
    // The revoke's own run and the original's REVERTED event race to end the grant: either is the one revocation.
    assert.match(applied.reason ?? '', /revoked feishu-|no live grant/);
    const ended = await result(original);
    assert.equal(ended.outcome, 'revoked');
    assert.equal(endpoint('00:1B:44:AA:01:01'), undefined);
    assert.equal(endpoint('00:1B:44:AA:01:02'), undefined);
    // The original reads back as revoked, never as approved again.
    assert.notEqual((await t.platform!.getInstance(original)).status, 'APPROVED');
    assert.deepEqual(await liveGrants(), []);
  });

  it('an approved modify instance moves the grant to its form: removed, added, unchanged untouched', async () => {
    const [a, b, c] = ['00:1B:44:AA:02:01', '00:1B:44:AA:02:02', '00:1B:44:AA:02:03'];
    const original = create(`${a} ${b}`, { duration: '7天' });
    const grantId = workflowIdFor('feishu', original);
    await t.waitForPhase(grantId, ['active']);
    const writesOfB = writesFor(b);
    const messagesBefore = t.feishuSim!.messages().filter((m) => m.receive_id === 'ou_amend_requester').length;

    const modify = create(`${b} ${c}`, { modifies: original, duration: '30天' });
    assert.equal((await result(modify)).outcome, 'applied-to-original');
    const s = await until('the change applied', async () => {
      const st = await handle(original).query<GrantStatus>('status');
      return st.phase === 'active' && st.macs.find((m) => m.mac === c)?.state === 'granted' ? st : undefined;
    });
    assert.equal(s.macs.find((m) => m.mac === a)?.state, 'removed');
    assert.equal(s.macs.find((m) => m.mac === b)?.state, 'granted');
    assert.ok(Date.parse(s.expiresAt!) > Date.now() + 29 * 86_400_000, 'the new duration holds');
    assert.equal(endpoint(a), undefined, 'no longer listed: revoked');
    assert.ok(endpoint(b) && endpoint(c));
    assert.equal(writesFor(b), writesOfB, 'the unchanged device was not touched');
    const after = t.feishuSim!.messages().filter((m) => m.receive_id === 'ou_amend_requester');
    assert.equal(after.length, messagesBefore + 1, 'one message about the change');
    assert.match(JSON.stringify(after.at(-1)!.content), /access changed/);
    assert.deepEqual(await liveGrants(), [grantId], 'one live grant for the request');

    await handle(original).signal(cancelSignal, { reason: 'test over' });
    assert.equal((await result(original)).outcome, 'revoked');
    assert.equal(endpoint(b), undefined);
    assert.equal(endpoint(c), undefined);
  });

  it('a modification of a request whose approval event was missed starts its grant with the change', async () => {
    const [a, b] = ['00:1B:44:AA:03:01', '00:1B:44:AA:03:02'];
    const original = create(a, { deliver: false }); // its APPROVED event never reached us
    const modify = create(b, { modifies: original });
    assert.equal((await result(modify)).outcome, 'applied-to-original');
    const grantId = workflowIdFor('feishu', original);
    await until('the original grant moved to the change', async () => {
      const st = await handle(original)
        .query<GrantStatus>('status')
        .catch(() => undefined);
      return st?.phase === 'active' && st.macs.find((m) => m.mac === b)?.state === 'granted' ? true : undefined;
    });
    assert.equal(endpoint(a), undefined);
    assert.ok(endpoint(b));
    assert.deepEqual(await liveGrants(), [grantId]);
    await handle(original).signal(cancelSignal, { reason: 'test over' });
    await result(original);
  });

  it('revoking a modification follows the chain back to the one live grant', async () => {
    const original = create('00:1B:44:AA:04:01', {});
    await t.waitForPhase(workflowIdFor('feishu', original), ['active']);
    const modify = create('00:1B:44:AA:04:02', { modifies: original });
    await result(modify);
    await until('the change applied', () => (endpoint('00:1B:44:AA:04:02') ? true : undefined));
    const revoke = create('00:1B:44:AA:04:02', { reverts: modify });
    assert.equal((await result(revoke)).outcome, 'applied-to-original');
    assert.equal((await result(original)).outcome, 'revoked');
    assert.equal(endpoint('00:1B:44:AA:04:02'), undefined);
    assert.deepEqual(await liveGrants(), []);
  });
});

/**
 * DingTalk's attached instances on the real dev server: modifying or revoking an approved instance creates a new
 * instance (`bizAction` MODIFY / REVOKE) attached to the original, which stays COMPLETED/agree. Handled as Feishu's:
 * the original's grant is revoked or moved, and the attached instance never grants — whether the API names the
 * original (`mainProcessInstanceId`) or only the original lists it (`attachedProcessInstanceIds`).
 */
describe('DingTalk attached instances (real Temporal dev server)', () => {
  let t: TestStack;
  before(async () => {
    t = await startTestStack();
  });
  after(async () => {
    await t?.close();
  });
  const PROCESS_CODE = 'PROC-WIFI-ACCESS-SANDBOX'; // config/routes.sandbox.yaml
  const form = (macs: string) => [
    { id: 'TextField-reason', name: '申请事由', componentType: 'TextField', value: 'integration test' },
    { id: 'TextareaField-macs', name: 'MAC地址', componentType: 'TextareaField', value: macs },
  ];
  const create = (macs: string, extra: { biz_action?: 'MODIFY' | 'REVOKE'; main_process_instance_id?: string } = {}) =>
    t.dingtalkSim!.createInstance({
      process_code: PROCESS_CODE,
      originator_user_id: 'ding-amend-1',
      form: form(macs),
      ...extra,
    }).process_instance_id;
  const handle = (id: string) => t.client.workflow.getHandle(workflowIdFor('dingtalk', id));
  const result = async (id: string) => {
    await until(`the run of ${id}`, () =>
      handle(id)
        .describe()
        .then(
          () => true,
          () => undefined
        )
    );
    return (await handle(id).result()) as NacWhitelistResult;
  };
  const endpoint = (mac: string) => t.nacSim!.store.byMac(normalizeMac(mac)!);

  for (const mainIdInDetail of [true, false]) {
    const how = mainIdInDetail ? 'named by mainProcessInstanceId' : 'found through the attached list';
    it(`a MODIFY attached instance moves the original grant (original ${how})`, async () => {
      t.dingtalkSim!.setMainIdInDetail(mainIdInDetail);
      const [a, b] = mainIdInDetail
        ? ['00:1B:44:AB:01:01', '00:1B:44:AB:01:02']
        : ['00:1B:44:AB:02:01', '00:1B:44:AB:02:02'];
      const main = create(a);
      await t.waitForPhase(workflowIdFor('dingtalk', main), ['active']);
      const modify = create(b, { biz_action: 'MODIFY', main_process_instance_id: main });
      assert.equal((await result(modify)).outcome, 'applied-to-original');
      const s = await until('the change applied', async () => {
        const st = await handle(main).query<GrantStatus>('status');
        return st.phase === 'active' && st.macs.find((m) => m.mac === b)?.state === 'granted' ? st : undefined;
      });
      assert.equal(s.macs.find((m) => m.mac === a)?.state, 'removed');
      assert.ok(endpoint(b) && !endpoint(a));

      const revoke = create(b, { biz_action: 'REVOKE', main_process_instance_id: main });
      assert.equal((await result(revoke)).outcome, 'applied-to-original');
      assert.equal((await result(main)).outcome, 'revoked');
      assert.equal(endpoint(b), undefined);
      // The original now reads back as withdrawn (its REVOKE attachment was approved), never approved again.
      assert.equal((await t.platforms!.dingtalk!.getInstance(main)).status, 'REVERTED');
    });
  }
});
