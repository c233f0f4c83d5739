import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import { DINGTALK_SANDBOX_DEFAULTS } from '../platforms/dingtalk/config';
import { createDingTalkPlatform } from '../platforms/dingtalk/dingtalk-platform';
import { type IntegrationError } from '../domain/errors';
import { checkDingTalkSuccessReply, dingtalkRequest, encrypt, sign } from '../simulators/dingtalk/callback-signer';
import { startDingTalkSimulator, type DingTalkFormInput, type DingTalkSimulator } from '../simulators/dingtalk/server';
import { workflowIdFor } from '../workflows/definitions';
import type { NacWhitelistResult } from '../workflows/nac-whitelist.workflow';
import { startTestStack, until, type TestStack } from './support/harness';

/**
 * DingTalk end to end on a real Temporal dev server: the DingTalk simulator creates approvals and pushes
 * `bpms_instance_change` to `POST /webhook/dingtalk` encrypted and signed as DingTalk does (its signer is independent
 * of the ingress's crypto and checked against DingTalk's official vectors in dingtalk-wecom-crypto.test.ts); the
 * worker reads the instance through the simulator's v1.0 API, whitelists the MACs in the NAC simulator (asserted
 * through its ISE ERS API) and sends the requester a work notification (asserted in the simulator).
 */

const PROCESS_CODE = 'PROC-WIFI-ACCESS-SANDBOX'; // config/routes.sandbox.yaml

function wifiForm(macs: string, duration?: string): DingTalkFormInput[] {
  return [
    { id: 'TextField-reason', name: '申请事由', componentType: 'TextField', value: 'integration test' },
    { id: 'TextareaField-macs', name: 'MAC地址', componentType: 'TextareaField', value: macs },
    ...(duration ? [{ id: 'DDSelectField-dur', name: '有效期', componentType: 'DDSelectField', value: duration }] : []),
  ];
}

describe('DingTalk HTTP push → Wi‑Fi automation (real Temporal dev server)', () => {
  let t: TestStack;
  let sim: DingTalkSimulator;
  before(async () => {
    t = await startTestStack();
    sim = t.dingtalkSim!;
  });
  after(async () => {
    await t?.close();
  });

  const sec = () => ({
    token: t.env.DINGTALK_TOKEN!,
    aesKey: t.env.DINGTALK_AES_KEY!,
    ownerKey: t.env.DINGTALK_APP_KEY!,
  });
  const post = (
    query: string,
    body: string,
    headers: Record<string, string> = { 'content-type': 'application/json' }
  ) => fetch(`${t.ingressUrl}/webhook/dingtalk?${query}`, { method: 'POST', body, headers });
  const bpms = (instanceId: string, over: Record<string, unknown> = {}) => ({
    EventType: 'bpms_instance_change',
    processInstanceId: instanceId,
    processCode: PROCESS_CODE,
    type: 'finish',
    result: 'agree',
    staffId: 'ding-user-1',
    CorpId: 'dingsimcorp0000000001',
    eventId: `ev-${instanceId}-${Math.random()}`,
    ...over,
  });
  const exists = async (instanceId: string) => {
    try {
      await t.client.workflow.getHandle(workflowIdFor('dingtalk', instanceId)).describe();
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  };
  const messagesTo = (user: string) => sim.messages().filter((m) => m.userid_list.includes(user));

  it('answers check_url with the encrypted "success" DingTalk expects', async () => {
    const r = await sim.checkUrl();
    assert.deepEqual(r, { ok: true, status: 200, why: undefined });
  });

  it('an approved instance whitelists its MACs, messages the requester; terminate restores the NAC exactly', async () => {
    const fresh = '00:1B:44:D1:00:01';
    const preExisting = '00:1B:44:D1:00:02';
    t.nacSim!.store.seed({
      mac: preExisting,
      group: 'RegisteredDevices',
      description: 'printer, asset 9001',
      staticGroupAssignment: false,
      customAttributes: { AssetTag: '9001' },
    } as never);
    const beforeFresh = await t.iseEndpoint(fresh);
    const beforeExisting = await t.iseEndpoint(preExisting);
    assert.equal(beforeFresh, null);
    assert.ok(beforeExisting);

    const user = 'ding-user-e2e';
    const { process_instance_id: id } = sim.createInstance({
      process_code: PROCESS_CODE,
      originator_user_id: user,
      form: wifiForm(`${fresh}\n${preExisting.toLowerCase().replace(/:/g, '-')}`, '7天'),
    });
    const wf = workflowIdFor('dingtalk', id);
    assert.equal(wf, `dingtalk-${id}`);
    const status = await t.waitForPhase(wf, ['active']);
    assert.deepEqual(
      status.macs.map((m) => [m.mac, m.state]),
      [
        [fresh, 'granted'],
        [preExisting, 'granted'],
      ]
    );
    assert.ok(status.expiresAt && Date.parse(status.expiresAt) > Date.now() + 6 * 86_400_000, 'the 7天 option');
    for (const mac of [fresh, preExisting]) {
      const ep = await t.iseEndpoint(mac);
      assert.equal(ep?.groupId, t.nacSim!.whitelistGroupId, `${mac} in the whitelist group`);
    }
    const granted = await until('the work notification', () =>
      messagesTo(user).length ? messagesTo(user) : undefined
    );
    assert.equal(granted.length, 1);
    assert.equal(String(granted[0]!.agent_id), t.env.DINGTALK_AGENT_ID);
    assert.match(JSON.stringify(granted[0]!.msg), /Wi‑Fi access granted/);
    assert.match(JSON.stringify(granted[0]!.msg), /00:1B:44:D1:00:01/);
    await until('the audit comment', () => sim.comments().some((c) => c.process_instance_id === id) || undefined);
    const delivered = sim.deliveries().filter((d) => d.instance_id === id);
    assert.deepEqual(
      delivered.map((d) => [d.ok, d.outcome]),
      [[true, 'delivered']]
    );

    // The originator withdraws it: DingTalk pushes type=terminate; the grant is revoked and undone.
    sim.setStatus(id, 'TERMINATED');
    const r = (await t.client.workflow.getHandle(wf).result()) as NacWhitelistResult;
    assert.equal(r.outcome, 'revoked');
    assert.equal(await t.iseEndpoint(fresh), null, 'the new endpoint is gone');
    assert.deepEqual(await t.iseEndpoint(preExisting), beforeExisting, 'the pre-existing endpoint is restored exactly');
    await until('the revocation message', () =>
      messagesTo(user).some((m) => /revoked/.test(JSON.stringify(m.msg))) ? true : undefined
    );
  });

  it('reads MACs from a detail table (TableField) column', async () => {
    const user = 'ding-user-table';
    const rows = [
      {
        rowValue: [
          { label: '设备', key: 'TextField-dev', value: 'laptop' },
          { label: 'MAC地址', key: 'TextField-mac', value: '00:1B:44:D2:00:01' },
        ],
      },
      {
        rowValue: [
          { label: '设备', key: 'TextField-dev', value: 'phone' },
          { label: 'MAC地址', key: 'TextField-mac', value: '001b.44d2.0002' },
        ],
      },
    ];
    const { process_instance_id: id } = sim.createInstance({
      process_code: PROCESS_CODE,
      originator_user_id: user,
      form: [
        { name: '申请事由', componentType: 'TextField', value: 'table' },
        { id: 'TableField-devices', name: '设备明细', componentType: 'TableField', value: JSON.stringify(rows) },
      ],
    });
    const status = await t.waitForPhase(workflowIdFor('dingtalk', id), ['active']);
    assert.deepEqual(
      status.macs.map((m) => m.mac),
      ['00:1B:44:D2:00:01', '00:1B:44:D2:00:02']
    );
    await t.client.workflow.getHandle(workflowIdFor('dingtalk', id)).signal('cancel', { reason: 'test over' });
  });

  it('never trusts the push alone: an event claiming a routed processCode for another template grants nothing', async () => {
    const { process_instance_id: id } = sim.createInstance({
      process_code: 'PROC-SOMETHING-ELSE',
      originator_user_id: 'ding-user-other',
      form: wifiForm('00:1B:44:D3:00:01'),
      deliver: false,
    });
    const req = dingtalkRequest({ plaintext: bpms(id), ...sec() });
    const res = await post(req.query, req.body);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-approval-plus-outcome'), 'started');
    const r = (await t.client.workflow.getHandle(workflowIdFor('dingtalk', id)).result()) as NacWhitelistResult;
    assert.equal(r.outcome, 'not-routed');
    assert.equal(await t.iseEndpoint('00:1B:44:D3:00:01'), null);
  });

  it('a redelivered or repeated event never starts a second run; refuse and unrouted codes start nothing', async () => {
    const { process_instance_id: id } = sim.createInstance({
      process_code: PROCESS_CODE,
      originator_user_id: 'ding-user-dup',
      form: wifiForm('00:1B:44:D4:00:01'),
      deliver: false,
    });
    const req = dingtalkRequest({ plaintext: bpms(id), ...sec(), signatureParam: 'signature' });
    const first = await post(req.query, req.body);
    assert.equal(first.status, 200);
    assert.equal(checkDingTalkSuccessReply(await first.text(), sec()).ok, true);
    const again = await post(req.query, req.body);
    assert.equal(again.status, 200);
    const other = dingtalkRequest({ plaintext: bpms(id), ...sec() });
    const third = await post(other.query, other.body);
    assert.equal(third.headers.get('x-approval-plus-outcome'), 'duplicate');
    let runs = 0;
    for await (const _ of t.client.workflow.list({ query: `WorkflowId = '${workflowIdFor('dingtalk', id)}'` })) runs++;
    assert.equal(runs, 1);
    await t.waitForPhase(workflowIdFor('dingtalk', id), ['active']);
    await t.client.workflow.getHandle(workflowIdFor('dingtalk', id)).signal('cancel', { reason: 'test over' });

    const refused = dingtalkRequest({ plaintext: bpms('refused-1', { result: 'refuse' }), ...sec() });
    const r1 = await post(refused.query, refused.body);
    assert.equal(r1.headers.get('x-approval-plus-outcome'), 'ignored-status');
    const unrouted = dingtalkRequest({ plaintext: bpms('unrouted-1', { processCode: 'PROC-NOT-ROUTED' }), ...sec() });
    const r2 = await post(unrouted.query, unrouted.body);
    assert.equal(r2.status, 200);
    assert.equal(r2.headers.get('x-approval-plus-outcome'), 'unrouted');
    const task = dingtalkRequest({
      plaintext: { EventType: 'bpms_task_change', processInstanceId: 'x', type: 'start' },
      ...sec(),
    });
    const r3 = await post(task.query, task.body);
    assert.equal(r3.headers.get('x-approval-plus-outcome'), 'ignored-type');
    assert.equal(await exists('refused-1'), false);
    assert.equal(await exists('unrouted-1'), false);
  });

  it('refuses forged and malformed pushes with a precise 4xx and starts nothing', async () => {
    const { process_instance_id: id } = sim.createInstance({
      process_code: PROCESS_CODE,
      originator_user_id: 'ding-user-forged',
      form: wifiForm('00:1B:44:D5:00:01'),
      deliver: false,
    });
    const good = dingtalkRequest({ plaintext: bpms(id), ...sec() });
    const q = new URLSearchParams(good.query);
    const withQuery = (patch: Record<string, string | null>) => {
      const p = new URLSearchParams(q);
      for (const [k, v] of Object.entries(patch)) {
        if (v === null) p.delete(k);
        else p.set(k, v);
      }
      return p.toString();
    };
    // Encrypted for another app's owner key, correctly signed.
    const otherOwner = dingtalkRequest({ plaintext: bpms(id), ...sec(), ownerKey: 'dingotherappkey0001' });
    // Signed with another token.
    const otherToken = dingtalkRequest({ plaintext: bpms(id), ...sec(), token: 'someoneelsestoken' });
    // Tampered ciphertext, re-signed so that only decryption can catch it.
    const bytes = Buffer.from(good.encrypt, 'base64');
    bytes[bytes.length - 1]! ^= 0x5a;
    const tamperedEnc = bytes.toString('base64');
    const tsig = sign(sec().token, good.timestamp, good.nonce, tamperedEnc);
    // A validly signed event for another CorpId is fine without DINGTALK_CORP_ID; encrypted with another aes key is not.
    const otherKey = encrypt('AnotherAesKey000000000000000000000000000042', JSON.stringify(bpms(id)), sec().ownerKey);
    const okey = sign(sec().token, good.timestamp, good.nonce, otherKey);
    const cases: [string, string, string, Record<string, string> | undefined, number, string][] = [
      ['forged signature', withQuery({ msg_signature: 'f'.repeat(40) }), good.body, undefined, 401, 'bad_signature'],
      ['missing signature', withQuery({ msg_signature: null }), good.body, undefined, 401, 'missing_signature'],
      ['missing nonce', withQuery({ nonce: null }), good.body, undefined, 400, 'missing_field'],
      [
        'signature over other bytes',
        good.query,
        JSON.stringify({ encrypt: good.encrypt + 'AAAA' }),
        undefined,
        401,
        'bad_signature',
      ],
      ['signed with another token', otherToken.query, otherToken.body, undefined, 401, 'bad_signature'],
      ['another owner key (app key / corp id)', otherOwner.query, otherOwner.body, undefined, 403, 'unknown_app'],
      [
        'tampered ciphertext',
        withQuery({ msg_signature: tsig }),
        JSON.stringify({ encrypt: tamperedEnc }),
        undefined,
        400,
        'bad_ciphertext',
      ],
      [
        'another aes key',
        withQuery({ msg_signature: okey }),
        JSON.stringify({ encrypt: otherKey }),
        undefined,
        400,
        'bad_ciphertext',
      ],
      ['plaintext body', good.query, JSON.stringify(bpms(id)), undefined, 400, 'expected_encryption'],
      ['malformed JSON', good.query, '{"encrypt":', undefined, 400, 'malformed_json'],
      ['wrong content type', good.query, good.body, { 'content-type': 'text/plain' }, 415, 'unsupported_media_type'],
    ];
    for (const [name, query, body, headers, status, error] of cases) {
      const res = await post(query, body, headers);
      assert.equal(res.status, status, name);
      assert.equal(((await res.json()) as { error: string }).error, error, name);
    }
    assert.equal(await exists(id), false, 'no workflow was started');
  });

  it('pushes again after a failed delivery, and the event then runs once', async () => {
    sim.setWebhookUrl(`${t.ingressUrl}/webhook/not-here`);
    const { process_instance_id: id } = sim.createInstance({
      process_code: PROCESS_CODE,
      originator_user_id: 'ding-user-redeliver',
      form: wifiForm('00:1B:44:D6:00:01'),
    });
    await until('two refused pushes', () =>
      sim.deliveries().filter((d) => d.instance_id === id && !d.ok).length >= 2 ? true : undefined
    );
    sim.setWebhookUrl(`${t.ingressUrl}/webhook/dingtalk`);
    await t.waitForPhase(workflowIdFor('dingtalk', id), ['active']);
    const ds = sim.deliveries().filter((d) => d.instance_id === id);
    assert.ok(ds.filter((d) => !d.ok).every((d) => d.status === 404));
    assert.equal(ds.filter((d) => d.ok).length, 1);
    await t.client.workflow.getHandle(workflowIdFor('dingtalk', id)).signal('cancel', { reason: 'test over' });
  });
});

describe('DingTalk platform against the simulator (API, tokens, errors)', () => {
  let sim: DingTalkSimulator;
  const appKey = 'dingplatformtest0001';
  const appSecret = 'platform-secret';
  before(async () => {
    sim = await startDingTalkSimulator({ appKey, appSecret, agentId: '777' });
  });
  after(async () => {
    await sim?.close();
  });
  const platform = (over: { appSecret?: string; processCodes?: string[] } = {}) =>
    createDingTalkPlatform(
      {
        appKey,
        appSecret: over.appSecret ?? appSecret,
        ownerKey: appKey,
        agentId: '777',
        baseUrl: sim.url,
        oapiBaseUrl: sim.url,
        eventMode: 'http',
      },
      { processCodes: over.processCodes ?? ['PROC-A', 'PROC-B'], timeoutMs: 2000 }
    );

  it('maps the v1.0 instance onto ApprovalInstance and resolves its processCode through the instance-id list', async () => {
    const { process_instance_id: id } = sim.createInstance({
      process_code: 'PROC-B',
      originator_user_id: 'u-map',
      form: [
        { name: 'MAC地址', componentType: 'TextField', value: 'aa' },
        { name: '有效期', componentType: 'DDDateRangeField', value: '["2030-01-01","2030-02-01"]' },
      ],
      deliver: false,
    });
    const p = platform();
    const inst = await p.getInstance(id);
    assert.equal(inst.platform, 'dingtalk');
    assert.equal(inst.status, 'APPROVED');
    assert.equal(inst.approvalCode, 'PROC-B');
    assert.equal(inst.requesterId, 'u-map');
    assert.deepEqual(inst.form[0], { id: 'TextField-1', name: 'MAC地址', type: 'input', value: 'aa' });
    assert.deepEqual(inst.form[1]!.value, { start: '2030-01-01', end: '2030-02-01' });
    assert.equal(inst.form[1]!.type, 'dateInterval');
    // Not among the routed codes → ''.
    assert.equal((await platform({ processCodes: ['PROC-A'] }).getInstance(id)).approvalCode, '');
    sim.setStatus(id, 'TERMINATED', { deliver: false });
    assert.equal((await p.getInstance(id)).status, 'CANCELED');
  });

  it('refreshes a token DingTalk rejects, and classifies errors', async () => {
    const { process_instance_id: id } = sim.createInstance({
      process_code: 'PROC-A',
      originator_user_id: 'u-tok',
      form: [],
      deliver: false,
    });
    const p = platform();
    await p.getInstance(id);
    await p.notifyRequester('u-tok', { kind: 'granted', title: 't', lines: ['a'], idempotencyKey: 'k1' });
    sim.revokeTokens();
    // The cached token is refused once (retryable), dropped, and the next call fetches a new one.
    await assert.rejects(
      p.getInstance(id),
      (e: IntegrationError) => e.kind === 'transient' && e.details.status === 401
    );
    await p.getInstance(id);
    sim.revokeTokens();
    await assert.rejects(
      p.notifyRequester('u-tok', { kind: 'granted', title: 't2', lines: ['b'], idempotencyKey: 'k2' }),
      (e: IntegrationError) => e.kind === 'transient' && e.details.code === 40014
    );
    await p.notifyRequester('u-tok', { kind: 'granted', title: 't2', lines: ['b'], idempotencyKey: 'k2' });
    await assert.rejects(p.getInstance(id), (e: IntegrationError) => e.kind === 'transient'); // its v1.0 token too
    await p.getInstance(id);

    await assert.rejects(platform({ appSecret: 'wrong' }).getInstance(id), (e: IntegrationError) => e.kind === 'auth');
    await assert.rejects(p.getInstance('no-such-instance'), (e: IntegrationError) => e.kind === 'not-found');

    sim.setFaults({ rateLimit: { perSecond: 1 } });
    const results = await Promise.allSettled([p.getInstance(id), p.getInstance(id), p.getInstance(id)]);
    sim.clearFaults();
    const limited = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
    assert.ok(limited.length >= 1);
    for (const e of limited) {
      assert.equal((e as IntegrationError).kind, 'rate-limited');
      assert.equal((e as IntegrationError).details.code, 'Forbidden.AccessDenied.QpsLimitForAppkeyAndApi');
    }
    sim.setFaults({ failPaths: [{ pathPrefix: '/topapi/', status: 200, code: 90018, times: 1 }] });
    await assert.rejects(
      p.notifyRequester('u-tok', { kind: 'granted', title: 't3', lines: ['c'], idempotencyKey: 'k3' }),
      (e: IntegrationError) => e.kind === 'rate-limited'
    );
    sim.setFaults({ errorRate: 1 });
    await assert.rejects(p.getInstance(id), (e: IntegrationError) => e.kind === 'transient' && e.retryable);
    sim.clearFaults();
  });

  it('comments once per idempotency key; the same notification twice reaches the user once', async () => {
    const { process_instance_id: id } = sim.createInstance({
      process_code: 'PROC-A',
      originator_user_id: 'u-c',
      form: [],
      deliver: false,
    });
    const p = platform();
    await p.commentOnInstance({ instanceId: id, requesterId: 'u-c' }, 'granted', 'grant-1:granted');
    await p.commentOnInstance({ instanceId: id, requesterId: 'u-c' }, 'granted', 'grant-1:granted');
    const cs = sim.comments().filter((c) => c.process_instance_id === id);
    assert.equal(cs.length, 1);
    assert.match(cs[0]!.text, /\[ap:grant-1:granted\]$/);
    const msg = { kind: 'granted' as const, title: 'same', lines: ['x'], idempotencyKey: 'k' };
    await p.notifyRequester('u-c', msg);
    await p.notifyRequester('u-c', msg);
    assert.equal(sim.messages().filter((m) => m.userid_list.includes('u-c')).length, 1);
  });

  it('sandbox defaults are valid DingTalk keys', () => {
    assert.match(DINGTALK_SANDBOX_DEFAULTS.DINGTALK_AES_KEY, /^[A-Za-z0-9]{43}$/);
  });
});
