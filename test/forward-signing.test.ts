import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import type { ForwardRoute } from '../forwarding/config';
import { forwardBody, forwardWorkflowId, type ForwardRetry } from '../forwarding/model';
import { secretKey, sign, signedHeaders, verify, webhookIdFor } from '../forwarding/signing';
import { forwardInputs, forwardStartOptions } from '../forwarding/start';

/** Signing checked against `standardwebhooks`, the Standard Webhooks project's own TypeScript library. */
const newSecret = (bytes = 32) => `whsec_${randomBytes(bytes).toString('base64')}`;

describe('Standard Webhooks signing', () => {
  it('the official library verifies what we sign, and refuses tampering, another secret and an old timestamp', () => {
    const secret = newSecret();
    const body = JSON.stringify({ type: 'approval.status_changed', timestamp: '2026-01-01T00:00:00Z', data: { a: 1 } });
    const headers = signedHeaders(secretKey(secret), 'msg_abc', body);
    assert.match(headers['webhook-signature'], /^v1,[A-Za-z0-9+/]{43}=$/);
    assert.match(headers['webhook-timestamp'], /^\d{10}$/);
    const lib = new Webhook(secret);
    assert.deepEqual(lib.verify(body, { ...headers }), JSON.parse(body));
    assert.throws(() => lib.verify(body.replace('"a":1', '"a":2'), { ...headers }));
    assert.throws(() => new Webhook(newSecret()).verify(body, { ...headers }));
    const old = signedHeaders(secretKey(secret), 'msg_abc', body, Date.now() - 10 * 60_000);
    assert.throws(() => lib.verify(body, { ...old }), /timestamp/i);
  });

  it('produces exactly the signature the official library computes', () => {
    for (let i = 0; i < 20; i++) {
      const secret = newSecret(24 + i);
      const id = `msg_${randomBytes(12).toString('base64url')}`;
      const ts = 1_700_000_000 + i * 7919;
      const body = JSON.stringify({ i, s: randomBytes(8).toString('hex'), zh: '审批通过' });
      assert.equal(sign(secretKey(secret), id, ts, body), new Webhook(secret).sign(id, new Date(ts * 1000), body));
    }
  });

  it('our receiver-side verify (the README recipe) agrees with the library', () => {
    const secret = newSecret();
    const lib = new Webhook(secret);
    const body = '{"x":"y"}';
    const now = new Date();
    const libSig = lib.sign('msg_1', now, body);
    const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)) };
    assert.equal(verify(secret, { ...headers, 'webhook-signature': libSig }, body), true);
    // Rotation: several signatures, one valid.
    const rotated = `v1,${randomBytes(32).toString('base64')} ${libSig}`;
    assert.equal(verify(secret, { ...headers, 'webhook-signature': rotated }, body), true);
    assert.equal(verify(secret, { ...headers, 'webhook-signature': libSig }, body + ' '), false);
    assert.equal(verify(newSecret(), { ...headers, 'webhook-signature': libSig }, body), false);
    assert.equal(verify(secret, { ...headers, 'webhook-signature': libSig.replace('v1,', 'v1a,') }, body), false);
    assert.equal(verify(secret, { 'webhook-id': 'msg_1', 'webhook-signature': libSig }, body), false);
  });

  it('checks secrets: whsec_ prefix, base64, 24–64 bytes', () => {
    assert.equal(secretKey(newSecret(32)).length, 32);
    assert.throws(() => secretKey(randomBytes(32).toString('base64')), /must start with whsec_/);
    assert.throws(() => secretKey('whsec_not base64!'), /base64/);
    assert.throws(() => secretKey(newSecret(16)), /24–64 bytes \(got 16\)/);
  });

  it('webhook-id: stable per event and subscriber, distinct otherwise, header-safe and without "."', () => {
    const a = webhookIdFor('feishu', 'ev.1', 'hr-sync');
    assert.equal(a, webhookIdFor('feishu', 'ev.1', 'hr-sync'));
    assert.match(a, /^msg_[A-Za-z0-9_-]{32}$/);
    const others = [
      webhookIdFor('feishu', 'ev.1', 'audit'),
      webhookIdFor('feishu', 'ev.2', 'hr-sync'),
      webhookIdFor('dingtalk', 'ev.1', 'hr-sync'),
      webhookIdFor('feishu', 'ev.1\u0000x', 'hr-sync'),
    ];
    assert.equal(new Set([a, ...others]).size, 5);
  });
});

describe('forward inputs and start options', () => {
  const retry: ForwardRetry = {
    initialIntervalMs: 5000,
    backoffCoefficient: 2,
    maximumIntervalMs: 3_600_000,
    retryForMs: 86_400_000,
    requestTimeoutMs: 15_000,
  };
  const sub = (name: string) => ({ name, url: `https://${name}.example/hook`, secretEnv: 'X', secret: newSecret() });
  const route = (approvalCode: string, includeRaw: boolean, names: string[]): ForwardRoute => ({
    platform: 'feishu',
    approvalCode,
    automation: 'forward',
    includeRaw,
    subscribers: names.map(sub),
  });
  const event = {
    kind: 'approval-status' as const,
    platform: 'feishu' as const,
    eventId: 'e-1',
    eventType: 'approval_instance',
    approvalCode: 'A1',
    instanceId: 'I-1',
    status: 'APPROVED',
    raw: { type: 'event_callback', event: { instance_code: 'I-1' } },
  };

  it('one input per subscriber; a subscriber on two matching routes gets the event once, raw if either asks', () => {
    const inputs = forwardInputs(
      [route('A1', false, ['hr-sync', 'audit']), route('*', true, ['audit'])],
      event,
      retry,
      new Date('2026-03-01T08:00:00Z')
    );
    assert.deepEqual(
      inputs.map((i) => [i.subscriber, i.raw !== undefined]),
      [
        ['hr-sync', false],
        ['audit', true],
      ]
    );
    const hr = inputs[0]!;
    assert.deepEqual(hr.event, {
      kind: 'approval-status',
      platform: 'feishu',
      eventId: 'e-1',
      eventType: 'approval_instance',
      approvalCode: 'A1',
      instanceId: 'I-1',
      status: 'APPROVED',
    });
    assert.equal(hr.webhookId, webhookIdFor('feishu', 'e-1', 'hr-sync'));
    assert.deepEqual(JSON.parse(forwardBody(hr)), {
      type: 'approval.status_changed',
      timestamp: '2026-03-01T08:00:00.000Z',
      data: hr.event,
    });
    assert.deepEqual(JSON.parse(forwardBody(inputs[1]!)).data.raw, event.raw);
  });

  it('start options: id, REJECT_DUPLICATE, summary, search attributes, memo', () => {
    const r = route('A1', true, ['hr-sync']);
    const [input] = forwardInputs([r], event, retry, new Date());
    const opts = forwardStartOptions(input!);
    assert.equal(opts.workflowId, forwardWorkflowId('feishu', 'e-1', 'hr-sync'));
    assert.equal(opts.workflowId, 'forward-feishu-e-1-hr-sync');
    assert.equal(opts.workflowIdReusePolicy, 'REJECT_DUPLICATE');
    assert.equal(opts.staticSummary, 'Forward feishu A1 I-1 APPROVED → hr-sync');
    assert.deepEqual(
      opts.typedSearchAttributes.map((p) => [p.key.name, p.value]),
      [
        ['ApprovalPlatform', 'feishu'],
        ['ApprovalCode', 'A1'],
      ]
    );
    assert.equal((opts.memo as { webhookId: string }).webhookId, input!.webhookId);
    const secret = r.subscribers[0]!.secret;
    assert.ok(!JSON.stringify(opts).includes(secret) && !JSON.stringify(opts).includes(secret.slice(6)));
  });
});
