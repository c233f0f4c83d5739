import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DURATION_REJECTION,
  formatDuration,
  formatInstantUtc8,
  parseAccessDuration,
  parseDurationMs,
  parseInstant,
} from '../domain/duration';
import type { FormWidget } from '../domain/types';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** 2026-03-01T10:00:00+08:00: when the approval was approved. */
const APPROVED_AT = Date.parse('2026-03-01T10:00:00+08:00');
const FIELD = '有效期';

function formWith(type: string, value: unknown, extra: Partial<FormWidget> = {}): FormWidget[] {
  return [
    { id: 'widget_mac', name: 'MAC地址', type: 'textarea', value: 'a4:5e:60:c2:11:01' },
    { id: 'widget_duration', name: FIELD, type, value, ...extra },
  ];
}

function durationOf(type: string, value: unknown, extra: Partial<FormWidget> = {}) {
  return parseAccessDuration(formWith(type, value, extra), FIELD, APPROVED_AT);
}

describe('parseAccessDuration: permanent', () => {
  it('is permanent when no duration field is configured', () => {
    assert.deepEqual(parseAccessDuration(formWith('radioV2', '7天'), undefined, APPROVED_AT), { kind: 'permanent' });
  });

  it('is permanent when the form has no such widget', () => {
    assert.deepEqual(parseAccessDuration(formWith('radioV2', '7天'), '不存在', APPROVED_AT), { kind: 'permanent' });
  });

  it('is permanent when the answer is empty', () => {
    for (const value of ['', '   ', null, undefined, []]) {
      assert.deepEqual(durationOf('radioV2', value), { kind: 'permanent' }, JSON.stringify(value));
    }
  });

  for (const text of [
    '永久',
    '长期',
    '长期有效',
    '永久有效',
    '不限',
    '无期限',
    'permanent',
    'Permanent',
    'forever',
    'unlimited',
  ]) {
    it(`reads ${JSON.stringify(text)} as permanent`, () => {
      assert.deepEqual(durationOf('radioV2', text), { kind: 'permanent' });
    });
  }
});

describe('parseAccessDuration: relative durations', () => {
  const cases: [string, number][] = [
    ['1天', DAY],
    ['7天', 7 * DAY],
    ['30天', 30 * DAY],
    ['1 day', DAY],
    ['7 days', 7 * DAY],
    ['7 Days', 7 * DAY],
    ['2周', 14 * DAY],
    ['一周', 7 * DAY],
    ['两周', 14 * DAY],
    ['1个星期', 7 * DAY],
    ['3个月', 90 * DAY],
    ['半个月', 15 * DAY],
    ['1年', 365 * DAY],
    ['12小时', 12 * HOUR],
    ['十二小时', 12 * HOUR],
    ['半天', 12 * HOUR],
    ['90分钟', 90 * MINUTE],
    ['1h', HOUR],
    ['30d', 30 * DAY],
    ['2w', 14 * DAY],
    ['6mo', 180 * DAY],
    ['45 minutes', 45 * MINUTE],
    ['1.5天', 36 * HOUR],
    ['1天12小时', 36 * HOUR],
    ['１０天', 10 * DAY],
    ['有效期 7 天', 7 * DAY],
    ['7天（访客）', 7 * DAY],
    ['30天 (外包)', 30 * DAY],
    ['二十五天', 25 * DAY],
  ];
  for (const [text, ms] of cases) {
    it(`reads ${JSON.stringify(text)} as ${ms / HOUR} hours`, () => {
      assert.deepEqual(durationOf('radioV2', text), { kind: 'expires', expiresAtMs: APPROVED_AT + ms, label: text });
    });
  }

  it('accepts the same text from radio, radioV2 and input widgets', () => {
    for (const type of ['radio', 'radioV2', 'input', 'textarea']) {
      assert.deepEqual(durationOf(type, ' 7天 '), {
        kind: 'expires',
        expiresAtMs: APPROVED_AT + 7 * DAY,
        label: '7天',
      });
    }
  });

  it('falls back to the selected option text when the value is empty', () => {
    assert.deepEqual(durationOf('radioV2', '', { option: { key: 'opt_7', text: '7天' } }), {
      kind: 'expires',
      expiresAtMs: APPROVED_AT + 7 * DAY,
      label: '7天',
    });
  });

  it('finds the widget by id too', () => {
    assert.equal(parseAccessDuration(formWith('radio', '1天'), 'widget_duration', APPROVED_AT).kind, 'expires');
  });

  for (const text of ['banana', '7', '很久', '7天或30天', '1天1天', '12月1日']) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      const result = durationOf('radioV2', text);
      assert.equal(result.kind, 'invalid');
      assert.ok(result.kind === 'invalid' && /\/ /.test(result.reason));
    });
  }

  it('names the unrecognised text in the reason', () => {
    assert.deepEqual(durationOf('radioV2', 'banana'), {
      kind: 'invalid',
      reason: DURATION_REJECTION.unrecognised('banana'),
    });
  });

  it('rejects zero and absurdly long durations', () => {
    assert.deepEqual(durationOf('input', '0天'), { kind: 'invalid', reason: DURATION_REJECTION.notPositive });
    assert.deepEqual(durationOf('input', '200年'), { kind: 'invalid', reason: DURATION_REJECTION.tooLong });
  });

  it('adds exactly n units to the approval time, for any n', () => {
    const units: [string, number][] = [
      ['天', DAY],
      ['d', DAY],
      ['小时', HOUR],
      ['h', HOUR],
      ['分钟', MINUTE],
      ['周', 7 * DAY],
      ['个月', 30 * DAY],
    ];
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.constantFrom(...units), (n, [unit, size]) => {
        const result = durationOf('radioV2', `${n}${unit}`);
        assert.deepEqual(result, { kind: 'expires', expiresAtMs: APPROVED_AT + n * size, label: `${n}${unit}` });
      })
    );
  });

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (text) => {
        const result = durationOf('radioV2', text);
        if (result.kind === 'expires') assert.ok(result.expiresAtMs > APPROVED_AT);
      })
    );
  });
});

describe('parseAccessDuration: date widgets', () => {
  it('expires at the RFC 3339 instant', () => {
    assert.deepEqual(durationOf('date', '2026-12-01T00:00:00+08:00'), {
      kind: 'expires',
      expiresAtMs: Date.parse('2026-12-01T00:00:00+08:00'),
      label: '2026-12-01 00:00 (UTC+8)',
    });
    assert.deepEqual(durationOf('date', '2026-12-01T00:00:00Z'), {
      kind: 'expires',
      expiresAtMs: Date.parse('2026-12-01T00:00:00Z'),
      label: '2026-12-01 08:00 (UTC+8)',
    });
  });

  it('reads a date-only value as the end of that day in UTC+8', () => {
    const end = Date.parse('2026-12-01T23:59:59+08:00');
    for (const value of ['2026-12-01', '2026/12/01', '2026年12月1日', '２０２６－１２－０１']) {
      assert.deepEqual(
        durationOf('date', value),
        { kind: 'expires', expiresAtMs: end, label: '2026-12-01 23:59 (UTC+8)' },
        value
      );
    }
  });

  it('reads a date typed into a text field', () => {
    assert.deepEqual(durationOf('input', '2026-12-01 18:30'), {
      kind: 'expires',
      expiresAtMs: Date.parse('2026-12-01T18:30:00+08:00'),
      label: '2026-12-01 18:30 (UTC+8)',
    });
  });

  it('accepts epoch milliseconds and seconds', () => {
    const at = Date.parse('2026-06-01T00:00:00+08:00');
    assert.equal((durationOf('date', at) as { expiresAtMs: number }).expiresAtMs, at);
    assert.equal((durationOf('date', at / 1000) as { expiresAtMs: number }).expiresAtMs, at);
  });

  it('rejects a date in the past or at the approval instant', () => {
    assert.deepEqual(durationOf('date', '2025-12-01'), { kind: 'invalid', reason: DURATION_REJECTION.past });
    assert.deepEqual(durationOf('date', '2026-03-01T10:00:00+08:00'), {
      kind: 'invalid',
      reason: DURATION_REJECTION.past,
    });
  });

  it('rejects impossible dates', () => {
    for (const value of ['2026-02-30', '2026-13-01', '2026-12-01T25:00:00+08:00', 'next tuesday']) {
      assert.deepEqual(durationOf('date', value), { kind: 'invalid', reason: DURATION_REJECTION.badDate }, value);
    }
  });

  it('expires at the end of a date interval', () => {
    const value = { start: '2026-03-01T00:00:00+08:00', end: '2026-03-15T00:00:00+08:00', interval: 14 };
    assert.deepEqual(durationOf('dateInterval', value), {
      kind: 'expires',
      expiresAtMs: Date.parse('2026-03-15T00:00:00+08:00'),
      label: '2026-03-15 00:00 (UTC+8)',
    });
    assert.deepEqual(durationOf('dateInterval', { ...value, end: '2026-03-15' }), {
      kind: 'expires',
      expiresAtMs: Date.parse('2026-03-15T23:59:59+08:00'),
      label: '2026-03-15 23:59 (UTC+8)',
    });
  });

  it('rejects a date interval that has ended or has no end', () => {
    assert.deepEqual(durationOf('dateInterval', { start: '2026-01-01', end: '2026-02-01', interval: 31 }), {
      kind: 'invalid',
      reason: DURATION_REJECTION.past,
    });
    assert.deepEqual(durationOf('dateInterval', { start: '2026-01-01', end: '' }), {
      kind: 'invalid',
      reason: DURATION_REJECTION.badDate,
    });
  });

  it('reads back every instant it formats, to the minute', () => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) }), (ms) => {
        const shown = formatInstantUtc8(ms).replace(' (UTC+8)', '');
        assert.equal(parseInstant(shown), ms - (ms % MINUTE));
      })
    );
  });
});

describe('parseInstant', () => {
  it('honours zones and defaults to UTC+8', () => {
    assert.equal(parseInstant('2026-12-01T00:00:00+08:00'), Date.parse('2026-12-01T00:00:00+08:00'));
    assert.equal(parseInstant('2026-12-01T00:00:00-0530'), Date.parse('2026-12-01T00:00:00-05:30'));
    assert.equal(parseInstant('2026-12-01T00:00:00.250Z'), Date.parse('2026-12-01T00:00:00.250Z'));
    assert.equal(parseInstant('2026-12-01 09:00'), Date.parse('2026-12-01T09:00:00+08:00'));
    assert.equal(parseInstant('2028-02-29'), Date.parse('2028-02-29T23:59:59+08:00'));
  });

  it('rejects what is not a date', () => {
    for (const text of ['', '7天', '2027-02-29', '2026-00-10', '2026-12-01T12:60', 'tomorrow']) {
      assert.equal(parseInstant(text), undefined, text);
    }
  });
});

describe('parseDurationMs', () => {
  const cases: [string, number][] = [
    ['1d', DAY],
    ['12h', 12 * HOUR],
    ['30m', 30 * MINUTE],
    ['45s', 45_000],
    ['500ms', 500],
    ['1h30m', 90 * MINUTE],
    ['1d 12h', 36 * HOUR],
    ['1.5h', 90 * MINUTE],
    ['2 days', 2 * DAY],
    ['1500', 1500],
    ['0', 0],
    ['0s', 0],
    [' 10m ', 10 * MINUTE],
    ['1w', 7 * DAY],
  ];
  for (const [text, ms] of cases) {
    it(`reads ${JSON.stringify(text)} as ${ms} ms`, () => {
      assert.equal(parseDurationMs(text), ms);
    });
  }

  for (const text of ['', 'abc', '1x', '-5m', '10 m extra', 'h', '1d garbage']) {
    it(`throws a RangeError naming ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseDurationMs(text),
        (err: unknown) => err instanceof RangeError && err.message.includes(`"${text}"`)
      );
    });
  }
});

describe('formatDuration', () => {
  it('formats short, Chinese and English', () => {
    const ms = DAY + 2 * HOUR + 30 * MINUTE;
    assert.equal(formatDuration(ms), '1d2h30m');
    assert.equal(formatDuration(ms, 'zh'), '1天2小时30分钟');
    assert.equal(formatDuration(ms, 'en'), '1 day 2 hours 30 minutes');
    assert.equal(formatDuration(1500), '1s500ms');
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(0, 'zh'), '0秒');
    assert.equal(formatDuration(0, 'en'), '0 seconds');
    assert.equal(formatDuration(-HOUR), '-1h');
    assert.equal(formatDuration(30 * DAY, 'zh'), '30天');
  });

  it('round-trips through parseDurationMs', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 400 * DAY }), (ms) => {
        assert.equal(parseDurationMs(formatDuration(ms)), ms);
        assert.equal(parseDurationMs(formatDuration(ms, 'en')), ms);
        assert.equal(parseDurationMs(formatDuration(ms, 'zh')), ms);
      })
    );
  });
});
