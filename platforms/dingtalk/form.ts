import type { FormWidget } from '../../domain/types';

/**
 * DingTalk form values → the platform-neutral FormWidget shape (Feishu's vocabulary, which domain/mac.ts
 * `extractFieldTexts` and domain/duration.ts `parseAccessDuration` read).
 *
 * The v1.0 instance API returns `formComponentValues[]` = `{id, name, value, extValue, componentType, bizAlias}`
 * with `value` always a string; complex components carry JSON in it (reference dingtalk-wecom.md §2.3):
 * - TextField / TextareaField → input / textarea (plain text);
 * - DDSelectField → radioV2 (the chosen option's text), DDMultiSelectField → checkboxV2;
 * - DDDateField → date ("2026-12-01" or "2026-12-01 18:00");
 * - DDDateRangeField → dateInterval `{start, end}` (value is a JSON array of the two ends);
 * - TableField (明细, a detail table) → fieldList whose value is rows of widgets. **[inference]** The value is a
 *   JSON array of rows `{rowValue: [{label, key, value, …}], rowNumber}`, as integrations of the legacy and v1.0
 *   APIs read it; a row given directly as an array of cells is accepted too.
 * Anything else keeps its componentType as `type` and its string value.
 */

const TYPE_MAP: Record<string, string> = {
  TextField: 'input',
  TextareaField: 'textarea',
  NumberField: 'number',
  MoneyField: 'amount',
  DDSelectField: 'radioV2',
  DDMultiSelectField: 'checkboxV2',
  DDDateField: 'date',
  DDDateRangeField: 'dateInterval',
  TableField: 'fieldList',
};

export interface DingTalkFormComponent {
  id?: string;
  name?: string;
  value?: string;
  extValue?: string;
  componentType?: string;
  bizAlias?: string;
}

function tryJson(text: unknown): unknown {
  if (typeof text !== 'string') return undefined;
  const t = text.trim();
  if (!(t.startsWith('[') || t.startsWith('{'))) return undefined;
  try {
    return JSON.parse(t);
  } catch {
    return undefined;
  }
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function cellToWidget(cell: Record<string, unknown>, i: number): FormWidget {
  const componentType = typeof cell.componentType === 'string' ? cell.componentType : undefined;
  const raw = cell.value;
  return convert({
    id: String(cell.key ?? cell.id ?? `cell${i + 1}`),
    name: String(cell.label ?? cell.name ?? ''),
    value: typeof raw === 'string' ? raw : raw === undefined || raw === null ? '' : JSON.stringify(raw),
    componentType: componentType ?? (typeof raw === 'string' ? 'TextField' : undefined),
  });
}

function tableRows(value: unknown): FormWidget[][] {
  const parsed = tryJson(value);
  if (!Array.isArray(parsed)) return [];
  return parsed.map((row) => {
    const cells = Array.isArray(row) ? row : asRecord(row)?.rowValue;
    if (!Array.isArray(cells)) return [];
    return cells.flatMap((c, i) => {
      const cell = asRecord(c);
      return cell ? [cellToWidget(cell, i)] : [];
    });
  });
}

function convert(c: DingTalkFormComponent): FormWidget {
  const componentType = c.componentType ?? 'TextField';
  const type = TYPE_MAP[componentType] ?? componentType;
  const base = { id: c.id ?? '', name: c.name ?? '', type };
  const value = c.value ?? '';
  switch (componentType) {
    case 'TableField':
      return { ...base, value: tableRows(value) };
    case 'DDDateRangeField': {
      const parsed = tryJson(value);
      if (Array.isArray(parsed) && parsed.length >= 2) {
        return { ...base, value: { start: parsed[0], end: parsed[1] }, ext: c.extValue };
      }
      return { ...base, value, ext: c.extValue };
    }
    case 'DDMultiSelectField': {
      const parsed = tryJson(value);
      return { ...base, value: Array.isArray(parsed) ? parsed.map(String) : value, ext: c.extValue };
    }
    default:
      return c.extValue !== undefined ? { ...base, value, ext: c.extValue } : { ...base, value };
  }
}

export function mapDingTalkForm(components: unknown): FormWidget[] {
  if (!Array.isArray(components)) return [];
  return components.flatMap((c) => {
    const rec = asRecord(c);
    if (!rec) return [];
    return [
      convert({
        id: typeof rec.id === 'string' ? rec.id : undefined,
        name: typeof rec.name === 'string' ? rec.name : undefined,
        value: typeof rec.value === 'string' ? rec.value : rec.value == null ? undefined : JSON.stringify(rec.value),
        extValue: typeof rec.extValue === 'string' ? rec.extValue : undefined,
        componentType: typeof rec.componentType === 'string' ? rec.componentType : undefined,
      }),
    ];
  });
}
