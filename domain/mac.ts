/**
 * MAC addresses as requesters type them into an approval form: normalising one address, and pulling every address
 * out of free text. Pure (no I/O, no Node built-ins, no clock): workflow code imports it.
 */
import type { FormWidget } from './types';

export interface ParsedMac {
  /** 12 lower-case hex digits: the key everything else (NAC, dedupe, workflow state) uses. */
  mac: string;
  /** AA:BB:CC:DD:EE:FF, for messages. */
  display: string;
  /** The text the requester typed for this MAC (after full-width → ASCII). */
  input: string;
  /** Locally administered: a per-network "private" address the phone may change. */
  randomised: boolean;
}

export interface MacParseResult {
  /** Unique, in first-seen order; includes randomised ones. */
  valid: ParsedMac[];
  invalid: { input: string; reason: string }[];
  /** Normalised MACs that appeared more than once. */
  duplicates: string[];
}

export type MacStyle = 'colon-upper' | 'colon-lower' | 'dash-upper' | 'bare-lower' | 'cisco-dot';

export type NormaliseMacResult = { ok: true; mac: string } | { ok: false; reason: string };

/** Requester-facing reasons: Chinese first (the requester's language), English for everyone else. */
export const MAC_REJECTION = {
  notMac: '不是有效的 MAC 地址 / not a MAC address',
  nonHex: '含有非十六进制字符 / contains non-hex characters',
  mixedSeparators: '分隔符不一致 / mixed separators',
  wrongLength: '位数不对，应为 12 位十六进制 / wrong length, need 12 hex digits',
  badGrouping: '分组不对 / hex digits grouped wrongly',
  allZero: '全零地址 / all-zero address',
  broadcast: '广播地址 / broadcast address',
  multicast: '组播地址不能接入 / multicast address',
} as const;

const MAC_SEPARATORS = /[:.-]/;

/**
 * Full-width forms (U+FF01–U+FF5E) to ASCII, the ideographic space to a space, and the Unicode hyphens an IME or a
 * word processor substitutes to '-'. The ideographic full stop '。' is left alone: it ends a sentence, so it is a
 * separator between MACs, never the dot of aabb.ccdd.eeff.
 */
export function toHalfWidth(text: string): string {
  return text.replace(/[\uFF01-\uFF5E\u3000\u2010\u2011\u2212]/g, (ch) => {
    const code = ch.charCodeAt(0);
    if (code === 0x3000) return ' ';
    if (code === 0x2010 || code === 0x2011 || code === 0x2212) return '-';
    return String.fromCharCode(code - 0xfee0);
  });
}

/**
 * One MAC in any common notation → 12 lower-case hex digits. Accepted groupings, with a single kind of separator
 * (':', '-' or '.'): 6 groups of 1–2 digits (aa:bb:.., macOS also drops leading zeros: 0:1c:42:0:0:8), 3 groups of
 * 4 (Cisco aabb.ccdd.eeff, Huawei/H3C aabb-ccdd-eeff), 2 groups of 6 (HP aabbcc-ddeeff), or 12 bare digits.
 * Addresses that can never identify one device (all-zero, broadcast, multicast) are rejected.
 */
export function normaliseMac(token: string): NormaliseMacResult {
  const text = toHalfWidth(token).replace(/[\s\u200B-\u200D\uFEFF]+/g, '');
  if (text === '') return { ok: false, reason: MAC_REJECTION.notMac };
  if (/[^0-9a-f:.-]/i.test(text)) {
    return { ok: false, reason: /^[0-9a-z:.-]+$/i.test(text) ? MAC_REJECTION.nonHex : MAC_REJECTION.notMac };
  }

  const separators = new Set(text.replace(/[0-9a-f]/gi, ''));
  if (separators.size > 1) return { ok: false, reason: MAC_REJECTION.mixedSeparators };
  const hexDigits = text.replace(/[:.-]/g, '').toLowerCase();

  let mac: string;
  if (separators.size === 0) {
    if (hexDigits.length !== 12) return { ok: false, reason: MAC_REJECTION.wrongLength };
    mac = hexDigits;
  } else {
    const [separator = ':'] = separators;
    const groups = text.toLowerCase().split(separator);
    if (groups.some((g) => g === '')) return { ok: false, reason: MAC_REJECTION.notMac };
    const sixOctets = groups.length === 6 && groups.every((g) => g.length <= 2);
    const evenGroups =
      (groups.length === 3 || groups.length === 2) && groups.every((g) => g.length === 12 / groups.length);
    if (sixOctets) mac = groups.map((g) => g.padStart(2, '0')).join('');
    else if (evenGroups) mac = hexDigits;
    else return { ok: false, reason: hexDigits.length === 12 ? MAC_REJECTION.badGrouping : MAC_REJECTION.wrongLength };
  }

  if (mac === '000000000000') return { ok: false, reason: MAC_REJECTION.allZero };
  if (mac === 'ffffffffffff') return { ok: false, reason: MAC_REJECTION.broadcast };
  if (firstOctet(mac) & 0x01) return { ok: false, reason: MAC_REJECTION.multicast };
  return { ok: true, mac };
}

function firstOctet(mac: string): number {
  return parseInt(mac.slice(0, 2), 16);
}

/** Locally administered bit (0x02 of the first octet): phones' private / randomised Wi-Fi addresses set it. */
export function isRandomised(mac: string): boolean {
  return (firstOctet(mac) & 0x02) !== 0;
}

/** Render a normalised MAC (12 hex digits, any case) in the notation a NAC or a message wants. */
export function formatMac(mac: string, style: MacStyle): string {
  const lower = mac.toLowerCase();
  const octets = lower.match(/../g) ?? [];
  switch (style) {
    case 'colon-upper':
      return octets.join(':').toUpperCase();
    case 'colon-lower':
      return octets.join(':');
    case 'dash-upper':
      return octets.join('-').toUpperCase();
    case 'bare-lower':
      return lower;
    case 'cisco-dot':
      return (lower.match(/.{4}/g) ?? []).join('.');
  }
}

/**
 * Every MAC in a free-text field. The text is converted to ASCII, then cut into runs of letters, digits and the MAC
 * separators ':', '.', '-'; everything else (whitespace, commas, 、，；|/, Chinese words, '。') separates runs.
 * Leading/trailing separators are trimmed off a run ("MAC地址：aa:…", "…ee:ff."). A run that normalises is valid;
 * failing that, label words glued on with a separator ("MAC:aa:bb:…", "iphone-aa-bb-…") are dropped from its ends
 * and the rest tried again. A run that still fails is reported as invalid only if it looks like an attempt at a MAC:
 * at least 12 hex digits, or separators with at least 8 hex digits in groups of at most 6 characters (a truncated
 * aa:bb:cc:dd, a typo aa:bb:cc:dd:ee:fg). Anything else — words that happen to be hex like "de" or "cafe", times
 * like 12:30, 11-digit phone numbers — is ordinary prose and ignored.
 */
export function parseMacList(text: string): MacParseResult {
  const result: MacParseResult = { valid: [], invalid: [], duplicates: [] };
  const seenValid = new Set<string>();
  const seenInvalid = new Set<string>();
  const duplicates = new Set<string>();

  for (const run of toHalfWidth(text).match(/[0-9a-z:.-]+/gi) ?? []) {
    const input = run.replace(/^[:.-]+|[:.-]+$/g, '');
    if (input === '') continue;
    const parsed = normaliseRun(input);
    if (parsed.ok) {
      if (seenValid.has(parsed.mac)) {
        duplicates.add(parsed.mac);
        continue;
      }
      seenValid.add(parsed.mac);
      result.valid.push({
        mac: parsed.mac,
        display: formatMac(parsed.mac, 'colon-upper'),
        input: parsed.input,
        randomised: isRandomised(parsed.mac),
      });
    } else if (looksLikeMacAttempt(input) && !seenInvalid.has(input)) {
      seenInvalid.add(input);
      result.invalid.push({ input, reason: parsed.reason });
    }
  }
  result.duplicates = [...duplicates];
  return result;
}

function normaliseRun(run: string): { ok: true; mac: string; input: string } | { ok: false; reason: string } {
  const whole = normaliseMac(run);
  if (whole.ok) return { ...whole, input: run };
  const withoutLabels = stripLabelGroups(run);
  if (withoutLabels !== run && withoutLabels !== '') {
    const inner = normaliseMac(withoutLabels);
    if (inner.ok) return { ...inner, input: withoutLabels };
  }
  return whole;
}

/** Drop groups containing a non-hex letter (a label such as "MAC", "iphone") from both ends of a run. */
function stripLabelGroups(run: string): string {
  const parts = run.split(/([:.-]+)/); // groups at even indexes, separators at odd ones
  const isLabel = (group: string | undefined) => group !== undefined && /[g-z]/i.test(group);
  let start = 0;
  let end = parts.length - 1;
  while (start <= end && isLabel(parts[start])) start += 2;
  while (end >= start && isLabel(parts[end])) end -= 2;
  return start > end ? '' : parts.slice(start, end + 1).join('');
}

function looksLikeMacAttempt(input: string): boolean {
  const hexCount = (input.match(/[0-9a-f]/gi) ?? []).length;
  if (hexCount >= 12) return true;
  if (!MAC_SEPARATORS.test(input) || hexCount < 8) return false;
  return input.split(/[:.-]+/).every((group) => group.length <= 6);
}

/**
 * The texts of the named form fields. A field is a widget name or id; it may be a top-level widget (input,
 * textarea, …) or a column of a detail table (`fieldList`), in which case every row's cell is collected. A field
 * that matches no widget anywhere is reported in `missing` so the caller can tell a misconfigured route apart from
 * an empty answer.
 */
export function extractFieldTexts(form: FormWidget[], fields: string[]): { texts: string[]; missing: string[] } {
  const texts: string[] = [];
  const missing: string[] = [];
  for (const field of fields) {
    const matches = findWidgets(form, field);
    if (matches.length === 0) missing.push(field);
    for (const widget of matches) {
      const text = widgetText(widget.value);
      if (text !== undefined && text.trim() !== '') texts.push(text);
    }
  }
  return { texts, missing };
}

/** A widget answers to its name, its id, or the custom id an admin set in the console's developer mode. */
function widgetIs(widget: FormWidget, field: string): boolean {
  return widget.name === field || widget.id === field || (widget as { custom_id?: unknown }).custom_id === field;
}

/** Widgets named `field` (by name, id or custom_id), in form order, looking inside detail-table rows too. */
export function findWidgets(form: readonly FormWidget[], field: string): FormWidget[] {
  const found: FormWidget[] = [];
  const visit = (widgets: readonly unknown[]) => {
    for (const widget of widgets) {
      if (!isWidget(widget)) continue;
      if (widgetIs(widget, field)) found.push(widget);
      else if (Array.isArray(widget.value)) {
        // A detail table: value is an array of rows, each an array of cell widgets.
        for (const row of widget.value) if (Array.isArray(row)) visit(row);
      }
    }
  };
  visit(form);
  return found;
}

/** Loose on purpose: an unanswered widget may come without `value`, and still counts as present. */
function isWidget(value: unknown): value is FormWidget {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { name, id } = value as { name?: unknown; id?: unknown };
  return typeof name === 'string' || typeof id === 'string';
}

function widgetText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  // A whole detail table or a multi-value widget addressed by its own name: every string inside it.
  if (Array.isArray(value)) {
    const parts = value.map((item) => (isWidget(item) ? widgetText(item.value) : widgetText(item)));
    const joined = parts.filter((p): p is string => p !== undefined && p.trim() !== '').join('\n');
    return joined === '' ? undefined : joined;
  }
  return undefined;
}

// ---- Feishu approval definitions (GET /open-apis/approval/v4/approvals/:approval_code, `form`) -------------------

/**
 * A definition widget's columns when it is a detail table: the definition read back lists them in `children` (doc:
 * 审批定义表单控件参数, the 加班 example), the create-definition format in `value` (same doc, 明细/表格); both are read.
 */
function definitionColumns(widget: Record<string, unknown>): FormWidget[] {
  const columns = Array.isArray(widget.children) ? widget.children : Array.isArray(widget.value) ? widget.value : [];
  return columns.filter(isWidget);
}

/** Whether the definition has `field` (name, id or custom_id) as a widget or as a detail-table column. */
export function definitionHasField(definition: readonly FormWidget[], field: string): boolean {
  return definition.some(
    (w) =>
      widgetIs(w, field) || definitionColumns(w as unknown as Record<string, unknown>).some((c) => widgetIs(c, field))
  );
}

/** "申请事由, MAC地址, 设备明细 [设备, MAC]": the definition's widget names, for a message naming what is there. */
export function describeDefinition(definition: readonly FormWidget[]): string {
  return definition
    .map((w) => {
      const columns = definitionColumns(w as unknown as Record<string, unknown>);
      const name = w.name || w.id;
      return columns.length ? `${name} [${columns.map((c) => c.name || c.id).join(', ')}]` : name;
    })
    .join(', ');
}

/** True when some detail-table cell has an id but no name (as in the documented instance example, doc: instance/get). */
export function hasNamelessCells(form: readonly FormWidget[]): boolean {
  return form.some(
    (w) =>
      w.type === 'fieldList' &&
      Array.isArray(w.value) &&
      w.value.some((row) => Array.isArray(row) && row.some((cell) => isWidget(cell) && !cell.name && !!cell.id))
  );
}

/**
 * The instance form with each nameless detail-table cell given its column's name (and custom_id) from the definition,
 * matched by cell id: Feishu's instance read-back may carry cells with only `id`, `type` and `value` (doc:
 * instance/get, fieldList example), so a column configured by name would otherwise never be found.
 */
export function fillCellNames(form: readonly FormWidget[], definition: readonly FormWidget[]): FormWidget[] {
  const columns = new Map<string, FormWidget>();
  for (const w of definition)
    for (const c of definitionColumns(w as unknown as Record<string, unknown>)) columns.set(c.id, c);
  const fill = (cell: unknown): unknown => {
    if (!isWidget(cell) || cell.name || !cell.id) return cell;
    const column = columns.get(cell.id);
    if (!column) return cell;
    const customId = (column as { custom_id?: unknown }).custom_id;
    return { ...cell, name: column.name, ...(typeof customId === 'string' && customId ? { custom_id: customId } : {}) };
  };
  return form.map((w) =>
    w.type === 'fieldList' && Array.isArray(w.value)
      ? { ...w, value: w.value.map((row: unknown) => (Array.isArray(row) ? row.map(fill) : row)) }
      : w
  );
}
