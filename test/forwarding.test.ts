import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { Webhook } from 'standardwebhooks';
import { createLogger } from '../app/logger';
import { createIngress } from '../ingress/app';
import { createInbounds } from '../platforms';
import { timingFor } from '../ingress/event-processor';
import { freePort } from '../temporal/dev-server';
import { forwardWorkflowId, type ForwardDelivery } from '../forwarding/model';
import { webhookIdFor } from '../forwarding/signing';
import { startForward } from '../forwarding/start';
import { listForwards } from '../cli/forward';
import { ApprovalCodeKey, ApprovalPlatformKey, workflowIdFor } from '../workflows/definitions';
import { APPROVAL_CODE, ROOT, startTestStack, until, type TestStack } from './support/harness';

/**
 * Forwarding on the whole system (real Temporal dev server, Feishu simulator, ingress, worker): events delivered to
 * real HTTP receivers that verify signatures with the `standardwebhooks` library and count deliveries by webhook-id.
 */

interface Attempt {
  webhookId: string;
  timestamp: number;
  verified: boolean;
  status: number;
  body: { type: string; timestamp: string; data: Record<string, unknown> };
}

/** A downstream service: verifies each request, answers what the test says, counts what it accepted. */
class Receiver {
  readonly secret = `whsec_${randomBytes(32).toString('base64')}`;
  readonly attempts: Attempt[] = [];
  /** webhook-id → times accepted (2xx); a correct receiver would process it on the first only. */
  readonly accepted = new Map<string, number>();
  answer: () => { status: number; body?: string } = () => ({ status: 200 });
  private server?: http.Server;
  constructor(
    readonly name: string,
    readonly port: number
  ) {}
  get url() {
    return `http://127.0.0.1:${this.port}/hooks/${this.name}`;
  }
  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let verified = true;
        try {
          new Webhook(this.secret).verify(raw, req.headers as Record<string, string>);
        } catch {
          verified = false;
        }
        const { status, body } = verified ? this.answer() : { status: 401, body: 'bad signature' };
        const webhookId = String(req.headers['webhook-id']);
        this.attempts.push({
          webhookId,
          timestamp: Number(req.headers['webhook-timestamp']),
          verified,
          status,
          body: JSON.parse(raw),
        });
        if (status >= 200 && status < 300) this.accepted.set(webhookId, (this.accepted.get(webhookId) ?? 0) + 1);
        res.writeHead(status, { 'content-type': 'text/plain' }).end(body ?? '');
      });
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }
  /** Down: the port refuses connections. */
  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((r) => this.server!.close(r));
    this.server = undefined;
  }
  for(webhookId: string) {
    return this.attempts.filter((a) => a.webhookId === webhookId);
  }
}

function cli(t: TestStack, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'approval-plus.mjs'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...t.env, LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // 'close', not 'exit': the child's output may still be in the pipes when it exits.
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const LEAVE_CODE = 'E2A1C0DE-LEAVE-0000-0000-000000000001';

describe('forwarding events to downstream subscribers (real Temporal dev server)', () => {
  let t: TestStack;
  let hr: Receiver;
  let audit: Receiver;
  let leave: Receiver;
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    [hr, audit, leave] = [
      new Receiver('hr-sync', await freePort()),
      new Receiver('audit', await freePort()),
      new Receiver('leave-sync', await freePort()),
    ];
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ap-forwarding-'));
    const routes = path.join(dir, 'routes.yaml');
    writeFileSync(
      routes,
      `routes:
  - platform: feishu
    approval_code: ${APPROVAL_CODE}
    automation: nac-whitelist
    fields: { macs: MAC地址, duration: 有效期 }
  - platform: feishu
    approval_code: ${APPROVAL_CODE}
    automation: forward
    subscribers:
      - { name: hr-sync, url: "${hr.url}", secret_env: FORWARD_SECRET_HR_SYNC }
  - platform: feishu
    approval_code: "*"
    automation: forward
    include_raw: true
    subscribers:
      - { name: audit, url: "${audit.url}", secret_env: FORWARD_SECRET_AUDIT }
  - platform: feishu
    approval_code: ${LEAVE_CODE}
    automation: forward
    subscribers:
      - { name: leave-sync, url: "${leave.url}", secret_env: FORWARD_SECRET_LEAVE }
`
    );
    t = await startTestStack({
      env: {
        APPROVAL_PLUS_CONFIG: routes,
        FORWARD_SECRET_HR_SYNC: hr.secret,
        FORWARD_SECRET_AUDIT: audit.secret,
        FORWARD_SECRET_LEAVE: leave.secret,
        FORWARD_RETRY_INITIAL: '200ms',
        FORWARD_RETRY_BACKOFF: '2',
        FORWARD_RETRY_MAX_INTERVAL: '1s',
        FORWARD_RETRY_FOR: '3m',
        FORWARD_TIMEOUT: '2s',
      },
    });
    await hr.start();
    await leave.start();
    closers.push(
      () => hr.stop(),
      () => audit.stop(),
      () => leave.stop()
    );
  });
  after(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    await t?.close();
  });

  /** The event id the simulator gave the (only) event of an instance, once the ingress acknowledged it. */
  const eventIdOf = (instance: string) =>
    until(
      `the event of ${instance} acknowledged`,
      () => t.feishuSim!.deliveries().find((d) => d.instance_code === instance && d.ok)?.event_id
    );

  it('reaches two receivers exactly once each, through one receiver being down and a redelivered event', async () => {
    // A second ingress (another replica, or this one restarted): its EventProcessor has never seen the event.
    const second = createIngress({
      config: t.config,
      client: t.client,
      logger: createLogger('silent'),
      ...timingFor(t.config),
      forwarding: t.config.forwarding,
      inbounds: createInbounds(t.config).map(({ startReceiver: _receiver, ...webhooksOnly }) => webhooksOnly),
    });
    const secondServer = http.createServer(second.app.callback());
    await new Promise<void>((r) => secondServer.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => secondServer.close(() => r())));
    const secondUrl = `http://127.0.0.1:${(secondServer.address() as AddressInfo).port}`;

    // Between Feishu and the ingresses: the first answer is lost (Feishu sees 503 and redelivers the same event),
    // and the redelivery lands on the second ingress.
    const answers: { to: string; status: number; outcome?: string }[] = [];
    const proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const first = answers.length === 0;
        const target = first ? t.ingressUrl! : secondUrl;
        const headers = Object.fromEntries(
          Object.entries(req.headers).filter(([k]) => k.startsWith('x-lark') || k === 'content-type')
        ) as Record<string, string>;
        const r = await fetch(`${target}/webhook/feishu`, { method: 'POST', headers, body: Buffer.concat(chunks) });
        const json = (await r.json()) as { outcome?: string };
        answers.push({ to: first ? 'first' : 'second', status: r.status, outcome: json.outcome });
        if (first) res.writeHead(503).end('response lost on the way back');
        else res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => proxy.close(() => r())));
    t.feishuSim!.setWebhookUrl(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}/webhook/feishu`);

    const instance = t.createApproval('00:1B:44:55:00:01', { duration: '7天' }); // audit is down
    const eventId = await eventIdOf(instance);
    t.feishuSim!.setWebhookUrl(`${t.ingressUrl}/webhook/feishu`);
    const delivered = t.feishuSim!.deliveries().filter((d) => d.event_id === eventId);
    assert.deepEqual(
      delivered.map((d) => d.status),
      [503, 200],
      'Feishu saw the first answer fail and redelivered'
    );
    assert.deepEqual(answers, [
      { to: 'first', status: 200, outcome: 'started' },
      { to: 'second', status: 200, outcome: 'duplicate' },
    ]);

    // Both routes of the code ran: the Wi‑Fi grant, and one forward per subscriber.
    await t.waitForPhase(workflowIdFor('feishu', instance), ['active']);
    const hrId = forwardWorkflowId('feishu', eventId, 'hr-sync');
    const auditId = forwardWorkflowId('feishu', eventId, 'audit');
    const hrDelivery = (await t.client.workflow.getHandle(hrId).result()) as ForwardDelivery;
    assert.equal(hrDelivery.status, 200);
    assert.equal(hrDelivery.attempt, 1);

    // audit is down: its delivery retries with back-off, visible as the pending activity.
    const pending = await until('audit retried against a refused connection', async () => {
      const p = (await t.client.workflow.getHandle(auditId).describe()).raw.pendingActivities?.[0];
      return p && (p.attempt ?? 0) >= 3 ? p : undefined;
    });
    assert.match(pending.lastFailure?.message ?? '', /audit unreachable \(attempt \d+\): ECONNREFUSED/);
    // Back, but overloaded at first: two 503s, then it accepts.
    let busy = 2;
    audit.answer = () => (busy-- > 0 ? { status: 503, body: 'overloaded' } : { status: 200 });
    await audit.start();
    const auditDelivery = (await t.client.workflow.getHandle(auditId).result()) as ForwardDelivery;
    assert.equal(auditDelivery.status, 200);
    // pending.attempt 3 = two attempts refused before it; the receiver saw only the last three.
    assert.ok(auditDelivery.attempt >= 5, `attempt ${auditDelivery.attempt}: ≥ 2 refused + 2 × 503 + 1`);

    // Exactly once each, counted by webhook-id; every request signed, with the same id and a fresh timestamp.
    const hrWebhookId = webhookIdFor('feishu', eventId, 'hr-sync');
    const auditWebhookId = webhookIdFor('feishu', eventId, 'audit');
    assert.notEqual(hrWebhookId, auditWebhookId);
    assert.deepEqual([...hr.accepted.entries()], [[hrWebhookId, 1]]);
    assert.deepEqual([...audit.accepted.entries()], [[auditWebhookId, 1]]);
    assert.deepEqual(
      audit.attempts.map((a) => [a.webhookId, a.verified, a.status]),
      [
        [auditWebhookId, true, 503],
        [auditWebhookId, true, 503],
        [auditWebhookId, true, 200],
      ]
    );
    assert.ok(audit.attempts[2]!.timestamp >= hr.attempts[0]!.timestamp);
    for (const r of [...hr.attempts, ...audit.attempts]) assert.equal(r.verified, true);

    // The payload: the normalised event; the raw one (without the verification token) only where asked for.
    const hrBody = hr.attempts[0]!.body;
    assert.equal(hrBody.type, 'approval.status_changed');
    assert.deepEqual(hrBody.data, {
      kind: 'approval-status',
      platform: 'feishu',
      eventId,
      eventType: 'approval_instance',
      approvalCode: APPROVAL_CODE,
      instanceId: instance,
      status: 'APPROVED',
    });
    const raw = audit.attempts[2]!.body.data.raw as { type: string; token?: string; event: { instance_code: string } };
    assert.equal(raw.type, 'event_callback');
    assert.equal(raw.event.instance_code, instance);
    assert.equal(raw.token, undefined);
    assert.ok(!JSON.stringify(audit.attempts[2]!.body).includes(t.env.FEISHU_VERIFICATION_TOKEN!));

    // One run per event and subscriber, ever.
    for (const id of [hrId, auditId]) {
      const runs = [];
      for await (const wf of t.client.workflow.list({ query: `WorkflowId = '${id}'` })) runs.push(wf.runId);
      assert.equal(runs.length, 1, id);
    }

    // What the Temporal UI shows.
    const desc = await t.client.workflow.getHandle(auditId).describe();
    assert.equal(await desc.staticSummary(), `Forward feishu ${APPROVAL_CODE} ${instance} APPROVED → audit`);
    assert.match((await desc.staticDetails()) ?? '', new RegExp(`webhook-id:\\*\\* \`${auditWebhookId}\``));
    assert.equal(desc.typedSearchAttributes.get(ApprovalCodeKey), APPROVAL_CODE);
    assert.equal(desc.typedSearchAttributes.get(ApprovalPlatformKey), 'feishu');
    const history = await t.client.workflow.getHandle(auditId).fetchHistory();
    const scheduled = history.events!.find((e) => e.activityTaskScheduledEventAttributes)!;
    assert.equal(
      defaultPayloadConverter.fromPayload(scheduled.userMetadata!.summary!),
      'POST approval_instance to audit'
    );
  });

  it('a permanent 4xx fails the run; `forward list --failed` shows it; `forward resend` delivers it once fixed', async () => {
    leave.answer = () => ({ status: 404, body: '{"error":"no such hook"}' });
    const instance = t.feishuSim!.createInstance({
      approval_code: LEAVE_CODE,
      open_id: 'ou_leaver',
      form: [],
    }).instance_code;
    const eventId = await eventIdOf(instance);
    const id = forwardWorkflowId('feishu', eventId, 'leave-sync');
    const webhookId = webhookIdFor('feishu', eventId, 'leave-sync');

    await assert.rejects(t.client.workflow.getHandle(id).result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.ok(err.cause instanceof ApplicationFailure && err.cause.type === 'ForwardFailed');
      assert.equal(
        err.cause.message,
        'not delivered to leave-sync: leave-sync refused the event: HTTP 404: {"error":"no such hook"}'
      );
      assert.ok(err.cause.cause instanceof ActivityFailure);
      const root = err.cause.cause.cause;
      assert.ok(root instanceof ApplicationFailure && root.type === 'ForwardRejected' && root.nonRetryable);
      return true;
    });
    assert.equal(leave.for(webhookId).length, 1, 'a permanent failure is not retried');
    assert.equal((await t.client.workflow.getHandle(id).describe()).status.name, 'FAILED');

    const listed = await cli(t, 'forward', 'list', '--failed');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`failed\\s+${id}\\s+leave-sync`));
    assert.match(listed.stdout, /↳ not delivered to leave-sync: leave-sync refused the event: HTTP 404/);
    assert.ok(!listed.stdout.includes(forwardWorkflowId('feishu', eventId, 'audit')), 'delivered ones are not failed');

    leave.answer = () => ({ status: 202 });
    const resent = await cli(t, 'forward', 'resend', id, '--wait');
    assert.equal(resent.code, 0, resent.stderr);
    assert.match(resent.stdout, new RegExp(`re-sending ${id} as ${id}-resend-1`));
    assert.match(resent.stdout, new RegExp(`webhook-id ${webhookId} \\(unchanged`));
    assert.match(resent.stdout, /delivered: HTTP 202 on attempt 1/);
    assert.deepEqual(
      leave.for(webhookId).map((a) => [a.verified, a.status]),
      [
        [true, 404],
        [true, 202],
      ],
      'the same webhook-id on the re-send'
    );
    assert.deepEqual([...leave.accepted.entries()], [[webhookId, 1]]);

    const after = await cli(t, 'forward', 'list', '--failed');
    assert.equal(after.code, 0, after.stderr);
    assert.ok(!after.stdout.includes(id), after.stdout);
    const all = await cli(t, 'forward', 'list');
    assert.match(all.stdout, new RegExp(`completed\\s+${id}-resend-1\\s+leave-sync`));
    assert.match(all.stdout, new RegExp(`↳ re-sent as ${id}-resend-1`));

    const again = await cli(t, 'forward', 'resend', id);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`already re-sent as ${id}-resend-1`));
    const delivered = await cli(t, 'forward', 'resend', `${id}-resend-1`);
    assert.match(delivered.stderr, /was delivered \(HTTP 202/);
  });

  it('retries run out: the run fails with the receiver’s last answer, and forward list --failed says why', async () => {
    leave.answer = () => ({ status: 503, body: 'maintenance' });
    const before = leave.attempts.length;
    const input = {
      event: {
        kind: 'approval-status',
        platform: 'feishu' as const,
        eventId: `synthetic-${randomBytes(6).toString('hex')}`,
        eventType: 'approval_instance',
        approvalCode: LEAVE_CODE,
        instanceId: 'I-SYNTHETIC',
        status: 'APPROVED',
      },
      receivedAt: new Date().toISOString(),
      subscriber: 'leave-sync',
      url: leave.url,
      webhookId: webhookIdFor('feishu', 'synthetic', 'leave-sync'),
      retry: { ...t.config.forwarding.retry, retryForMs: 2500, maximumIntervalMs: 400 },
    };
    const { workflowId, outcome } = await startForward(t.client, input);
    assert.equal(outcome, 'started');
    assert.equal((await startForward(t.client, input)).outcome, 'duplicate');
    await assert.rejects(t.client.workflow.getHandle(workflowId).result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(
        err.cause?.message ?? '',
        /^not delivered to leave-sync: gave up after 2500ms of retries; last: leave-sync answered HTTP 503 \(attempt \d+\): maintenance$/
      );
      return true;
    });
    assert.ok(leave.attempts.length - before >= 3, 'retried several times');
    const listed = await listForwards(t.client, { failed: true });
    const row = listed.find((r) => r.workflowId === workflowId);
    assert.equal(row?.status, 'failed');
    assert.match(row?.detail ?? '', /gave up after 2500ms/);
  });

  it('retries run out before the deadline (the next back-off would pass it): the same reason, not the bare answer', async () => {
    // Attempt 1 at 0 s, attempt 2 at 1 s, the next due at 3 s > the 1.5 s budget: the server fails the activity at
    // once with the last answer and retry state TIMEOUT, no TimeoutFailure — it must still read "gave up after".
    leave.answer = () => ({ status: 503, body: 'maintenance' });
    const input = {
      event: {
        kind: 'approval-status',
        platform: 'feishu' as const,
        eventId: `synthetic-${randomBytes(6).toString('hex')}`,
        eventType: 'approval_instance',
        approvalCode: LEAVE_CODE,
        instanceId: 'I-SYNTHETIC-2',
        status: 'APPROVED',
      },
      receivedAt: new Date().toISOString(),
      subscriber: 'leave-sync',
      url: leave.url,
      webhookId: webhookIdFor('feishu', 'synthetic-2', 'leave-sync'),
      retry: {
        ...t.config.forwarding.retry,
        initialIntervalMs: 1000,
        backoffCoefficient: 2,
        maximumIntervalMs: 10_000,
        retryForMs: 1500,
      },
    };
    const { workflowId } = await startForward(t.client, input);
    await assert.rejects(t.client.workflow.getHandle(workflowId).result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(
        err.cause?.message ?? '',
        /^not delivered to leave-sync: gave up after 1500ms of retries; last: leave-sync answered HTTP 503 \(attempt \d+\): maintenance$/
      );
      return true;
    });
  });
});
