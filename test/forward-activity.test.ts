import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { Webhook } from 'standardwebhooks';
import { createForwardActivities, FORWARD_FAILURE } from '../activities/forward';
import { forwardBody, type ForwardDelivery, type ForwardEventInput } from '../forwarding/model';
import { webhookIdFor } from '../forwarding/signing';
import { freePort } from '../temporal/dev-server';

/** The delivery activity against a real HTTP server: what each answer means for Temporal's retry policy. */
describe('deliverWebhook activity (real HTTP, MockActivityEnvironment)', () => {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  let server: http.Server;
  let url: string;
  let answer: (res: http.ServerResponse) => void = (res) => res.end();
  const received: { headers: http.IncomingHttpHeaders; body: string; verified: boolean }[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let verified = true;
        try {
          new Webhook(secret).verify(body, req.headers as Record<string, string>);
        } catch {
          verified = false;
        }
        received.push({ headers: req.headers, body, verified });
        answer(res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const input = (over: Partial<ForwardEventInput> = {}): ForwardEventInput => ({
    event: {
      kind: 'approval-status',
      platform: 'feishu',
      eventId: 'ev-1',
      eventType: 'approval_instance',
      approvalCode: 'A1',
      instanceId: 'I-1',
      status: 'APPROVED',
    },
    receivedAt: '2026-03-01T08:00:00.000Z',
    subscriber: 'hr-sync',
    url,
    webhookId: webhookIdFor('feishu', 'ev-1', 'hr-sync'),
    retry: {
      initialIntervalMs: 500,
      backoffCoefficient: 2,
      maximumIntervalMs: 10_000,
      retryForMs: 60_000,
      requestTimeoutMs: 2000,
    },
    ...over,
  });
  const activities = (target = () => url) =>
    createForwardActivities({ subscribers: [{ name: 'hr-sync', url: target(), secretEnv: 'S', secret }] });
  const quiet = new DefaultLogger('ERROR', () => {});
  const deliver = (i = input(), attempt = 1, acts = activities()) =>
    new MockActivityEnvironment({ attempt }, { logger: quiet }).run(acts.deliverWebhook, i);
  const failure = async (p: Promise<unknown>): Promise<ApplicationFailure> => {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof ApplicationFailure, `an ApplicationFailure, got ${String(err)}`);
      return err;
    }
    assert.fail('expected a failure');
  };

  it('2xx: delivered; signed the Standard Webhooks way, JSON body, same webhook-id on every attempt', async () => {
    answer = (res) => res.writeHead(204).end();
    received.length = 0;
    const d = (await deliver(input(), 1)) as ForwardDelivery;
    assert.deepEqual(
      { ...d, deliveredAt: undefined },
      {
        webhookId: input().webhookId,
        url,
        status: 204,
        attempt: 1,
        deliveredAt: undefined,
      }
    );
    await deliver(input(), 2);
    assert.equal(received.length, 2);
    for (const r of received) {
      assert.equal(r.verified, true, 'the standardwebhooks library verifies it');
      assert.equal(r.headers['webhook-id'], input().webhookId);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.body, forwardBody(input()));
    }
  });

  it('5xx, 408, 409, 429: retryable; Retry-After becomes the next delay, kept within the interval bounds', async () => {
    const cases: [number, string | undefined, number | undefined][] = [
      [503, '3', 3000],
      [502, undefined, undefined],
      [500, '0', 500],
      [429, '86400', 10_000],
      [408, undefined, undefined],
      [409, undefined, undefined],
    ];
    for (const [status, retryAfter, delay] of cases) {
      answer = (res) => res.writeHead(status, retryAfter ? { 'retry-after': retryAfter } : {}).end('busy');
      const f = await failure(deliver(input(), 4));
      assert.equal(f.type, FORWARD_FAILURE.retryableStatus, `${status}`);
      assert.equal(f.nonRetryable, false, `${status}`);
      assert.equal(f.nextRetryDelay ?? undefined, delay, `${status}`);
      assert.equal(f.message, `hr-sync answered HTTP ${status} (attempt 4): busy`);
    }
  });

  it('3xx and other 4xx: a permanent failure (non-retryable), with what the receiver said', async () => {
    for (const status of [400, 401, 403, 404, 410, 422]) {
      answer = (res) => res.writeHead(status).end(`{"error":"no such hook ${status}"}`);
      const f = await failure(deliver());
      assert.equal(f.type, FORWARD_FAILURE.rejected);
      assert.equal(f.nonRetryable, true, `${status}`);
      assert.equal(f.message, `hr-sync refused the event: HTTP ${status}: {"error":"no such hook ${status}"}`);
    }
    answer = (res) => res.writeHead(400).end('x'.repeat(5000));
    assert.match((await failure(deliver())).message, /HTTP 400: x{300}…$/);
    answer = (res) => res.writeHead(301, { location: 'https://new.example.com/hook' }).end();
    const moved = await failure(deliver());
    assert.equal(moved.nonRetryable, true);
    assert.match(moved.message, /HTTP 301 redirect to https:\/\/new\.example\.com\/hook \(redirects are not followed/);
  });

  it('connection refused and no answer in time: retryable', async () => {
    const closedPort = await freePort();
    const refused = await failure(
      deliver(
        input(),
        1,
        activities(() => `http://127.0.0.1:${closedPort}/hook`)
      )
    );
    assert.equal(refused.type, FORWARD_FAILURE.unreachable);
    assert.equal(refused.nonRetryable, false);
    assert.match(refused.message, /^hr-sync unreachable \(attempt 1\): ECONNREFUSED/);

    answer = () => {}; // never answers
    const slow = input({ retry: { ...input().retry, requestTimeoutMs: 300 } });
    const timedOut = await failure(deliver(slow));
    assert.equal(timedOut.type, FORWARD_FAILURE.unreachable);
    assert.match(timedOut.message, /no answer within 300 ms/);
    server.closeAllConnections();
  });

  it('a subscriber this worker does not know: retryable (another worker may have the newer routes file)', async () => {
    const f = await failure(deliver(input({ subscriber: 'gone' })));
    assert.equal(f.type, FORWARD_FAILURE.unknownSubscriber);
    assert.equal(f.nonRetryable, false);
  });
});
