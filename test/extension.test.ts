import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { parseExtendUntil } from '../domain/extension';
import { cancelSignal, extendUpdate, statusQuery, workflowIdFor } from '../workflows/definitions';
import type { NacWhitelistResult } from '../workflows/nac-whitelist.workflow';
import { startTestStack, until, type TestStack } from './support/harness';

describe('parseExtendUntil', () => {
  const now = Date.parse('2026-11-21T02:00:00Z');
  it('reads dates (China time, end of day), date-times, durations from now and "permanent"', () => {
    assert.deepEqual(parseExtendUntil('2026-12-31', now), { expiresAt: '2026-12-31T15:59:59.000Z' });
    assert.deepEqual(parseExtendUntil('2026-12-31T18:00:00Z', now), { expiresAt: '2026-12-31T18:00:00.000Z' });
    assert.deepEqual(parseExtendUntil('30d', now), { expiresAt: '2026-12-21T02:00:00.000Z' });
    assert.deepEqual(parseExtendUntil('7天', now), { expiresAt: '2026-11-28T02:00:00.000Z' });
    assert.deepEqual(parseExtendUntil('permanent', now), { expiresAt: null });
    assert.deepEqual(parseExtendUntil('永久', now), { expiresAt: null });
  });
  it('refuses what it cannot read, naming the input', () => {
    assert.throws(() => parseExtendUntil('next tuesday', now), /"next tuesday" is neither a date/);
    assert.throws(() => parseExtendUntil('2026-02-30', now), /neither a date/);
  });
});

/** Extending a live grant (validated update) and a later approval of the same device (hand-over), on the real server. */
describe('grant extension and overlapping grants (real Temporal dev server)', () => {
  let t: TestStack;
  const adminToken = 'test-admin-token-extension-0001';
  before(async () => {
    t = await startTestStack({ env: { REMINDER_LEAD: '1s', ADMIN_TOKEN: adminToken } });
  });
  after(async () => {
    await t?.close();
  });
  const result = (id: string) => t.client.workflow.getHandle(id).result() as Promise<NacWhitelistResult>;
  const cardsFor = (instance: string) =>
    t
      .feishuSim!.messages()
      .filter((m) => JSON.stringify(m.content).includes(instance))
      .map((m) => JSON.stringify(m.content));
  const extend = (id: string, body: unknown) =>
    fetch(`${t.ingressUrl}/api/approvals/${id}/extend`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('the validator refuses bad extensions before they reach history; a good one moves expiry and reminder', async () => {
    const mac = '00:1B:44:66:00:01';
    const instance = t.createApproval(mac, { duration: '1天' });
    const id = workflowIdFor('feishu', instance);
    const active = await t.waitForPhase(id, ['active']);
    const handle = t.client.workflow.getHandle(id);

    const refused = async (expiresAt: string | null, why: RegExp) => {
      await assert.rejects(
        handle.executeUpdate(extendUpdate, { args: [{ expiresAt, by: 'test' }] }),
        (err: unknown) => err instanceof WorkflowUpdateFailedError && why.test(String((err.cause as Error)?.message))
      );
    };
    await refused('not a date', /ISO-8601/);
    await refused('2026-12-01T00:00:00', /time zone/);
    await refused(new Date(Date.now() - 60_000).toISOString(), /in the past/);
    await refused(new Date(Date.parse(active.expiresAt!) - 3_600_000).toISOString(), /later than the current expiry/);
    // Refused updates leave no trace in history.
    const history = await handle.fetchHistory();
    assert.equal(
      history.events!.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length,
      0,
      'no update was accepted'
    );

    // Over HTTP: a wrong body is a 400, a refused extension a 409, an unknown grant a 404.
    assert.equal((await extend(id, { until: 'someday' })).status, 400);
    assert.equal((await extend(id, {})).status, 400);
    assert.equal((await extend(id, { until: '1h' })).status, 409);
    assert.equal((await extend('feishu-NO-SUCH-GRANT', { until: '30d' })).status, 404);

    const ok = await extend(id, { until: '30d', reason: 'project extended', by: 'it-ops' });
    assert.equal(ok.status, 200);
    const body = (await ok.json()) as { status: { expiresAt: string; phase: string } };
    assert.equal(body.status.phase, 'active');
    assert.ok(Date.parse(body.status.expiresAt) > Date.parse(active.expiresAt!) + 28 * 86_400_000);
    assert.equal((await handle.query(statusQuery)).expiresAt, body.status.expiresAt);
    const desc = await handle.describe();
    const sa = desc.typedSearchAttributes.getAll().find((p) => p.key.name === 'GrantExpiresAt');
    assert.equal((sa?.value as Date).toISOString(), body.status.expiresAt, 'search attribute follows the expiry');
    const cards = cardsFor(instance);
    assert.equal(cards.length, 2, 'granted, extended');
    assert.match(cards[1]!, /access extended/);
    assert.match(cards[1]!, /project extended/);
    const comments = t.feishuSim!.comments().filter((c) => JSON.stringify(c).includes(instance));
    assert.ok(comments.some((c) => /access extended/.test(JSON.stringify(c))));

    // Permanent, then nothing more to extend.
    const perm = await handle.executeUpdate(extendUpdate, { args: [{ expiresAt: null, by: 'test' }] });
    assert.equal(perm.expiresAt, undefined);
    await refused(null, /already permanent/);
    await handle.signal(cancelSignal, { reason: 'test over' });
    assert.equal((await result(id)).outcome, 'revoked');
    assert.equal(await t.iseEndpoint(mac), null);
  });

  it('an extension keeps a short grant alive past its first expiry, then it expires at the new time', async () => {
    const mac = '00:1B:44:66:00:02';
    const instance = t.createApproval(mac, { duration: '3秒' });
    const id = workflowIdFor('feishu', instance);
    const active = await t.waitForPhase(id, ['active']);
    const newExpiry = new Date(Date.parse(active.expiresAt!) + 4_000).toISOString();
    const s = await t.client.workflow
      .getHandle(id)
      .executeUpdate(extendUpdate, { args: [{ expiresAt: newExpiry, by: 'test' }] });
    assert.equal(s.expiresAt, newExpiry);
    // Past the original expiry the device is still whitelisted…
    await until('the original expiry to pass', () =>
      Date.now() > Date.parse(active.expiresAt!) + 500 ? true : undefined
    );
    assert.equal((await t.client.workflow.getHandle(id).query(statusQuery)).phase, 'active');
    assert.ok(await t.iseEndpoint(mac));
    // …and it ends at the new one, with the reminder sent once per expiry.
    const r = await result(id);
    assert.equal(r.outcome, 'expired');
    assert.equal(r.expiresAt, newExpiry);
    assert.equal(await t.iseEndpoint(mac), null);
    const cards = cardsFor(instance);
    assert.match(cards[0]!, /access granted/);
    assert.match(cards.at(-1)!, /expired/);
    assert.ok(cards.some((c) => /access extended/.test(c)));
  });

  it('a later approval of the same device takes over; the device returns to its pre-approval state at the end', async () => {
    const mac = '00:1B:44:66:00:03';
    t.nacSim!.store.seed({
      mac,
      group: 'Profiled',
      description: 'laptop profiled by ISE',
      staticGroupAssignment: false,
    } as never);
    const before = await t.iseEndpoint(mac);
    const first = t.createApproval(mac, { duration: '4秒' });
    const firstId = workflowIdFor('feishu', first);
    await t.waitForPhase(firstId, ['active']);
    const second = t.createApproval(mac, { duration: '1天' });
    const secondId = workflowIdFor('feishu', second);
    await t.waitForPhase(secondId, ['active']);
    assert.match(String((await t.iseEndpoint(mac))!.description), new RegExp(`grant=${secondId}`));

    // The first grant expires: the device stays whitelisted under the second, which now holds the original prior.
    const r1 = await result(firstId);
    assert.equal(r1.outcome, 'expired');
    assert.equal(r1.macs[0]!.state, 'handed-over');
    assert.match(r1.macs[0]!.detail!, new RegExp(secondId));
    assert.match(String((await t.iseEndpoint(mac))!.description), new RegExp(`grant=${secondId}`));
    assert.match(cardsFor(first).at(-1)!, /still granted by a later approval/);

    // The second ends: exactly the pre-approval endpoint, not the first grant's tag.
    await t.client.workflow.getHandle(secondId).signal(cancelSignal, { reason: 'test over' });
    const r2 = await result(secondId);
    assert.equal(r2.macs[0]!.state, 'restored');
    assert.deepEqual(await t.iseEndpoint(mac), before);
  });
});
