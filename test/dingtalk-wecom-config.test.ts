import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, redactedConfig } from '../config/config';

/** DINGTALK_* / WECOM_* configuration: when a platform is enabled, sandbox defaults, one-line errors. */

const routesFile = (platforms: string[]) => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ap-routes-')), 'routes.yaml');
  writeFileSync(
    file,
    'routes:\n' +
      platforms
        .map(
          (p, i) =>
            `  - platform: ${p}\n    approval_code: CODE-${i}\n    automation: nac-whitelist\n    fields: { macs: MAC }\n`
        )
        .join('')
  );
  return file;
};

const production = {
  FEISHU_APP_ID: 'cli_a1b2c3d4e5f6a7b8',
  FEISHU_APP_SECRET: 's',
  NAC_DRIVER: 'clearpass',
  NAC_BASE_URL: 'https://cppm.example',
  NAC_CLIENT_ID: 'id',
  NAC_CLIENT_SECRET: 'secret',
  NAC_CLEARPASS_REAUTH_PROFILE: '[Cisco - Reauthenticate Session]',
};
const dingtalkCreds = {
  DINGTALK_APP_KEY: 'dingappkey000001',
  DINGTALK_APP_SECRET: 'app-secret',
  DINGTALK_AES_KEY: 'a'.repeat(43),
  DINGTALK_TOKEN: 'token123',
  DINGTALK_AGENT_ID: '123456',
};
const wecomCreds = {
  WECOM_CORP_ID: 'ww0123456789abcdef',
  WECOM_CORP_SECRET: 'corp-secret',
  WECOM_AGENT_ID: '1000002',
  WECOM_TOKEN: 'Token01',
  WECOM_ENCODING_AES_KEY: 'b'.repeat(43),
};

const oneLine = (re: RegExp) => (err: unknown) =>
  err instanceof ConfigError && re.test(err.message) && !err.message.includes('\n');

describe('DingTalk and WeCom configuration', () => {
  it('sandbox mode enables both with sandbox defaults and points them at their simulators', () => {
    const c = loadConfig({});
    assert.equal(c.dingtalk?.baseUrl, 'http://127.0.0.1:3300');
    assert.equal(c.dingtalk?.oapiBaseUrl, 'http://127.0.0.1:3300');
    assert.equal(c.dingtalk?.ownerKey, c.dingtalk?.appKey);
    assert.equal(c.dingtalk?.eventMode, 'http');
    assert.equal(c.wecom?.baseUrl, 'http://127.0.0.1:3400');
    assert.equal(c.dingtalkSimPort, 3300);
    assert.equal(c.wecomSimPort, 3400);
    assert.ok(c.routes.some((r) => r.platform === 'dingtalk'));
    assert.ok(c.routes.some((r) => r.platform === 'wecom'));
    const shown = JSON.stringify(redactedConfig(c));
    assert.ok(!shown.includes(c.dingtalk!.appSecret) && !shown.includes(c.wecom!.corpSecret));
    assert.ok(!shown.includes(c.dingtalk!.aesKey!) && !shown.includes(c.wecom!.encodingAesKey));
  });

  it('in production a platform is enabled by a route (or its credentials) and then needs them', () => {
    const feishuOnly = loadConfig({ ...production, APPROVAL_PLUS_CONFIG: routesFile(['feishu']) });
    assert.equal(feishuOnly.dingtalk, undefined);
    assert.equal(feishuOnly.wecom, undefined);

    assert.throws(
      () => loadConfig({ ...production, APPROVAL_PLUS_CONFIG: routesFile(['feishu', 'dingtalk']) }),
      oneLine(/^missing DINGTALK_APP_KEY: required because the routes in .* name dingtalk/)
    );
    assert.throws(
      () =>
        loadConfig({
          ...production,
          ...dingtalkCreds,
          DINGTALK_TOKEN: '',
          APPROVAL_PLUS_CONFIG: routesFile(['dingtalk']),
        }),
      oneLine(/^missing DINGTALK_TOKEN/)
    );
    assert.throws(
      () => loadConfig({ ...production, APPROVAL_PLUS_CONFIG: routesFile(['wecom']) }),
      oneLine(/^missing WECOM_CORP_ID: required because the routes in .* name wecom/)
    );
    // Stream mode needs no aes key or token.
    const stream = loadConfig({
      ...production,
      ...dingtalkCreds,
      DINGTALK_AES_KEY: '',
      DINGTALK_TOKEN: '',
      DINGTALK_EVENT_MODE: 'stream',
      APPROVAL_PLUS_CONFIG: routesFile(['dingtalk']),
    });
    assert.equal(stream.dingtalk?.eventMode, 'stream');
    assert.equal(stream.dingtalk?.baseUrl, 'https://api.dingtalk.com');
    assert.equal(stream.dingtalk?.oapiBaseUrl, 'https://oapi.dingtalk.com');

    const both = loadConfig({
      ...production,
      ...dingtalkCreds,
      ...wecomCreds,
      DINGTALK_OWNER_KEY: 'dingcorpid0001',
      APPROVAL_PLUS_CONFIG: routesFile(['dingtalk', 'wecom']),
    });
    assert.equal(both.dingtalk?.ownerKey, 'dingcorpid0001');
    assert.equal(both.wecom?.baseUrl, 'https://qyapi.weixin.qq.com');
    assert.equal(both.wecom?.corpId, wecomCreds.WECOM_CORP_ID);

    // Credentials alone enable the platform (e.g. for forwarding only), and then must be complete.
    assert.throws(
      () => loadConfig({ ...production, WECOM_CORP_ID: 'ww1', APPROVAL_PLUS_CONFIG: routesFile(['feishu']) }),
      oneLine(/^missing WECOM_CORP_SECRET: required because WECOM_CORP_ID is set/)
    );
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    ['DingTalk aes key', { DINGTALK_AES_KEY: 'too-short' }, /^invalid DINGTALK_AES_KEY: must be the 43-character/],
    ['DingTalk token', { DINGTALK_TOKEN: 'has spaces in it' }, /^invalid DINGTALK_TOKEN/],
    ['DingTalk agent id', { DINGTALK_AGENT_ID: 'abc' }, /^invalid DINGTALK_AGENT_ID/],
    ['DingTalk event mode', { DINGTALK_EVENT_MODE: 'ws' }, /^invalid DINGTALK_EVENT_MODE/],
    ['DingTalk base url', { DINGTALK_BASE_URL: 'nope' }, /^invalid DINGTALK_BASE_URL/],
    ['DingTalk sim port', { DINGTALK_SIM_PORT: '70000' }, /^invalid DINGTALK_SIM_PORT/],
    ['WeCom EncodingAESKey', { WECOM_ENCODING_AES_KEY: 'x'.repeat(44) }, /^invalid WECOM_ENCODING_AES_KEY/],
    ['WeCom token', { WECOM_TOKEN: 'x'.repeat(33) }, /^invalid WECOM_TOKEN/],
    ['WeCom agent id', { WECOM_AGENT_ID: '10-02' }, /^invalid WECOM_AGENT_ID/],
    ['WeCom base url', { WECOM_BASE_URL: 'not a url' }, /^invalid WECOM_BASE_URL/],
  ];
  for (const [name, env, re] of bad) {
    it(`a bad ${name} stops with one line naming it, without echoing a secret`, () => {
      assert.throws(() => loadConfig(env), oneLine(re));
      assert.throws(
        () => loadConfig(env),
        (err: Error) => !/KEY|TOKEN/.test(Object.keys(env)[0]!) || !err.message.includes(Object.values(env)[0]!)
      );
    });
  }
});
