import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FeishuConfig } from '../config/config';
import { IntegrationError } from '../domain/errors';
import { REVOKING_STATUSES, type RequesterMessage } from '../domain/types';
import { decryptEvent, verifySignature } from '../platforms/feishu/crypto';
import {
  CARD_REQUEST_LIMIT_BYTES,
  cardRequestBody,
  createFeishuPlatform,
  escapeLarkMd,
  LIST_SPAN_MS,
  listSpans,
  renderRequesterCard,
  type FeishuPlatform,
} from '../platforms/feishu/feishu-platform';
import { grantedMessage } from '../workflows/messages';
import { routedFormDefinition, startFeishuSimulator, type FeishuSimulator } from '../simulators/feishu/server';
import { loadRoutes, SANDBOX_ROUTES_FILE } from '../config/config';

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

/** One Open API call with a fresh tenant token, answered as `{status, code, msg, data}`. */
async function api(
  sim: FeishuSimulator,
  method: string,
  path: string,
  body?: unknown
): Promise<{ status: number; code: number; msg: string; data: Record<string, unknown> }> {
  const tokenRes = await fetch(`${sim.url}/open-apis/auth/v3/tenant_access_token/internal`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ app_id: APP_ID, app_secret: APP_SECRET }),
  });
  const { tenant_access_token: token } = (await tokenRes.json()) as { tenant_access_token: string };
  const res = await fetch(`${sim.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const json = (await res.json()) as { code: number; msg: string; data: Record<string, unknown> };
  return { status: res.status, ...json };
}

/** The instance as the Open API returns it (`data` of GET /approval/v4/instances/:id). */
async function rawInstance(sim: FeishuSimulator, instanceCode: string): Promise<Record<string, unknown>> {
  return (await api(sim, 'GET', `/open-apis/approval/v4/instances/${encodeURIComponent(instanceCode)}`)).data;
}

function message(overrides: Partial<RequesterMessage> = {}): RequesterMessage {
  return {
    kind: 'granted',
    title: 'Wi-Fi access granted',
    lines: ['devices whitelisted (1):', '• AA:BB:CC:DD:EE:FF', 'Valid for 7 days'],
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

  it('a revoked approval reads back CANCELED with reverted=true (FAQ) → REVERTED; a pending one has no endTime', async () => {
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
    const raw = await rawInstance(sim, instance_code);
    assert.equal(raw.status, 'CANCELED', 'the API never returns REVERTED');
    assert.equal(raw.reverted, true);
    assert.equal((await platform.getInstance(instance_code)).status, 'REVERTED');
  });

  it('a revoked approval read back without the reverted flag is CANCELED: revoking either way', async () => {
    const bare = await startFeishuSimulator({ appId: APP_ID, appSecret: APP_SECRET, revertedFlagOnRevoke: false });
    try {
      const p = createFeishuPlatform(feishuConfig(bare.url), { timeoutMs: 2000 });
      const { instance_code } = bare.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_a', form: [] });
      bare.setStatus(instance_code, 'REVERTED', { deliver: false });
      assert.equal((await rawInstance(bare, instance_code)).reverted, false);
      const instance = await p.getInstance(instance_code);
      assert.equal(instance.status, 'CANCELED');
      assert.ok(REVOKING_STATUSES.includes(instance.status));
    } finally {
      await bare.close();
    }
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
    // Plain lines escaped for lark_md: the colons as entities (the emoji-code syntax), joined by newlines.
    assert.equal(
      card.elements[0]!.text!.content,
      'devices whitelisted &#40;1&#41;&#58;\n• AA&#58;BB&#58;CC&#58;DD&#58;EE&#58;FF\nValid for 7 days'
    );
    assert.equal((m.content as { config: Record<string, unknown> }).config.wide_screen_mode, undefined);
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

  it('a rejected tenant token is dropped and the call made once more with a fresh one', async () => {
    const { instance_code } = sim.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: 'ou_t',
      form: [],
      deliver: false,
    });
    await platform.getInstance(instance_code); // token cached
    sim.revokeTokens();
    const tokenCalls = () => sim.requests().filter((r) => r.path.endsWith('/tenant_access_token/internal')).length;
    const before = tokenCalls();
    assert.equal((await platform.getInstance(instance_code)).instanceId, instance_code);
    assert.equal(tokenCalls(), before + 1, 'one fresh token');
    // 99991665 (invalid tenant_access_token) twice in a row: dropped, retried once, then transient.
    sim.setFaults({
      failPaths: [{ pathPrefix: '/open-apis/approval/v4/instances/', status: 400, code: 99991665, times: 2 }],
    });
    await rejectsWith(platform.getInstance(instance_code), 'transient', (e) => assert.equal(e.details.code, 99991665));
    assert.equal(tokenCalls(), before + 2, 'the retry fetched a fresh token');
  });

  it('error codes: 99991677 (user token) → auth, 10003 → invalid, 1395001 at HTTP 400 → transient', async () => {
    const { instance_code } = sim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_f', form: [] });
    for (const [code, kind] of [
      [99991677, 'auth'],
      [10003, 'invalid'],
      [1395001, 'transient'],
    ] as const) {
      sim.setFaults({ failPaths: [{ pathPrefix: '/open-apis/approval/v4/instances/', status: 400, code, times: 1 }] });
      await rejectsWith(platform.getInstance(instance_code), kind, (e) => assert.equal(e.details.code, code));
    }
    sim.setFaults({ errorRate: 1 });
    await rejectsWith(platform.getInstance(instance_code), 'transient', (e) => {
      assert.equal(e.details.status, 400, 'the simulator answers 1395001 with HTTP 400, as documented');
      assert.equal(e.details.code, 1395001);
    });
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
        // Queued behind the failing event, its first push counts as its first retry (doc: ov).
        [2, 200],
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
      // v2 status events need the instance subscription of a user the instance involves.
      v2.subscribeInstances('ou_z', 'INVOLVED_APPROVAL');
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

  // ---- cards ----

  it('fits a card with thousands of CJK-labelled devices into 30 KB by bytes: "and N more", the rest kept', async () => {
    const macs = Array.from({ length: 3000 }, (_, i) => ({
      mac: `02:00:00:${[i >> 8, i & 255, 7].map((n) => n.toString(16).padStart(2, '0').toUpperCase()).join(':')}`,
      state: 'granted' as const,
    }));
    const big = grantedMessage(
      {
        grantId: 'feishu-BIG',
        instanceId: 'BIG',
        invalid: Array.from({ length: 400 }, (_, i) => ({
          input: `设备名称很长的无效输入 ${i}`,
          reason: '不是 MAC 地址',
        })),
        randomised: [],
        expiresAt: '2026-12-08T10:00:00.000Z',
      },
      macs as never
    );
    await platform.notifyRequester('ou_big', big);
    const sent = sim.messages();
    assert.equal(sent.length, 1, 'accepted: no 230025');
    const card = sent[0]!.content as { elements: { text?: { content: string } }[] };
    const text = card.elements[0]!.text!.content;
    assert.match(text, /and \d+ more/);
    assert.match(text, /valid until&#58; 2026&#45;12&#45;08T10/, 'the expiry line stays');
    assert.match(text, /not processed/, 'the invalid-input heading stays');
    const body = cardRequestBody('ou_big', sent[0]!.content as Record<string, unknown>, sent[0]!.uuid!);
    assert.ok(Buffer.byteLength(JSON.stringify(body)) <= CARD_REQUEST_LIMIT_BYTES);
    // Both lists were shortened, each keeping its first items.
    assert.equal((text.match(/and \d+ more/g) ?? []).length, 2);
    assert.match(text, /02&#58;00&#58;00&#58;00&#58;00&#58;07/);
  });

  it('cuts one overlong line rather than losing the message', () => {
    const card = renderRequesterCard(message({ lines: ['原因 / reason: ' + '长'.repeat(20_000), 'contact IT'] }));
    const bytes = Buffer.byteLength(JSON.stringify(cardRequestBody('', card, '')));
    assert.ok(bytes <= CARD_REQUEST_LIMIT_BYTES, `${bytes} bytes`);
    const text = (card.elements as { text?: { content: string } }[])[0]!.text!.content;
    assert.match(text, /…\ncontact IT$/);
  });

  it('the simulator refuses a card request body over 30 KB with 230025 (invalid, named)', async () => {
    const content = JSON.stringify({
      elements: [{ tag: 'div', text: { tag: 'plain_text', content: '长'.repeat(11_000) } }],
    });
    const res = await api(sim, 'POST', '/open-apis/im/v1/messages?receive_id_type=open_id', {
      receive_id: 'ou_x',
      msg_type: 'interactive',
      content,
    });
    assert.equal(res.status, 400);
    assert.equal(res.code, 230025);
    assert.equal(sim.messages().length, 0);
  });

  it('form text is escaped for lark_md: mentions, colour, links and emphasis stay literal', async () => {
    const hostile = '<at id=all></at> <font color=red>x</font> [link](https://evil.example) **b** :OK: &#60;at';
    assert.equal(escapeLarkMd('<a>'), '&#60;a&#62;');
    await platform.notifyRequester(
      'ou_h',
      grantedMessage(
        { grantId: 'feishu-H', instanceId: 'H', invalid: [{ input: hostile, reason: 'not a MAC' }], randomised: [] },
        []
      )
    );
    const text = (sim.messages()[0]!.content as { elements: { text?: { content: string } }[] }).elements[0]!.text!
      .content;
    for (const markup of ['<at', '<font', '](', '**', ':OK:', '`']) assert.ok(!text.includes(markup), markup);
    assert.ok(text.includes('&#60;at id=all&#62;&#60;&#47;at&#62;'), 'shown literally');
    assert.ok(text.includes('&#38;&#35;60;at'), 'an entity typed into the form stays text');
  });

  it('a resigned requester cannot be messaged: 230029 or 230013 → not-found, named, not retried', async () => {
    for (const code of [230029, 230013] as const) {
      const s2 = await startFeishuSimulator({ appId: APP_ID, appSecret: APP_SECRET, resignedRecipientCode: code });
      try {
        const p = createFeishuPlatform(feishuConfig(s2.url), { timeoutMs: 2000 });
        s2.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_gone', form: [], deliver: false });
        s2.deleteUser('ou_gone', { deliver: false });
        await rejectsWith(p.notifyRequester('ou_gone', message()), 'not-found', (e) => {
          assert.equal(e.details.code, code);
          assert.equal(e.retryable, false);
          assert.match(e.message, /requester cannot be reached/);
        });
        assert.equal(s2.messages().length, 0);
      } finally {
        await s2.close();
      }
    }
  });

  // ---- comments ----

  it('audit comments send disable_bot false (custom approvals), read up to 1000 comments, no paging', async () => {
    const { instance_code } = sim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_c2', form: [] });
    await platform.commentOnInstance({ instanceId: instance_code, requesterId: 'ou_c2' }, 'granted', 'k-1');
    assert.equal(sim.comments()[0]!.disable_bot, false);
    const lists = sim.requests().filter((r) => r.method === 'GET' && r.path.endsWith('/comments'));
    assert.equal(lists.length, 1);
    assert.equal(lists[0]!.query.page_size, '1000');
    assert.equal(lists[0]!.query.page_token, undefined);
    const listed = await api(
      sim,
      'GET',
      `/open-apis/approval/v4/instances/${instance_code}/comments?user_id_type=open_id&user_id=ou_c2&page_size=1000`
    );
    assert.deepEqual(Object.keys(listed.data), ['comments'], 'the documented response: comments only');
    const tooBig = await api(
      sim,
      'GET',
      `/open-apis/approval/v4/instances/${instance_code}/comments?user_id_type=open_id&user_id=ou_c2&page_size=1001`
    );
    assert.equal(tooBig.code, 1390001);
  });

  it('a deleted comment (is_delete 1) does not count as already commented', async () => {
    const { instance_code } = sim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_c3', form: [] });
    const instance = { instanceId: instance_code, requesterId: 'ou_c3' };
    await platform.commentOnInstance(instance, 'granted', 'k-del');
    const id = sim.comments()[0]!.comment_id;
    const del = await api(
      sim,
      'DELETE',
      `/open-apis/approval/v4/instances/${instance_code}/comments/${id}?user_id_type=open_id&user_id=ou_c3`
    );
    assert.equal(del.code, 0);
    await platform.commentOnInstance(instance, 'granted', 'k-del');
    assert.deepEqual(
      sim.comments().map((c) => [c.deleted ?? false, c.text]),
      [
        [true, 'granted [ap:k-del]'],
        [false, 'granted [ap:k-del]'],
      ]
    );
  });

  it('a requester who has left cannot author the comment (1390004): the approver does, once', async () => {
    const { instance_code } = sim.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: 'ou_leaver',
      approver_open_id: 'ou_manager',
      form: [],
    });
    sim.deleteUser('ou_leaver', { deliver: false });
    const instance = { instanceId: instance_code, requesterId: 'ou_leaver' };
    await platform.commentOnInstance(instance, 'access revoked', 'k-left');
    await platform.commentOnInstance(instance, 'access revoked', 'k-left');
    assert.deepEqual(
      sim.comments().map((c) => c.user_id),
      ['ou_manager']
    );
    // A configured author is used as it is: its failure is not papered over.
    const p = createFeishuPlatform(feishuConfig(sim.url, { commentUserId: 'ou_leaver' }));
    await rejectsWith(p.commentOnInstance(instance, 'x', 'k-other'), 'invalid', (e) =>
      assert.equal(e.details.code, 1390004)
    );
  });

  // ---- reconcile listing ----

  it('listInstances asks in spans of at most 10 h of creation time and finds an approval submitted days earlier', async () => {
    const now = Date.now();
    const submitted = now - 5 * 86_400_000;
    const { instance_code: old } = sim.createInstance({
      approval_code: APPROVAL_CODE,
      open_id: 'ou_slow',
      form: [],
      status: 'PENDING',
      start_time: submitted,
      deliver: false,
    });
    sim.setStatus(old, 'APPROVED', { deliver: false }); // approved just now, five days after it was filed
    const window = { fromMs: now - 86_400_000, toMs: now + 1000, submittedSinceMs: now - 14 * 86_400_000 };
    const codes = await platform.listInstances!(APPROVAL_CODE, window);
    assert.deepEqual(codes, [old]);
    const calls = sim.requests().filter((r) => r.method === 'GET' && r.path === '/open-apis/approval/v4/instances');
    assert.equal(calls.length, listSpans(window.submittedSinceMs, window.toMs).length);
    for (const c of calls) assert.ok(Number(c.query.end_time) - Number(c.query.start_time) <= LIST_SPAN_MS);
    // One call of more than 10 h is refused, as the docs warn.
    const wide = await api(
      sim,
      'GET',
      `/open-apis/approval/v4/instances?approval_code=${APPROVAL_CODE}&start_time=0&end_time=${LIST_SPAN_MS + 1}&page_size=100`
    );
    assert.equal(wide.status, 400);
    assert.equal(wide.code, 1390001);
  });

  it('listSpans covers the window with ≤ 10 h spans that share their boundary millisecond', () => {
    assert.deepEqual(listSpans(0, 5), [[0, 5]]);
    const spans = listSpans(0, 25 * 3_600_000);
    assert.deepEqual(spans, [
      [0, LIST_SPAN_MS],
      [LIST_SPAN_MS - 1, 2 * LIST_SPAN_MS - 1],
      [2 * LIST_SPAN_MS - 2, 25 * 3_600_000],
    ]);
    assert.deepEqual(listSpans(10, 10), []);
  });

  // ---- detail tables and definitions ----

  const tableForm = [
    { id: 'w_reason', name: '申请事由', type: 'input', value: 'lab' },
    {
      id: 'w_table',
      name: '设备列表',
      type: 'fieldList',
      value: [
        [
          { id: 'w_kind', name: '设备', type: 'input', value: 'laptop' },
          { id: 'w_mac', name: 'MAC', type: 'input', value: 'aa-bb-cc-00-11-22' },
        ],
      ],
    },
  ];

  it('detail-table cells read back without name (documented example) get their column names from the definition', async () => {
    const { instance_code } = sim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_t1', form: tableForm });
    const raw = JSON.parse((await rawInstance(sim, instance_code)).form as string) as { value: unknown }[];
    assert.deepEqual((raw[1]!.value as Record<string, unknown>[][])[0]![1], {
      id: 'w_mac',
      type: 'input',
      value: 'aa-bb-cc-00-11-22',
    });
    const instance = await platform.getInstance(instance_code);
    assert.deepEqual(instance.form, tableForm);
    const defCalls = () => sim.requests().filter((r) => r.path === `/open-apis/approval/v4/approvals/${APPROVAL_CODE}`);
    assert.equal(defCalls().length, 1);
    await platform.getInstance(instance_code);
    assert.equal(defCalls().length, 1, 'the definition is cached');
  });

  it('with cell names kept (detailCellNames) no definition is read', async () => {
    const named = await startFeishuSimulator({ appId: APP_ID, appSecret: APP_SECRET, detailCellNames: true });
    try {
      const p = createFeishuPlatform(feishuConfig(named.url));
      const { instance_code } = named.createInstance({
        approval_code: APPROVAL_CODE,
        open_id: 'ou_t2',
        form: tableForm,
      });
      assert.deepEqual((await p.getInstance(instance_code)).form, tableForm);
      assert.equal(named.requests().filter((r) => r.path.startsWith('/open-apis/approval/v4/approvals/')).length, 0);
    } finally {
      await named.close();
    }
  });

  it('checkRoutedForms names each configured field or column the definition lacks (children or value columns)', async () => {
    sim.defineApproval({
      approval_code: 'DEF-CHILDREN',
      approval_name: 'Wi-Fi',
      form: [
        { id: 'w_reason', name: '申请事由', type: 'input' },
        {
          id: 'w_table',
          name: '设备列表',
          type: 'fieldList',
          children: [{ id: 'w_mac', custom_id: 'mac_col', name: 'MAC', type: 'input' }],
        },
      ],
    });
    sim.defineApproval({
      approval_code: 'DEF-VALUE',
      form: [{ id: 'w_t', name: '明细', type: 'fieldList', value: [{ id: 'w_m', name: '设备MAC', type: 'input' }] }],
    });
    const problems = await platform.checkRoutedForms([
      { approvalCode: 'DEF-CHILDREN', macFields: ['MAC', 'w_mac', 'mac_col', 'MAC地址'], durationField: '有效期' },
      { approvalCode: 'DEF-VALUE', macFields: ['设备MAC'] },
      { approvalCode: 'NO-SUCH-CODE', macFields: ['MAC'] },
    ]);
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(
      problems[0]!,
      /DEF-CHILDREN \(Wi-Fi\): fields.macs "MAC地址" is not a widget.*申请事由, 设备列表 \[MAC\]/
    );
    assert.match(problems[1]!, /fields.duration "有效期"/);
    assert.match(problems[2]!, /NO-SUCH-CODE: its form definition could not be read .*1390002/);
  });

  it('the sandbox definitions (routedFormDefinition) have every field the sandbox routes name', async () => {
    const routes = loadRoutes(SANDBOX_ROUTES_FILE).filter((r) => r.platform === 'feishu');
    for (const r of routes) sim.defineApproval(routedFormDefinition(r));
    assert.deepEqual(await platform.checkRoutedForms(routes), []);
  });

  // ---- delivery ----

  it('at-least-once: with duplicateDeliveryRate 1 an event answered 200 comes once more, same id', async () => {
    const dup = await startFeishuSimulator({
      appId: APP_ID,
      appSecret: APP_SECRET,
      encryptKey: ENCRYPT_KEY,
      verificationToken: VERIFICATION_TOKEN,
      webhookUrl: receiver.url,
      duplicateDeliveryRate: 1,
    });
    try {
      dup.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_dup', form: [] });
      const d = await dup.waitForDeliveries();
      assert.deepEqual(
        d.map((x) => [x.attempt, x.status, x.duplicate ?? false]),
        [
          [1, 200, false],
          [1, 200, true],
        ]
      );
      assert.equal(d[0]!.event_id, d[1]!.event_id);
      const ids = receiver.received.map((r) => (decryptBody(r) as { uuid: string }).uuid);
      assert.equal(ids[0], ids[1]);
    } finally {
      await dup.close();
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
