import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FeishuConfig } from '../config/config';
import { IntegrationError } from '../domain/errors';
import type { RequesterMessage } from '../domain/types';
import { decryptEvent, verifySignature } from '../platforms/feishu/crypto';
import { createFeishuPlatform, type FeishuPlatform } from '../platforms/feishu/feishu-platform';
import { startFeishuSimulator, type FeishuSimulator } from '../simulators/feishu/server';

const APP_ID = 'cli_a1b2c3d4e5f6a7b8';
const APP_SECRET = 'test-app-secret';
const ENCRYPT_KEY = 'test-encrypt-key';
const VERIFICATION_TOKEN = 'test-verification-token';
const APPROVAL_CODE = '7C468A54-8745-2245-9675-08B7C63E7A85';

// ---- a tiny webhook receiver standing in for the app's /webhook/feishu ----

interface Received {
  headers: IncomingHttpHeaders;
  rawBody: Buffer;
}

interface Receiver {
  url: string;
  received: Received[];
  /** Decides the answer for each request (default 200). */
  respond: (r: Received, index: number) => number | 'hang';
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const receiver: Omit<Receiver, 'url' | 'close'> = { received: [], respond: () => 200 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { headers: req.headers, rawBody: Buffer.concat(chunks) };
      receiver.received.push(r);
      const answer = receiver.respond(r, receiver.received.length - 1);
      if (answer === 'hang') return;
      const plain = decryptBody(r);
      // Echo URL challenges like the real ingress; other events are acknowledged.
      const body = plain.type === 'url_verification' ? { challenge: plain.challenge } : { msg: 'success' };
      res.writeHead(answer, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook/feishu`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}

function decryptBody(r: Received): Record<string, unknown> {
  const outer = JSON.parse(r.rawBody.toString('utf8')) as { encrypt?: string };
  const text = outer.encrypt ? decryptEvent(outer.encrypt, ENCRYPT_KEY) : r.rawBody.toString('utf8');
  return JSON.parse(text) as Record<string, unknown>;
}

function feishuConfig(baseUrl: string, overrides: Partial<FeishuConfig> = {}): FeishuConfig {
  return {
    appId: APP_ID,
    appSecret: APP_SECRET,
    encryptKey: ENCRYPT_KEY,
    verificationToken: VERIFICATION_TOKEN,
    baseUrl,
    eventMode: 'http',
    ...overrides,
  };
}

async function rejectsWith(
  p: Promise<unknown>,
  kind: IntegrationError['kind'],
  check?: (e: IntegrationError) => void
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof IntegrationError, `expected IntegrationError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    assert.equal(err.details.system, 'feishu');
    assert.ok(!err.message.includes(APP_SECRET), 'message must not contain the app secret');
    assert.ok(!/\bt-[0-9a-f]{10,}/.test(err.message), 'message must not contain a token');
    check?.(err);
    return true;
  });
}

const macForm = [
  { id: 'widget1', name: 'MAC地址', type: 'textarea', value: 'aa:bb:cc:dd:ee:ff' },
  { id: 'widget2', name: '有效期', type: 'radioV2', value: '7天' },
  {
    id: 'widget3',
    name: '设备列表',
    type: 'fieldList',
    value: [
      [
        { id: 'w3a', name: '设备', type: 'input', value: 'laptop' },
        { id: 'w3b', name: 'MAC', type: 'input', value: '11-22-33-44-55-66' },
      ],
      [
        { id: 'w3a', name: '设备', type: 'input', value: 'phone' },
        { id: 'w3b', name: 'MAC', type: 'input', value: '1122.3344.5577' },
      ],
    ],
  },
];

function message(overrides: Partial<RequesterMessage> = {}): RequesterMessage {
  return {
    kind: 'granted',
    title: 'Wi-Fi access granted',
    lines: ['**aa:bb:cc:dd:ee:ff** whitelisted', 'Valid for 7 days'],
    idempotencyKey: 'feishu-IC1-granted',
    instanceId: 'IC1',
    ...overrides,
  };
}

describe('feishu platform against the simulator', () => {
  let receiver: Receiver;
  let sim: FeishuSimulator;
  let platform: FeishuPlatform;

  before(async () => {
    receiver = await startReceiver();
    sim = await startFeishuSimulator({
      port: 0,
      appId: APP_ID,
      appSecret: APP_SECRET,
      encryptKey: ENCRYPT_KEY,
      verificationToken: VERIFICATION_TOKEN,
      webhookUrl: receiver.url,
      redeliveryScale: 0.001,
    });
    platform = createFeishuPlatform(feishuConfig(sim.url), { timeoutMs: 2000 });
  });

  after(async () => {
    await sim.close();
    await receiver.close();
  });

  beforeEach(() => {
    sim.reset();
    receiver.received.length = 0;
    receiver.respond = () => 200;
  });

  it('getInstance maps the instance, parsing the form JSON string incl. a detail table', async () => {
    const { instance_code } = sim.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: 'ou_requester1',
      user_id: 'u_req1',
      form: macForm,
      deliver: false,
    });
    const instance = await platform.getInstance(instance_code);
    assert.equal(instance.platform, 'feishu');
    assert.equal(instance.instanceId, instance_code);
    assert.equal(instance.approvalCode, APPROVAL_CODE);
    assert.equal(instance.approvalName, 'Wi-Fi access');
    assert.equal(instance.status, 'APPROVED');
    assert.equal(instance.requesterId, 'ou_requester1');
    assert.equal(instance.requesterUserId, 'u_req1');
    assert.deepEqual(instance.form, macForm);
    assert.equal(typeof instance.startTime, 'number');
    assert.equal(typeof instance.endTime, 'number');
  });

  it('getInstance reports a revoked approval as REVERTED and a pending one without endTime', async () => {
    const { instance_code } = sim.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: 'ou_a',
      form: [],
      status: 'PENDING',
      deliver: false,
    });
    const pending = await platform.getInstance(instance_code);
    assert.equal(pending.status, 'PENDING');
    assert.equal(pending.endTime, undefined);
    sim.setStatus(instance_code, 'APPROVED', { deliver: false });
    sim.setStatus(instance_code, 'REVERTED', { deliver: false });
    assert.equal((await platform.getInstance(instance_code)).status, 'REVERTED');
  });

  it('getInstance of an unknown instance → not-found (code 1390003)', async () => {
    await rejectsWith(platform.getInstance('NO-SUCH-INSTANCE'), 'not-found', (e) => {
      assert.equal(e.details.code, 1390003);
      assert.equal(e.details.status, 400);
      assert.match(e.message, /1390003/);
    });
  });

  it('notifyRequester sends one interactive card per idempotency key', async () => {
    const first = await platform.notifyRequester('ou_requester1', message());
    const second = await platform.notifyRequester('ou_requester1', message());
    assert.equal(second.messageId, first.messageId);
    const sent = sim.messages();
    assert.equal(sent.length, 1);
    const m = sent[0]!;
    assert.equal(m.message_id, first.messageId);
    assert.equal(m.receive_id, 'ou_requester1');
    assert.equal(m.receive_id_type, 'open_id');
    assert.equal(m.msg_type, 'interactive');
    assert.equal(m.uuid, 'feishu-IC1-granted');
    const card = m.content as {
      header: { template: string; title: { content: string } };
      elements: { text?: { content: string } }[];
    };
    assert.equal(card.header.template, 'green');
    assert.equal(card.header.title.content, 'Wi-Fi access granted');
    assert.match(card.elements[0]!.text!.content, /aa:bb:cc:dd:ee:ff/);
  });

  it('card colours follow the message kind; long keys are hashed to a ≤ 50 char uuid', async () => {
    const longKey = `feishu-${'X'.repeat(80)}-revoked`;
    await platform.notifyRequester('ou_r', message({ kind: 'revoked', idempotencyKey: longKey }));
    await platform.notifyRequester('ou_r', message({ kind: 'revoked', idempotencyKey: longKey }));
    await platform.notifyRequester('ou_r', message({ kind: 'expiry-reminder', idempotencyKey: 'k-remind' }));
    const sent = sim.messages();
    assert.equal(sent.length, 2);
    assert.ok(sent[0]!.uuid!.length <= 50);
    assert.equal((sent[0]!.content as { header: { template: string } }).header.template, 'red');
    assert.equal((sent[1]!.content as { header: { template: string } }).header.template, 'orange');
  });

  it('commentOnInstance is idempotent on its key (one comment after two calls)', async () => {
    const { instance_code } = sim.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: 'ou_c',
      form: [],
      deliver: false,
    });
    const instance = { instanceId: instance_code, requesterId: 'ou_c' };
    await platform.commentOnInstance(instance, 'Whitelisted 1 MAC', 'comment-1');
    await platform.commentOnInstance(instance, 'Whitelisted 1 MAC', 'comment-1');
    await platform.commentOnInstance(instance, 'Revoked', 'comment-2');
    const comments = sim.comments();
    assert.equal(comments.length, 2);
    assert.equal(comments[0]!.instance_code, instance_code);
    assert.equal(comments[0]!.user_id, 'ou_c');
    assert.match(comments[0]!.text, /^Whitelisted 1 MAC \[ap:comment-1\]$/);
  });

  it('commentOnInstance uses the configured comment user when set', async () => {
    const { instance_code } = sim.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: 'ou_d',
      form: [],
      deliver: false,
    });
    const p = createFeishuPlatform(feishuConfig(sim.url, { commentUserId: 'ou_bot_admin' }));
    await p.commentOnInstance({ instanceId: instance_code, requesterId: 'ou_d' }, 'hi', 'k');
    assert.equal(sim.comments()[0]!.user_id, 'ou_bot_admin');
  });

  it('subscribeApprovals twice succeeds (1390007 = already subscribed)', async () => {
    await platform.subscribeApprovals([APPROVAL_CODE, 'OTHER-CODE']);
    await platform.subscribeApprovals([APPROVAL_CODE]);
    const res = await fetch(`${sim.url}/_sim/subscriptions`);
    assert.deepEqual(await res.json(), [APPROVAL_CODE, 'OTHER-CODE']);
  });

  it('listInstances paginates over instance_code_list', async () => {
    const from = Date.now() - 1000;
    const created = new Set<string>();
    for (let i = 0; i < 105; i++) {
      created.add(
        sim.createInstance({ approval_code: APPROVAL_CODE, open_id: `ou_${i}`, form: [], deliver: false }).instance_code
      );
    }
    sim.createInstance({ approval_code: 'OTHER', open_id: 'ou_x', form: [], deliver: false });
    const codes = await platform.listInstances!(APPROVAL_CODE, {
      fromMs: from,
      toMs: Date.now() + 1000,
      submittedSinceMs: from,
    });
    assert.equal(codes.length, 105);
    assert.deepEqual(new Set(codes), created);
  });

  it('wrong app secret → auth', async () => {
    const logged: unknown[] = [];
    const logger = {
      debug: (o: object, m?: string) => logged.push([o, m]),
      warn: (o: object, m?: string) => logged.push([o, m]),
    };
    const bad = createFeishuPlatform(feishuConfig(sim.url, { appSecret: 'wrong-secret' }), { logger });
    await rejectsWith(bad.getInstance('ANY'), 'auth', (e) => assert.equal(e.details.code, 10015));
    // The SDK logs the failed token request; only a summary may reach our logger, never the secret.
    assert.ok(logged.length > 0);
    assert.ok(!JSON.stringify(logged).includes('wrong-secret'), JSON.stringify(logged));
    const badId = createFeishuPlatform(feishuConfig(sim.url, { appId: 'cli_0000000000000000' }));
    await rejectsWith(badId.getInstance('ANY'), 'auth', (e) => assert.equal(e.details.code, 10014));
    // Token failure on HTTP 200: the SDK throws a plain Error naming the code, not an AxiosError.
    sim.setFaults({ failPaths: [{ pathPrefix: '/open-apis/auth/', status: 200, code: 10015, times: 1 }] });
    const fresh = createFeishuPlatform(feishuConfig(sim.url));
    await rejectsWith(fresh.getInstance('ANY'), 'auth', (e) => assert.equal(e.details.code, 10015));
  });

  it('HTTP 429 → rate-limited with retryAfterMs from x-ogw-ratelimit-reset', async () => {
    sim.setFaults({ rateLimit: { perSecond: 1 } });
    const { instance_code } = sim.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: 'ou_r',
      form: [],
      deliver: false,
    });
    // Retry until the limiter trips (the window may roll over between calls).
    let limited: unknown;
    for (let i = 0; i < 5 && !limited; i++) {
      await Promise.all([platform.getInstance(instance_code), platform.getInstance(instance_code)]).catch(
        (e: unknown) => {
          limited = e;
        }
      );
    }
    assert.ok(limited instanceof IntegrationError);
    assert.equal(limited.kind, 'rate-limited');
    assert.equal(limited.details.status, 429);
    assert.equal(limited.details.code, 99991400);
    assert.equal(limited.details.retryAfterMs, 1000);
    assert.equal(limited.retryable, true);
  });

  it('rate-limit code on HTTP 200 (resolved, not thrown by the SDK) is classified too', async () => {
    sim.setFaults({ failPaths: [{ pathPrefix: '/open-apis/im/', status: 200, code: 99991400, times: 1 }] });
    await rejectsWith(platform.notifyRequester('ou_r', message()), 'rate-limited', (e) =>
      assert.equal(e.details.status, 200)
    );
    await platform.notifyRequester('ou_r', message());
    assert.equal(sim.messages().length, 1);
  });

  it('a rejected tenant token is dropped: transient now, a fresh token next call', async () => {
    const { instance_code } = sim.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: 'ou_t',
      form: [],
      deliver: false,
    });
    await platform.getInstance(instance_code); // token cached
    sim.revokeTokens();
    await rejectsWith(platform.getInstance(instance_code), 'transient', (e) => assert.equal(e.details.code, 99991663));
    const again = await platform.getInstance(instance_code);
    assert.equal(again.instanceId, instance_code);
  });

  it('HTTP 5xx → transient; other 4xx → invalid; permission code → auth', async () => {
    const { instance_code } = sim.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: 'ou_e',
      form: [],
      deliver: false,
    });
    sim.setFaults({
      failPaths: [{ pathPrefix: '/open-apis/approval/v4/instances/', status: 500, code: 1395001, times: 1 }],
    });
    await rejectsWith(platform.getInstance(instance_code), 'transient', (e) => assert.equal(e.details.status, 500));
    sim.setFaults({ failPaths: [{ pathPrefix: '/open-apis/approval/v4/instances/', status: 502, code: 0, times: 1 }] });
    await rejectsWith(platform.getInstance(instance_code), 'transient');
    sim.setFaults({ failPaths: [{ pathPrefix: '/open-apis/im/', status: 400, code: 230002, times: 1 }] });
    await rejectsWith(platform.notifyRequester('ou_e', message()), 'invalid', (e) =>
      assert.equal(e.details.code, 230002)
    );
    sim.setFaults({ failPaths: [{ pathPrefix: '/open-apis/approval/', status: 400, code: 99991672, times: 1 }] });
    await rejectsWith(platform.getInstance(instance_code), 'auth');
    sim.clearFaults();
    assert.equal((await platform.getInstance(instance_code)).instanceId, instance_code);
  });

  it('network failure and time-out → transient', async () => {
    const down = createFeishuPlatform(feishuConfig('http://127.0.0.1:1'));
    await rejectsWith(down.getInstance('X'), 'transient');
    const { instance_code } = sim.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: 'ou_s',
      form: [],
      deliver: false,
    });
    const impatient = createFeishuPlatform(feishuConfig(sim.url), { timeoutMs: 100 });
    await impatient.getInstance(instance_code); // token cached before the latency fault
    sim.setFaults({ latencyMs: 300 });
    await rejectsWith(impatient.getInstance(instance_code), 'transient');
  });

  it('delivers a signed, encrypted v1 approval_instance event that verifies over the raw bytes', async () => {
    const { instance_code } = sim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_v', form: macForm });
    await sim.waitForDeliveries();
    assert.equal(receiver.received.length, 1);
    const r = receiver.received[0]!;
    assert.match(String(r.headers['content-type']), /application\/json/);
    assert.equal(verifySignature(r.headers, ENCRYPT_KEY, r.rawBody), true);
    assert.deepEqual(Object.keys(JSON.parse(r.rawBody.toString()) as object), ['encrypt']);
    const event = decryptBody(r) as {
      uuid: string;
      token: string;
      type: string;
      event: Record<string, unknown>;
    };
    assert.equal(event.type, 'event_callback');
    assert.equal(event.token, VERIFICATION_TOKEN);
    assert.match(event.uuid, /^[0-9a-f]{32}$/);
    assert.equal(event.event.type, 'approval_instance');
    assert.equal(event.event.instance_code, instance_code);
    assert.equal(event.event.approval_code, APPROVAL_CODE);
    assert.equal(event.event.status, 'APPROVED');
    assert.equal(event.event.app_id, APP_ID);
    const deliveries = sim.deliveries();
    assert.equal(deliveries.length, 1);
    assert.equal(deliveries[0]!.status, 200);
    assert.equal(deliveries[0]!.outcome, 'delivered');
    assert.equal(deliveries[0]!.event_id, event.uuid);
  });

  it('redelivers after a non-200 with the same event id', async () => {
    receiver.respond = (_r, i) => (i === 0 ? 500 : 200);
    const { instance_code } = sim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_w', form: [] });
    await sim.waitForDeliveries();
    assert.equal(receiver.received.length, 2);
    const ids = receiver.received.map((r) => (decryptBody(r) as { uuid: string }).uuid);
    assert.equal(ids[0], ids[1]);
    for (const r of receiver.received) assert.equal(verifySignature(r.headers, ENCRYPT_KEY, r.rawBody), true);
    const d = sim.deliveries();
    assert.deepEqual(
      d.map((x) => [x.attempt, x.status, x.event_id, x.instance_code]),
      [
        [1, 500, ids[0], instance_code],
        [2, 200, ids[0], instance_code],
      ]
    );
  });

  it('keeps events of one instance in order while the first is being redelivered, and gives up after 4 retries', async () => {
    // 15 s, 5 min, 1 h, 6 h scaled to 0.3 ms … 432 ms.
    const fast = await startFeishuSimulator({
      appId: APP_ID,
      appSecret: APP_SECRET,
      encryptKey: ENCRYPT_KEY,
      verificationToken: VERIFICATION_TOKEN,
      webhookUrl: receiver.url,
      redeliveryScale: 0.00002,
    });
    receiver.respond = (r) =>
      (decryptBody(r) as { event: { status: string } }).event.status === 'PENDING' ? 503 : 200;
    const { instance_code } = fast.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: 'ou_o',
      form: [],
      status: 'PENDING',
    });
    fast.setStatus(instance_code, 'APPROVED');
    const d = await fast.waitForDeliveries().finally(() => fast.close());
    assert.deepEqual(
      d.map((x) => [x.attempt, x.status]),
      [
        [1, 503],
        [2, 503],
        [3, 503],
        [4, 503],
        [5, 503],
        [1, 200],
      ]
    );
    assert.equal(d[4]!.outcome, 'gave-up');
  });

  it('an answer slower than the delivery timeout counts as a failure', async () => {
    const slowSim = await startFeishuSimulator({
      appId: APP_ID,
      appSecret: APP_SECRET,
      encryptKey: ENCRYPT_KEY,
      verificationToken: VERIFICATION_TOKEN,
      webhookUrl: receiver.url,
      redeliveryScale: 0.001,
      deliveryTimeoutMs: 200,
    });
    try {
      receiver.respond = (_r, i) => (i === 0 ? 'hang' : 200);
      slowSim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_h', form: [] });
      const d = await slowSim.waitForDeliveries();
      assert.equal(d.length, 2);
      assert.match(d[0]!.error!, /no answer within 200 ms/);
      assert.equal(d[1]!.status, 200);
    } finally {
      await slowSim.close();
    }
  });

  it('v2 events, contact.user.deleted_v3, and the URL challenge', async () => {
    const v2 = await startFeishuSimulator({
      appId: APP_ID,
      appSecret: APP_SECRET,
      encryptKey: ENCRYPT_KEY,
      verificationToken: VERIFICATION_TOKEN,
      webhookUrl: receiver.url,
      eventVersion: 'v2',
    });
    try {
      const { instance_code } = v2.createInstance({
        approval_code: APPROVAL_CODE,
        open_id: 'ou_z',
        user_id: 'u_z',
        form: [],
      });
      v2.deleteUser('ou_z');
      await v2.waitForDeliveries();
      const [status, deleted] = receiver.received.map(decryptBody) as {
        schema: string;
        header: Record<string, string>;
        event: Record<string, unknown>;
      }[];
      assert.equal(status!.schema, '2.0');
      assert.equal(status!.header.event_type, 'approval.instance.status_changed_v4');
      assert.equal(status!.header.token, VERIFICATION_TOKEN);
      assert.equal(status!.event.instance_code, instance_code);
      assert.deepEqual((status!.event.start_user as { open_id: string }).open_id, 'ou_z');
      assert.equal(deleted!.header.event_type, 'contact.user.deleted_v3');
      assert.deepEqual((deleted!.event.object as { open_id: string; user_id: string }).open_id, 'ou_z');
      assert.equal((deleted!.event.object as { user_id: string }).user_id, 'u_z');

      receiver.received.length = 0;
      const challenge = await v2.verifyUrl();
      assert.equal(challenge.ok, true);
      assert.equal(receiver.received[0]!.headers['x-lark-signature'], undefined);
    } finally {
      await v2.close();
    }
  });

  it('the /_sim HTTP API creates instances and lists what the app sent', async () => {
    const res = await fetch(`${sim.url}/_sim/approval/instances`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ approval_code: APPROVAL_CODE, open_id: 'ou_http', form: macForm, deliver: false }),
    });
    assert.equal(res.status, 200);
    const { instance_code } = (await res.json()) as { instance_code: string };
    assert.equal((await platform.getInstance(instance_code)).requesterId, 'ou_http');
    await platform.notifyRequester('ou_http', message());
    const msgs = (await (await fetch(`${sim.url}/_sim/messages`)).json()) as { receive_id: string }[];
    assert.equal(msgs[0]!.receive_id, 'ou_http');
    const bad = await fetch(`${sim.url}/_sim/approval/instances`, { method: 'POST', body: '{"open_id":"x"}' });
    assert.equal(bad.status, 400);
    const noAuth = await fetch(`${sim.url}/open-apis/approval/v4/instances/${instance_code}`);
    assert.equal(noAuth.status, 400);
    assert.equal(((await noAuth.json()) as { code: number }).code, 99991661);
  });
});
