import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventAck, type DWClientDownStream, type EventAckData } from 'dingtalk-stream';
import { AckAfterAcceptClient, createDingTalkStreamHandler } from '../platforms/dingtalk/stream';
import { startDingTalkSimulator } from '../simulators/dingtalk/server';
import type { InboundEvent, EventResult } from '../ingress/events';
import { TemporalUnavailableError } from '../ingress/http-error';
import { workflowIdFor } from '../workflows/definitions';
import { startTestStack, until, type TestStack } from './support/harness';

/**
 * DingTalk Stream mode. Two levels:
 * - the handler and the ACK path without a socket: an EVENT frame is ACKed only after the EventProcessor accepted it
 *   (SUCCESS), with LATER when it could not, and the ACK frame is sent only once that is settled;
 * - the official `dingtalk-stream` client (subclassed) against the DingTalk simulator's Stream gateway on a real
 *   Temporal dev server: ticket from `/v1.0/gateway/connections/open`, WebSocket, EVENT frames, ACK frames; and with
 *   Temporal stopped, the event is ACKed LATER, pushed again, and runs once Temporal is back.
 */

function frame(data: unknown, headers: Partial<DWClientDownStream['headers']> = {}): DWClientDownStream {
  return {
    specVersion: '1.0',
    type: 'EVENT',
    headers: {
      appId: 'app',
      connectionId: 'c',
      contentType: 'application/json',
      messageId: 'msg-1',
      time: String(Date.now()),
      topic: 'bpms_instance_change',
      eventType: 'bpms_instance_change',
      eventId: 'ev-1',
      ...headers,
    },
    data: typeof data === 'string' ? data : JSON.stringify(data),
  };
}

const bpms = { processInstanceId: 'PI-1', processCode: 'PROC-X', type: 'finish', result: 'agree' };

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const quietLogger = { info() {}, warn() {}, error() {} };

describe('DingTalk stream handler: ACK only after acceptance', () => {
  it('normalises the frame and answers SUCCESS only once the processor has accepted the event', async () => {
    const seen: InboundEvent[] = [];
    const gate = deferred<EventResult>();
    const handler = createDingTalkStreamHandler({
      processor: {
        process: (e) => {
          seen.push(e);
          return gate.promise;
        },
      },
      logger: quietLogger,
    });
    let settled: EventAckData | undefined;
    const pending = handler(frame(bpms)).then((a) => (settled = a));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(settled, undefined, 'no ACK while the processor has not answered');
    assert.equal(seen.length, 1);
    assert.deepEqual(
      { ...seen[0], raw: undefined },
      {
        kind: 'approval-status',
        platform: 'dingtalk',
        eventId: 'ev-1',
        eventType: 'bpms_instance_change',
        approvalCode: 'PROC-X',
        instanceId: 'PI-1',
        status: 'APPROVED',
        raw: undefined,
      }
    );
    gate.resolve({ outcome: 'started', workflowIds: ['dingtalk-PI-1'] });
    await pending;
    assert.deepEqual(settled, { status: EventAck.SUCCESS });
  });

  it('answers LATER when the event could not be accepted (Temporal unreachable)', async () => {
    const handler = createDingTalkStreamHandler({
      processor: { process: () => Promise.reject(new TemporalUnavailableError('down')) },
      logger: quietLogger,
    });
    assert.equal((await handler(frame(bpms))).status, EventAck.LATER);
  });

  it('ACKs malformed events SUCCESS without processing them (pushing them again would not help)', async () => {
    let calls = 0;
    const handler = createDingTalkStreamHandler({
      processor: {
        process: async () => {
          calls++;
          return { outcome: 'ignored-type' };
        },
      },
      logger: quietLogger,
    });
    assert.equal((await handler(frame('not json'))).status, EventAck.SUCCESS);
    assert.equal((await handler(frame({ type: 'finish' }))).status, EventAck.SUCCESS); // no processInstanceId
    assert.equal(calls, 0);
    assert.equal((await handler(frame({ x: 1 }, { eventType: 'user_add_org' }))).status, EventAck.SUCCESS);
    assert.equal(calls, 1);
  });

  it('the client sends the ACK frame only after the handler settles', async () => {
    const gate = deferred<EventAckData>();
    const sent: [string, unknown][] = [];
    class Probe extends AckAfterAcceptClient {
      override send(messageId: string, value: unknown): void {
        sent.push([messageId, value]);
      }
    }
    const client = new Probe({ clientId: 'id', clientSecret: 'secret' }, () => gate.promise, 'http://127.0.0.1:1');
    client.onEvent(frame(bpms, { messageId: 'm-42' }));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(sent, [], 'nothing sent before acceptance');
    gate.resolve({ status: EventAck.SUCCESS });
    await until('the ACK', () => (sent.length ? true : undefined), 2000);
    assert.deepEqual(sent, [['m-42', { status: 'SUCCESS' }]]);

    const failing = new Probe(
      { clientId: 'id', clientSecret: 'secret' },
      () => Promise.reject(new Error('boom')),
      'http://127.0.0.1:1'
    );
    failing.onEvent(frame(bpms, { messageId: 'm-43' }));
    await until('the LATER', () => (sent.length === 2 ? true : undefined), 2000);
    assert.deepEqual(sent[1], ['m-43', { status: 'LATER', message: 'handler failed' }]);
  });
});

describe('DingTalk stream client against the simulator gateway: frames, disconnect, ping', () => {
  it('EVENT frames carry topic "*" and the type in eventType; an ACK sent after the disconnect frame still counts', async () => {
    const sim = await startDingTalkSimulator({
      appKey: 'streamdisc',
      appSecret: 's',
      eventMode: 'stream',
      pingIntervalMs: 0,
    });
    const gate = deferred<EventAckData>();
    const seen: DWClientDownStream[] = [];
    const client = new AckAfterAcceptClient(
      { clientId: 'streamdisc', clientSecret: 's', keepAlive: false, autoReconnect: false },
      (message) => {
        seen.push(message);
        return gate.promise;
      },
      sim.url,
      quietLogger
    );
    try {
      await client.connect();
      await until('connected', () => (sim.streamClients() === 1 ? true : undefined));
      sim.deliverEvent({ EventType: 'bpms_instance_change', eventId: 'ev-disc', ...bpms }, 'PI-1');
      await until('the event', () => (seen.length === 1 ? true : undefined));
      assert.equal(seen[0]!.headers.topic, '*');
      assert.equal(seen[0]!.headers.eventType, 'bpms_instance_change');
      // DingTalk rebalances: a SYSTEM disconnect frame, no reply needed, the connection closes 10 s later.
      sim.disconnectStreamClients();
      await until('the disconnect frame', () => (client.disconnectRequested && !client.connected ? true : undefined));
      assert.equal(sim.streamClients(), 0, 'nothing more is pushed on it');
      const retired = client.retire(5000);
      gate.resolve({ status: EventAck.SUCCESS });
      await retired;
      const [d] = await sim.waitForDeliveries({ count: 1 });
      assert.deepEqual([d!.ok, d!.outcome], [true, 'delivered']);
    } finally {
      client.disconnect();
      await sim.close();
    }
  });

  it('answers the SYSTEM ping with its data', async () => {
    const sim = await startDingTalkSimulator({ appKey: 'streamping', appSecret: 's', eventMode: 'stream' });
    const client = new AckAfterAcceptClient(
      { clientId: 'streamping', clientSecret: 's', keepAlive: false, autoReconnect: false },
      async () => ({ status: EventAck.SUCCESS }),
      sim.url
    );
    try {
      await client.connect();
      await until('connected', () => (sim.streamClients() === 1 ? true : undefined));
      assert.equal(await sim.pingStreamClients(), 1);
    } finally {
      client.disconnect();
      await sim.close();
    }
  });
});

describe('DingTalk stream client: reconnects without leaking keepAlive timers', () => {
  it('clears the previous keepAlive interval on every reconnect and on disconnect', async () => {
    const sim = await startDingTalkSimulator({ appKey: 'streamleak', appSecret: 's', eventMode: 'stream' });
    const realSet = globalThis.setInterval;
    const realClear = globalThis.clearInterval;
    const heartbeats = new Set<unknown>();
    // The SDK's keepAlive interval is the only 8 s interval here: track which are still alive.
    globalThis.setInterval = ((fn: () => void, ms?: number) => {
      const handle = realSet(fn, ms);
      if (ms === 8000) heartbeats.add(handle);
      return handle;
    }) as typeof setInterval;
    globalThis.clearInterval = ((handle?: Parameters<typeof clearInterval>[0]) => {
      heartbeats.delete(handle);
      realClear(handle);
    }) as typeof clearInterval;
    const client = new AckAfterAcceptClient(
      { clientId: 'streamleak', clientSecret: 's', keepAlive: true, autoReconnect: false },
      async () => ({ status: EventAck.SUCCESS }),
      sim.url
    );
    try {
      await client.connect();
      await until('connected', () => (sim.streamClients() === 1 ? true : undefined));
      for (let i = 0; i < 2; i++) {
        sim.dropStreamClients();
        await until('dropped', () => (client.connected ? undefined : true));
        await client.connect(); // what the SDK's own reconnect does, on the same client
        await until('reconnected', () =>
          sim.streamConnectionCount() === i + 2 && client.connected ? true : undefined
        );
        assert.equal(heartbeats.size, 1, 'one keepAlive interval per live connection');
      }
      client.disconnect();
      assert.equal(heartbeats.size, 0, 'none left after disconnect');
    } finally {
      globalThis.setInterval = realSet;
      globalThis.clearInterval = realClear;
      client.disconnect();
      await sim.close();
    }
  });
});

describe('DingTalk Stream mode end to end (official SDK ↔ simulator gateway, real Temporal dev server)', () => {
  let t: TestStack;
  before(async () => {
    t = await startTestStack({ env: { DINGTALK_EVENT_MODE: 'stream' }, stoppableTemporal: true });
  });
  after(async () => {
    await t?.close();
  });

  const form = (mac: string) => [{ name: 'MAC地址', componentType: 'TextareaField', value: mac }];

  it('connects through the gateway, runs an approval, reconnects when dropped; the HTTP callback is not mounted', async () => {
    await until('the stream client', () => (t.dingtalkSim!.streamClients() > 0 ? true : undefined), 30_000);
    await until('ready', async () => ((await fetch(`${t.ingressUrl}/readyz`)).status === 200 ? true : undefined));
    const { process_instance_id: id } = t.dingtalkSim!.createInstance({
      process_code: 'PROC-WIFI-ACCESS-SANDBOX',
      originator_user_id: 'stream-user',
      form: form('00:1B:44:F1:00:01'),
    });
    const status = await t.waitForPhase(workflowIdFor('dingtalk', id), ['active']);
    assert.equal(status.macs[0]!.state, 'granted');
    const ds = t.dingtalkSim!.deliveries().filter((d) => d.instance_id === id);
    assert.deepEqual(
      ds.map((d) => [d.ok, d.outcome]),
      [[true, 'delivered']]
    );
    assert.equal((await fetch(`${t.ingressUrl}/webhook/dingtalk`, { method: 'POST' })).status, 404);
    // DingTalk drops connections now and then: the client reconnects with a fresh ticket and events keep flowing.
    t.dingtalkSim!.dropStreamClients();
    await until('a new stream connection', () => (t.dingtalkSim!.streamClients() > 0 ? true : undefined), 30_000);
    t.dingtalkSim!.setStatus(id, 'TERMINATED');
    await until('revoked', async () => ((await t.iseEndpoint('00:1B:44:F1:00:01')) === null ? true : undefined));
  });

  it('with Temporal down the event is ACKed LATER and pushed again; it runs once Temporal is back', async () => {
    await t.stopTemporal();
    const { process_instance_id: id } = t.dingtalkSim!.createInstance({
      process_code: 'PROC-WIFI-ACCESS-SANDBOX',
      originator_user_id: 'stream-user-2',
      form: form('00:1B:44:F2:00:01'),
    });
    const refused = await until('two LATER ACKs', () => {
      const d = t.dingtalkSim!.deliveries().filter((x) => x.instance_id === id);
      return d.length >= 2 ? d : undefined;
    });
    for (const d of refused) assert.equal(d.error, 'ACK LATER');
    await t.startTemporal();
    const status = await t.waitForPhase(workflowIdFor('dingtalk', id), ['active'], 90_000);
    assert.equal(status.macs[0]!.state, 'granted');
    const ok = t.dingtalkSim!.deliveries().filter((x) => x.instance_id === id && x.ok);
    assert.equal(ok.length, 1, 'acknowledged SUCCESS exactly once');
    let runs = 0;
    for await (const _ of t.client.workflow.list({ query: `WorkflowId = '${workflowIdFor('dingtalk', id)}'` })) runs++;
    assert.equal(runs, 1);
    // Over both tests: the first connection and the one after the drop, no churn.
    assert.equal(t.dingtalkSim!.streamConnectionCount(), 2);
  });

  it('after a disconnect frame the client connects anew at once and events keep flowing; duplicates run once', async () => {
    const sim = t.dingtalkSim!;
    await until('connected', () => (sim.streamClients() === 1 ? true : undefined), 30_000);
    const before = sim.streamConnectionCount();
    sim.disconnectStreamClients();
    await until(
      'a new connection',
      () => (sim.streamConnectionCount() === before + 1 && sim.streamClients() === 1 ? true : undefined),
      30_000
    );
    sim.setFaults({ duplicateRate: 1 });
    try {
      const { process_instance_id: id } = sim.createInstance({
        process_code: 'PROC-WIFI-ACCESS-SANDBOX',
        originator_user_id: 'stream-user-3',
        form: form('00:1B:44:F3:00:01'),
      });
      await t.waitForPhase(workflowIdFor('dingtalk', id), ['active']);
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
      let runs = 0;
      for await (const _ of t.client.workflow.list({ query: `WorkflowId = '${workflowIdFor('dingtalk', id)}'` }))
        runs++;
      assert.equal(runs, 1);
    } finally {
      sim.clearFaults();
    }
  });
});
