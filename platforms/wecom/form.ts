import type { FormWidget } from '../../domain/types';

/**
 * WeCom `apply_data.contents[]` controls → the platform-neutral FormWidget shape (Feishu's vocabulary, read by
 * domain/mac.ts and domain/duration.ts). Reference dingtalk-wecom.md §5.4; each control is
 * `{control, id, title: [{text, lang}], value: {…}}`:
 * - Text / Textarea → input / textarea (`value.text`);
 * - Number / Money → number / amount (`value.new_number` / `value.new_money`);
 * - Selector → radioV2 / checkboxV2 (the chosen options' texts, `value.selector.options[].value[].text`);
 * - Date → date (`value.date.s_timestamp`, epoch seconds);
 * - DateRange → dateInterval `{start, end}` (`value.date_range.new_begin` / `new_end`, epoch seconds);
 * - Table → fieldList: `value.children[].list[]` are the rows, each a list of controls.
 * Other controls keep their name as `type` and the raw value object.
 */

type Rec = Record<string, unknown>;
const isObject = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Prefer the Chinese title (the form's own language), else the first one. */
function titleText(title: unknown): string {
  if (!Array.isArray(title)) return typeof title === 'string' ? title : '';
  const texts = title.filter(isObject);
  const zh = texts.find((t) => t.lang === 'zh_CN') ?? texts[0];
  return typeof zh?.text === 'string' ? zh.text : '';
}

function seconds(v: unknown): number | undefined {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

function selectorTexts(selector: unknown): string[] {
  if (!isObject(selector) || !Array.isArray(selector.options)) return [];
  return selector.options.flatMap((o) => {
    if (!isObject(o)) return [];
    const text = titleText(o.value);
    return text ? [text] : [];
  });
}

function convert(control: Rec): FormWidget {
  const kind = typeof control.control === 'string' ? control.control : 'Unknown';
  const id = typeof control.id === 'string' ? control.id : '';
  const name = titleText(control.title);
  const value = isObject(control.value) ? control.value : {};
  switch (kind) {
    case 'Text':
      return { id, name, type: 'input', value: typeof value.text === 'string' ? value.text : '' };
    case 'Textarea':
      return { id, name, type: 'textarea', value: typeof value.text === 'string' ? value.text : '' };
    case 'Number':
      return { id, name, type: 'number', value: value.new_number ?? '' };
    case 'Money':
      return { id, name, type: 'amount', value: value.new_money ?? '' };
    case 'Selector': {
      const texts = selectorTexts(value.selector);
      const multi = isObject(value.selector) && value.selector.type === 'multi';
      return multi
        ? { id, name, type: 'checkboxV2', value: texts }
        : { id, name, type: 'radioV2', value: texts[0] ?? '' };
    }
    case 'Date': {
      const date = isObject(value.date) ? value.date : {};
      return { id, name, type: 'date', value: seconds(date.s_timestamp) ?? '' };
    }
    case 'DateRange': {
      const range = isObject(value.date_range) ? value.date_range : {};
      const start = seconds(range.new_begin);
      const end = seconds(range.new_end);
      return { id, name, type: 'dateInterval', value: end === undefined ? '' : { start, end } };
    }
    case 'Table': {
      const rows = Array.isArray(value.children) ? value.children : [];
      return {
        id,
        name,
        type: 'fieldList',
        value: rows.map((row) => (isObject(row) && Array.isArray(row.list) ? mapWeComForm(row.list) : [])),
      };
    }
    default:
      return { id, name, type: kind, value };
  }
}

export function mapWeComForm(contents: unknown): FormWidget[] {
  if (!Array.isArray(contents)) return [];
  return contents.filter(isObject).map(convert);
}
