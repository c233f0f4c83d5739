import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MAC_REJECTION,
  definitionHasField,
  describeDefinition,
  extractFieldTexts,
  fillCellNames,
  findWidgets,
  hasNamelessCells,
  formatMac,
  isRandomised,
  normaliseMac,
  parseMacList,
  toHalfWidth,
  type MacStyle,
} from '../domain/mac';
import type { FormWidget } from '../domain/types';

// ---------- generators ----------

/** Six octets as 12 lower-case hex digits. */
const anyMac = fc
  .array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 })
  .map((octets) => octets.map((o) => o.toString(16).padStart(2, '0')).join(''));

/** A MAC a device can have: unicast (multicast bit clear) and not all-zero. */
const unicastMac = anyMac
  .map((mac) => (parseInt(mac.slice(0, 2), 16) & 0xfe).toString(16).padStart(2, '0') + mac.slice(2))
  .filter((mac) => mac !== '000000000000');

const multicastMac = anyMac.map(
  (mac) => (parseInt(mac.slice(0, 2), 16) | 0x01).toString(16).padStart(2, '0') + mac.slice(2)
);

type Notation = 'colon' | 'dash' | 'dot' | 'bare';
const notation = fc.constantFrom<Notation>('colon', 'dash', 'dot', 'bare');

function render(mac: string, how: Notation): string {
  const octets = mac.match(/../g) ?? [];
  if (how === 'colon') return octets.join(':');
  if (how === 'dash') return octets.join('-');
  if (how === 'dot') return (mac.match(/.{4}/g) ?? []).join('.');
  return mac;
}

function toFullWidth(ch: string): string {
  const code = ch.charCodeAt(0);
  return code >= 0x21 && code <= 0x7e ? String.fromCharCode(code + 0xfee0) : ch;
}

/** A MAC as a requester might type it: any notation, random case, some characters typed in full-width. */
const typedMac = (mac: fc.Arbitrary<string>) =>
  fc
    .tuple(
      mac,
      notation,
      fc.array(fc.boolean(), { minLength: 17, maxLength: 17 }),
      fc.array(fc.boolean(), { minLength: 17, maxLength: 17 })
    )
    .map(([m, how, upper, wide]) => {
      const text = [...render(m, how)]
        .map((ch, i) => (upper[i] ? ch.toUpperCase() : ch))
        .map((ch, i) => (wide[i] ? toFullWidth(ch) : ch))
        .join('');
      return { mac: m, text };
    });

/** Anything that may sit between MACs in a form answer. */
const listSeparator = fc.constantFrom(
  ' ',
  '\n',
  '\r\n',
  '\t',
  ',',
  ', ',
  ';',
  '，',
  '、',
  '；',
  '|',
  '/',
  '。',
  '\u3000',
  ' 手机 ',
  '\n电脑：',
  ' and ',
  ' 以及 '
);

const whitespace = fc.constantFrom('', ' ', '  ', '\n', '\t', '\u3000', ' \n ');

function joinWith(items: string[], separators: string[], before: string, after: string): string {
  return (
    before +
    items.map((item, i) => (i === 0 ? item : (separators[i % separators.length] ?? ' ') + item)).join('') +
    after
  );
}

const STYLES: MacStyle[] = ['colon-upper', 'colon-lower', 'dash-upper', 'bare-lower', 'cisco-dot'];

// ---------- normaliseMac ----------

describe('normaliseMac', () => {
  const expected = '00163e0a1b2c';
  for (const input of [
    '00:16:3e:0a:1b:2c',
    '00:16:3E:0A:1B:2C',
    '00-16-3E-0A-1B-2C',
    '0016.3e0a.1b2c',
    '0016.3E0A.1B2C',
    '00163e0a1b2c',
    '00163E0A1B2C',
    '0016-3e0a-1b2c', // Huawei / H3C
    '00163e-0a1b2c', // HP
    '0:16:3e:a:1b:2c', // macOS drops leading zeros
    '  00:16:3e:0a:1b:2c \n',
    '00 : 16 : 3e : 0a : 1b : 2c',
    '\u200B00:16:3e:0a:1b:2c\uFEFF',
    '００：１６：３ｅ：０ａ：１ｂ：２ｃ',
    '００－１６－３Ｅ－０Ａ－１Ｂ－２Ｃ',
    '００１６．３ｅ０ａ．１ｂ２ｃ',
    '00‐16‐3e‐0a‐1b‐2c', // U+2010 hyphen from a word processor
    '00−16−3e−0a−1b−2c', // U+2212 minus sign
  ]) {
    it(`accepts ${JSON.stringify(input)}`, () => {
      assert.deepEqual(normaliseMac(input), { ok: true, mac: expected });
    });
  }

  const rejections: [string, string][] = [
    ['', MAC_REJECTION.notMac],
    ['   ', MAC_REJECTION.notMac],
    ['aa:bb-cc:dd:ee:f0', MAC_REJECTION.mixedSeparators],
    ['aabb.ccdd-eef0', MAC_REJECTION.mixedSeparators],
    ['aa:bb:cc:dd:ee', MAC_REJECTION.wrongLength],
    ['aa:bb:cc:dd:ee:f0:11', MAC_REJECTION.wrongLength],
    ['aabbccddeef', MAC_REJECTION.wrongLength],
    ['aabbccddeef011', MAC_REJECTION.wrongLength],
    ['aab:bcc:dde:ef0', MAC_REJECTION.badGrouping],
    ['aabbc.cddeef0', MAC_REJECTION.badGrouping],
    ['aa:bb:cc:dd:ee:fg', MAC_REJECTION.nonHex],
    ['zzzzzzzzzzzz', MAC_REJECTION.nonHex],
    ['aa::bb:cc:dd:ee', MAC_REJECTION.notMac],
    ['aa:bb:cc:dd:ee:f0/1', MAC_REJECTION.notMac],
    ['000000000000', MAC_REJECTION.allZero],
    ['00:00:00:00:00:00', MAC_REJECTION.allZero],
    ['ffffffffffff', MAC_REJECTION.broadcast],
    ['FF:FF:FF:FF:FF:FF', MAC_REJECTION.broadcast],
    ['01:00:5e:00:00:fb', MAC_REJECTION.multicast], // IPv4 mDNS
    ['33:33:00:00:00:01', MAC_REJECTION.multicast], // IPv6 multicast
    ['0180.c200.000e', MAC_REJECTION.multicast], // LLDP
  ];
  for (const [input, reason] of rejections) {
    it(`rejects ${JSON.stringify(input)}: ${reason}`, () => {
      assert.deepEqual(normaliseMac(input), { ok: false, reason });
    });
  }

  it('gives reasons in Chinese then English', () => {
    for (const reason of Object.values(MAC_REJECTION)) assert.match(reason, /^[^a-z]*[\u4e00-\u9fff].* \/ [a-z]/);
  });

  it('reads every notation of every unicast MAC back to the same 12 digits', () => {
    fc.assert(
      fc.property(typedMac(unicastMac), ({ mac, text }) => {
        assert.deepEqual(normaliseMac(text), { ok: true, mac });
      })
    );
  });

  it('always rejects multicast addresses, in any notation', () => {
    fc.assert(
      fc.property(typedMac(multicastMac), ({ mac, text }) => {
        const reason = mac === 'ffffffffffff' ? MAC_REJECTION.broadcast : MAC_REJECTION.multicast;
        assert.deepEqual(normaliseMac(text), { ok: false, reason });
      })
    );
  });

  it('always rejects broadcast and all-zero, in any notation', () => {
    fc.assert(
      fc.property(typedMac(fc.constantFrom('ffffffffffff', '000000000000')), ({ mac, text }) => {
        const reason = mac === 'ffffffffffff' ? MAC_REJECTION.broadcast : MAC_REJECTION.allZero;
        assert.deepEqual(normaliseMac(text), { ok: false, reason });
      })
    );
  });

  it('never throws and only ever returns 12 lower-case hex digits', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
        const result = normaliseMac(text);
        if (result.ok) assert.match(result.mac, /^[0-9a-f]{12}$/);
        else assert.ok(result.reason.length > 0);
      })
    );
  });
});

// ---------- isRandomised / formatMac ----------

describe('isRandomised', () => {
  it('is the locally administered bit of the first octet', () => {
    assert.equal(isRandomised('021122334455'), true);
    assert.equal(isRandomised('da1122334455'), true);
    assert.equal(isRandomised('DA1122334455'), true);
    assert.equal(isRandomised('001122334455'), false);
    assert.equal(isRandomised('a41122334455'), false);
  });

  it('matches bit 0x02 for every MAC', () => {
    fc.assert(
      fc.property(anyMac, (mac) => {
        assert.equal(isRandomised(mac), (parseInt(mac.slice(0, 2), 16) & 0x02) === 0x02);
      })
    );
  });
});

describe('formatMac', () => {
  it('renders every style', () => {
    const mac = '00163e0a1b2c';
    assert.equal(formatMac(mac, 'colon-upper'), '00:16:3E:0A:1B:2C');
    assert.equal(formatMac(mac, 'colon-lower'), '00:16:3e:0a:1b:2c');
    assert.equal(formatMac(mac, 'dash-upper'), '00-16-3E-0A-1B-2C');
    assert.equal(formatMac(mac, 'bare-lower'), '00163e0a1b2c');
    assert.equal(formatMac(mac, 'cisco-dot'), '0016.3e0a.1b2c');
    assert.equal(formatMac('00163E0A1B2C', 'bare-lower'), '00163e0a1b2c');
  });

  it('round-trips through normaliseMac in every style', () => {
    fc.assert(
      fc.property(unicastMac, fc.constantFrom(...STYLES), (mac, style) => {
        assert.deepEqual(normaliseMac(formatMac(mac, style)), { ok: true, mac });
      })
    );
  });
});

// ---------- toHalfWidth ----------

describe('toHalfWidth', () => {
  it('maps the full-width ASCII block and the ideographic space, keeps the ideographic full stop', () => {
    assert.equal(toHalfWidth('ＡＢｃ：－．，；\u3000１'), 'ABc:-.,; 1');
    assert.equal(toHalfWidth('。、'), '。、');
    assert.equal(toHalfWidth('手机'), '手机');
  });
});

// ---------- parseMacList ----------

describe('parseMacList', () => {
  it('finds MACs in every notation among Chinese text and separators of any kind', () => {
    const text =
      'MAC地址：00:16:3E:0A:1B:2C，手机 0016.3e0a.1b2d、电脑ａ４－５ｅ－６０－ｃ２－１１－０１；平板 a45e60c21102|' +
      'a4-5e-60-c2-11-03/a4:5e:60:c2:11:04\ta4:5e:60:c2:11:05。a4:5e:60:c2:11:06';
    const result = parseMacList(text);
    assert.deepEqual(
      result.valid.map((v) => v.mac),
      [
        '00163e0a1b2c',
        '00163e0a1b2d',
        'a45e60c21101',
        'a45e60c21102',
        'a45e60c21103',
        'a45e60c21104',
        'a45e60c21105',
        'a45e60c21106',
      ]
    );
    assert.deepEqual(result.invalid, []);
    assert.deepEqual(result.duplicates, []);
  });

  it('describes each MAC: normalised, display form, what was typed, randomised flag', () => {
    const result = parseMacList('手机 DA:11:22:33:44:55 电脑 0016.3e0a.1b2c');
    assert.deepEqual(result.valid, [
      { mac: 'da1122334455', display: 'DA:11:22:33:44:55', input: 'DA:11:22:33:44:55', randomised: true },
      { mac: '00163e0a1b2c', display: '00:16:3E:0A:1B:2C', input: '0016.3e0a.1b2c', randomised: false },
    ]);
  });

  it('reports invalid entries with reasons, keeping the valid ones', () => {
    const result = parseMacList(
      'a4:5e:60:c2:11:01, aa:bb-cc:dd:ee:f0, a4:5e:60:c2:11, 01:00:5e:00:00:fb, ff:ff:ff:ff:ff:ff, 00-00-00-00-00-00, ' +
        'a4:5e:60:c2:11:0g, a45e60c2110102'
    );
    assert.deepEqual(
      result.valid.map((v) => v.mac),
      ['a45e60c21101']
    );
    assert.deepEqual(result.invalid, [
      { input: 'aa:bb-cc:dd:ee:f0', reason: MAC_REJECTION.mixedSeparators },
      { input: 'a4:5e:60:c2:11', reason: MAC_REJECTION.wrongLength },
      { input: '01:00:5e:00:00:fb', reason: MAC_REJECTION.multicast },
      { input: 'ff:ff:ff:ff:ff:ff', reason: MAC_REJECTION.broadcast },
      { input: '00-00-00-00-00-00', reason: MAC_REJECTION.allZero },
      { input: 'a4:5e:60:c2:11:0g', reason: MAC_REJECTION.nonHex },
      { input: 'a45e60c2110102', reason: MAC_REJECTION.wrongLength },
    ]);
  });

  it('reports the same invalid entry once', () => {
    const result = parseMacList('01:00:5e:00:00:fb\n01:00:5e:00:00:fb');
    assert.equal(result.invalid.length, 1);
  });

  it('ignores prose that merely contains hex letters, times and phone numbers', () => {
    const result = parseMacList(
      'MAC: a4:5e:60:c2:11:01 — please add my cafe laptop, de facto ID bad, face 12:30 call 13812345678, ext. 8-1234'
    );
    assert.deepEqual(
      result.valid.map((v) => v.mac),
      ['a45e60c21101']
    );
    assert.deepEqual(result.invalid, []);
  });

  it('strips labels glued onto a MAC', () => {
    for (const text of [
      'MAC:a4:5e:60:c2:11:01',
      'iphone-a4-5e-60-c2-11-01',
      'a4:5e:60:c2:11:01.',
      'mac=a45e60c21101',
    ]) {
      assert.deepEqual(
        parseMacList(text).valid.map((v) => v.mac),
        ['a45e60c21101'],
        text
      );
    }
  });

  it('reports an attempt whose label cannot be separated', () => {
    assert.deepEqual(parseMacList('fg:a4:5e:60:c2:11').invalid, [
      { input: 'fg:a4:5e:60:c2:11', reason: MAC_REJECTION.nonHex },
    ]);
  });

  it('detects duplicates across notations and keeps the first occurrence', () => {
    const result = parseMacList('A4:5E:60:C2:11:01\na45e.60c2.1101\na4-5e-60-c2-11-02\na4:5e:60:c2:11:01');
    assert.deepEqual(
      result.valid.map((v) => v.input),
      ['A4:5E:60:C2:11:01', 'a4-5e-60-c2-11-02']
    );
    assert.deepEqual(result.duplicates, ['a45e60c21101']);
  });

  it('returns nothing for empty or MAC-less text', () => {
    for (const text of ['', '   ', '\n\n', '无', 'n/a', '见附件']) {
      assert.deepEqual(parseMacList(text), { valid: [], invalid: [], duplicates: [] });
    }
  });

  it('reads back every unicast MAC typed in any notation, case, width and separator', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(typedMac(unicastMac), { minLength: 1, maxLength: 8, selector: (m) => m.mac }),
        fc.array(listSeparator, { minLength: 1, maxLength: 8 }),
        whitespace,
        whitespace,
        (macs, separators, before, after) => {
          const text = joinWith(
            macs.map((m) => m.text),
            separators,
            before,
            after
          );
          const result = parseMacList(text);
          assert.deepEqual(
            result.valid.map((v) => v.mac),
            macs.map((m) => m.mac)
          );
          assert.deepEqual(result.invalid, []);
          assert.deepEqual(result.duplicates, []);
        }
      )
    );
  });

  it('detects exactly the repeated MACs, whatever notation each repeat uses', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(unicastMac, { minLength: 1, maxLength: 6 }),
        fc.array(fc.tuple(fc.nat(), notation), { minLength: 1, maxLength: 12 }),
        fc.array(listSeparator, { minLength: 1, maxLength: 4 }),
        (distinct, picks, separators) => {
          const sequence = picks.map(([i, how]) => ({ mac: distinct[i % distinct.length] as string, how }));
          const result = parseMacList(
            joinWith(
              sequence.map((s) => render(s.mac, s.how)),
              separators,
              '',
              ''
            )
          );
          const order = [...new Set(sequence.map((s) => s.mac))];
          const counts = new Map<string, number>();
          for (const s of sequence) counts.set(s.mac, (counts.get(s.mac) ?? 0) + 1);
          assert.deepEqual(
            result.valid.map((v) => v.mac),
            order
          );
          assert.deepEqual(
            [...result.duplicates].sort(),
            [...counts]
              .filter(([, n]) => n > 1)
              .map(([mac]) => mac)
              .sort()
          );
        }
      )
    );
  });

  it('is idempotent on its own output, in display and typed form', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme-ascii', maxLength: 200 }),
        fc.array(typedMac(unicastMac)),
        (noise, macs) => {
          const first = parseMacList(noise + ' ' + macs.map((m) => m.text).join(' ') + ' ' + noise);
          const macsOf = (r: typeof first) => r.valid.map((v) => v.mac);
          const fromDisplay = parseMacList(first.valid.map((v) => v.display).join('\n'));
          const fromInput = parseMacList(first.valid.map((v) => v.input).join(', '));
          assert.deepEqual(macsOf(fromDisplay), macsOf(first));
          assert.deepEqual(macsOf(fromInput), macsOf(first));
          assert.deepEqual(fromDisplay.invalid, []);
          assert.deepEqual(fromDisplay.duplicates, []);
        }
      )
    );
  });

  it('never throws on garbage, and everything it accepts is a valid unicast MAC', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
        const result = parseMacList(text);
        assert.equal(new Set(result.valid.map((v) => v.mac)).size, result.valid.length);
        for (const v of result.valid) {
          assert.match(v.mac, /^[0-9a-f]{12}$/);
          assert.deepEqual(normaliseMac(v.input), { ok: true, mac: v.mac });
          assert.equal(v.display, formatMac(v.mac, 'colon-upper'));
          assert.equal(v.randomised, isRandomised(v.mac));
        }
        for (const d of result.duplicates) assert.ok(result.valid.some((v) => v.mac === d));
        for (const bad of result.invalid) assert.ok(bad.reason.length > 0 && bad.input.length > 0);
      }),
      { numRuns: 500 }
    );
  });

  it('never accepts multicast, broadcast or all-zero addresses among other MACs', () => {
    fc.assert(
      fc.property(
        fc.array(typedMac(fc.oneof(multicastMac, fc.constantFrom('ffffffffffff', '000000000000')))),
        fc.array(listSeparator, { minLength: 1 }),
        (bad, separators) => {
          const result = parseMacList(
            joinWith(
              bad.map((m) => m.text),
              separators,
              '',
              ''
            )
          );
          assert.deepEqual(result.valid, []);
          assert.equal(result.invalid.length, new Set(bad.map((m) => toHalfWidth(m.text))).size);
        }
      )
    );
  });
});

// ---------- extractFieldTexts ----------

describe('extractFieldTexts', () => {
  const form: FormWidget[] = [
    { id: 'widget1', name: '申请人备注', type: 'textarea', value: '给新同事开通' },
    { id: 'widget2', name: 'MAC地址', type: 'input', value: 'a4:5e:60:c2:11:01' },
    { id: 'widget3', name: '更多MAC', type: 'textarea', value: 'a4:5e:60:c2:11:02\na4:5e:60:c2:11:03' },
    {
      id: 'widget4',
      name: '设备明细',
      type: 'fieldList',
      value: [
        [
          { id: 'widget4a', name: '设备类型', type: 'input', value: '手机' },
          { id: 'widget4b', name: '设备MAC', type: 'input', value: 'a4:5e:60:c2:11:04' },
        ],
        [
          { id: 'widget4a', name: '设备类型', type: 'input', value: '电脑' },
          { id: 'widget4b', name: '设备MAC', type: 'input', value: 'a4:5e:60:c2:11:05' },
        ],
        [
          { id: 'widget4a', name: '设备类型', type: 'input', value: '平板' },
          { id: 'widget4b', name: '设备MAC', type: 'input', value: '' },
        ],
      ],
    },
    { id: 'widget5', name: '空白', type: 'input', value: '' },
  ];

  it('collects input and textarea fields by name', () => {
    assert.deepEqual(extractFieldTexts(form, ['MAC地址', '更多MAC']), {
      texts: ['a4:5e:60:c2:11:01', 'a4:5e:60:c2:11:02\na4:5e:60:c2:11:03'],
      missing: [],
    });
  });

  it('collects fields by widget id', () => {
    assert.deepEqual(extractFieldTexts(form, ['widget2']), { texts: ['a4:5e:60:c2:11:01'], missing: [] });
  });

  it('collects every row of a detail-table column, by column name or id', () => {
    const expected = { texts: ['a4:5e:60:c2:11:04', 'a4:5e:60:c2:11:05'], missing: [] };
    assert.deepEqual(extractFieldTexts(form, ['设备MAC']), expected);
    assert.deepEqual(extractFieldTexts(form, ['widget4b']), expected);
  });

  it('reads a whole detail table addressed by its own name', () => {
    const { texts } = extractFieldTexts(form, ['设备明细']);
    assert.equal(texts.length, 1);
    assert.deepEqual(
      parseMacList(texts[0] ?? '').valid.map((v) => v.mac),
      ['a45e60c21104', 'a45e60c21105']
    );
  });

  it('reports fields that match nothing, but not fields that are merely empty', () => {
    assert.deepEqual(extractFieldTexts(form, ['MAC地址', '不存在', '空白']), {
      texts: ['a4:5e:60:c2:11:01'],
      missing: ['不存在'],
    });
    assert.deepEqual(extractFieldTexts([], ['MAC地址']), { texts: [], missing: ['MAC地址'] });
    const unanswered = [{ id: 'w', name: 'MAC地址', type: 'input' }] as unknown as FormWidget[];
    assert.deepEqual(extractFieldTexts(unanswered, ['MAC地址']), { texts: [], missing: [] });
  });

  it('feeds parseMacList end to end', () => {
    const { texts } = extractFieldTexts(form, ['MAC地址', '更多MAC', '设备MAC']);
    assert.deepEqual(
      parseMacList(texts.join('\n')).valid.map((v) => v.mac),
      ['a45e60c21101', 'a45e60c21102', 'a45e60c21103', 'a45e60c21104', 'a45e60c21105']
    );
  });

  it('tolerates malformed rows and widgets without throwing', () => {
    const odd = [
      {
        id: 't',
        name: '表',
        type: 'fieldList',
        value: [null, 'x', [null, { foo: 1 }, { id: 'c', name: '列', value: 7 }]],
      },
    ] as unknown as FormWidget[];
    assert.deepEqual(extractFieldTexts(odd, ['列']), { texts: ['7'], missing: [] });
    assert.equal(findWidgets(odd, '列').length, 1);
  });
});

// ---------- Feishu detail tables without cell names, and approval definitions ----------

describe('detail-table columns found through the approval definition', () => {
  // The documented instance read-back: detail cells with only id, type and value (doc: approval-v4/instance/get).
  const nameless: FormWidget[] = [
    { id: 'widget1', name: 'MAC地址', type: 'input', value: 'a4:5e:60:c2:11:01' },
    {
      id: 'widget4',
      name: '设备明细',
      type: 'fieldList',
      value: [
        [
          { id: 'widget4a', type: 'input', value: '手机' },
          { id: 'widget4b', type: 'input', value: 'a4:5e:60:c2:11:04' },
        ],
        [
          { id: 'widget4a', type: 'input', value: '电脑' },
          { id: 'widget4b', type: 'input', value: 'a4:5e:60:c2:11:05' },
        ],
      ],
    } as FormWidget,
  ];
  // The definition as approval/get returns it: columns in `children` (read-back) or `value` (create format).
  const withChildren = [
    { id: 'widget1', name: 'MAC地址', type: 'input', value: undefined },
    {
      id: 'widget4',
      name: '设备明细',
      type: 'fieldList',
      value: undefined,
      children: [
        { id: 'widget4a', name: '设备类型', type: 'input' },
        { id: 'widget4b', name: '设备MAC', type: 'input', custom_id: 'device_mac' },
      ],
    },
  ] as unknown as FormWidget[];
  const withValue = [
    {
      id: 'widget4',
      name: '设备明细',
      type: 'fieldList',
      value: [
        { id: 'widget4a', name: '设备类型', type: 'input' },
        { id: 'widget4b', name: '设备MAC', type: 'input' },
      ],
    },
  ] as unknown as FormWidget[];

  it('a column configured by name is missing while the cells have no names', () => {
    assert.equal(hasNamelessCells(nameless), true);
    assert.deepEqual(extractFieldTexts(nameless, ['设备MAC']), { texts: [], missing: ['设备MAC'] });
    // By id it was always found.
    assert.deepEqual(extractFieldTexts(nameless, ['widget4b']).texts, ['a4:5e:60:c2:11:04', 'a4:5e:60:c2:11:05']);
  });

  it('fillCellNames gives each cell its column name (and custom id) from either definition format', () => {
    for (const definition of [withChildren, withValue]) {
      const filled = fillCellNames(nameless, definition);
      assert.equal(hasNamelessCells(filled), false);
      assert.deepEqual(extractFieldTexts(filled, ['设备MAC']), {
        texts: ['a4:5e:60:c2:11:04', 'a4:5e:60:c2:11:05'],
        missing: [],
      });
    }
    assert.deepEqual(extractFieldTexts(fillCellNames(nameless, withChildren), ['device_mac']).missing, []);
    // Named cells and cells of unknown columns are left as they are.
    const unknown = fillCellNames(nameless, [{ id: 'x', name: 'x', type: 'fieldList', value: [] }]);
    assert.deepEqual(unknown, nameless);
  });

  it('definitionHasField looks at widgets and columns by name, id or custom id', () => {
    for (const field of ['MAC地址', 'widget1', '设备明细', '设备MAC', 'widget4b', 'device_mac'])
      assert.equal(definitionHasField(withChildren, field), true, field);
    assert.equal(definitionHasField(withValue, '设备MAC'), true);
    assert.equal(definitionHasField(withChildren, '有效期'), false);
    assert.equal(describeDefinition(withChildren), 'MAC地址, 设备明细 [设备类型, 设备MAC]');
  });

  it('findWidgets matches a custom id on instance widgets too', () => {
    const form = [
      { id: 'widget9', custom_id: 'macs', name: '设备地址', type: 'textarea', value: 'x' },
    ] as unknown as FormWidget[];
    assert.equal(findWidgets(form, 'macs').length, 1);
  });
});
