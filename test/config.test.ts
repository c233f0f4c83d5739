import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, DEFAULT_MAX_CACHED_WORKFLOWS, loadConfig, redactedConfig } from '../config/config';
import { ROOT } from './support/harness';

const routes = (body: string) => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ap-routes-')), 'routes.yaml');
  writeFileSync(file, body);
  return file;
};

describe('configuration', () => {
  it('sandbox mode with no credentials: simulators, sandbox routes, sandbox secrets', () => {
    const c = loadConfig({});
    assert.equal(c.sandbox, true);
    assert.equal(c.nac.driver, 'sim');
    assert.equal(c.feishu.baseUrl, 'http://127.0.0.1:3100');
    assert.equal(c.routes[0]!.approvalCode, '7C468A54-8745-2245-9675-08B7C63E7A85');
    assert.deepEqual(c.routes[0]!.macFields, ['MAC地址']);
  });

  it("the worker's workflow cache: the measured default, 0 turns it off", () => {
    assert.equal(loadConfig({}).worker.maxCachedWorkflows, DEFAULT_MAX_CACHED_WORKFLOWS);
    assert.equal(loadConfig({ WORKER_MAX_CACHED_WORKFLOWS: '0' }).worker.maxCachedWorkflows, 0);
    assert.equal(loadConfig({ WORKER_MAX_CACHED_WORKFLOWS: '1000' }).worker.maxCachedWorkflows, 1000);
    const logged = redactedConfig(loadConfig({})).worker as { maxCachedWorkflows: number };
    assert.equal(logged.maxCachedWorkflows, DEFAULT_MAX_CACHED_WORKFLOWS);
  });

  it('production needs a NAC driver and a routes file', () => {
    const base = { FEISHU_APP_ID: 'cli_a1b2c3d4e5f6a7b8', FEISHU_APP_SECRET: 's' };
    assert.throws(() => loadConfig(base), { name: 'ConfigError', message: /NAC_DRIVER/ });
    assert.throws(() => loadConfig({ ...base, NAC_DRIVER: 'ise', NAC_BASE_URL: 'https://ise:9060' }), /NAC_USERNAME/);
    const clearpass = {
      ...base,
      NAC_DRIVER: 'clearpass',
      NAC_BASE_URL: 'https://cppm.example/',
      NAC_CLIENT_ID: 'id',
      NAC_CLIENT_SECRET: 'secret',
    };
    // CoA re-authentication on ClearPass applies an enforcement profile: it must be named (or CoA set otherwise).
    assert.throws(() => loadConfig(clearpass), {
      message: /^missing NAC_CLEARPASS_REAUTH_PROFILE: .*NAC_COA=disconnect/,
    });
    const routesFile = routes(
      'routes:\n  - platform: feishu\n    approval_code: A1\n    automation: nac-whitelist\n    fields: { macs: [MAC, 设备MAC] }\n'
    );
    assert.equal(
      loadConfig({ ...clearpass, NAC_COA: 'disconnect', APPROVAL_PLUS_CONFIG: routesFile }).nac.coa,
      'disconnect'
    );
    const ok = loadConfig({
      ...clearpass,
      NAC_CLEARPASS_REAUTH_PROFILE: '[Cisco - Reauthenticate Session], [Aruba Terminate Session]',
      APPROVAL_PLUS_CONFIG: routesFile,
    });
    assert.equal(ok.sandbox, false);
    assert.equal(ok.nac.baseUrl, 'https://cppm.example');
    assert.deepEqual(ok.nac.clearpassReauthProfiles, ['[Cisco - Reauthenticate Session]', '[Aruba Terminate Session]']);
    assert.deepEqual(ok.routes[0]!.macFields, ['MAC', '设备MAC']);
  });

  it('NAC_DRIVER=freeradius needs NAC_DATABASE_URL, no base URL, and logs the database without its password', () => {
    const base = { FEISHU_APP_ID: 'cli_a1b2c3d4e5f6a7b8', FEISHU_APP_SECRET: 's', NAC_DRIVER: 'freeradius' };
    assert.throws(() => loadConfig(base), { message: /^missing NAC_DATABASE_URL: required for NAC_DRIVER=freeradius/ });
    const routesFile = routes(
      'routes:\n  - platform: feishu\n    approval_code: A1\n    automation: nac-whitelist\n    fields: { macs: MAC }\n'
    );
    const c = loadConfig({
      ...base,
      NAC_DATABASE_URL: 'postgres://radius:s3cret-pw@db.example:5432/radius',
      NAC_FREERADIUS_GROUP: 'wifi-staff',
      NAC_RADIUS_USERNAME_FORMAT: 'AA-BB-CC-DD-EE-FF',
      APPROVAL_PLUS_CONFIG: routesFile,
    });
    assert.equal(c.nac.driver, 'freeradius');
    assert.equal(c.nac.radiusUsernameFormat, 'AA-BB-CC-DD-EE-FF');
    assert.equal(c.nac.radiusCoaPort, 3799);
    const summary = JSON.stringify(redactedConfig(c));
    assert.match(summary, /db\.example:5432\/radius/);
    assert.doesNotMatch(summary, /s3cret-pw/);
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    [
      'database url',
      { NAC_DATABASE_URL: 'mysql://db/radius' },
      /^invalid NAC_DATABASE_URL: must be a postgres:\/\/ URL/,
    ],
    [
      'radius user-name format',
      { NAC_RADIUS_USERNAME_FORMAT: 'aabb.ccdd.eeff' },
      /^invalid NAC_RADIUS_USERNAME_FORMAT/,
    ],
    ['port', { PORT: 'eighty' }, /^invalid PORT/],
    ['max rps', { NAC_MAX_RPS: '-1' }, /^invalid NAC_MAX_RPS/],
    [
      'worker cache',
      { WORKER_MAX_CACHED_WORKFLOWS: '1' },
      /^invalid WORKER_MAX_CACHED_WORKFLOWS: must be 0 \(no cache\) or at least 2/,
    ],
    ['worker cache size', { WORKER_MAX_CACHED_WORKFLOWS: 'lots' }, /^invalid WORKER_MAX_CACHED_WORKFLOWS/],
    ['driver', { NAC_DRIVER: 'fortinac' }, /^invalid NAC_DRIVER/],
    ['url', { NAC_BASE_URL: 'not a url' }, /^invalid NAC_BASE_URL/],
    ['coa', { NAC_COA: 'bounce' }, /^invalid NAC_COA/],
    ['sim profile', { NAC_SIM_PROFILE: 'ise-9.9' }, /^invalid NAC_SIM_PROFILE: must be one of ise-2.7/],
    ['custom attributes', { NAC_ISE_CUSTOM_ATTRIBUTES: 'yes' }, /^invalid NAC_ISE_CUSTOM_ATTRIBUTES/],
    ['admin token', { ADMIN_TOKEN: 'short' }, /^invalid ADMIN_TOKEN: must be at least 16/],
    ['app id', { FEISHU_APP_ID: 'bad id' }, /^invalid FEISHU_APP_ID/],
    ['routes file', { APPROVAL_PLUS_CONFIG: '/nonexistent/routes.yaml' }, /cannot read/],
    ['routes content', { APPROVAL_PLUS_CONFIG: routes('routes:\n  - platform: slack\n') }, /routes\.0\.platform/],
    ['yaml', { APPROVAL_PLUS_CONFIG: routes('routes: [') }, /not valid YAML/],
  ];
  for (const [name, env, msg] of bad) {
    it(`a bad ${name} stops with one line naming it`, () => {
      assert.throws(
        () => loadConfig(env),
        (err: unknown) => err instanceof ConfigError && msg.test(err.message) && !err.message.includes('\n')
      );
    });
  }

  it('never echoes a secret in the error', () => {
    assert.throws(
      () => loadConfig({ ADMIN_TOKEN: 'tiny-secret' }),
      (err: Error) => !err.message.includes('tiny-secret')
    );
  });

  it('the CLI stops with exit code 2 and one line on a bad value', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'approval-plus.mjs'), 'status', 'X'], {
      env: { ...process.env, NAC_MAX_RPS: 'lots' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /invalid NAC_MAX_RPS/);
  });
});
