import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { toTemporalFailure } from '../activities/classify';
import type { IntegrationError } from '../domain/errors';
import { answerBudgetMs, ANSWER_DEADLINE_MS, timingFor } from '../ingress/event-processor';
import { reconcileMissedApprovals } from '../reconcile/reconciler';
import { createWeComPlatform } from '../platforms/wecom/wecom-platform';
import { cdata, encrypt, sign, wecomEchoQuery, wecomRequest } from '../simulators/shared/callback-signer';
import { startWeComSimulator, type WeComControlInput, type WeComSimulator } from '../simulators/wecom/server';
import { workflowIdFor } from '../workflows/definitions';
import type { NacWhitelistResult } from '../workflows/nac-whitelist.workflow';
import { startTestStack, until, type TestStack } from './support/harness';

/**
 * WeCom end to end on a real Temporal dev server: the WeCom simulator creates approval applications and pushes
 * `sys_approval_change` to `POST /webhook/wecom` as encrypted, signed XML (its signer is independent of the ingress's
 * crypto and checked against WeCom's official vector in dingtalk-wecom-crypto.test.ts); the worker reads the
 * application through `getapprovaldetail`, whitelists the MACs in the NAC simulator (asserted through its ISE API)
 * and messages the applicant (asserted in the simulator).
 */

const TEMPLATE_ID = '3WKbSandboxWiFiAccessTemplate0000000000001'; // config/routes.sandbox.yaml

function wifiForm(macs: string, extra: WeComControlInput[] = []): WeComControlInput[] {
  return [
    { control: 'Text', id: 'Text-reason', title: [{ text: '申请事由', lang: 'zh_CN' }], value: { text: 'test' } },
    { control: 'Textarea', id: 'Textarea-macs', title: [{ text: 'MAC地址', lang: 'zh_CN' }], value: { text: macs } },
    ...extra,
  ];
}

function approvalXml(corpId: string, spNo: string, spStatus: number, templateId = TEMPLATE_ID, createTime = 0) {
  return [
    '<xml>',
    `<ToUserName>${cdata(corpId)}</ToUserName><FromUserName>${cdata('sys')}</FromUserName>`,
    `<CreateTime>${createTime || Math.floor(Date.now() / 1000)}</CreateTime>`,
    `<MsgType>${cdata('event')}</MsgType><Event>${cdata('sys_approval_change')}</Event><AgentID>1</AgentID>`,
    `<ApprovalInfo><SpNo>${spNo}</SpNo><SpName>${cdata('Wi-Fi')}</SpName><SpStatus>${spStatus}</SpStatus>`,
    `<TemplateId>${cdata(templateId)}</TemplateId><StatuChangeEvent>2</StatuChangeEvent></ApprovalInfo>`,
    '</xml>',
  ].join('');
}

describe('WeCom callback → Wi‑Fi automation (real Temporal dev server)', () => {
  let t: TestStack;
  let sim: WeComSimulator;
  before(async () => {
    t = await startTestStack({ stoppableTemporal: true });
    sim = t.wecomSim!;
  });
  after(async () => {
    await t?.close();
  });

  const sec = () => ({
    token: t.env.WECOM_TOKEN!,
    aesKey: t.env.WECOM_ENCODING_AES_KEY!,
    corpId: t.env.WECOM_CORP_ID!,
  });
  const post = (query: string, body: string) =>
    fetch(`${t.ingressUrl}/webhook/wecom?${query}`, { method: 'POST', body, headers: { 'content-type': 'text/xml' } });
  const exists = async (spNo: string) => {
    try {
      await t.client.workflow.getHandle(workflowIdFor('wecom', spNo)).describe();
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  };
  const messagesTo = (user: string) => sim.messages().filter((m) => m.touser === user);

  it('answers the echostr URL verification with the bare plaintext', async () => {
    const r = await sim.verifyUrl();
    assert.equal(r.ok, true, JSON.stringify(r));
    const { query } = wecomEchoQuery({ echo: '1409659589-abc', ...sec() });
    const res = await fetch(`${t.ingressUrl}/webhook/wecom?${query}`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '1409659589-abc');
    const forged = new URLSearchParams(query);
    forged.set('msg_signature', '0'.repeat(40));
    assert.equal((await fetch(`${t.ingressUrl}/webhook/wecom?${forged}`)).status, 401);
    const otherCorp = wecomEchoQuery({ echo: 'x', ...sec(), corpId: 'wwsomeoneelse' });
    assert.equal((await fetch(`${t.ingressUrl}/webhook/wecom?${otherCorp.query}`)).status, 403);
  });

  it('an approved application whitelists its MACs and messages the applicant; revoking it restores the NAC', async () => {
    const fresh = '00:1B:44:E1:00:01';
    const preExisting = '00:1B:44:E1:00:02';
    t.nacSim!.store.seed({
      mac: preExisting,
      group: 'Profiled',
      description: 'conference phone',
      staticGroupAssignment: true,
      customAttributes: {},
    } as never);
    const beforeExisting = await t.iseEndpoint(preExisting);
    assert.equal(await t.iseEndpoint(fresh), null);
    const user = 'WangXiaoMing';
    const expiresAt = Math.floor(Date.now() / 1000) + 3 * 86_400;
    const { sp_no: spNo } = sim.createInstance({
      template_id: TEMPLATE_ID,
      userid: user,
      form: wifiForm(`${fresh}；${preExisting}`, [
        {
          control: 'Date',
          id: 'Date-exp',
          title: [{ text: '有效期', lang: 'zh_CN' }],
          value: { date: { type: 'day', s_timestamp: String(expiresAt) } },
        },
      ]),
    });
    const wf = workflowIdFor('wecom', spNo);
    assert.equal(wf, `wecom-${spNo}`);
    const status = await t.waitForPhase(wf, ['active']);
    assert.deepEqual(
      status.macs.map((m) => [m.mac, m.state]),
      [
        [fresh, 'granted'],
        [preExisting, 'granted'],
      ]
    );
    assert.equal(Date.parse(status.expiresAt!), expiresAt * 1000, 'expiry from the Date control');
    for (const mac of [fresh, preExisting]) {
      assert.equal((await t.iseEndpoint(mac))?.groupId, t.nacSim!.whitelistGroupId);
    }
    const granted = await until('the message', () => (messagesTo(user).length ? messagesTo(user) : undefined));
    assert.equal(granted.length, 1);
    assert.equal(String(granted[0]!.agentid), t.env.WECOM_AGENT_ID);
    assert.equal(granted[0]!.msgtype, 'text');
    assert.match(JSON.stringify(granted[0]!.content), /Wi‑Fi access granted/);
    assert.match(JSON.stringify(granted[0]!.content), new RegExp(spNo));
    assert.deepEqual(sim.comments(), [], 'WeCom has no comment API');

    // 通过后撤销 (SpStatus 6): revoked after approval.
    sim.setStatus(spNo, 'REVERTED');
    const r = (await t.client.workflow.getHandle(wf).result()) as NacWhitelistResult;
    assert.equal(r.outcome, 'revoked');
    assert.equal(await t.iseEndpoint(fresh), null);
    assert.deepEqual(await t.iseEndpoint(preExisting), beforeExisting);
    await until('the revocation message', () =>
      messagesTo(user).some((m) => /revoked/.test(JSON.stringify(m.content))) ? true : undefined
    );
  });

  it('reads MACs from a Table control, and a deleted application (SpStatus 7) revokes', async () => {
    const row = (mac: string) => ({
      list: [
        { control: 'Text', id: 'Text-dev', title: [{ text: '设备', lang: 'zh_CN' }], value: { text: 'laptop' } },
        { control: 'Text', id: 'Text-mac', title: [{ text: 'MAC地址', lang: 'zh_CN' }], value: { text: mac } },
      ],
    });
    const { sp_no: spNo } = sim.createInstance({
      template_id: TEMPLATE_ID,
      userid: 'LiLei',
      form: [
        {
          control: 'Table',
          id: 'Table-devices',
          title: [{ text: '设备明细', lang: 'zh_CN' }],
          value: { children: [row('00:1B:44:E2:00:01'), row('001B44E20002')] },
        },
      ],
    });
    const wf = workflowIdFor('wecom', spNo);
    const status = await t.waitForPhase(wf, ['active']);
    assert.deepEqual(
      status.macs.map((m) => m.mac),
      ['00:1B:44:E2:00:01', '00:1B:44:E2:00:02']
    );
    sim.setStatus(spNo, 'DELETED');
    assert.equal(((await t.client.workflow.getHandle(wf).result()) as NacWhitelistResult).outcome, 'revoked');
    assert.equal(await t.iseEndpoint('00:1B:44:E2:00:01'), null);
  });

  it('duplicates start one run; rejected, pending, unrouted and other messages start nothing', async () => {
    const { sp_no: spNo } = sim.createInstance({
      template_id: TEMPLATE_ID,
      userid: 'HanMeimei',
      form: wifiForm('00:1B:44:E3:00:01'),
      deliver: false,
    });
    const req = wecomRequest({
      plaintextXml: approvalXml(sec().corpId, spNo, 2, TEMPLATE_ID, 1_700_000_001),
      ...sec(),
    });
    const r1 = await post(req.query, req.body);
    assert.equal(r1.status, 200);
    assert.equal(await r1.text(), '');
    assert.equal(r1.headers.get('x-approval-plus-outcome'), 'started');
    assert.equal((await post(req.query, req.body)).status, 200); // WeCom retrying the same POST
    const later = wecomRequest({
      plaintextXml: approvalXml(sec().corpId, spNo, 2, TEMPLATE_ID, 1_700_000_002),
      ...sec(),
    });
    assert.equal((await post(later.query, later.body)).headers.get('x-approval-plus-outcome'), 'duplicate');
    let runs = 0;
    for await (const _ of t.client.workflow.list({ query: `WorkflowId = '${workflowIdFor('wecom', spNo)}'` })) runs++;
    assert.equal(runs, 1);
    await t.waitForPhase(workflowIdFor('wecom', spNo), ['active']);
    await t.client.workflow.getHandle(workflowIdFor('wecom', spNo)).signal('cancel', { reason: 'test over' });

    const outcomes: [string, string][] = [];
    for (const [xml, want] of [
      [approvalXml(sec().corpId, '202600000003', 3), 'ignored-status'],
      [approvalXml(sec().corpId, '202600000001', 1), 'ignored-status'],
      [approvalXml(sec().corpId, '202600000002', 2, 'SOME-OTHER-TEMPLATE'), 'unrouted'],
      [
        `<xml><ToUserName>${cdata(sec().corpId)}</ToUserName><MsgType>${cdata('text')}</MsgType><Content>${cdata('hi')}</Content><MsgId>1</MsgId></xml>`,
        'ignored-type',
      ],
    ] as const) {
      const r = wecomRequest({ plaintextXml: xml, ...sec() });
      const res = await post(r.query, r.body);
      assert.equal(res.status, 200);
      outcomes.push([res.headers.get('x-approval-plus-outcome') ?? '', want]);
    }
    for (const [got, want] of outcomes) assert.equal(got, want);
    for (const id of ['202600000001', '202600000002', '202600000003']) assert.equal(await exists(id), false);
  });

  it('refuses forged and malformed callbacks with a precise 4xx and starts nothing', async () => {
    const { sp_no: spNo } = sim.createInstance({
      template_id: TEMPLATE_ID,
      userid: 'Forger',
      form: wifiForm('00:1B:44:E4:00:01'),
      deliver: false,
    });
    const xml = approvalXml(sec().corpId, spNo, 2);
    const good = wecomRequest({ plaintextXml: xml, ...sec() });
    const q = new URLSearchParams(good.query);
    const withQuery = (patch: Record<string, string | null>) => {
      const p = new URLSearchParams(q);
      for (const [k, v] of Object.entries(patch)) {
        if (v === null) p.delete(k);
        else p.set(k, v);
      }
      return p.toString();
    };
    const body = (enc: string, to = sec().corpId) =>
      `<xml><ToUserName>${cdata(to)}</ToUserName><AgentID>${cdata('1')}</AgentID><Encrypt>${cdata(enc)}</Encrypt></xml>`;
    const otherCorp = wecomRequest({ plaintextXml: xml, ...sec(), corpId: 'wwanothercorp0001' });
    const bytes = Buffer.from(good.encrypt, 'base64');
    bytes[40]! ^= 0x01;
    const tampered = bytes.toString('base64');
    const otherKey = encrypt('AnotherWeComKey0000000000000000000000000042', xml, sec().corpId);
    const cases: [string, string, string, number, string][] = [
      ['forged signature', withQuery({ msg_signature: 'a'.repeat(40) }), good.body, 401, 'bad_signature'],
      ['missing signature', withQuery({ msg_signature: null }), good.body, 401, 'missing_signature'],
      ['missing timestamp', withQuery({ timestamp: null }), good.body, 400, 'missing_field'],
      [
        'signed with another token',
        wecomRequest({ plaintextXml: xml, ...sec(), token: 'other' }).query,
        good.body,
        401,
        'bad_signature',
      ],
      ['encrypted for another corp id', otherCorp.query, otherCorp.body, 403, 'unknown_corp'],
      ['ToUserName of another corp', good.query, body(good.encrypt, 'wwanothercorp0001'), 403, 'unknown_corp'],
      [
        'tampered ciphertext',
        withQuery({ msg_signature: sign(sec().token, good.timestamp, good.nonce, tampered) }),
        body(tampered),
        400,
        'bad_ciphertext',
      ],
      [
        'another EncodingAESKey',
        withQuery({ msg_signature: sign(sec().token, good.timestamp, good.nonce, otherKey) }),
        body(otherKey),
        400,
        'bad_ciphertext',
      ],
      [
        'no Encrypt element',
        good.query,
        `<xml><ToUserName>${cdata(sec().corpId)}</ToUserName></xml>`,
        400,
        'expected_encryption',
      ],
      ['not XML', good.query, '<xml><Encrypt>', 400, 'malformed_xml'],
      ['a DOCTYPE', good.query, `<!DOCTYPE xml [<!ENTITY x "y">]>${good.body}`, 400, 'malformed_xml'],
    ];
    for (const [name, query, b, status, error] of cases) {
      const res = await post(query, b);
      assert.equal(res.status, status, name);
      assert.equal(((await res.json()) as { error: string }).error, error, name);
    }
    assert.equal(await exists(spNo), false);
  });

  // Before the slower tests below: the ingress client's retries of the refused calls die out meanwhile.
  it("holds the 503 past WeCom's 5 s, so it pushes again even if only time-outs are retried (90930)", async () => {
    await t.stopTemporal();
    const { sp_no: spNo } = sim.createInstance({
      template_id: TEMPLATE_ID,
      userid: 'Patient',
      form: wifiForm('00:1B:44:E9:00:01'),
    });
    const [first] = await until('the first push', () => {
      const d = sim.deliveries().filter((x) => x.instance_id === spNo);
      return d.length ? d : undefined;
    });
    assert.deepEqual([first!.ok, first!.error], [false, 'no answer within 5000 ms']);
    await t.startTemporal();
    await t.waitForPhase(workflowIdFor('wecom', spNo), ['active'], 60_000);
    const ds = sim.deliveries().filter((x) => x.instance_id === spNo);
    assert.equal(ds.filter((d) => d.ok).length, 1);
    assert.ok(
      ds.every((d) => d.ok || d.error === 'no answer within 5000 ms'),
      JSON.stringify(ds)
    );
    await t.client.workflow.getHandle(workflowIdFor('wecom', spNo)).signal('cancel', { reason: 'test over' });
  });

  /**
   * A receiver in front of the ingress: `first(res, n)` may answer request n itself (returning true); the others are
   * forwarded.
   */
  async function frontOfIngress(first: (res: ServerResponse, n: number) => boolean) {
    let n = 0;
    const proxy = createServer((req, res) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        if (first(res, n++)) return;
        const r = await fetch(`${t.ingressUrl}/webhook/wecom${req.url!.slice(req.url!.indexOf('?'))}`, {
          method: 'POST',
          body: Buffer.concat(chunks),
          headers: { 'content-type': 'text/xml' },
        });
        res.writeHead(r.status).end(await r.text());
      })();
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`,
      reset: () => (n = 0),
      close: () => proxy.close(),
    };
  }

  it("under 90930's reading WeCom does not push again after a 503, but does after a time-out (5 s)", async () => {
    assert.equal(ANSWER_DEADLINE_MS.wecom, 5000);
    assert.equal(answerBudgetMs('wecom'), 4000);
    // The first request is answered 503 at once, or after 5.5 s; the rest go to the ingress.
    let first: 'refuse' | 'stall' = 'refuse';
    const proxy = await frontOfIngress((res, n) => {
      if (n > 0) return false;
      if (first === 'refuse') res.writeHead(503).end();
      else setTimeout(() => res.writeHead(503).end(), 5500);
      return true;
    });
    try {
      sim.setWebhookUrl(proxy.url);
      const { sp_no: refused } = sim.createInstance({
        template_id: TEMPLATE_ID,
        userid: 'Refused',
        form: wifiForm('x'),
      });
      const gaveUp = await until('the give-up', () =>
        sim.deliveries().find((d) => d.instance_id === refused && d.outcome === 'gave-up')
      );
      assert.deepEqual([gaveUp.attempt, gaveUp.status], [1, 503]);
      first = 'stall';
      proxy.reset();
      const { sp_no: stalled } = sim.createInstance({
        template_id: TEMPLATE_ID,
        userid: 'Stalled',
        form: wifiForm('00:1B:44:E6:00:01'),
      });
      await t.waitForPhase(workflowIdFor('wecom', stalled), ['active'], 30_000);
      const ds = sim.deliveries().filter((d) => d.instance_id === stalled);
      assert.deepEqual(
        ds.map((d) => [d.attempt, d.ok, d.error]),
        [
          [1, false, 'no answer within 5000 ms'],
          [2, true, undefined],
        ]
      );
      await t.client.workflow.getHandle(workflowIdFor('wecom', stalled)).signal('cancel', { reason: 'test over' });
    } finally {
      sim.setWebhookUrl(`${t.ingressUrl}/webhook/wecom`);
      proxy.close();
    }
  });

  it('a batch application (batch_applyer) is one grant, and every applicant is told', async () => {
    const { sp_no: spNo } = sim.createInstance({
      template_id: TEMPLATE_ID,
      batch_userids: ['ZhangSan', 'LiSi'],
      form: wifiForm('00:1B:44:E7:00:01'),
    });
    const status = await t.waitForPhase(workflowIdFor('wecom', spNo), ['active']);
    assert.equal(status.macs[0]!.state, 'granted');
    const told = await until('the message', () =>
      sim.messages().find((m) => m.touser === 'ZhangSan|LiSi' && /granted/.test(JSON.stringify(m.content)))
    );
    assert.deepEqual(told.delivered_to, ['ZhangSan', 'LiSi']);
    await t.client.workflow.getHandle(workflowIdFor('wecom', spNo)).signal('cancel', { reason: 'test over' });
  });

  it('reconcile finds an approval submitted days before it passed, whose callback never arrived', async () => {
    const now = Date.now();
    const { sp_no: spNo } = sim.createInstance({
      template_id: TEMPLATE_ID,
      userid: 'Reconciled',
      form: wifiForm('00:1B:44:E8:00:01'),
      apply_time: Math.floor((now - 9 * 86_400_000) / 1000),
      deliver: false,
    });
    const report = await reconcileMissedApprovals(
      {
        client: t.client,
        routes: t.config.routes.filter((r) => r.platform === 'wecom'),
        platforms: t.platforms!,
        nac: t.nac!,
        timing: timingFor(t.config),
        approvalMaxAgeMs: 14 * 86_400_000,
      },
      { fromMs: now - 3_600_000, toMs: now + 60_000 }
    );
    assert.ok(report.started.includes(workflowIdFor('wecom', spNo)), JSON.stringify(report));
    await t.waitForPhase(workflowIdFor('wecom', spNo), ['active']);
    await t.client.workflow.getHandle(workflowIdFor('wecom', spNo)).signal('cancel', { reason: 'test over' });
  });

  it('WeCom retries a failed push (three times, then drops it), and a retried event runs once', async () => {
    // A receiver that refuses the first push and forwards the rest to the ingress.
    const proxy = await frontOfIngress((res, n) => {
      if (n > 0) return false;
      res.writeHead(503).end();
      return true;
    });
    try {
      // Doc 90238's reading: any non-200 is pushed again.
      sim.setRetryOn('any-failure');
      sim.setWebhookUrl(proxy.url);
      const { sp_no: spNo } = sim.createInstance({
        template_id: TEMPLATE_ID,
        userid: 'Retry',
        form: wifiForm('00:1B:44:E5:00:01'),
      });
      await t.waitForPhase(workflowIdFor('wecom', spNo), ['active']);
      const ds = sim.deliveries().filter((d) => d.instance_id === spNo);
      assert.deepEqual(
        ds.map((d) => [d.attempt, d.status, d.ok]),
        [
          [1, 503, false],
          [2, 200, true],
        ]
      );
      await t.client.workflow.getHandle(workflowIdFor('wecom', spNo)).signal('cancel', { reason: 'test over' });

      // Nobody answers: the first push and three retries, then WeCom gives up (reconcile catches such drops).
      sim.setWebhookUrl(`${t.ingressUrl}/webhook/nowhere`);
      const { sp_no: lost } = sim.createInstance({ template_id: TEMPLATE_ID, userid: 'Lost', form: wifiForm('x') });
      const gaveUp = await until('the give-up', () =>
        sim.deliveries().find((d) => d.instance_id === lost && d.outcome === 'gave-up')
      );
      assert.equal(gaveUp.attempt, 4);
    } finally {
      sim.setRetryOn('timeout-only');
      sim.setWebhookUrl(`${t.ingressUrl}/webhook/wecom`);
      proxy.close();
    }
  });
});

describe('WeCom platform against the simulator (API, tokens, errors)', () => {
  let sim: WeComSimulator;
  const cfg = {
    corpId: 'wwplatformtest01',
    corpSecret: 'secret',
    agentId: '1000009',
    token: 'tok',
    encodingAesKey: 'PlatformTestKey0000000000000000000000000042',
  };
  before(async () => {
    sim = await startWeComSimulator(cfg);
  });
  after(async () => {
    await sim?.close();
  });
  const platform = (over: Partial<typeof cfg> = {}) =>
    createWeComPlatform({ ...cfg, ...over, baseUrl: sim.url }, { timeoutMs: 2000 });

  it('maps the approval detail onto ApprovalInstance', async () => {
    const { sp_no: spNo } = sim.createInstance({
      template_id: 'T1',
      userid: 'u1',
      form: wifiForm('aa', [
        {
          control: 'Selector',
          title: '有效期',
          value: { selector: { type: 'single', options: [{ key: 'o1', value: [{ text: '7天', lang: 'zh_CN' }] }] } },
        },
        {
          control: 'DateRange',
          title: '时段',
          value: {
            date_range: { type: 'halfday', new_begin: 1_900_000_000, new_end: 1_900_086_400, new_duration: 86_400 },
          },
        },
      ]),
      deliver: false,
    });
    const inst = await platform().getInstance(spNo);
    assert.equal(inst.platform, 'wecom');
    assert.equal(inst.status, 'APPROVED');
    assert.equal(inst.approvalCode, 'T1');
    assert.equal(inst.requesterId, 'u1');
    assert.deepEqual(
      inst.form.map((w) => [w.name, w.type, w.value]),
      [
        ['申请事由', 'input', 'test'],
        ['MAC地址', 'textarea', 'aa'],
        ['有效期', 'radioV2', '7天'],
        ['时段', 'dateInterval', { start: 1_900_000_000, end: 1_900_086_400 }],
      ]
    );
    for (const [status, want] of [
      ['REJECTED', 'REJECTED'],
      ['CANCELED', 'CANCELED'],
      ['REVERTED', 'REVERTED'],
      ['PAID', 'APPROVED'],
    ] as const) {
      sim.setStatus(spNo, status, { deliver: false });
      assert.equal((await platform().getInstance(spNo)).status, want);
    }
    // Paid (10) is listed with approved (2): only an approved application gets paid.
    const now = Date.now();
    assert.deepEqual(
      await platform().listInstances!('T1', {
        fromMs: now - 3_600_000,
        toMs: now + 1000,
        submittedSinceMs: now - 86_400_000,
      }),
      [spNo]
    );
  });

  it('refreshes a rejected token, classifies errors, and lets WeCom dedupe a repeated message', async () => {
    const { sp_no: spNo } = sim.createInstance({ template_id: 'T2', userid: 'u2', form: [], deliver: false });
    const p = platform();
    await p.getInstance(spNo);
    // The cached token is refused (40014): dropped, and the call made once more with a new one.
    sim.revokeTokens();
    await p.getInstance(spNo);
    // Refused again with the new one: the call fails, retryable.
    sim.setFaults({ failPaths: [{ pathPrefix: '/cgi-bin/oa/', status: 200, code: 42001, times: 2 }] });
    await assert.rejects(
      p.getInstance(spNo),
      (e: IntegrationError) => e.kind === 'transient' && e.details.code === 42001
    );
    sim.clearFaults();
    await p.getInstance(spNo);
    await assert.rejects(
      platform({ corpSecret: 'wrong' }).getInstance(spNo),
      (e: IntegrationError) => e.kind === 'auth'
    );
    await assert.rejects(
      p.getInstance('000'),
      (e: IntegrationError) => e.kind === 'invalid' && e.details.code === 40058
    );
    sim.setFaults({ rateLimit: { perSecond: 1 } });
    const rs = await Promise.allSettled([p.getInstance(spNo), p.getInstance(spNo), p.getInstance(spNo)]);
    sim.clearFaults();
    const limited = rs.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
    assert.ok(limited.length >= 1);
    for (const e of limited) assert.equal((e as IntegrationError).kind, 'rate-limited');
    sim.setFaults({ errorRate: 1 });
    await assert.rejects(p.getInstance(spNo), (e: IntegrationError) => e.kind === 'transient');
    sim.clearFaults();

    const msg = { kind: 'granted' as const, title: 'hello', lines: ['x'], idempotencyKey: 'k', instanceId: spNo };
    const a = await p.notifyRequester('u2', msg);
    const b = await p.notifyRequester('u2', msg);
    assert.equal(a.messageId, b.messageId);
    assert.equal(sim.messages().filter((m) => m.touser === 'u2').length, 1);
    await p.commentOnInstance({ instanceId: spNo, requesterId: 'u2' }, 'noted', 'k'); // a documented no-op
    sim.setStatus(spNo, 'APPROVED', { deliver: false });
    const now = Date.now();
    assert.deepEqual(
      await p.listInstances!('T2', { fromMs: now - 3_600_000, toMs: now + 1000, submittedSinceMs: now - 86_400_000 }),
      [spNo]
    );
  });

  it('45009: waits a minute, and an hour once the block outlasts the minute (90312); 45011 is no WeCom code', async () => {
    const { sp_no: spNo } = sim.createInstance({ template_id: 'T3', userid: 'u3', form: [], deliver: false });
    let clock = Date.now();
    const p = createWeComPlatform({ ...cfg, baseUrl: sim.url }, { timeoutMs: 2000, now: () => clock });
    await p.getInstance(spNo);
    sim.setFaults({ frequency: { perHour: 1 } });
    await p.getInstance(spNo);
    const blocked = (ms: number) => (e: IntegrationError) =>
      e.kind === 'rate-limited' && e.details.code === 45009 && e.details.retryAfterMs === ms;
    const failure = (call: Promise<unknown>) =>
      call.then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e as IntegrationError
      );
    let err = await failure(p.getInstance(spNo));
    assert.ok(blocked(61_000)(err), JSON.stringify(err));
    assert.equal((toTemporalFailure(err) as ApplicationFailure).nextRetryDelay, 61_000);
    // A minute later it still blocks: the per-hour limit, so the rest of the hour.
    clock += 61_000;
    err = await failure(p.getInstance(spNo));
    assert.ok(blocked(3_600_000 - 61_000 + 1000)(err), JSON.stringify(err));
    assert.equal((toTemporalFailure(err) as ApplicationFailure).nextRetryDelay, 3_540_000);
    // Over once a call succeeds; a later 45009 is a new block.
    sim.clearFaults();
    await p.getInstance(spNo);
    sim.setFaults({ failPaths: [{ pathPrefix: '/cgi-bin/oa/', status: 200, code: 45009, times: 1 }] });
    await assert.rejects(p.getInstance(spNo), blocked(61_000));
    // 45033 (concurrency) is a rate limit without a stated wait: the retry policy's back-off applies.
    sim.setFaults({ failPaths: [{ pathPrefix: '/cgi-bin/oa/', status: 200, code: 45033, times: 1 }] });
    err = await failure(p.getInstance(spNo));
    assert.equal(err.kind, 'rate-limited');
    assert.equal((toTemporalFailure(err) as ApplicationFailure).nextRetryDelay, undefined);
    sim.setFaults({ failPaths: [{ pathPrefix: '/cgi-bin/oa/', status: 200, code: 45011, times: 1 }] });
    await assert.rejects(p.getInstance(spNo), (e: IntegrationError) => e.kind === 'invalid');
    sim.clearFaults();
  });

  it('lists by submission time in calls of at most 31 days (301025 beyond), within the visible range', async () => {
    const now = Date.now();
    const submitted = (daysAgo: number, userid = 'u4') =>
      sim.createInstance({
        template_id: 'T4',
        userid,
        form: [],
        deliver: false,
        apply_time: Math.floor((now - daysAgo * 86_400_000) / 1000),
      }).sp_no;
    const [d45, d10, d70] = [submitted(45), submitted(10), submitted(70)];
    const outside = submitted(5, 'Outsider');
    const p = platform();
    const window = (sinceDays: number) => ({
      fromMs: now - 86_400_000,
      toMs: now + 1000,
      submittedSinceMs: now - sinceDays * 86_400_000,
    });
    sim.setApp({ outsideVisibleRange: ['outsider'] });
    assert.deepEqual((await p.listInstances!('T4', window(60))).sort(), [d10, d45].sort());
    assert.deepEqual((await p.listInstances!('T4', window(14))).sort(), [d10]);
    sim.setApp({});
    assert.deepEqual((await p.listInstances!('T4', window(80))).sort(), [d10, d45, d70, outside].sort());
    // One call over 31 days is refused.
    const { access_token: token } = (await (
      await fetch(`${sim.url}/cgi-bin/gettoken?corpid=${cfg.corpId}&corpsecret=${cfg.corpSecret}`)
    ).json()) as { access_token: string };
    const long = (await (
      await fetch(`${sim.url}/cgi-bin/oa/getapprovalinfo?access_token=${token}`, {
        method: 'POST',
        body: JSON.stringify({
          starttime: String(Math.floor(now / 1000) - 40 * 86_400),
          endtime: String(Math.floor(now / 1000)),
          new_cursor: '',
          size: 100,
        }),
      })
    ).json()) as { errcode: number };
    assert.equal(long.errcode, 301025);
    // Without the 审批数据权限 grant: configuration.
    sim.setApp({ approvalDataPermission: false });
    await assert.rejects(
      p.listInstances!('T4', window(14)),
      (e: IntegrationError) => e.kind === 'auth' && e.details.code === 301055
    );
    sim.setApp({});
  });

  it('a batch application: batch_applyer instead of applyer, its applicants the requester', async () => {
    const { sp_no: spNo } = sim.createInstance({
      template_id: 'T5',
      batch_userids: ['WangWu', 'ZhaoLiu'],
      form: [],
      deliver: false,
    });
    const inst = await platform().getInstance(spNo);
    assert.equal(inst.requesterId, 'WangWu|ZhaoLiu');
    assert.equal(inst.requesterUserId, 'WangWu');
  });

  it('a message refused for some applicants is sent to the rest; refused for all it fails (81013, invaliduser)', async () => {
    const p = platform();
    const msg = (key: string) => ({ kind: 'granted' as const, title: key, lines: ['x'], idempotencyKey: key });
    sim.setApp({ outsideVisibleRange: ['Ghost'], unlicensed: ['NoLicence'] });
    await p.notifyRequester('Present|Ghost', msg('m1'));
    assert.deepEqual(sim.messages().find((m) => m.touser === 'Present|Ghost')?.delivered_to, ['Present']);
    await assert.rejects(
      p.notifyRequester('Ghost', msg('m2')),
      (e: IntegrationError) => e.kind === 'invalid' && e.details.code === 81013
    );
    await assert.rejects(
      p.notifyRequester('NoLicence|Ghost', msg('m3')),
      (e: IntegrationError) => e.kind === 'invalid' && e.details.code === 81013
    );
    // The same with errcode 0: refused ids come back lower-cased, and are compared so.
    sim.setApp({ outsideVisibleRange: ['Ghost'], unlicensed: ['NoLicence'], allRefused: 'ok' });
    await assert.rejects(
      p.notifyRequester('GHOST', msg('m4')),
      (e: IntegrationError) => e.kind === 'invalid' && e.details.code === 'invaliduser'
    );
    await assert.rejects(
      p.notifyRequester('NoLicence', msg('m5')),
      (e: IntegrationError) => e.kind === 'invalid' && e.details.code === 'unlicenseduser'
    );
    sim.setApp({});
  });
});
