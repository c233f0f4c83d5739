import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import querystring from 'node:querystring';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { createLogger } from '../app/logger';
import { loadConfig } from '../config/config';
import type { EventResult, InboundEvent } from '../ingress/events';
import { TemporalUnavailableError } from '../ingress/http-error';
import { decodeFeishuRequest } from '../platforms/feishu/envelope';
import {
  startFeishuLongConnection,
  startLongConnection,
  type FeishuLongConnection,
  type LongConnectionOptions,
  type WSClientLike,
} from '../platforms/feishu/long-connection';
import { approvalInstanceEventV1, buildSignedRequest } from '../simulators/feishu/event-signer';
import {
  decodeFrame,
  encodeFrame,
  FRAME_CONTROL,
  FRAME_DATA,
  headerOf,
  type Pbbp2Frame,
} from '../simulators/feishu/long-connection';
import { startFeishuSimulator, type FeishuSimulator } from '../simulators/feishu/server';
import { workflowIdFor } from '../workflows/definitions';
import { APPROVAL_CODE, startTestStack, until, type TestStack } from './support/harness';

/**
 * Feishu long-connection mode (FEISHU_EVENT_MODE=ws), on three levels:
 * - the protocol: the simulator's endpoint and pbbp2 frames against the SDK's own generated codec and a hand-driven
 *   socket (pong with ClientConfig, event headers, sum/seq fragments, ACKs, redelivery);
 * - the supervisor around the SDK's WSClient against the simulator: start-up paths (app id the SDK refuses,
 *   credentials the endpoint refuses, a connection that never comes up), drops, half-open sockets, replacement;
 * - end to end on a real Temporal dev server: approval → grant, a dropped connection, several replicas, and
 *   Temporal down → ACK 500 → redelivery → exactly one run.
 */

const APP_ID = 'cli_a1b2c3d4e5f6a7b8';
const APP_SECRET = 'ws-test-secret';
const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const FAST = { PingInterval: 1, ReconnectCount: -1, ReconnectInterval: 1, ReconnectNonce: 0 };

function accepting(seen: InboundEvent[] = []) {
  return {
    seen,
    process: async (e: InboundEvent): Promise<EventResult> => {
      seen.push(e);
      return { outcome: 'started' };
    },
  };
}

async function wsSim(extra: Partial<Parameters<typeof startFeishuSimulator>[0]> = {}): Promise<FeishuSimulator> {
  return startFeishuSimulator({
    appId: APP_ID,
    appSecret: APP_SECRET,
    verificationToken: 'vt',
    eventMode: 'ws',
    redeliveryScale: 0.001,
    longConnection: { clientConfig: FAST },
    ...extra,
  });
}

async function endpoint(sim: { url: string }, body: Record<string, unknown>) {
  const res = await fetch(`${sim.url}/callback/ws/endpoint`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', locale: 'zh' },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    body: (await res.json()) as { code: number; msg: string; data: { URL: string; ClientConfig: unknown } },
  };
}

/** A socket speaking the protocol by hand: what the SDK does, minus the SDK. */
async function rawClient(sim: FeishuSimulator) {
  const { body } = await endpoint(sim, { AppID: APP_ID, AppSecret: APP_SECRET });
  const socket = new WebSocket(body.data.URL as string);
  const frames: Pbbp2Frame[] = [];
  const waiters: (() => void)[] = [];
  socket.on('message', (data: Buffer) => {
    frames.push(decodeFrame(data));
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((resolve, reject) => socket.once('open', resolve).once('error', reject));
  return {
    socket,
    frames,
    send: (f: Pbbp2Frame) => socket.send(encodeFrame(f)),
    next: (pred: (f: Pbbp2Frame) => boolean) =>
      until('a frame', () => frames.find(pred), 5000).then((f) => {
        frames.splice(frames.indexOf(f), 1);
        return f;
      }),
    close: () => socket.terminate(),
  };
}

function ackFor(frame: Pbbp2Frame, code: number): Pbbp2Frame {
  // What the SDK sends back (handleEventData): the frame, its headers plus biz_rt, and the {code} payload.
  return {
    ...frame,
    headers: [...frame.headers, { key: 'biz_rt', value: '0' }],
    payload: Buffer.from(JSON.stringify({ code })),
  };
}

/** The SDK's generated decoder's output (uint64 as Long or number, by its protobufjs configuration). */
interface SdkDecodedFrame {
  SeqID: number;
  LogID: number;
  service: number;
  method: number;
  headers: { key: string; value: string }[];
  payloadEncoding: string;
  payload: Uint8Array;
}

describe('Feishu long connection: the protocol', () => {
  it('the pbbp2 Frame parser agrees with the SDK’s own generated codec, both ways', () => {
    // The SDK registers its generated pbbp2 on its own protobufjs instance (lib/index.js, `$root.pbbp2`).
    const load = createRequire(__filename);
    const sdkDir = path.dirname(load.resolve('@larksuiteoapi/node-sdk/package.json'));
    load('@larksuiteoapi/node-sdk');
    const minimal = load(load.resolve('protobufjs/minimal', { paths: [sdkDir] })) as {
      roots: {
        default: {
          pbbp2: { Frame: { encode(f: object): { finish(): Uint8Array }; decode(b: Uint8Array): SdkDecodedFrame } };
        };
      };
    };
    const SdkFrame = minimal.roots.default.pbbp2.Frame;
    const ours: Pbbp2Frame = {
      SeqID: 7,
      LogID: 123456789012,
      service: 33554678,
      method: FRAME_DATA,
      headers: [
        { key: 'type', value: 'event' },
        { key: 'message_id', value: 'm1' },
      ],
      payloadEncoding: 'json',
      payloadType: 'event',
      payload: Buffer.from('{"a":1}'),
      LogIDNew: 'x',
    };
    const bySdk = SdkFrame.decode(encodeFrame(ours));
    assert.equal(Number(bySdk.SeqID), 7);
    assert.equal(Number(bySdk.LogID), 123456789012);
    assert.equal(bySdk.service, 33554678);
    assert.equal(bySdk.method, FRAME_DATA);
    assert.deepEqual(
      bySdk.headers.map((h: { key: string; value: string }) => [h.key, h.value]),
      [
        ['type', 'event'],
        ['message_id', 'm1'],
      ]
    );
    assert.equal(bySdk.payloadEncoding, 'json');
    assert.equal(Buffer.from(bySdk.payload).toString(), '{"a":1}');
    // A ping exactly as the SDK builds it (pingLoop).
    const ping = decodeFrame(
      SdkFrame.encode({
        headers: [{ key: 'type', value: 'ping' }],
        service: 5,
        method: FRAME_CONTROL,
        SeqID: 0,
        LogID: 0,
      }).finish()
    );
    assert.equal(ping.method, FRAME_CONTROL);
    assert.equal(headerOf(ping, 'type'), 'ping');
    assert.equal(ping.service, 5);
    // Required fields are required, as in the SDK's decoder.
    assert.throws(() => decodeFrame(Buffer.from([0x08, 0x01])));
  });

  it('the endpoint hands out a URL and ClientConfig, and refuses a wrong app id or secret with Feishu’s codes', async () => {
    const sim = await wsSim();
    try {
      const good = await endpoint(sim, { AppID: APP_ID, AppSecret: APP_SECRET });
      assert.equal(good.status, 200);
      assert.equal(good.body.code, 0);
      assert.deepEqual(good.body.data.ClientConfig, FAST);
      const url = new URL(good.body.data.URL as string);
      assert.equal(url.pathname, '/ws/v2');
      // The SDK reads the query with qs.parse over the whole URL: device_id and service_id must survive that.
      const parsed = querystring.parse(good.body.data.URL as string);
      assert.match(String(parsed.device_id), /^\d+$/);
      assert.match(String(parsed.service_id), /^\d+$/);

      const wrongSecret = await endpoint(sim, { AppID: APP_ID, AppSecret: 'nope' });
      assert.equal(wrongSecret.status, 200);
      assert.equal(wrongSecret.body.code, 514);
      const otherApp = await endpoint(sim, { AppID: 'cli_0000000000000000', AppSecret: APP_SECRET });
      assert.equal(otherApp.body.code, 1000040351);

      // A ticket is for one connection; a used or made-up one is refused at the handshake with Handshake-* headers.
      const once = new WebSocket(good.body.data.URL as string);
      await new Promise((r) => once.once('open', r));
      const again = new WebSocket(good.body.data.URL as string);
      const refused = await new Promise<Record<string, string | string[] | undefined>>((resolve) =>
        again.once('unexpected-response', (_req, res) => resolve(res.headers))
      );
      assert.equal(refused['handshake-status'], '514');
      once.terminate();
    } finally {
      await sim.close();
    }
  });

  it('pings get a pong carrying ClientConfig; events come as data frames; only ACK 200 counts; fragments carry sum/seq', async () => {
    const sim = await wsSim({ deliveryTimeoutMs: 500, longConnection: { clientConfig: FAST, fragmentBytes: 64 } });
    const c = await rawClient(sim);
    try {
      c.send({ SeqID: 0, LogID: 0, service: 1, method: FRAME_CONTROL, headers: [{ key: 'type', value: 'ping' }] });
      const pong = await c.next((f) => headerOf(f, 'type') === 'pong');
      assert.equal(pong.method, FRAME_CONTROL);
      assert.deepEqual(JSON.parse(Buffer.from(pong.payload!).toString()), FAST);

      const { instance_code } = sim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_raw', form: [] });
      const first = await c.next((f) => headerOf(f, 'type') === 'event');
      const messageId = headerOf(first, 'message_id')!;
      const sum = Number(headerOf(first, 'sum'));
      assert.ok(sum > 1, 'a payload bigger than the fragment size comes in parts');
      const parts = [first];
      for (let i = 1; i < sum; i++) parts.push(await c.next((f) => headerOf(f, 'message_id') === messageId));
      assert.deepEqual(
        parts.map((p) => Number(headerOf(p, 'seq'))),
        [...Array(sum).keys()]
      );
      for (const p of parts) {
        assert.equal(p.method, FRAME_DATA);
        assert.ok(headerOf(p, 'trace_id'));
      }
      const envelope = JSON.parse(Buffer.concat(parts.map((p) => Buffer.from(p.payload!))).toString()) as {
        type: string;
        event: { instance_code: string };
      };
      assert.equal(envelope.type, 'event_callback');
      assert.equal(envelope.event.instance_code, instance_code);

      // ACK 500 (the SDK's answer when the handler throws): pushed again, same event, new message.
      c.send(ackFor(parts[sum - 1]!, 500));
      const again = await c.next((f) => headerOf(f, 'type') === 'event' && headerOf(f, 'seq') === '0');
      assert.notEqual(headerOf(again, 'message_id'), messageId);
      // No ACK within the deadline: pushed again too.
      const third = await c.next((f) => headerOf(f, 'type') === 'event' && headerOf(f, 'seq') === '0');
      const rest = Number(headerOf(third, 'sum'));
      let last = third;
      for (let i = 1; i < rest; i++)
        last = await c.next((f) => headerOf(f, 'message_id') === headerOf(third, 'message_id'));
      c.send(ackFor(last, 200));
      const ds = await sim.waitForDeliveries();
      assert.deepEqual(
        ds.map((d) => [d.attempt, d.status, d.ok, d.via]),
        [
          [1, 500, false, 'long-connection'],
          [2, undefined, false, 'long-connection'],
          [3, 200, true, 'long-connection'],
        ]
      );
      assert.equal(ds[0]!.error, 'ACK 500');
      assert.equal(ds[1]!.error, 'no ACK within 500 ms');
      assert.equal(ds[2]!.outcome, 'delivered');
    } finally {
      c.close();
      await sim.close();
    }
  });

  it('with no client connected an event waits for a redelivery, and arrives once one connects', async () => {
    const sim = await wsSim();
    let lc: FeishuLongConnection | undefined;
    try {
      const { instance_code } = sim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_nobody', form: [] });
      await until('a failed attempt', () => (sim.deliveries().length ? true : undefined), 5000);
      assert.equal(sim.deliveries()[0]!.error, 'no long-connection client connected');
      const p = accepting();
      lc = await startLongConnection({
        feishu: { appId: APP_ID, appSecret: APP_SECRET, baseUrl: sim.url },
        processor: p,
        logger,
      });
      await until(
        'delivered',
        () => (p.seen.some((e) => e.kind === 'approval-status' && e.instanceId === instance_code) ? true : undefined),
        10_000
      );
    } finally {
      await lc?.stop();
      await sim.close();
    }
  });
});

describe('Feishu long connection: the app’s receiver around the SDK', () => {
  let sim: FeishuSimulator;
  before(async () => {
    sim = await wsSim({ deliveryTimeoutMs: 1000 });
  });
  after(async () => {
    await sim.close();
  });

  const start = (
    processor: { process(e: InboundEvent): Promise<EventResult> } = accepting(),
    options: LongConnectionOptions = {},
    feishu = {}
  ) =>
    startLongConnection({
      feishu: { appId: APP_ID, appSecret: APP_SECRET, baseUrl: sim.url, ...feishu },
      processor,
      logger,
      options,
    });

  it('start-up fails with one line for an app id the SDK refuses, and config refuses it in ws mode', async () => {
    await assert.rejects(start(accepting(), {}, { appId: 'cli_not-hex-at-all' }), (err: Error) => {
      assert.match(err.message, /^Feishu long connection: .*FEISHU_APP_ID cli_not-hex-at-all/);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    // Also when the check is bypassed, an SDK client that stays idle after start() fails start-up.
    const idle: WSClientLike = {
      start: async () => undefined,
      close: () => undefined,
      getConnectionStatus: () => ({ state: 'idle', reconnectAttempts: 0 }),
    };
    await assert.rejects(start(accepting(), { createClient: () => idle }), /the SDK did not start/);
    assert.throws(
      () =>
        loadConfig({
          SANDBOX: 'true',
          FEISHU_EVENT_MODE: 'ws',
          FEISHU_APP_ID: 'cli_xyz',
          FEISHU_APP_SECRET: 's',
        }),
      { name: 'ConfigError', message: /^invalid FEISHU_APP_ID: with FEISHU_EVENT_MODE=ws .*16 hex digits/ }
    );
    assert.equal(
      loadConfig({ SANDBOX: 'true', FEISHU_EVENT_MODE: 'http', FEISHU_APP_ID: 'cli_xyz' }).feishu.appId,
      'cli_xyz'
    );
  });

  it('start-up fails with one line when the endpoint refuses the secret (514) or does not know the app (1000040351)', async () => {
    await assert.rejects(start(accepting(), {}, { appSecret: 'wrong' }), (err: Error) => {
      assert.equal(
        err.message,
        'Feishu long connection: the connection endpoint refused FEISHU_APP_ID / FEISHU_APP_SECRET (pullConnectConfig failed: code=514, msg=auth failed)'
      );
      assert.ok(!err.message.includes('wrong'), 'the secret is not in the line');
      return true;
    });
    await assert.rejects(
      start(accepting(), {}, { appId: 'cli_0123456789abcdef' }),
      /code=1000040351.*open\.larksuite\.com/
    );
  });

  it('a connection that never comes up: start-up goes on not ready with the reason, clients are replaced, and it connects once it can', async () => {
    // An endpoint whose URL leads to a socket that never answers the WebSocket handshake; later, to the simulator.
    const hang = net.createServer(() => undefined);
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    let healthy = false;
    const gateway: Server = createServer((req, res) => {
      void (async () => {
        if (healthy) {
          const body = await endpoint(sim, { AppID: APP_ID, AppSecret: APP_SECRET });
          res.end(JSON.stringify(body.body));
          return;
        }
        const port = (hang.address() as AddressInfo).port;
        res.end(
          JSON.stringify({
            code: 0,
            data: { URL: `ws://127.0.0.1:${port}/ws/v2?fpid=1&device_id=1&service_id=1`, ClientConfig: FAST },
          })
        );
      })();
    });
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
    const lc = await start(
      accepting(),
      {
        handshakeTimeoutMs: 200,
        firstConnectTimeoutMs: 500,
        stuckAfterMs: 800,
        checkIntervalMs: 50,
        backoff: { initialMs: 50 },
      },
      { baseUrl: `http://127.0.0.1:${(gateway.address() as AddressInfo).port}` }
    );
    try {
      const why = await lc.readiness.check();
      assert.match(why ?? '', /^Feishu long connection is (connecting|reconnecting).*handshake timeout after 200ms/);
      await until('a replaced client', () => (lc.status().clients >= 2 ? true : undefined), 10_000);
      healthy = true;
      await until('connected', async () => ((await lc.readiness.check()) === undefined ? true : undefined), 15_000);
      assert.equal(lc.status().state, 'connected');
    } finally {
      await lc.stop();
      gateway.close();
      hang.close();
    }
  });

  it('a client the SDK gave up on after start-up, or left idle, is replaced; readiness says why meanwhile', async () => {
    type State = ReturnType<WSClientLike['getConnectionStatus']>['state'];
    const fakes: { state: State; closed: boolean; fail?: (e: Error) => void }[] = [];
    const lc = await start(accepting(), {
      checkIntervalMs: 20,
      backoff: { initialMs: 10, maxMs: 10 },
      createClient: (params) => {
        const fake = { state: 'connected' as State, closed: false, fail: params.onError };
        fakes.push(fake);
        return {
          start: async () => undefined,
          close: () => {
            fake.closed = true;
          },
          getConnectionStatus: () => ({ state: fake.state, lastConnectTime: 1, reconnectAttempts: 0 }),
        };
      },
    });
    try {
      assert.equal(await lc.readiness.check(), undefined);
      fakes[0]!.fail?.(new Error('WebSocket reconnect exhausted after 3 attempts'));
      fakes[0]!.state = 'failed';
      assert.match((await lc.readiness.check()) ?? '', /is failed.*reconnect exhausted/);
      await until('replaced', () => (fakes.length === 2 ? true : undefined), 5000);
      assert.equal(fakes[0]!.closed, true, 'the old client is closed first');
      fakes[1]!.state = 'idle';
      await until('replaced again', () => (fakes.length === 3 ? true : undefined), 5000);
      assert.equal(fakes[1]!.closed, true);
      assert.equal(await lc.readiness.check(), undefined);
    } finally {
      await lc.stop();
    }
  });

  it('a dropped connection is reconnected by the SDK, a half-open one by its ping time-out; events keep flowing', async () => {
    const p = accepting();
    const lc = await start(p, { pingTimeoutSec: 1 });
    try {
      const before = sim.longConnectionCount();
      assert.equal(sim.dropLongConnections(), 1);
      await until(
        'reconnected',
        () => (sim.longConnectionCount() === before + 1 && lc.status().state === 'connected' ? true : undefined),
        15_000
      );
      // Half-open: the simulator stops answering; only the SDK's liveness watchdog (pingTimeout) notices.
      assert.equal(sim.dropLongConnections({ mode: 'silent' }), 1);
      await until(
        'reconnected after the ping time-out',
        () => (sim.longConnectionCount() === before + 2 ? true : undefined),
        15_000
      );
      await until('connected', () => (lc.status().state === 'connected' ? true : undefined), 15_000);
      const { instance_code } = sim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_drop', form: [] });
      await until(
        'delivered',
        () => (p.seen.some((e) => e.kind === 'approval-status' && e.instanceId === instance_code) ? true : undefined),
        15_000
      );
      assert.equal(lc.status().clients, 1, 'the SDK reconnected by itself: no replacement needed');
    } finally {
      await lc.stop();
    }
  });

  it('a handler that cannot accept yet makes the SDK ACK 500 and Feishu push again; a malformed event is ACKed 200 unprocessed', async () => {
    sim.reset();
    let refuse = 2;
    const seen: InboundEvent[] = [];
    const lc = await start({
      process: async (e) => {
        if (refuse-- > 0) throw new TemporalUnavailableError('Temporal down');
        seen.push(e);
        return { outcome: 'started' };
      },
    });
    try {
      const { instance_code } = sim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_500', form: [] });
      // Ordered per instance, as over the webhook: the REVERTED waits until the APPROVED is received.
      sim.setStatus(instance_code, 'REVERTED');
      await sim.waitForDeliveries({ timeoutMs: 15_000 });
      assert.deepEqual(
        sim.deliveries().map((d) => [d.status, d.ok]),
        [
          [500, false],
          [500, false],
          [200, true],
          [200, true],
        ]
      );
      assert.deepEqual(
        seen.map((e) => (e as { instanceId: string; status: string }).status),
        ['APPROVED', 'REVERTED']
      );
      assert.equal((seen[0] as { instanceId: string }).instanceId, instance_code);
      // No instance_code: not an event anyone can act on. ACK 200, so it is not pushed for hours.
      sim.deliverEvent({
        ...approvalInstanceEventV1({
          approvalCode: APPROVAL_CODE,
          instanceCode: 'X',
          status: 'APPROVED',
          token: 'vt',
          appId: APP_ID,
        }),
        event: { type: 'approval_instance', app_id: APP_ID },
      });
      await sim.waitForDeliveries({ timeoutMs: 15_000 });
      assert.deepEqual(
        sim
          .deliveries()
          .slice(4)
          .map((d) => [d.status, d.ok]),
        [[200, true]]
      );
      assert.equal(seen.length, 2);
    } finally {
      await lc.stop();
    }
  });

  it('forward subscribers get Feishu’s envelope as `raw`, the same as over the webhook (not the SDK’s flattened object)', async () => {
    sim.reset();
    const p = accepting();
    const lc = await start(p);
    try {
      const body = approvalInstanceEventV1({
        approvalCode: APPROVAL_CODE,
        instanceCode: 'IC-RAW',
        status: 'APPROVED',
        token: 'vt',
        appId: APP_ID,
      });
      sim.deliverEvent(body);
      await sim.waitForDeliveries();
      const viaWs = p.seen.find((e) => e.eventId === body.uuid)!;
      const signed = buildSignedRequest({ body, encryptKey: 'k' });
      const viaHttp = decodeFeishuRequest(signed.rawBody, signed.headers, { appId: APP_ID, encryptKey: 'k' });
      assert.equal(viaHttp.kind, 'event');
      assert.deepEqual(viaWs, viaHttp.kind === 'event' ? viaHttp.event : undefined);
      assert.deepEqual(Object.keys(viaWs.raw as object).sort(), ['event', 'ts', 'type', 'uuid']);
    } finally {
      await lc.stop();
    }
  });
});

describe('Feishu v2 approval events: the instance subscription rule', () => {
  it('v2 is delivered only for instances a user-token instance subscription covers; a tenant token cannot make one', async () => {
    const sim = await wsSim({ eventVersion: 'v2' });
    const p = accepting();
    const lc = await startLongConnection({
      feishu: { appId: APP_ID, appSecret: APP_SECRET, baseUrl: sim.url },
      processor: p,
      logger,
    });
    try {
      sim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_v2', form: [] });
      const [unsent] = sim.deliveries();
      assert.equal(unsent!.attempt, 0);
      assert.match(unsent!.error!, /no instance subscription/);

      const tokenRes = await fetch(`${sim.url}/open-apis/auth/v3/tenant_access_token/internal`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ app_id: APP_ID, app_secret: APP_SECRET }),
      });
      const { tenant_access_token: tenant } = (await tokenRes.json()) as { tenant_access_token: string };
      const subscribe = (token: string) =>
        fetch(`${sim.url}/open-apis/approval/v4/instances/subscription`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ subscription_type: 'INVOLVED_APPROVAL' }),
        });
      const asApp = await subscribe(tenant);
      assert.equal(asApp.status, 400);
      assert.equal(((await asApp.json()) as { code: number }).code, 99991663);

      const userRes = await fetch(`${sim.url}/_sim/user-tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ open_id: 'ou_v2' }),
      });
      const { user_access_token: user } = (await userRes.json()) as { user_access_token: string };
      assert.equal((await subscribe(user)).status, 200);
      const { instance_code } = sim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_v2', form: [] });
      // INVOLVED_APPROVAL covers the subscriber's own instances only.
      sim.createInstance({ approval_code: APPROVAL_CODE, open_id: 'ou_someone_else', form: [] });
      await sim.waitForDeliveries();
      const sent = sim.deliveries().filter((d) => d.attempt > 0);
      assert.deepEqual(
        sent.map((d) => [d.instance_code, d.event_type, d.ok]),
        [[instance_code, 'approval.instance.status_changed_v4', true]]
      );
      assert.equal(p.seen.length, 1);
    } finally {
      await lc.stop();
      await sim.close();
    }
  });

  it('asking the app for v2 stops start-up with one line; v1 is the default', () => {
    const base = { SANDBOX: 'true' };
    assert.throws(() => loadConfig({ ...base, FEISHU_APPROVAL_EVENTS: 'v2' }), {
      name: 'ConfigError',
      message: /^invalid FEISHU_APPROVAL_EVENTS: only v1 is supported .*user-token instance subscription/,
    });
    assert.doesNotThrow(() => loadConfig(base));
  });
});

describe('Feishu long-connection mode end to end (SDK WSClient ↔ simulator, real Temporal dev server)', () => {
  let t: TestStack;
  before(async () => {
    t = await startTestStack({ env: { FEISHU_EVENT_MODE: 'ws' }, stoppableTemporal: true });
  });
  after(async () => {
    await t?.close();
  });

  const runsOf = async (instanceCode: string) => {
    let runs = 0;
    for await (const _ of t.client.workflow.list({ query: `WorkflowId = '${workflowIdFor('feishu', instanceCode)}'` }))
      runs++;
    return runs;
  };

  it('an approval grants over the long connection; readiness includes it; the webhook is not mounted', async () => {
    await until('ready', async () => ((await fetch(`${t.ingressUrl}/readyz`)).status === 200 ? true : undefined));
    const ready = (await (await fetch(`${t.ingressUrl}/readyz`)).json()) as { checks: Record<string, string> };
    assert.equal(ready.checks['feishu-long-connection'], 'ok');
    assert.equal(t.feishuSim!.longConnections().length, 1);
    const instance = t.createApproval('00:1B:44:E1:00:01');
    const status = await t.waitForPhase(workflowIdFor('feishu', instance), ['active']);
    assert.equal(status.macs[0]!.state, 'granted');
    const ds = t.feishuSim!.deliveries().filter((d) => d.instance_code === instance);
    assert.deepEqual(
      ds.map((d) => [d.via, d.status, d.outcome]),
      [['long-connection', 200, 'delivered']]
    );
    assert.equal((await fetch(`${t.ingressUrl}/webhook/feishu`, { method: 'POST', body: '{}' })).status, 404);
  });

  it('a dropped connection is reconnected and events keep flowing (a revocation revokes)', async () => {
    const instance = t.createApproval('00:1B:44:E2:00:01');
    await t.waitForPhase(workflowIdFor('feishu', instance), ['active']);
    const accepted = t.feishuSim!.longConnectionCount();
    // Through the control API, as an operator of the sandbox would.
    const dropped = await fetch(`${t.feishuSim!.url}/_sim/ws/drop`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'close' }),
    });
    assert.deepEqual(await dropped.json(), { dropped: 1 });
    await until('a new connection', () => (t.feishuSim!.longConnectionCount() > accepted ? true : undefined), 30_000);
    t.feishuSim!.setStatus(instance, 'REVERTED');
    await until('revoked', async () => ((await t.iseEndpoint('00:1B:44:E2:00:01')) === null ? true : undefined));
    const readyz = await fetch(`${t.ingressUrl}/readyz`);
    assert.equal(readyz.status, 200);
  });

  it('with several app instances connected each event goes to exactly one of them, and runs once', async () => {
    const second = await startFeishuLongConnection(t.config, t.client, logger);
    try {
      await until('two connections', () => (t.feishuSim!.longConnections().length === 2 ? true : undefined));
      const instances = Array.from({ length: 16 }, (_, i) =>
        t.createApproval(`00:1B:44:E3:00:${String(i).padStart(2, '0')}`)
      );
      for (const instance of instances) await t.waitForPhase(workflowIdFor('feishu', instance), ['active']);
      const used = new Set<string>();
      for (const instance of instances) {
        const ds = t.feishuSim!.deliveries().filter((d) => d.instance_code === instance);
        assert.equal(ds.length, 1, 'pushed once, to one connection');
        assert.equal(ds[0]!.ok, true);
        used.add(ds[0]!.connection_id!);
        assert.equal(await runsOf(instance), 1);
      }
      // Random over two connections: both get some of 16 events (all to one: p = 2^-15).
      assert.equal(used.size, 2);
      const pushed = t.feishuSim!.longConnections().map((c) => c.acks);
      assert.ok(pushed.every((n) => n > 0));
    } finally {
      await second.stop();
    }
  });

  it('with Temporal down the handler fails, the SDK ACKs 500, the simulator pushes again; exactly one run once Temporal is back', async () => {
    await until('one connection', () => (t.feishuSim!.longConnections().length === 1 ? true : undefined));
    await t.stopTemporal();
    const instance = t.createApproval('00:1B:44:E4:00:01');
    const refused = await until('two failed pushes', () => {
      const d = t.feishuSim!.deliveries().filter((x) => x.instance_code === instance);
      return d.length >= 2 ? d : undefined;
    });
    for (const d of refused) assert.equal(d.ok, false);
    assert.ok(refused.some((d) => d.status === 500 && d.error === 'ACK 500'));
    await t.startTemporal();
    const status = await t.waitForPhase(workflowIdFor('feishu', instance), ['active'], 90_000);
    assert.equal(status.macs[0]!.state, 'granted');
    const ok = t.feishuSim!.deliveries().filter((x) => x.instance_code === instance && x.ok);
    assert.equal(ok.length, 1, 'ACKed 200 exactly once');
    assert.equal(await runsOf(instance), 1);
  });
});
