import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { request } from 'undici';
import { cdata, encrypt as dtEncrypt, sign as dtSign } from '../simulators/shared/callback-signer';
import { buildSignedRequest, encryptEvent, signEvent } from '../simulators/feishu/event-signer';
import { freePort } from '../temporal/dev-server';
import { APPROVAL_CODE, ROOT, startTestStack, until, type TestStack } from './support/harness';

/**
 * Bad-input suite: a generated corpus (fast-check) against every webhook — malformed bodies, missing or wrong
 * signatures, tampered ciphertext, wrong tokens and apps, oversize bodies, wrong content types, unknown event types,
 * unrouted approval codes, missing fields. The ingress runs as its own process (`approval-plus ingress`) against a real
 * dev server, so "never crashes" is observed, not assumed. Every input gets its precise status (4xx with the error id;
 * 200 for well-formed events that need nothing), nothing answers 5xx, and no workflow is ever started.
 *
 * One corpus per platform (`feishuCorpus`, `dingtalkCorpus`, `wecomCorpus`); a new webhook is one more corpus in
 * CORPORA. BAD_INPUT_RUNS sets the cases per category (default 25).
 */

const RUNS = Number(process.env.BAD_INPUT_RUNS ?? 25);
const LIMIT = 256 * 1024; // the ingress's body limit

interface BadCase {
  what: string;
  method?: 'GET' | 'POST';
  /** Query string without '?'. */
  query?: string;
  headers: Record<string, string>;
  body?: Buffer | string | { size: number; fill: number; chunked: boolean };
  expect: { status: number; error?: string | string[]; outcome?: string | string[] };
}

interface Corpus {
  platform: string;
  path: string;
  categories: Record<string, fc.Arbitrary<BadCase>>;
}

type Env = Record<string, string>;
type Json = Record<string, unknown>;

// ---- shared generators ------------------------------------------------------------------------------------------

/** A printable id-like string. */
const idLike = (max = 40) => fc.stringMatching(new RegExp(`^[A-Za-z0-9_-]{1,${max}}$`));
const notJsonObject = fc
  .oneof(
    fc.string({ maxLength: 200 }),
    fc.jsonValue().map((v) => JSON.stringify(v))
  )
  .filter((s) => {
    try {
      const v: unknown = JSON.parse(s);
      return typeof v !== 'object' || v === null || Array.isArray(v);
    } catch {
      return true;
    }
  });
const WRONG_TYPES = [
  'text/plain',
  'text/xml',
  'application/xml',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'text/json',
  '',
];
/** Oversize bodies: declared (content-length) or streamed (chunked), just over the limit or well over it. */
const oversize = (headers: Record<string, string>, query?: string) =>
  fc
    .record({
      extra: fc.integer({ min: 1, max: 400_000 }),
      chunked: fc.boolean(),
      fill: fc.constantFrom(0x20, 0x7b, 0x41),
    })
    .map(({ extra, chunked, fill }): BadCase => {
      const size = LIMIT + extra;
      return {
        what: `${size} bytes${chunked ? ' chunked' : ''}`,
        query,
        headers,
        body: { size, fill, chunked },
        expect: { status: 413, error: 'body_too_large' },
      };
    });

/** Base64 ciphertext made invalid for sure: not whole blocks, or not base64 at all. */
function breakCiphertext(b64: string, how: number, extra: Buffer, block: number): string {
  const data = Buffer.from(b64, 'base64');
  switch (how % 3) {
    case 0: // a length that is not a whole number of blocks
      return Buffer.concat([data, extra.subarray(0, 1 + (extra.length % (block - 1)))]).toString('base64');
    case 1: // cut to a non-block length
      return data.subarray(0, Math.max(1, data.length - 1 - (extra[0]! % (block - 1)))).toString('base64');
    default: // characters outside base64
      return `${b64.slice(0, 8)}*!${b64.slice(8)}`;
  }
}

// ---- Feishu -----------------------------------------------------------------------------------------------------

function feishuCorpus(env: Env): Corpus {
  const key = env.FEISHU_ENCRYPT_KEY!;
  const token = env.FEISHU_VERIFICATION_TOKEN!;
  const appId = env.FEISHU_APP_ID!;
  const json = { 'content-type': 'application/json' };
  const KNOWN = ['approval_instance', 'approval.instance.status_changed_v4', 'contact.user.deleted_v3'];

  const v1 = (event: Json, over: Json = {}): Json => ({
    ts: '1700000000.0',
    uuid: `u${Math.random().toString(16).slice(2)}`,
    token,
    type: 'event_callback',
    event: { app_id: appId, tenant_key: 't', ...event },
    ...over,
  });
  const v2 = (eventType: string, event: unknown, header: Json = {}): Json => ({
    schema: '2.0',
    header: {
      event_id: Math.random().toString(16).slice(2),
      token,
      create_time: '1700000000000',
      event_type: eventType,
      tenant_key: 't',
      app_id: appId,
      ...header,
    },
    event,
  });
  const approval = (over: Json = {}) => ({
    type: 'approval_instance',
    approval_code: APPROVAL_CODE,
    instance_code: `BAD-${Math.random().toString(16).slice(2)}`,
    status: 'APPROVED',
    ...over,
  });
  /** Encrypted and signed as Feishu does (no token filling: the body says what it says). */
  const signed = (body: Json) => buildSignedRequest({ body, encryptKey: key });
  const ok = (what: string, body: Json, outcome: string | string[]): BadCase => {
    const r = signed(body);
    return { what, headers: r.headers, body: r.rawBody, expect: { status: 200, outcome } };
  };
  const bad = (what: string, body: Json, status: number, error: string | string[]): BadCase => {
    const r = signed(body);
    return { what, headers: r.headers, body: r.rawBody, expect: { status, error } };
  };
  /** Arbitrary bytes with a valid signature over them. */
  const signRaw = (raw: Buffer) => {
    const ts = '1700000000';
    const nonce = 'n0nce';
    return {
      ...json,
      'x-lark-request-timestamp': ts,
      'x-lark-request-nonce': nonce,
      'x-lark-signature': signEvent(ts, nonce, key, raw),
    };
  };
  const approvalEnvelope = fc.boolean().map((useV2) => (over: Json = {}) => {
    const a = approval(over);
    return useV2 ? v2('approval.instance.status_changed_v4', a) : v1(a);
  });

  return {
    platform: 'feishu',
    path: '/webhook/feishu',
    categories: {
      'malformed JSON': fc
        .record({
          text: fc.oneof(
            notJsonObject,
            fc
              .integer({ min: 1, max: 300 })
              .map((cut) => signed(v1(approval())).rawBody.toString().slice(0, cut))
              .filter((s) => {
                try {
                  JSON.parse(s);
                  return false;
                } catch {
                  return true;
                }
              })
          ),
          sign: fc.boolean(),
        })
        .map(({ text, sign }) => ({
          what: `${sign ? 'signed ' : ''}${JSON.stringify(text).slice(0, 60)}`,
          headers: sign ? signRaw(Buffer.from(text)) : json,
          body: text,
          expect: { status: 400, error: 'malformed_json' },
        })),

      'missing signature headers': fc
        .subarray(['x-lark-signature', 'x-lark-request-timestamp', 'x-lark-request-nonce'], { minLength: 1 })
        .map((drop) => {
          const r = signed(v1(approval()));
          const headers = Object.fromEntries(Object.entries(r.headers).filter(([h]) => !drop.includes(h)));
          const noSig = drop.includes('x-lark-signature');
          return {
            what: `without ${drop.join(', ')}`,
            headers,
            body: r.rawBody,
            expect: { status: 401, error: noSig ? 'missing_signature' : 'bad_signature' },
          };
        }),

      'wrong signature': fc
        .oneof(
          fc.stringMatching(/^[0-9a-f]{64}$/).map((sig) => ({ 'x-lark-signature': sig })),
          fc
            .string({ minLength: 1, maxLength: 80 })
            .map((sig) => ({ 'x-lark-signature': sig.replace(/[^\x21-\x7e]/g, 'x') })),
          idLike(12).map((ts) => ({ 'x-lark-request-timestamp': `9${ts}` })),
          idLike(12).map((nonce) => ({ 'x-lark-request-nonce': `z${nonce}` }))
        )
        .map((change) => {
          const r = signed(v1(approval()));
          return {
            what: JSON.stringify(change).slice(0, 80),
            headers: { ...r.headers, ...change },
            body: r.rawBody,
            expect: { status: 401, error: 'bad_signature' },
          };
        }),

      'tampered ciphertext': fc
        .record({ how: fc.nat(5), extra: fc.uint8Array({ minLength: 16, maxLength: 16 }), resign: fc.boolean() })
        .map(({ how, extra, resign }): BadCase => {
          const plain = JSON.stringify(v1(approval()));
          const original = encryptEvent(plain, key);
          let tampered: string;
          let error: string | string[] = 'bad_ciphertext';
          if (how < 3) {
            tampered = breakCiphertext(original, how, Buffer.from(extra), 16);
          } else {
            // Flip bits in the last block: the padding (and the JSON's end) is garbage.
            const data = Buffer.from(original, 'base64');
            for (let i = 0; i < 16; i++) data[data.length - 16 + i]! ^= extra[i]! | 1;
            tampered = data.toString('base64');
            error = ['bad_ciphertext', 'malformed_json'];
          }
          const raw = Buffer.from(JSON.stringify({ encrypt: tampered }));
          if (resign)
            return {
              what: `re-signed, tamper ${how}`,
              headers: signRaw(raw),
              body: raw,
              expect: { status: 400, error },
            };
          // Signed for the original bytes: the signature no longer matches.
          const ts = '1700000000';
          const headers = {
            ...json,
            'x-lark-request-timestamp': ts,
            'x-lark-request-nonce': 'n',
            'x-lark-signature': signEvent(ts, 'n', key, Buffer.from(JSON.stringify({ encrypt: original }))),
          };
          return {
            what: `unsigned tamper ${how}`,
            headers,
            body: raw,
            expect: { status: 401, error: 'bad_signature' },
          };
        }),

      'wrong token or app': fc
        .record({
          token: idLike().filter((x) => x !== token),
          app: fc.stringMatching(/^cli_[0-9a-f]{16}$/).filter((x) => x !== appId),
          which: fc.nat(4),
        })
        .map(({ token: wrong, app, which }) => {
          switch (which) {
            case 0:
              return bad('v1 wrong token', v1(approval(), { token: wrong }), 403, 'bad_token');
            case 1:
              return bad(
                'v2 wrong token',
                v2('approval.instance.status_changed_v4', approval(), { token: wrong }),
                403,
                'bad_token'
              );
            case 2: {
              const body = v1(approval());
              delete body.token;
              return bad('v1 without token', body, 403, 'bad_token');
            }
            case 3:
              return bad('v1 other app', v1(approval({ app_id: app })), 403, 'unknown_app');
            default:
              return bad(
                'v2 other app',
                v2('contact.user.deleted_v3', { object: { open_id: 'ou_x' } }, { app_id: app }),
                403,
                'unknown_app'
              );
          }
        }),

      oversize: oversize(json),

      'wrong content-type': fc.constantFrom(...WRONG_TYPES).map((type) => {
        const r = signed(v1(approval()));
        const headers: Record<string, string> = { ...r.headers };
        delete headers['content-type'];
        if (type) headers['content-type'] = type;
        return {
          what: type || '(none)',
          headers,
          body: r.rawBody,
          expect: { status: 415, error: 'unsupported_media_type' },
        };
      }),

      'unknown event types': fc.oneof(
        fc
          .record({
            type: fc.stringMatching(/^[a-z][a-z0-9_.]{0,40}$/).filter((x) => !KNOWN.includes(x)),
            useV2: fc.boolean(),
            event: fc.dictionary(idLike(10), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
          })
          .map(({ type, useV2, event }) =>
            useV2
              ? ok(`v2 ${type}`, v2(type, event), 'ignored-type')
              : ok(`v1 ${type}`, v1({ ...event, type }), 'ignored-type')
          ),
        // The attendance remedy event exists only as v2, its object typed remedy_approval_v2 (doc: approval-v4 event
        // special-event attendance-record-correction).
        fc.constantFrom('APPROVED', 'REJECTED', 'CANCELED').map((status) =>
          ok(
            `v2 remedy_group_update_v4 ${status}`,
            v2('approval.instance.remedy_group_update_v4', {
              object: {
                type: 'remedy_approval_v2',
                instance_code: `REMEDY-${status}`,
                employee_id: 'g12xxxxg',
                start_time: 1661333019,
                end_time: 1661333019,
                remedy_time: 1661333019,
                remedy_reason: '',
                status,
              },
            }),
            'ignored-type'
          )
        )
      ),

      'unrouted codes and statuses needing nothing': fc
        .record({
          code: idLike().filter((c) => c !== APPROVAL_CODE),
          status: fc.constantFrom(
            'APPROVED',
            'PENDING',
            'REJECTED',
            'REVERTED',
            'CANCELED',
            'DELETED',
            'OVERTIME_CLOSE'
          ),
          routedStatus: fc.constantFrom(
            'PENDING',
            'REJECTED',
            'OVERTIME_CLOSE',
            'OVERTIME_RECOVER',
            'REVERTED',
            'CANCELED',
            'DELETED'
          ),
          routed: fc.boolean(),
          envelope: approvalEnvelope,
        })
        .map(({ code, status, routedStatus, routed, envelope }) =>
          routed
            ? ok(
                `routed code, ${routedStatus}`,
                envelope({ status: routedStatus }),
                ['REVERTED', 'CANCELED', 'DELETED'].includes(routedStatus) ? 'no-live-grant' : 'ignored-status'
              )
            : ok(`unrouted ${code} ${status}`, envelope({ approval_code: code, status }), 'unrouted')
        ),

      // Authentic (signed) events that can never be read are acknowledged, so they do not hold later ordered events of
      // the instance behind them for hours of redelivery (platforms/feishu/envelope.ts, UNREADABLE_FOR_GOOD).
      'missing fields': fc
        .record({
          field: fc.constantFrom('approval_code', 'instance_code', 'status'),
          how: fc.constantFrom('delete', 'empty', 'number', 'null'),
          envelope: approvalEnvelope,
          other: fc.nat(6),
        })
        .map(({ field, how, envelope, other }) => {
          switch (other) {
            case 0:
            case 1:
            case 2: {
              const a = approval();
              const inner = envelope({});
              const target = (inner.event ?? {}) as Json;
              Object.assign(target, a);
              if (how === 'delete') delete target[field];
              else target[field] = how === 'empty' ? '' : how === 'number' ? 42 : null;
              return ok(`approval event, ${field} ${how}`, inner, 'unreadable');
            }
            case 3: {
              const body = v2('approval.instance.status_changed_v4', approval());
              delete (body.header as Json)[field === 'status' ? 'event_type' : 'event_id'];
              return ok('v2 header without event id/type', body, 'unreadable');
            }
            case 4:
              return ok(
                'v2 event not an object',
                v2('contact.user.deleted_v3', how === 'null' ? null : 'x'),
                'unreadable'
              );
            case 5:
              return ok(
                'user deleted without open_id',
                v2('contact.user.deleted_v3', { object: { user_id: 'u1' } }),
                'unreadable'
              );
            default: {
              const body = v1(approval());
              delete body.uuid;
              return how === 'empty'
                ? ok('neither v1 nor v2', { token, hello: 'world' }, 'unreadable')
                : ok('v1 without uuid', body, 'unreadable');
            }
          }
        }),
    },
  };
}

// ---- DingTalk ---------------------------------------------------------------------------------------------------

function dingtalkCorpus(env: Env): Corpus {
  const token = env.DINGTALK_TOKEN!;
  const aesKey = env.DINGTALK_AES_KEY!;
  const owner = env.DINGTALK_APP_KEY!;
  const ROUTED = 'PROC-WIFI-ACCESS-SANDBOX'; // config/routes.sandbox.yaml
  const json = { 'content-type': 'application/json' };
  const bpms = (over: Json = {}): Json => ({
    EventType: 'bpms_instance_change',
    processInstanceId: `bad-${Math.random().toString(16).slice(2)}`,
    processCode: ROUTED,
    type: 'finish',
    result: 'agree',
    staffId: 'u1',
    eventId: `ev-${Math.random().toString(16).slice(2)}`,
    ...over,
  });
  const push = (plain: Json | string, opts: { owner?: string; ts?: string; nonce?: string } = {}) => {
    const ts = opts.ts ?? '1700000000000';
    const nonce = opts.nonce ?? 'n0nce123';
    const enc = dtEncrypt(aesKey, typeof plain === 'string' ? plain : JSON.stringify(plain), opts.owner ?? owner);
    return { enc, ts, nonce, sig: dtSign(token, ts, nonce, enc) };
  };
  const q = (p: Record<string, string>) => new URLSearchParams(p).toString();
  const signedCase = (what: string, plain: Json | string, expect: BadCase['expect'], owner2?: string): BadCase => {
    const p = push(plain, { owner: owner2 });
    return {
      what,
      query: q({ msg_signature: p.sig, timestamp: p.ts, nonce: p.nonce }),
      headers: json,
      body: JSON.stringify({ encrypt: p.enc }),
      expect,
    };
  };

  return {
    platform: 'dingtalk',
    path: '/webhook/dingtalk',
    categories: {
      'malformed JSON': notJsonObject.map((text) => {
        const p = push(bpms());
        return {
          what: JSON.stringify(text).slice(0, 60),
          query: q({ msg_signature: p.sig, timestamp: p.ts, nonce: p.nonce }),
          headers: json,
          body: text,
          expect: { status: 400, error: 'malformed_json' },
        };
      }),
      'missing signature or its parts': fc
        .constantFrom('signature', 'timestamp', 'nonce', 'all', 'encrypt')
        .map((drop) => {
          const p = push(bpms());
          const params: Record<string, string> = { msg_signature: p.sig, timestamp: p.ts, nonce: p.nonce };
          if (drop === 'all')
            return {
              what: 'no query',
              headers: json,
              body: JSON.stringify({ encrypt: p.enc }),
              expect: { status: 401, error: 'missing_signature' },
            };
          if (drop === 'encrypt')
            return {
              what: 'no encrypt field',
              query: q(params),
              headers: json,
              body: JSON.stringify({ data: p.enc }),
              expect: { status: 400, error: 'expected_encryption' },
            };
          delete params[drop === 'signature' ? 'msg_signature' : drop];
          return {
            what: `without ${drop}`,
            query: q(params),
            headers: json,
            body: JSON.stringify({ encrypt: p.enc }),
            expect:
              drop === 'signature'
                ? { status: 401, error: 'missing_signature' }
                : { status: 400, error: 'missing_field' },
          };
        }),
      'wrong signature': fc
        .oneof(fc.stringMatching(/^[0-9a-f]{40}$/), fc.string({ minLength: 1, maxLength: 60 }))
        .map((sig) => {
          const p = push(bpms());
          return {
            what: sig.slice(0, 40),
            query: q({ msg_signature: sig, timestamp: p.ts, nonce: p.nonce }),
            headers: json,
            body: JSON.stringify({ encrypt: p.enc }),
            expect: { status: 401, error: 'bad_signature' },
          };
        }),
      'tampered ciphertext': fc
        .record({ how: fc.nat(2), extra: fc.uint8Array({ minLength: 32, maxLength: 32 }) })
        .map(({ how, extra }) => {
          const p = push(bpms());
          const enc = breakCiphertext(p.enc, how, Buffer.from(extra), 32);
          return {
            what: `tamper ${how}, re-signed`,
            query: q({ msg_signature: dtSign(token, p.ts, p.nonce, enc), timestamp: p.ts, nonce: p.nonce }),
            headers: json,
            body: JSON.stringify({ encrypt: enc }),
            expect: { status: 400, error: 'bad_ciphertext' },
          };
        }),
      'wrong owner key': idLike(24)
        .filter((o) => o !== owner)
        .map((other) => signedCase(`for ${other}`, bpms(), { status: 403, error: 'unknown_app' }, other)),
      oversize: oversize(json, 'msg_signature=x&timestamp=1&nonce=n'),
      'wrong content-type': fc.constantFrom(...WRONG_TYPES).map((type): BadCase => {
        const p = push(bpms());
        return {
          what: type || '(none)',
          query: q({ msg_signature: p.sig, timestamp: p.ts, nonce: p.nonce }),
          headers: type ? { 'content-type': type } : {},
          body: JSON.stringify({ encrypt: p.enc }),
          expect: { status: 415, error: 'unsupported_media_type' },
        };
      }),
      'unknown event types': fc
        .stringMatching(/^[a-z][a-z_]{0,30}$/)
        .filter((x) => x !== 'bpms_instance_change' && !x.startsWith('check_'))
        .map((type) =>
          signedCase(type, { EventType: type, eventId: `e${Math.random()}` }, { status: 200, outcome: 'ignored-type' })
        ),
      'unrouted codes and statuses needing nothing': fc
        .record({
          code: idLike().filter((c) => c !== ROUTED),
          routed: fc.boolean(),
          change: fc.constantFrom<[string, string | undefined, string]>(
            ['start', undefined, 'ignored-status'],
            ['finish', 'refuse', 'ignored-status'],
            ['terminate', undefined, 'no-live-grant'],
            ['delete', undefined, 'no-live-grant']
          ),
        })
        .map(({ code, routed, change: [type, result, outcome] }) =>
          routed
            ? signedCase(`routed ${type}/${result}`, bpms({ type, result }), { status: 200, outcome })
            : signedCase(`unrouted ${code}`, bpms({ processCode: code }), { status: 200, outcome: 'unrouted' })
        ),
      'missing fields': fc.constantFrom('EventType', 'processInstanceId', 'processCode', 'type').map((field) => {
        const body = bpms();
        delete body[field];
        return signedCase(`without ${field}`, body, { status: 400, error: 'missing_field' });
      }),
    },
  };
}

// ---- WeCom ------------------------------------------------------------------------------------------------------

function wecomCorpus(env: Env): Corpus {
  const token = env.WECOM_TOKEN!;
  const aesKey = env.WECOM_ENCODING_AES_KEY!;
  const corp = env.WECOM_CORP_ID!;
  const ROUTED = '3WKbSandboxWiFiAccessTemplate0000000000001'; // config/routes.sandbox.yaml
  const xml = { 'content-type': 'text/xml' };
  const inner = (o: { event?: string; msgType?: string; info?: Record<string, string | undefined> } = {}) => {
    const info = {
      SpNo: `${Date.now()}${Math.floor(Math.random() * 1e6)}`,
      SpStatus: '2',
      TemplateId: ROUTED,
      ...o.info,
    };
    const infoXml = Object.entries(info)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `<${k}>${cdata(v!)}</${k}>`)
      .join('');
    return (
      `<xml><ToUserName>${cdata(corp)}</ToUserName><FromUserName>${cdata('sys')}</FromUserName>` +
      `<CreateTime>1700000000</CreateTime><MsgType>${cdata(o.msgType ?? 'event')}</MsgType>` +
      `<Event>${cdata(o.event ?? 'sys_approval_change')}</Event><AgentID>1</AgentID>` +
      `<ApprovalInfo>${infoXml}<StatuChangeEvent>1</StatuChangeEvent></ApprovalInfo></xml>`
    );
  };
  const post = (
    plain: string,
    opts: { corp?: string; enc?: string; sig?: string; drop?: string; to?: string } = {}
  ): BadCase => {
    const ts = '1700000000';
    const nonce = '1234567';
    const enc = opts.enc ?? dtEncrypt(aesKey, plain, opts.corp ?? corp);
    const params: Record<string, string> = {
      msg_signature: opts.sig ?? dtSign(token, ts, nonce, enc),
      timestamp: ts,
      nonce,
    };
    if (opts.drop) delete params[opts.drop];
    return {
      what: '',
      query: new URLSearchParams(params).toString(),
      headers: xml,
      body: `<xml><ToUserName>${cdata(opts.to ?? corp)}</ToUserName><AgentID>${cdata('1')}</AgentID><Encrypt>${cdata(enc)}</Encrypt></xml>`,
      expect: { status: 200 },
    };
  };
  const withExpect = (c: BadCase, what: string, expect: BadCase['expect']): BadCase => ({ ...c, what, expect });

  return {
    platform: 'wecom',
    path: '/webhook/wecom',
    categories: {
      'malformed XML': fc
        .oneof(
          fc.string({ maxLength: 200 }).filter((s) => !/^\s*<xml>[\s\S]*<\/xml>\s*$/.test(s)),
          fc.integer({ min: 1, max: 150 }).map((cut) => (post(inner()).body as string).slice(0, cut)),
          fc.constant('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e "x">]><xml><Encrypt>&e;</Encrypt></xml>')
        )
        .filter((s) => s.trim() !== '' && !/^<xml>.*<\/xml>$/s.test(s.trim()))
        .map((text) => ({
          what: JSON.stringify(text).slice(0, 60),
          query: 'msg_signature=x&timestamp=1&nonce=2',
          headers: xml,
          body: text,
          expect: { status: 400, error: 'malformed_xml' },
        })),
      'missing signature or its parts': fc.constantFrom('msg_signature', 'timestamp', 'nonce', 'encrypt').map((drop) =>
        drop === 'encrypt'
          ? {
              what: 'no <Encrypt>',
              query: 'msg_signature=x&timestamp=1&nonce=2',
              headers: xml,
              body: `<xml><ToUserName>${cdata(corp)}</ToUserName></xml>`,
              expect: { status: 400, error: 'expected_encryption' },
            }
          : withExpect(
              post(inner(), { drop }),
              `without ${drop}`,
              drop === 'msg_signature'
                ? { status: 401, error: 'missing_signature' }
                : { status: 400, error: 'missing_field' }
            )
      ),
      'wrong signature': fc
        .oneof(
          fc.stringMatching(/^[0-9a-f]{40}$/),
          fc.string({ minLength: 1, maxLength: 60 }).filter((s) => s.trim() !== '')
        )
        .map((sig) => withExpect(post(inner(), { sig }), sig.slice(0, 40), { status: 401, error: 'bad_signature' })),
      'tampered ciphertext': fc
        .record({ how: fc.nat(2), extra: fc.uint8Array({ minLength: 32, maxLength: 32 }) })
        .map(({ how, extra }) => {
          const enc = breakCiphertext(dtEncrypt(aesKey, inner(), corp), how, Buffer.from(extra), 32);
          return withExpect(post('', { enc }), `tamper ${how}, re-signed`, { status: 400, error: 'bad_ciphertext' });
        }),
      'wrong corp': fc
        .record({ other: fc.stringMatching(/^ww[0-9a-f]{16}$/).filter((o) => o !== corp), outer: fc.boolean() })
        .map(({ other, outer }) =>
          outer
            ? withExpect(post(inner(), { to: other }), `ToUserName ${other}`, { status: 403, error: 'unknown_corp' })
            : withExpect(post(inner(), { corp: other }), `encrypted for ${other}`, {
                status: 403,
                error: 'unknown_corp',
              })
        ),
      oversize: oversize(xml, 'msg_signature=x&timestamp=1&nonce=2'),
      'unknown event types': fc
        .record({
          event: fc.stringMatching(/^[a-z][a-z_]{0,30}$/).filter((e) => e !== 'sys_approval_change'),
          text: fc.boolean(),
        })
        .map(({ event, text }) =>
          withExpect(post(text ? inner({ msgType: 'text' }) : inner({ event })), text ? 'MsgType text' : event, {
            status: 200,
            outcome: 'ignored-type',
          })
        ),
      'unrouted codes and statuses needing nothing': fc
        .record({
          code: idLike().filter((c) => c !== ROUTED),
          routed: fc.boolean(),
          status: fc.constantFrom<[string, string]>(
            ['1', 'ignored-status'],
            ['3', 'ignored-status'],
            ['4', 'no-live-grant'],
            ['6', 'no-live-grant'],
            ['7', 'no-live-grant']
          ),
        })
        .map(({ code, routed, status: [sp, outcome] }) =>
          routed
            ? withExpect(post(inner({ info: { SpStatus: sp } })), `routed SpStatus ${sp}`, { status: 200, outcome })
            : withExpect(post(inner({ info: { TemplateId: code } })), `unrouted ${code}`, {
                status: 200,
                outcome: 'unrouted',
              })
        ),
      'missing fields': fc.constantFrom('SpNo', 'SpStatus', 'TemplateId').map((field) =>
        withExpect(post(inner({ info: { [field]: undefined } })), `without ${field}`, {
          status: 400,
          error: 'missing_field',
        })
      ),
      'URL verification (GET)': fc
        .constantFrom('no echostr', 'no signature', 'wrong signature', 'tampered')
        .map((how): BadCase => {
          const ts = '1700000000';
          const nonce = '42';
          const echo = dtEncrypt(aesKey, 'echo-123', corp);
          const params: Record<string, string> = {
            msg_signature: dtSign(token, ts, nonce, echo),
            timestamp: ts,
            nonce,
            echostr: echo,
          };
          let expect: BadCase['expect'] = { status: 400, error: 'missing_field' };
          if (how === 'no echostr') delete params.echostr;
          if (how === 'no signature') {
            delete params.msg_signature;
            expect = { status: 401, error: 'missing_signature' };
          }
          if (how === 'wrong signature') {
            params.msg_signature = '0'.repeat(40);
            expect = { status: 401, error: 'bad_signature' };
          }
          if (how === 'tampered') {
            params.echostr = breakCiphertext(echo, 0, Buffer.alloc(32, 7), 32);
            params.msg_signature = dtSign(token, ts, nonce, params.echostr);
            expect = { status: 400, error: 'bad_ciphertext' };
          }
          return { what: how, method: 'GET', query: new URLSearchParams(params).toString(), headers: {}, expect };
        }),
    },
  };
}

/** Enough of an env to build the corpora's category names before the stack exists. */
const DUMMY_ENV: Env = {
  FEISHU_ENCRYPT_KEY: 'k',
  FEISHU_VERIFICATION_TOKEN: 't',
  FEISHU_APP_ID: 'cli_0',
  DINGTALK_TOKEN: 't',
  DINGTALK_AES_KEY: 'A'.repeat(43),
  DINGTALK_APP_KEY: 'o',
  WECOM_TOKEN: 't',
  WECOM_ENCODING_AES_KEY: 'A'.repeat(43),
  WECOM_CORP_ID: 'c',
};

/** Every webhook under test. A new platform: write its corpus above and list it here. */
const CORPORA: ((env: Env) => Corpus)[] = [feishuCorpus, dingtalkCorpus, wecomCorpus];

// ---- the suite --------------------------------------------------------------------------------------------------

describe('bad input against every webhook (ingress in its own process, real Temporal dev server)', () => {
  let t: TestStack;
  let ingress: ChildProcess;
  let base = '';
  let stderr = '';
  before(async () => {
    t = await startTestStack({ worker: false });
    const port = await freePort();
    ingress = spawn(process.execPath, [path.join(ROOT, 'bin', 'approval-plus.mjs'), 'ingress'], {
      cwd: ROOT,
      env: { ...process.env, ...t.env, PORT: String(port), LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    ingress.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    base = `http://127.0.0.1:${port}`;
    await until(
      'the ingress process answering',
      async () => {
        assert.equal(ingress.exitCode, null, `ingress exited: ${stderr}`);
        try {
          return (await fetch(`${base}/healthz`)).status === 200 ? true : undefined;
        } catch {
          return undefined;
        }
      },
      60_000
    );
  });
  after(async () => {
    if (ingress && ingress.exitCode === null) {
      ingress.kill('SIGTERM');
      await once(ingress, 'exit');
    }
    await t?.close();
  });

  async function send(path: string, c: BadCase): Promise<{ status: number; json?: Json; outcome?: string }> {
    let body: Buffer | string | Readable | undefined;
    if (c.body === undefined || typeof c.body === 'string' || Buffer.isBuffer(c.body)) body = c.body;
    else {
      const buf = Buffer.alloc(c.body.size, c.body.fill);
      body = c.body.chunked ? Readable.from(chunks(buf)) : buf;
    }
    let res;
    let text: string;
    try {
      res = await request(`${base}${path}${c.query ? `?${c.query}` : ''}`, {
        method: c.method ?? 'POST',
        headers: c.headers,
        body,
      });
      text = await res.body.text();
    } catch (err) {
      return {
        status: -1,
        json: { error: `client error: ${(err as Error).message} ${(err as { code?: string }).code}` },
      };
    }
    let json: Json | undefined;
    try {
      json = JSON.parse(text) as Json;
    } catch {
      json = undefined;
    }
    const header = res.headers['x-approval-plus-outcome'];
    const outcome = (json?.outcome as string | undefined) ?? (Array.isArray(header) ? header[0] : header);
    return { status: res.statusCode, json, outcome };
  }

  const oneOf = (v: string | undefined, want: string | string[]) =>
    Array.isArray(want) ? want.includes(v ?? '') : v === want;

  for (const make of CORPORA) {
    // Built lazily (the secrets come from the running stack); the names are known up front from a dummy env.
    const names = Object.keys(make(DUMMY_ENV).categories);
    const platform = make(DUMMY_ENV).platform;
    for (const category of names) {
      it(`${platform}: ${category}`, async () => {
        const corpus = make(t.env);
        await fc.assert(
          fc.asyncProperty(corpus.categories[category]!, async (c) => {
            const res = await send(corpus.path, c);
            const detail = `${platform} ${category}: ${c.what} → ${res.status} ${JSON.stringify(res.json ?? {}).slice(0, 200)}`;
            if (res.status !== c.expect.status) console.error(`unexpected answer — ${detail}`);
            assert.equal(res.status, c.expect.status, detail);
            if (c.expect.error)
              assert.ok(oneOf(res.json?.error as string | undefined, c.expect.error), `error id: ${detail}`);
            if (c.expect.outcome) assert.ok(oneOf(res.outcome, c.expect.outcome), `outcome ${res.outcome}: ${detail}`);
          }),
          { numRuns: RUNS }
        );
      });
    }
  }

  it('the ingress process is still alive and healthy, and no workflow was started', async () => {
    assert.equal(ingress.exitCode, null, `the ingress process died: ${stderr}`);
    assert.equal(ingress.signalCode, null);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const started = async () => {
      let n = 0;
      for (const type of ['nacWhitelistWorkflow', 'forwardEventWorkflow'])
        n += (await t.client.workflow.count(`WorkflowType = '${type}'`)).count;
      return n;
    };
    assert.equal(await started(), 0, 'no workflow started by any bad input');

    // Control: the counter does see a start — one valid, routed APPROVED event does start a workflow.
    const good = buildSignedRequest({
      body: {
        ts: '1700000000.0',
        uuid: 'control-event',
        token: t.env.FEISHU_VERIFICATION_TOKEN,
        type: 'event_callback',
        event: {
          app_id: t.env.FEISHU_APP_ID,
          type: 'approval_instance',
          approval_code: APPROVAL_CODE,
          instance_code: 'CONTROL-1',
          status: 'APPROVED',
        },
      },
      encryptKey: t.env.FEISHU_ENCRYPT_KEY!,
    });
    const res = await request(`${base}/webhook/feishu`, { method: 'POST', headers: good.headers, body: good.rawBody });
    assert.equal(res.statusCode, 200);
    assert.equal(((await res.body.json()) as Json).outcome, 'started');
    await until('visibility to count the control workflow', async () => ((await started()) === 1 ? true : undefined));
  });
});

async function* chunks(buf: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += 64 * 1024) yield buf.subarray(i, i + 64 * 1024);
}
