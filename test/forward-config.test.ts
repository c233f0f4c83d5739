import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, findRoute, loadConfig, redactedConfig } from '../config/config';
import { allSubscribers, findForwardRoutes } from '../forwarding/config';

const routesFile = (body: string) => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ap-forward-routes-')), 'routes.yaml');
  writeFileSync(file, body);
  return file;
};
const secret = (bytes = 32) => `whsec_${randomBytes(bytes).toString('base64')}`;

const NAC = `
  - platform: feishu
    approval_code: A1
    automation: nac-whitelist
    fields: { macs: MAC地址 }`;
const FORWARD_A1 = `
  - platform: feishu
    approval_code: A1
    automation: forward
    subscribers:
      - name: hr-sync
        url: https://hr.example.com/hooks/approvals
        secret_env: FORWARD_SECRET_HR_SYNC`;
const FORWARD_ANY = `
  - platform: feishu
    approval_code: "*"
    automation: forward
    include_raw: true
    subscribers:
      - name: audit
        url: http://10.0.0.5:8080/events
        secret_env: FORWARD_SECRET_AUDIT
      - name: hr-sync
        url: https://hr.example.com/hooks/approvals
        secret_env: FORWARD_SECRET_HR_SYNC`;

const secrets = { FORWARD_SECRET_HR_SYNC: secret(), FORWARD_SECRET_AUDIT: secret(24) };
const load = (routes: string, env: Record<string, string> = secrets) =>
  loadConfig({ APPROVAL_PLUS_CONFIG: routesFile(`routes:${routes}\n`), ...env });

describe('forward routes in the routes file', () => {
  it('a code may have a nac-whitelist and a forward route; "*" matches every code of the platform', () => {
    const c = load(NAC + FORWARD_A1 + FORWARD_ANY);
    assert.equal(c.routes.length, 1, 'nac-whitelist routes are unchanged');
    assert.deepEqual(c.routes[0]!.macFields, ['MAC地址']);
    assert.equal(findRoute(c.routes, 'feishu', 'A1')?.automation, 'nac-whitelist');
    const [a1, any] = c.forwarding.routes;
    assert.deepEqual(a1, {
      platform: 'feishu',
      approvalCode: 'A1',
      automation: 'forward',
      includeRaw: false,
      subscribers: [
        {
          name: 'hr-sync',
          url: 'https://hr.example.com/hooks/approvals',
          secretEnv: 'FORWARD_SECRET_HR_SYNC',
          secret: secrets.FORWARD_SECRET_HR_SYNC,
        },
      ],
    });
    assert.equal(any!.includeRaw, true);
    assert.deepEqual(
      findForwardRoutes(c.forwarding.routes, 'feishu', 'A1').map((r) => r.approvalCode),
      ['A1', '*']
    );
    assert.deepEqual(
      findForwardRoutes(c.forwarding.routes, 'feishu', 'OTHER').map((r) => r.approvalCode),
      ['*']
    );
    assert.deepEqual(findForwardRoutes(c.forwarding.routes, 'dingtalk', 'A1'), []);
    assert.deepEqual(
      allSubscribers(c.forwarding.routes).map((s) => s.name),
      ['hr-sync', 'audit']
    );
  });

  it('a routes file of forward routes only is valid (no nac-whitelist route needed)', () => {
    const c = load(FORWARD_ANY);
    assert.equal(c.routes.length, 0);
    assert.equal(c.forwarding.routes.length, 1);
  });

  it('retry policy: defaults (5 s × 2, ≤ 1 h apart, for 24 h; 15 s per request) and FORWARD_* overrides', () => {
    assert.deepEqual(load(FORWARD_A1).forwarding.retry, {
      initialIntervalMs: 5000,
      backoffCoefficient: 2,
      maximumIntervalMs: 3_600_000,
      retryForMs: 86_400_000,
      requestTimeoutMs: 15_000,
    });
    const c = load(FORWARD_A1, {
      ...secrets,
      FORWARD_RETRY_INITIAL: '200ms',
      FORWARD_RETRY_BACKOFF: '1.5',
      FORWARD_RETRY_MAX_INTERVAL: '2s',
      FORWARD_RETRY_FOR: '3m',
      FORWARD_TIMEOUT: '1s',
    });
    assert.deepEqual(c.forwarding.retry, {
      initialIntervalMs: 200,
      backoffCoefficient: 1.5,
      maximumIntervalMs: 2000,
      retryForMs: 180_000,
      requestTimeoutMs: 1000,
    });
  });

  it('secrets never reach the redacted config', () => {
    const shown = JSON.stringify(redactedConfig(load(NAC + FORWARD_A1 + FORWARD_ANY)));
    assert.match(shown, /hr-sync https:\/\/hr\.example\.com/);
    for (const s of Object.values(secrets)) {
      assert.ok(!shown.includes(s.slice(6)));
    }
  });

  const bad: [string, string, Record<string, string>, RegExp][] = [
    ['missing secret variable', FORWARD_A1, {}, /^missing FORWARD_SECRET_HR_SYNC: .*forward subscriber hr-sync/],
    [
      'secret without whsec_',
      FORWARD_A1,
      { FORWARD_SECRET_HR_SYNC: randomBytes(32).toString('base64') },
      /^invalid FORWARD_SECRET_HR_SYNC: must start with whsec_/,
    ],
    [
      'secret too short',
      FORWARD_A1,
      { FORWARD_SECRET_HR_SYNC: secret(8) },
      /^invalid FORWARD_SECRET_HR_SYNC: must decode to 24–64 bytes/,
    ],
    [
      'bad url',
      FORWARD_A1.replace('https://hr.example.com/hooks/approvals', 'not a url'),
      secrets,
      /^invalid APPROVAL_PLUS_CONFIG: .*: routes\.0\.subscribers\.0\.url: must be an http:\/\/ or https:\/\/ URL$/,
    ],
    [
      'ftp url',
      FORWARD_A1.replace('https://hr.example.com/hooks/approvals', 'ftp://hr.example.com/x'),
      secrets,
      /routes\.0\.subscribers\.0\.url: must be an http/,
    ],
    [
      'bad subscriber name',
      FORWARD_A1.replace('name: hr-sync', 'name: HR Sync'),
      secrets,
      /subscribers\.0\.name: must be/,
    ],
    ['a typo in a key', FORWARD_A1.replace('secret_env:', 'secret_var:'), secrets, /routes\.0\.subscribers\.0/],
    ['no subscribers', FORWARD_A1.split('\n    subscribers:')[0]!, secrets, /routes\.0\.subscribers/],
    ['include_raw not a boolean', FORWARD_A1 + '\n    include_raw: sometimes', secrets, /routes\.0\.include_raw/],
    ['two forward routes for one code', FORWARD_A1 + FORWARD_A1, secrets, /routes\.1: duplicate feishu:A1:forward/],
    ['two nac-whitelist routes for one code', NAC + NAC, secrets, /routes\.1: duplicate feishu:A1:nac-whitelist/],
    [
      'one subscriber name, two urls',
      FORWARD_A1 + FORWARD_ANY.replace('https://hr.example.com/hooks/approvals', 'https://other.example.com/'),
      secrets,
      /routes\.1\.subscribers\.1: subscriber hr-sync is defined with another url or secret_env at routes\.0/,
    ],
    [
      'a subscriber twice in one route',
      FORWARD_ANY.replace('name: hr-sync', 'name: audit'),
      secrets,
      /subscriber audit is listed twice/,
    ],
    [
      '"*" on a nac-whitelist route',
      NAC.replace('approval_code: A1', 'approval_code: "*"'),
      secrets,
      /only for forward/,
    ],
    ['an unknown automation', NAC.replace('nac-whitelist', 'webhook'), secrets, /routes\.0\.automation/],
    [
      'FORWARD_RETRY_FOR',
      FORWARD_A1,
      { ...secrets, FORWARD_RETRY_FOR: 'a day' },
      /^invalid FORWARD_RETRY_FOR: must be/,
    ],
    [
      'max interval below initial',
      FORWARD_A1,
      { ...secrets, FORWARD_RETRY_INITIAL: '10s', FORWARD_RETRY_MAX_INTERVAL: '5s' },
      /^invalid FORWARD_RETRY_MAX_INTERVAL: must not be shorter than FORWARD_RETRY_INITIAL$/,
    ],
    ['backoff', FORWARD_A1, { ...secrets, FORWARD_RETRY_BACKOFF: '0.5' }, /^invalid FORWARD_RETRY_BACKOFF/],
  ];
  for (const [name, routes, env, msg] of bad) {
    it(`${name}: stops with one line naming it`, () => {
      assert.throws(
        () => load(routes, env),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.match(err.message, msg);
          assert.ok(!err.message.includes('\n'), 'one line');
          for (const s of Object.values(env)) if (s.startsWith('whsec_')) assert.ok(!err.message.includes(s.slice(6)));
          return true;
        }
      );
    });
  }
});
