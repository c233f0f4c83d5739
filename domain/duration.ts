/**
 * How long Wi-Fi access lasts, read from the approval form's duration field, plus the duration strings used in
 * configuration (REMINDER_LEAD=1d). Pure: no I/O, no clock — the approval time is passed in, since workflow code
 * imports this and must replay deterministically.
 */
import { findWidgets, toHalfWidth } from './mac';
import type { FormWidget } from './types';

export type AccessDuration =
  | { kind: 'permanent' }
  | {
      kind: 'expires';
      expiresAtMs: number;
      /** For messages: the option the requester chose ("7天"), or the end date in UTC+8 for date widgets. */
      label: string;
    }
  | { kind: 'invalid'; reason: string };

export const DURATION_REJECTION = {
  past: '有效期已过 / the expiry is in the past',
  notPositive: '有效期必须大于零 / the duration must be longer than zero',
  badDate: '日期格式不对 / unrecognised date',
  tooLong: '有效期超过 100 年 / the duration is longer than 100 years',
  unrecognised: (text: string) => `看不懂的有效期「${text}」/ unrecognised duration "${text}"`,
} as const;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Calendar units are fixed lengths: a month is 30 days, a year 365 (access periods, not calendar arithmetic). */
const UNIT_MS = {
  ms: 1,
  s: SECOND,
  m: MINUTE,
  h: HOUR,
  d: DAY,
  w: 7 * DAY,
  mo: 30 * DAY,
  y: 365 * DAY,
} as const;
type Unit = keyof typeof UNIT_MS;

/** Spellings per unit. Latin spellings must not run into further letters, so "5mo" is months, not minutes + "o". */
const UNIT_SPELLINGS: Record<Unit, string> = {
  ms: 'milliseconds?|millis|msecs?|ms|毫秒',
  s: 'seconds?|secs?|s|秒钟|秒',
  m: 'minutes?|mins?|m|分钟|分',
  h: 'hours?|hrs?|h|小时|钟头|时',
  d: 'days?|d|天|日',
  w: 'weeks?|wks?|w|周|星期|礼拜',
  mo: 'months?|mos?|月',
  y: 'years?|yrs?|y|年',
};
const UNITS = Object.keys(UNIT_SPELLINGS) as Unit[];

const NUMBER = String.raw`(\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百]+|半)`;
const QUANTITY = new RegExp(
  `${NUMBER}\\s*个?\\s*(?:${UNITS.map((u) => `(?<${u}>${UNIT_SPELLINGS[u]})`).join('|')})(?![a-z])`,
  'gi'
);

const PERMANENT_WORDS =
  /永久|长期|不限|无期限|无限期|不过期|permanent(?:ly)?|forever|unlimited|indefinite(?:ly)?|never\s*expires?|no\s*expiry/i;

interface Quantities {
  totalMs: number;
  units: Unit[];
  /** The text with every quantity cut out. */
  rest: string;
}

function findQuantities(text: string): Quantities {
  let totalMs = 0;
  const units: Unit[] = [];
  const rest = text.replace(QUANTITY, (...args: unknown[]) => {
    const amount = parseAmount(String(args[1]));
    const groups = args[args.length - 1] as Record<Unit, string | undefined>;
    const unit = UNITS.find((u) => groups[u] !== undefined) as Unit;
    totalMs += amount * UNIT_MS[unit];
    units.push(unit);
    return ' ';
  });
  return { totalMs, units, rest };
}

const CHINESE_DIGITS: Record<string, number> = {
  零: 0,
  〇: 0,
  一: 1,
  二: 2,
  两: 2,
  三: 3,
  四: 4,
  五: 5,
  六: 6,
  七: 7,
  八: 8,
  九: 9,
};

/** Arabic or Chinese numerals ("十二", "二十五", "一百零五", "半"). */
function parseAmount(text: string): number {
  if (/^\d/.test(text)) return Number(text);
  if (text === '半') return 0.5;
  let total = 0;
  let pending = 0;
  for (const ch of text) {
    if (ch === '十' || ch === '百') {
      total += (pending || 1) * (ch === '十' ? 10 : 100);
      pending = 0;
    } else {
      pending = CHINESE_DIGITS[ch] ?? 0;
    }
  }
  return total + pending;
}

/**
 * A configuration duration: "1d", "12h", "30m", "45s", "500ms", combinations ("1h30m", "1d 12h"), the long
 * spellings ("2 days") and bare numbers (milliseconds). Throws a RangeError naming the bad value, so start-up
 * validation can print it.
 */
export function parseDurationMs(text: string): number {
  const trimmed = toHalfWidth(text).trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const { totalMs, units, rest } = findQuantities(trimmed);
  if (units.length === 0 || rest.replace(/[\s,]+/g, '') !== '' || !Number.isFinite(totalMs)) {
    throw new RangeError(`invalid duration "${text}" (use e.g. 1d, 12h, 30m, 45s, 500ms)`);
  }
  return Math.round(totalMs);
}

const FORMAT_PARTS: readonly [number, { short: string; zh: string; en: string }][] = [
  [DAY, { short: 'd', zh: '天', en: 'day' }],
  [HOUR, { short: 'h', zh: '小时', en: 'hour' }],
  [MINUTE, { short: 'm', zh: '分钟', en: 'minute' }],
  [SECOND, { short: 's', zh: '秒', en: 'second' }],
  [1, { short: 'ms', zh: '毫秒', en: 'millisecond' }],
];

/**
 * A duration for people: 'short' ("1d2h30m", which parseDurationMs reads back), 'zh' ("1天2小时30分钟") or 'en'
 * ("1 day 2 hours 30 minutes"). Rounded to whole milliseconds.
 */
export function formatDuration(ms: number, style: 'short' | 'zh' | 'en' = 'short'): string {
  let remaining = Math.round(Math.abs(ms));
  const sign = ms < 0 && remaining > 0 ? '-' : '';
  const parts: string[] = [];
  for (const [size, names] of FORMAT_PARTS) {
    const count = Math.floor(remaining / size);
    remaining -= count * size;
    if (count === 0) continue;
    if (style === 'short') parts.push(`${count}${names.short}`);
    else if (style === 'zh') parts.push(`${count}${names.zh}`);
    else parts.push(`${count} ${names.en}${count === 1 ? '' : 's'}`);
  }
  if (parts.length === 0) return style === 'short' ? '0s' : style === 'zh' ? '0秒' : '0 seconds';
  return sign + parts.join(style === 'en' ? ' ' : '');
}

const UTC8_OFFSET_MS = 8 * HOUR;
/** Longer than any sensible grant, and keeps instants far inside the range Date and timers can represent. */
const MAX_ACCESS_MS = 100 * UNIT_MS.y;

/**
 * An instant from the form: RFC 3339 ("2026-12-01T00:00:00+08:00"), or the looser ways people write dates
 * ("2026/12/01", "2026年12月1日", "2026-12-01 18:00"). Without a zone the time is China time (UTC+8); without a time
 * it is the end of that day, 23:59:59 UTC+8, so "until 1 December" includes 1 December. Undefined if not a date.
 */
export function parseInstant(text: string): number | undefined {
  const m =
    /^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:(?:T|\s+)(\d{1,2})[:时](\d{2})(?:[:分](\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i.exec(
      toHalfWidth(text).trim()
    );
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const dateOnly = m[4] === undefined;
  const [hour, minute, second] = dateOnly ? [23, 59, 59] : [Number(m[4]), Number(m[5]), Number(m[6] ?? 0)];
  const millis = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  const wallClockMs = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  return wallClockMs - zoneOffsetMs(m[8]);
}

function zoneOffsetMs(zone: string | undefined): number {
  if (zone === undefined) return UTC8_OFFSET_MS;
  if (zone.toUpperCase() === 'Z') return 0;
  const digits = zone.replace(':', '');
  const sign = digits.startsWith('-') ? -1 : 1;
  return sign * (Number(digits.slice(1, 3)) * HOUR + Number(digits.slice(3, 5)) * MINUTE);
}

/** "2026-12-01 23:59 (UTC+8)": how an expiry instant is shown to requesters, who are in China time. */
export function formatInstantUtc8(ms: number): string {
  const iso = new Date(ms + UTC8_OFFSET_MS).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} (UTC+8)`;
}

/**
 * When the access granted by this approval ends. `field` is the configured duration widget (name or id); no field,
 * no widget or an empty answer means permanent access. Radio / text answers are read liberally ("7天", "2周",
 * "3个月", "12小时", "1 day", "30d", "永久", "permanent"); date widgets give the instant; date-interval widgets their
 * end. An expiry not after `approvedAtMs` is invalid: granting already-expired access would be meaningless.
 */
export function parseAccessDuration(
  form: FormWidget[],
  field: string | undefined,
  approvedAtMs: number
): AccessDuration {
  if (field === undefined) return { kind: 'permanent' };
  const widget = findWidgets(form, field)[0];
  if (widget === undefined) return { kind: 'permanent' };

  const value = widgetAnswer(widget);
  if (value === undefined) return { kind: 'permanent' };
  if (typeof value === 'number') return expiresAt(epochMs(value), approvedAtMs);
  if (typeof value === 'object') {
    const end = value.end;
    if (typeof end === 'number') return expiresAt(epochMs(end), approvedAtMs);
    if (typeof end !== 'string' || end.trim() === '') return { kind: 'invalid', reason: DURATION_REJECTION.badDate };
    return expiresAt(parseInstant(end), approvedAtMs);
  }

  const text = value.trim();
  if (widget.type === 'date' || /^\d{4}\s*[-/.年]/.test(toHalfWidth(text))) {
    return expiresAt(parseInstant(text), approvedAtMs);
  }
  return relativeDuration(text, approvedAtMs);
}

/** The widget's answer: a non-empty string, an epoch number, or a date interval; undefined when unanswered. */
function widgetAnswer(widget: FormWidget): string | number | { end?: unknown } | undefined {
  const { value } = widget;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '') return value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && 'end' in value) return value;
  // Feishu's radioV2 also carries the chosen option as { key, text }; fall back to its text.
  const option = widget.option as { text?: unknown } | undefined;
  if (typeof option === 'object' && option !== null && typeof option.text === 'string' && option.text.trim() !== '') {
    return option.text;
  }
  return undefined;
}

/** Epoch numbers from date widgets: milliseconds, or seconds when too small to be a plausible ms timestamp. */
function epochMs(value: number): number {
  return value < 1e11 ? value * 1000 : value;
}

function expiresAt(ms: number | undefined, approvedAtMs: number): AccessDuration {
  if (ms === undefined || !Number.isFinite(ms)) return { kind: 'invalid', reason: DURATION_REJECTION.badDate };
  if (ms <= approvedAtMs) return { kind: 'invalid', reason: DURATION_REJECTION.past };
  if (ms - approvedAtMs > MAX_ACCESS_MS) return { kind: 'invalid', reason: DURATION_REJECTION.tooLong };
  return { kind: 'expires', expiresAtMs: ms, label: formatInstantUtc8(ms) };
}

function relativeDuration(text: string, approvedAtMs: number): AccessDuration {
  const ascii = toHalfWidth(text);
  // Notes in brackets ("7天（访客）") explain the option; they are not part of the duration.
  const core = ascii.replace(/\([^)]*\)|\[[^\]]*\]|【[^】]*】/g, ' ').trim() || ascii;
  if (PERMANENT_WORDS.test(core)) return { kind: 'permanent' };
  // "12月1日" is a date without a year, not 12 months + 1 day.
  if (/\d\s*月\s*\d{1,2}\s*[日号]/.test(core)) return { kind: 'invalid', reason: DURATION_REJECTION.badDate };
  const { totalMs, units } = findQuantities(core);
  // "7天或30天" names two choices, not a total; one of each unit ("1天12小时") is a sum.
  if (units.length === 0 || new Set(units).size !== units.length || !Number.isFinite(totalMs)) {
    return { kind: 'invalid', reason: DURATION_REJECTION.unrecognised(text) };
  }
  if (totalMs <= 0) return { kind: 'invalid', reason: DURATION_REJECTION.notPositive };
  if (totalMs > MAX_ACCESS_MS) return { kind: 'invalid', reason: DURATION_REJECTION.tooLong };
  return { kind: 'expires', expiresAtMs: approvedAtMs + Math.round(totalMs), label: text };
}
