import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import {
  approvalInstanceEventV1,
  approvalInstanceStatusChangedV2,
  buildSignedRequest,
  encryptEvent,
  signEvent,
  urlVerification,
} from '../simulators/feishu/event-signer';
import { workflowIdFor } from '../workflows/definitions';
import type { NacWhitelistResult } from '../workflows/nac-whitelist.workflow';
import { APPROVAL_CODE, startTestStack, until, type TestStack } from './support/harness';

/**
 * `POST /webhook/feishu` on a running stack. Events are built by the simulator's signer (independent of the ingress
 * code, and itself checked against Feishu's official test vector), signed and encrypted as Feishu does.
 */
describe('Feishu webhook ingress (real Temporal dev server)', () => {
  let t: TestStack;
  before(async () => {
    t = await startTestStack();
  });
  after(async () => {
    await t?.close();
  });

  const sec = () => ({ encryptKey: t.env.FEISHU_ENCRYPT_KEY!, verificationToken: t.env.FEISHU_VERIFICATION_TOKEN! });
  const post = (rawBody: Buffer | string, headers: Record<string, string>) =>
    fetch(`${t.ingressUrl}/webhook/feishu`, { method: 'POST', body: rawBody, headers });
  const approvedEvent = (
    instanceCode: string,
    extra: { eventId?: string; appId?: string; status?: string; approvalCode?: string } = {}
  ) =>
    approvalInstanceEventV1({
      approvalCode: extra.approvalCode ?? APPROVAL_CODE,
      instanceCode,
      status: extra.status ?? 'APPROVED',
      token: t.env.FEISHU_VERIFICATION_TOKEN!,
      appId: extra.appId ?? t.env.FEISHU_APP_ID!,
      eventId: extra.eventId,
    });
  const exists = async (instanceCode: string) => {
    try {
      await t.client.workflow.getHandle(workflowIdFor('feishu', instanceCode)).describe();
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  };

  it('the test signer reproduces the official Feishu test vector', () => {
    const iv = Buffer.from('P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=', 'base64').subarray(0, 16);
    assert.equal(encryptEvent('hello world', 'test key', iv), 'P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=');
  });

  it('answers url_verification, plain-token and encrypted, with the challenge', async () => {
    const enc = buildSignedRequest({
      body: urlVerification({ token: t.env.FEISHU_VERIFICATION_TOKEN!, challenge: 'c-123' }),
      ...sec(),
    });
    const res = await post(enc.rawBody, enc.headers);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { challenge: 'c-123' });
    const wrong = buildSignedRequest({ body: urlVerification({ token: 'not-the-token', challenge: 'c-9' }), ...sec() });
    assert.equal((await post(wrong.rawBody, wrong.headers)).status, 403);
  });

  it('accepts a signed, encrypted v1 event and starts exactly one workflow', async () => {
    const instance = t.createApproval('00:1B:44:33:00:01', { deliver: false });
    const req = buildSignedRequest({ body: approvedEvent(instance), ...sec() });
    const res = await post(req.rawBody, req.headers);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { outcome: string }).outcome, 'started');
    await t.waitForPhase(workflowIdFor('feishu', instance), ['active']);

    // The same event again (a redelivery), and a different event for the same instance: no second run.
    const again = await post(req.rawBody, req.headers);
    assert.equal(again.status, 200);
    const other = buildSignedRequest({ body: approvedEvent(instance), ...sec() });
    const res2 = await post(other.rawBody, other.headers);
    assert.equal(res2.status, 200);
    assert.equal(((await res2.json()) as { outcome: string }).outcome, 'duplicate');
    const runs = [];
    for await (const wf of t.client.workflow.list({ query: `WorkflowId = '${workflowIdFor('feishu', instance)}'` }))
      runs.push(wf.runId);
    assert.equal(runs.length, 1);
  });

  it('accepts a v2 status_changed_v4 event; REVERTED revokes the live grant', async () => {
    const instance = t.createApproval('00:1B:44:33:00:02', { deliver: false });
    const v2 = approvalInstanceStatusChangedV2({
      approvalCode: APPROVAL_CODE,
      instanceCode: instance,
      status: 'APPROVED',
      token: t.env.FEISHU_VERIFICATION_TOKEN!,
      appId: t.env.FEISHU_APP_ID!,
    } as never);
    const req = buildSignedRequest({ body: v2, ...sec() });
    assert.equal((await post(req.rawBody, req.headers)).status, 200);
    const id = workflowIdFor('feishu', instance);
    await t.waitForPhase(id, ['active']);
    t.feishuSim!.setStatus(instance, 'REVERTED'); // the simulator delivers the REVERTED event itself
    const r = (await t.client.workflow.getHandle(id).result()) as NacWhitelistResult;
    assert.equal(r.outcome, 'revoked');
    assert.match(r.reason ?? '', /reverted/);
    assert.equal(await t.iseEndpoint('00:1B:44:33:00:02'), null);
  });

  it('refuses forged, malformed and oversized requests with precise 4xx and starts nothing', async () => {
    const instance = t.createApproval('00:1B:44:33:00:03', { deliver: false });
    const good = buildSignedRequest({ body: approvedEvent(instance), ...sec() });
    const cases: [string, Buffer | string, Record<string, string>, number][] = [
      ['forged signature', good.rawBody, { ...good.headers, 'x-lark-signature': 'f'.repeat(64) }, 401],
      ['missing signature', good.rawBody, { 'content-type': 'application/json' }, 401],
      ['signature of other bytes', Buffer.concat([good.rawBody, Buffer.from(' ')]), good.headers, 401],
      ['malformed JSON', '{"encrypt":', { 'content-type': 'application/json' }, 400],
      ['wrong content type', good.rawBody, { ...good.headers, 'content-type': 'text/plain' }, 415],
      ['oversized body', Buffer.alloc(300 * 1024, 0x20), { 'content-type': 'application/json' }, 413],
    ];
    const badCipher = buildSignedRequest({ body: approvedEvent(instance), ...sec() });
    const tampered = JSON.parse(badCipher.rawBody.toString()) as { encrypt: string };
    const rawTampered = Buffer.from(JSON.stringify({ encrypt: tampered.encrypt.slice(0, -8) + 'AAAAAAA=' }));
    const resigned = buildSignedRequest({ body: {}, ...sec() }); // reuse the header shape, then sign the tampered bytes
    const ts = resigned.headers['x-lark-request-timestamp']!;
    const nonce = resigned.headers['x-lark-request-nonce']!;
    cases.push([
      'bad ciphertext (validly signed)',
      rawTampered,
      { ...resigned.headers, 'x-lark-signature': signEvent(ts, nonce, sec().encryptKey, rawTampered) },
      400,
    ]);
    const wrongToken = buildSignedRequest({
      body: { ...approvedEvent(instance), token: 'wrong-token' },
      encryptKey: sec().encryptKey,
    });
    cases.push(['wrong verification token', wrongToken.rawBody, wrongToken.headers, 403]);
    const otherApp = buildSignedRequest({ body: approvedEvent(instance, { appId: 'cli_0000000000000000' }), ...sec() });
    cases.push(['event for another app', otherApp.rawBody, otherApp.headers, 403]);
    const plaintext = buildSignedRequest({ body: approvedEvent(instance), verificationToken: sec().verificationToken });
    cases.push(['plaintext while an encrypt key is set', plaintext.rawBody, plaintext.headers, 400]);

    for (const [name, body, headers, status] of cases) {
      const res = await post(body, headers);
      assert.equal(res.status, status, name);
      const json = (await res.json()) as { error: string };
      assert.ok(json.error, `${name}: has an error id`);
    }
    assert.equal(await exists(instance), false, 'no workflow was started');
  });

  it('acknowledges an authentic event that can never be read (200, unreadable) so it cannot block later ones', async () => {
    const instance = t.createApproval('00:1B:44:33:00:05', { deliver: false });
    // Signed with the encrypt key but without instance_code: redelivering the same bytes would never help, and
    // while Feishu redelivered it, this instance's later ordered events would wait behind it (doc: ov).
    const unreadable = approvalInstanceEventV1({
      approvalCode: APPROVAL_CODE,
      instanceCode: instance,
      status: 'APPROVED',
      token: t.env.FEISHU_VERIFICATION_TOKEN!,
      appId: t.env.FEISHU_APP_ID!,
    }) as { event: Record<string, unknown> };
    delete unreadable.event.instance_code;
    const req = buildSignedRequest({ body: unreadable, ...sec() });
    const res = await post(req.rawBody, req.headers);
    assert.equal(res.status, 200);
    const json = (await res.json()) as { outcome: string; error: string };
    assert.deepEqual([json.outcome, json.error], ['unreadable', 'missing_field']);
    // The same unreadable body with a forged signature is not Feishu's: still refused.
    const forged = await post(req.rawBody, { ...req.headers, 'x-lark-signature': '0'.repeat(64) });
    assert.equal(forged.status, 401);
    // The instance's next event goes through.
    const next = buildSignedRequest({ body: approvedEvent(instance), ...sec() });
    assert.equal(((await (await post(next.rawBody, next.headers)).json()) as { outcome: string }).outcome, 'started');
    const metrics = await (await fetch(`${t.ingressUrl}/metrics`)).text();
    assert.match(metrics, /platform="feishu",type="unreadable",outcome="unreadable"/);
  });

  it('acknowledges unrouted approval codes and other statuses without starting anything', async () => {
    const instance = t.createApproval('00:1B:44:33:00:04', { deliver: false });
    const unrouted = buildSignedRequest({
      body: approvedEvent(instance, { approvalCode: 'NOT-ROUTED-CODE' }),
      ...sec(),
    });
    const r1 = await post(unrouted.rawBody, unrouted.headers);
    assert.equal(r1.status, 200);
    assert.equal(((await r1.json()) as { outcome: string }).outcome, 'unrouted');
    const pending = buildSignedRequest({ body: approvedEvent(instance, { status: 'PENDING' }), ...sec() });
    const r2 = await post(pending.rawBody, pending.headers);
    assert.equal(((await r2.json()) as { outcome: string }).outcome, 'ignored-status');
    assert.equal(await exists(instance), false);
  });

  it('serves /healthz, /readyz and /metrics', async () => {
    assert.equal((await fetch(`${t.ingressUrl}/healthz`)).status, 200);
    const ready = await until('ready', async () =>
      (await fetch(`${t.ingressUrl}/readyz`)).status === 200 ? true : undefined
    );
    assert.ok(ready);
    const metrics = await (await fetch(`${t.ingressUrl}/metrics`)).text();
    assert.match(metrics, /approval_plus_events_total\{platform="feishu",type="approval_instance",outcome="started"\}/);
    assert.match(metrics, /approval_plus_webhook_duration_seconds_bucket/);
  });
});

describe('Feishu webhook while Temporal is down (real Temporal dev server, stopped and restarted)', () => {
  let t: TestStack;
  before(async () => {
    t = await startTestStack({ stoppableTemporal: true });
  });
  after(async () => {
    await t?.close();
  });

  it('answers 503 within the budget, and the redelivered event runs once after Temporal is back', async () => {
    await until('ready', async () => ((await fetch(`${t.ingressUrl}/readyz`)).status === 200 ? true : undefined));
    await t.stopTemporal();
    const instance = t.createApproval('00:1B:44:44:00:01'); // the simulator delivers it, as Feishu would
    const failed = await until('two refused deliveries', () => {
      const d = t.feishuSim!.deliveries().filter((x) => x.instance_code === instance);
      return d.length >= 2 ? d : undefined;
    });
    for (const d of failed)
      assert.equal(
        d.status,
        503,
        `delivery ${d.attempt} answered 503 (within Feishu's 3 s, or the simulator records a time-out)`
      );
    assert.equal((await fetch(`${t.ingressUrl}/readyz`)).status, 503);

    await t.startTemporal();
    const id = workflowIdFor('feishu', instance);
    const status = await t.waitForPhase(id, ['active'], 90_000);
    assert.equal(status.macs[0]!.state, 'granted');
    const ok = t.feishuSim!.deliveries().filter((x) => x.instance_code === instance && x.ok);
    assert.equal(ok.length, 1, 'delivered successfully exactly once');
    const runs = [];
    for await (const wf of t.client.workflow.list({ query: `WorkflowId = '${id}'` })) runs.push(wf.runId);
    assert.equal(runs.length, 1);
    assert.equal(t.feishuSim!.messages().filter((m) => JSON.stringify(m.content).includes(instance)).length, 1);
  });
});
