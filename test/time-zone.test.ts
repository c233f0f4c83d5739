import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createApprovalActivities } from '../activities/approval';
import { ConfigError, loadConfig, SANDBOX_ROUTES_FILE } from '../config/config';
import { canonicalTimeZone, hostTimeZone } from '../domain/time-zone';
import type { ApprovalInstance, RequesterMessage } from '../domain/types';
import type { ApprovalPlatform } from '../platforms/platform';
import type { MacStatus } from '../workflows/definitions';
import {
  auditComment,
  formatInstant,
  grantedMessage,
  localiseMessage,
  localiseTimes,
  reminderMessage,
} from '../workflows/messages';

/**
 * APPROVAL_PLUS_TIMEZONE: times in messages and audit comments are shown in the configured zone with their offset,
 * on every platform (the approval activities format them at delivery; the workflow keeps UTC instants).
 */
const AT = Date.parse('2026-12-08T10:00:00.000Z');
const ctx = (expiresAt?: string) => ({
  grantId: 'feishu-I1',
  instanceId: 'I1',
  invalid: [],
  randomised: [],
  expiresAt,
});
const granted = [{ mac: 'AA:BB:CC:DD:EE:01', state: 'granted' }] as unknown as MacStatus[];

describe('APPROVAL_PLUS_TIMEZONE', () => {
  it('formats an instant with its UTC offset in the zone', () => {
    assert.equal(formatInstant(AT, 'Asia/Shanghai'), '2026-12-08 18:00 (UTC+08:00)');
    assert.equal(formatInstant(AT, 'UTC'), '2026-12-08 10:00 (UTC+00:00)');
    assert.equal(formatInstant(AT, 'Asia/Kolkata'), '2026-12-08 15:30 (UTC+05:30)');
    assert.equal(formatInstant(AT, 'America/New_York'), '2026-12-08 05:00 (UTC-05:00)');
    // Daylight saving follows the zone's rules for that instant.
    assert.equal(formatInstant(Date.parse('2026-07-01T12:00:00Z'), 'Europe/Berlin'), '2026-07-01 14:00 (UTC+02:00)');
    assert.equal(formatInstant(Date.parse('2026-12-31T23:30:00Z'), 'Asia/Tokyo'), '2027-01-01 08:30 (UTC+09:00)');
  });

  it('localises the ISO instants of messages and comments, but not text quoted from the form', () => {
    const message = localiseMessage(grantedMessage(ctx('2026-12-08T10:00:00.000Z'), granted), 'Asia/Shanghai');
    assert.ok(message.lines.includes('有效期至 / valid until: 2026-12-08 18:00 (UTC+08:00)'), message.lines.join('\n'));
    assert.equal(message.idempotencyKey, 'feishu-I1:granted', 'the dedupe key is untouched');
    const reminder = reminderMessage(ctx('2026-12-08T10:00:00.000Z'), granted);
    assert.equal(localiseMessage(reminder, 'UTC').idempotencyKey, reminder.idempotencyKey);
    assert.equal(
      localiseTimes(auditComment('Wi‑Fi access granted', granted, 'until 2026-12-08T10:00:00.000Z'), 'Asia/Shanghai'),
      '[ApprovalPlus] Wi‑Fi access granted: AA:BB:CC:DD:EE:01=granted (until 2026-12-08 18:00 (UTC+08:00))'
    );
    const typed = grantedMessage(
      { ...ctx(), invalid: [{ input: '2026-12-08T10:00:00.000Z', reason: 'not a MAC' }] },
      granted
    );
    assert.ok(localiseMessage(typed, 'Asia/Shanghai').lines.includes('• “2026-12-08T10:00:00.000Z”: not a MAC'));
  });

  it('messages are plain text: no backticks around form input', () => {
    const m = grantedMessage({ ...ctx(), invalid: [{ input: 'zz:zz', reason: 'bad' }] }, granted);
    assert.ok(m.lines.every((l) => !l.includes('`')));
    assert.ok(m.lines.includes('• “zz:zz”: bad'));
  });

  it('is validated at start-up: a bad value stops with one line naming it; default is the host zone', () => {
    const base = { SANDBOX: 'true', APPROVAL_PLUS_CONFIG: SANDBOX_ROUTES_FILE };
    assert.equal(loadConfig(base).timeZone, hostTimeZone());
    assert.equal(loadConfig({ ...base, APPROVAL_PLUS_TIMEZONE: 'asia/shanghai' }).timeZone, 'Asia/Shanghai');
    assert.throws(
      () => loadConfig({ ...base, APPROVAL_PLUS_TIMEZONE: 'Mars/Olympus_Mons' }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message ===
          'invalid APPROVAL_PLUS_TIMEZONE: must be an IANA time zone name like Asia/Shanghai (got "Mars/Olympus_Mons")'
    );
    assert.equal(canonicalTimeZone('+08:00'), undefined);
  });

  it('the approval activities deliver messages and comments in the configured zone, to any platform', async () => {
    const sent: RequesterMessage[] = [];
    const comments: string[] = [];
    const platform: ApprovalPlatform = {
      name: 'wecom',
      getInstance: () => Promise.resolve({} as ApprovalInstance),
      notifyRequester: (_to, message) => {
        sent.push(message);
        return Promise.resolve({ messageId: 'm1' });
      },
      commentOnInstance: (_instance, text) => {
        comments.push(text);
        return Promise.resolve();
      },
    };
    const activities = createApprovalActivities({ platforms: { wecom: platform }, timeZone: 'Asia/Shanghai' });
    await activities.notifyRequester('wecom', 'u1', grantedMessage(ctx('2026-12-08T10:00:00.000Z'), granted));
    await activities.commentOnInstance('wecom', 'I1', 'u1', 'granted (until 2026-12-08T10:00:00.000Z)', 'k');
    assert.ok(sent[0]!.lines.includes('有效期至 / valid until: 2026-12-08 18:00 (UTC+08:00)'));
    assert.deepEqual(comments, ['granted (until 2026-12-08 18:00 (UTC+08:00))']);
  });
});
