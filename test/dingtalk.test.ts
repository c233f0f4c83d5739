import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import { DINGTALK_SANDBOX_DEFAULTS } from '../platforms/dingtalk/config';
import type { ApplicationFailure } from '@temporalio/common';
import { toTemporalFailure } from '../activities/classify';
import { createDingTalkPlatform, IP_THROTTLED } from '../platforms/dingtalk/dingtalk-platform';
import { type IntegrationError } from '../domain/errors';
import { checkDingTalkSuccessReply, dingtalkRequest, encrypt, sign } from '../simulators/shared/callback-signer';
import { startDingTalkSimulator, type DingTalkFormInput, type DingTalkSimulator } from '../simulators/dingtalk/server';
import { answerBudgetMs, ANSWER_DEADLINE_MS, timingFor } from '../ingress/event-processor';
import { reconcileMissedApprovals } from '../reconcile/reconciler';
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

  /** A receiver in front of the ingress that holds its answer for `delayMs` on the first `slow` requests. */
  async function slowProxy(slow: number, delayMs: number): Promise<{ url: string; close(): void }> {
    let seen = 0;
    const server: Server = createServer((req, res) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const r = await fetch(`${t.ingressUrl}/webhook/dingtalk${req.url!.slice(req.url!.indexOf('?'))}`, {
          method: 'POST',
          body: Buffer.concat(chunks),
          headers: { 'content-type': 'application/json' },
        });
        const text = await r.text();
        if (seen++ < slow) await new Promise((resolve) => setTimeout(resolve, delayMs));
        res.writeHead(r.status, { 'content-type': 'application/json' }).end(text);
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => server.close() };
  }

  /** One approval pushed through a receiver that answers its first push 1.8 s late; its deliveries and runs. */
  async function answeredLate(user: string, mac: string) {
    const proxy = await slowProxy(1, 1800);
    try {
      sim.setWebhookUrl(proxy.url);
      const { process_instance_id: id } = sim.createInstance({
        process_code: PROCESS_CODE,
        originator_user_id: user,
        form: wifiForm(mac),
      });
      const wf = workflowIdFor('dingtalk', id);
      await t.waitForPhase(wf, ['active']);
      const ds = await until('an acknowledged push', () => {
        const d = sim.deliveries().filter((x) => x.instance_id === id);
        return d.some((x) => x.ok) ? d : undefined;
      });
      let runs = 0;
      for await (const _ of t.client.workflow.list({ query: `WorkflowId = '${wf}'` })) runs++;
      await t.client.workflow.getHandle(wf).signal('cancel', { reason: 'test over' });
      return { deliveries: ds.map((d) => [d.attempt, d.ok, d.error]), runs };
    } finally {
      sim.setWebhookUrl(`${t.ingressUrl}/webhook/dingtalk`);
      proxy.close();
    }
  }

  it("answers within its 1.2 s of DingTalk's 1.5 s; an answer after the deadline is a failed push, pushed again", async () => {
    assert.equal(ANSWER_DEADLINE_MS.dingtalk, 1500);
    assert.equal(answerBudgetMs('dingtalk'), 1200);
    assert.deepEqual(await answeredLate('ding-user-late', '00:1B:44:D7:00:01'), {
      deliveries: [
        [1, false, 'no answer within 1500 ms'],
        [2, true, undefined],
      ],
      runs: 1,
    });
  });

  it('the same late answer counts under the 2.5 s the current check_url doc gives', async () => {
    sim.setDeliveryTimeout(2500);
    try {
      assert.deepEqual(await answeredLate('ding-user-late2', '00:1B:44:D7:00:02'), {
        deliveries: [[1, true, undefined]],
        runs: 1,
      });
    } finally {
      sim.setDeliveryTimeout(1500);
    }
  });

  it('an event pushed again after a correct answer (DingTalk may) still runs once', async () => {
    sim.setFaults({ duplicateRate: 1 });
    try {
      const { process_instance_id: id } = sim.createInstance({
        process_code: PROCESS_CODE,
        originator_user_id: 'ding-user-dup-ack',
        form: wifiForm('00:1B:44:D8:00:01'),
      });
      const ds = await until('the duplicate', () => {
        const d = sim.deliveries().filter((x) => x.instance_id === id);
        return d.length === 2 ? d : undefined;
      });
      assert.deepEqual(
        ds.map((d) => [d.ok, d.duplicate ?? false]),
        [
          [true, false],
          [true, true],
        ]
      );
      await t.waitForPhase(workflowIdFor('dingtalk', id), ['active']);
      let runs = 0;
      for await (const _ of t.client.workflow.list({ query: `WorkflowId = '${workflowIdFor('dingtalk', id)}'` }))
        runs++;
      assert.equal(runs, 1);
      await t.client.workflow.getHandle(workflowIdFor('dingtalk', id)).signal('cancel', { reason: 'test over' });
    } finally {
      sim.clearFaults();
    }
  });

  it('reconcile finds an approval submitted days before it passed, whose push never arrived', async () => {
    const now = Date.now();
    const { process_instance_id: id } = sim.createInstance({
      process_code: PROCESS_CODE,
      originator_user_id: 'ding-user-reconcile',
      form: wifiForm('00:1B:44:D9:00:01'),
      create_time: now - 9 * 86_400_000,
      deliver: false,
    });
    const report = await reconcileMissedApprovals(
      {
        client: t.client,
        routes: t.config.routes.filter((r) => r.platform === 'dingtalk'),
        platforms: t.platforms!,
        nac: t.nac!,
        timing: timingFor(t.config),
        approvalMaxAgeMs: 14 * 86_400_000,
      },
      { fromMs: now - 3_600_000, toMs: now + 60_000 }
    );
    assert.ok(report.started.includes(workflowIdFor('dingtalk', id)), JSON.stringify(report));
    await t.waitForPhase(workflowIdFor('dingtalk', id), ['active']);
    await t.client.workflow.getHandle(workflowIdFor('dingtalk', id)).signal('cancel', { reason: 'test over' });
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
  const platform = (
    over: {
      appSecret?: string;
      processCodes?: string[];
      url?: string;
      logger?: { debug(o: object): void; warn(o: Record<string, unknown>): void };
    } = {}
  ) =>
    createDingTalkPlatform(
      {
        appKey,
        appSecret: over.appSecret ?? appSecret,
        ownerKey: appKey,
        agentId: '777',
        baseUrl: over.url ?? sim.url,
        oapiBaseUrl: over.url ?? sim.url,
        eventMode: 'http',
      },
      { processCodes: over.processCodes ?? ['PROC-A', 'PROC-B'], timeoutMs: 2000, logger: over.logger }
    );
  const v1Token = async () =>
    (
      (await (
        await fetch(`${sim.url}/v1.0/oauth2/accessToken`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ appKey, appSecret }),
        })
      ).json()) as { accessToken: string }
    ).accessToken;

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

  it('answers a bad token as DingTalk does: v1.0 HTTP 400 InvalidAuthentication, /topapi errcode 88 + sub_code', async () => {
    const v1 = await fetch(`${sim.url}/v1.0/workflow/processInstances?processInstanceId=x`, {
      headers: { 'x-acs-dingtalk-access-token': 'bogus' },
    });
    assert.equal(v1.status, 400);
    assert.equal(((await v1.json()) as { code: string }).code, 'InvalidAuthentication');
    const top = async (query: string) =>
      (await (
        await fetch(`${sim.url}/topapi/message/corpconversation/asyncsend_v2${query}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        })
      ).json()) as Record<string, unknown>;
    assert.deepEqual(
      { ...(await top('?access_token=bogus')), request_id: undefined },
      {
        errcode: 88,
        sub_code: '40014',
        sub_msg: '不合法的access_token',
        errmsg: 'ding talk error[subcode=40014,submsg=不合法的access_token]',
        request_id: undefined,
      }
    );
    assert.equal((await top('')).sub_code, '40000'); // no token at all: "access_token is blank"
  });

  it('drops a token DingTalk rejects and makes the call once more with a new one', async () => {
    const { process_instance_id: id } = sim.createInstance({
      process_code: 'PROC-A',
      originator_user_id: 'u-tok',
      form: [],
      deliver: false,
    });
    const dropped: Record<string, unknown>[] = [];
    const p = platform({ logger: { debug() {}, warn: (o) => dropped.push(o) } });
    await p.getInstance(id);
    await p.notifyRequester('u-tok', { kind: 'granted', title: 't', lines: ['a'], idempotencyKey: 'k1' });
    sim.revokeTokens();
    // Both cached tokens are now refused: each call drops its token, fetches a new one and succeeds.
    await p.getInstance(id);
    await p.notifyRequester('u-tok', { kind: 'granted', title: 't2', lines: ['b'], idempotencyKey: 'k2' });
    assert.deepEqual(
      dropped.map((d) => [d.op, d.code]),
      [
        ['getInstance', 'InvalidAuthentication'],
        ['notifyRequester', 40014],
      ]
    );
    // Refused again with the new token: not a third time; the call fails, retryable.
    sim.setFaults({
      failPaths: [
        {
          pathPrefix: '/v1.0/workflow/processInstances',
          method: 'GET',
          status: 400,
          code: 'InvalidAuthentication',
          times: 2,
        },
        { pathPrefix: '/topapi/', status: 200, code: 40014, msg: '不合法的access_token', times: 2 },
      ],
    });
    await assert.rejects(
      p.getInstance(id),
      (e: IntegrationError) => e.kind === 'transient' && e.details.status === 400 && e.retryable
    );
    await assert.rejects(
      p.notifyRequester('u-tok', { kind: 'granted', title: 't3', lines: ['c'], idempotencyKey: 'k3' }),
      (e: IntegrationError) => e.kind === 'transient' && e.details.code === 40014
    );
    sim.clearFaults();
    await p.getInstance(id);
  });

  it('classifies errors', async () => {
    const { process_instance_id: id } = sim.createInstance({
      process_code: 'PROC-A',
      originator_user_id: 'u-err',
      form: [],
      deliver: false,
    });
    const p = platform();
    await assert.rejects(platform({ appSecret: 'wrong' }).getInstance(id), (e: IntegrationError) => e.kind === 'auth');
    await assert.rejects(
      platform({ appSecret: 'wrong' }).notifyRequester('u-err', {
        kind: 'granted',
        title: 'x',
        lines: [],
        idempotencyKey: 'kx',
      }),
      (e: IntegrationError) => e.kind === 'auth' && e.details.code === 40096
    );
    await assert.rejects(p.getInstance('no-such-instance'), (e: IntegrationError) => e.kind === 'not-found');

    sim.setFaults({ rateLimit: { perSecond: 1 } });
    const results = await Promise.allSettled([p.getInstance(id), p.getInstance(id), p.getInstance(id)]);
    sim.clearFaults();
    const limited = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
    assert.ok(limited.length >= 1);
    for (const e of limited) {
      assert.equal((e as IntegrationError).kind, 'rate-limited');
      assert.equal((e as IntegrationError).details.code, 'Forbidden.AccessDenied.QpsLimitForAppkeyAndApi');
      assert.equal((e as IntegrationError).details.retryAfterMs, 1000);
    }
    // Through the TOP gateway: errcode 88 with sub_code 90018.
    sim.setFaults({ failPaths: [{ pathPrefix: '/topapi/', status: 200, code: 90018, times: 1 }] });
    await assert.rejects(
      p.notifyRequester('u-err', { kind: 'granted', title: 't3', lines: ['c'], idempotencyKey: 'k3' }),
      (e: IntegrationError) => e.kind === 'rate-limited' && e.details.code === 90018
    );
    sim.setFaults({ failPaths: [{ pathPrefix: '/topapi/', status: 200, code: 60011, times: 1 }] });
    await assert.rejects(
      p.notifyRequester('u-err', { kind: 'granted', title: 't4', lines: ['d'], idempotencyKey: 'k4' }),
      (e: IntegrationError) => e.kind === 'auth' && e.details.code === 60011
    );
    sim.setFaults({ errorRate: 1 });
    await assert.rejects(p.getInstance(id), (e: IntegrationError) => e.kind === 'transient' && e.retryable);
    sim.clearFaults();
  });

  it("waits out DingTalk's IP throttle (an answer without errcode, JSON or HTML) for the 5 minutes it blocks", async () => {
    const { process_instance_id: id } = sim.createInstance({
      process_code: 'PROC-A',
      originator_user_id: 'u-throttle',
      form: [],
      deliver: false,
    });
    const warm = platform();
    await warm.getInstance(id);
    for (const format of ['json', 'html'] as const) {
      sim.setFaults({ ipThrottle: { format } });
      const throttled = (e: IntegrationError) =>
        e.kind === 'rate-limited' && e.details.code === IP_THROTTLED && e.details.retryAfterMs === 300_000;
      // With cached tokens, and from the token endpoints themselves.
      await assert.rejects(warm.getInstance(id), throttled);
      await assert.rejects(platform().getInstance(id), throttled);
      const err = await platform()
        .notifyRequester('u-throttle', { kind: 'granted', title: 't', lines: [], idempotencyKey: 'kt' })
        .catch((e: unknown) => e as IntegrationError);
      assert.ok(throttled(err as IntegrationError), format);
      // The activity's next attempt waits the block out instead of retrying every second.
      assert.equal((toTemporalFailure(err) as ApplicationFailure).nextRetryDelay, 300_000);
    }
    sim.clearFaults();
    await warm.getInstance(id);
  });

  it('reconcile lists by start time: an instance submitted days before its approval is found', async () => {
    const now = Date.now();
    const { process_instance_id: old } = sim.createInstance({
      process_code: 'PROC-A',
      originator_user_id: 'u-old',
      form: [],
      create_time: now - 10 * 86_400_000,
      deliver: false,
    });
    const p = platform();
    const day = { fromMs: now - 86_400_000, toMs: now + 60_000 };
    assert.ok(
      (await p.listInstances!('PROC-A', { ...day, submittedSinceMs: day.fromMs - 14 * 86_400_000 })).includes(old)
    );
    assert.ok(!(await p.listInstances!('PROC-A', { ...day, submittedSinceMs: day.fromMs })).includes(old));
    // DingTalk refuses a startTime over 365 days back; a longer lookback is cut to what it allows.
    const token = await v1Token();
    const refused = await fetch(`${sim.url}/v1.0/workflow/processes/instanceIds/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-acs-dingtalk-access-token': token },
      body: JSON.stringify({ processCode: 'PROC-A', startTime: now - 400 * 86_400_000, nextToken: 0, maxResults: 20 }),
    });
    assert.equal(refused.status, 400);
    assert.equal(((await refused.json()) as { code: string }).code, 'invalidEndTime');
    assert.ok((await p.listInstances!('PROC-A', { ...day, submittedSinceMs: now - 400 * 86_400_000 })).includes(old));
    const tooBig = await fetch(`${sim.url}/v1.0/workflow/processes/instanceIds/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-acs-dingtalk-access-token': token },
      body: JSON.stringify({ processCode: 'PROC-A', startTime: now - 86_400_000, nextToken: 0, maxResults: 50 }),
    });
    assert.equal(tooBig.status, 400);
  });

  it('reconcile reads the failed-push list first: a push DingTalk gave up on is found however old the instance', async () => {
    const lost = await startDingTalkSimulator({
      appKey,
      appSecret,
      aesKey: 'LostDingTalkAesKey0000000000000000000000042',
      token: 'losttoken',
      webhookUrl: 'http://127.0.0.1:9/nowhere',
      redeliveryScale: 0.00001,
    });
    try {
      const now = Date.now();
      const { process_instance_id: id } = lost.createInstance({
        process_code: 'PROC-A',
        originator_user_id: 'u-lost',
        form: [],
        create_time: now - 30 * 86_400_000,
      });
      lost.createInstance({ process_code: 'PROC-OTHER', originator_user_id: 'u-x', form: [] });
      await until('both given up', () => (lost.failedPushes().length === 2 ? true : undefined));
      const p = platform({ url: lost.url });
      const window = { fromMs: now - 86_400_000, toMs: now + 60_000, submittedSinceMs: now - 15 * 86_400_000 };
      assert.deepEqual(await p.listInstances!('PROC-A', window), [id]);
      // Read once: the next read clears it at DingTalk (and not-routed codes are not kept).
      assert.deepEqual(await p.listInstances!('PROC-A', window), []);
      assert.deepEqual(lost.failedPushes(), []);
      // Without the list (refused), the listing by start time still runs.
      lost.setFaults({ failPaths: [{ pathPrefix: '/v1.0/event/', status: 403, code: 'Forbidden.AccessDenied' }] });
      const { process_instance_id: recent } = lost.createInstance({
        process_code: 'PROC-A',
        originator_user_id: 'u-recent',
        form: [],
        deliver: false,
      });
      assert.deepEqual(await p.listInstances!('PROC-A', window), [recent]);
    } finally {
      await lost.close();
    }
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
