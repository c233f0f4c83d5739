import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { IntegrationError } from '../domain/errors';
import { type EndpointSnapshot, type GrantTag } from '../nac/adapter';
import { ClearPassAdapter, type ClearPassAdapterOptions } from '../nac/clearpass/adapter';
import { createNacAdapter } from '../nac/index';
import { FILTERLESS_DISCONNECT_DETAIL } from '../simulators/nac/clearpass/sessions';
import { CLEARPASS_DEFAULT_PRIVILEGES, type NacSimProfileName } from '../simulators/nac/profiles';
import { startNacSimulator, type NacSimulator } from '../simulators/nac/server';
import { type SimEndpoint } from '../simulators/nac/store';

/**
 * Aruba ClearPass, adapter and simulator, per version profile: the create-first write path, PATCH attribute
 * semantics and an exact, proven restore, fields 6.11 omits, operator-profile privileges, and Change of
 * Authorization through session control. Requests are counted in the simulator's log.
 */

const CREDS = {
  iseUsername: 'ers-admin',
  isePassword: 'ers-secret',
  clientId: 'approval-plus',
  clientSecret: 'cp-secret',
  whitelistGroup: 'ApprovalPlus-WiFi',
};
const REAUTH = '[Cisco - Reauthenticate Session]';
const TAG: GrantTag = {
  grantId: 'feishu-CP1',
  owner: 'owner-hash-1',
  approvalCode: 'CODE-1',
  expiresAt: '2030-01-01T00:00:00.000Z',
};
const PROFILES: NacSimProfileName[] = ['clearpass-6.11', 'clearpass-6.12'];

let macCounter = 0;
function nextMac(): string {
  macCounter += 1;
  return `00a0c9${macCounter.toString(16).padStart(6, '0')}`;
}

let sim: NacSimulator;

function adapter(o: Partial<ClearPassAdapterOptions> = {}): ClearPassAdapter {
  return new ClearPassAdapter({
    baseUrl: sim.url,
    clientId: CREDS.clientId,
    clientSecret: CREDS.clientSecret,
    timeoutMs: 5000,
    maxRps: 1000,
    reauthProfiles: [REAUTH],
    ...o,
  });
}

/** Requests for one MAC in one area of the ClearPass API. */
function calls(mac: string, area: 'endpoint' | 'session' = 'endpoint') {
  return sim.requests({ mac }).filter((r) => r.area === area);
}
const oauthCalls = () => sim.requests().filter((r) => r.path === '/api/oauth').length;

function recordOf(mac: string): Omit<SimEndpoint, 'updatedAt'> | undefined {
  const ep = sim.store.list().find((e) => e.mac === mac);
  if (!ep) return undefined;
  const { updatedAt: _u, ...rest } = ep;
  return rest;
}

async function rejectsWith(p: Promise<unknown>, kind: IntegrationError['kind']): Promise<IntegrationError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof IntegrationError, `expected IntegrationError(${kind}), got ${String(caught)}`);
  assert.equal(caught.kind, kind, caught.message);
  return caught;
}

/** Raw ClearPass HTTP, as another API client would send it. */
async function raw(
  method: string,
  path: string,
  body?: unknown
): Promise<{ status: number; type: string; json: Record<string, unknown> }> {
  const tokenRes = await fetch(`${sim.url}/api/oauth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      grant_type: 'client_credentials',
      client_id: CREDS.clientId,
      client_secret: CREDS.clientSecret,
    }),
  });
  const { access_token } = (await tokenRes.json()) as { access_token: string };
  const res = await fetch(sim.url + path, {
    method,
    headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', json: text ? JSON.parse(text) : {} };
}

before(async () => {
  sim = await startNacSimulator({ port: 0, ...CREDS, profile: 'clearpass-6.12' });
});

after(async () => {
  await sim.close();
});

function resetSim(profile: NacSimProfileName, knobs: Parameters<NacSimulator['setProfile']>[1] = {}): void {
  sim.store.reset();
  sim.sessions.reset();
  sim.clearFaults();
  sim.setProfile(profile, {
    clearpassPutRequiresProfile: true,
    clearpassPrivileges: [...CLEARPASS_DEFAULT_PRIVILEGES],
    clearpassDeleteMarker: true,
    ...knobs,
  });
  sim.clearRequests();
}

for (const profile of PROFILES) {
  describe(`clearpass adapter on ${profile}`, () => {
    let nac: ClearPassAdapter;

    beforeEach(() => {
      resetSim(profile);
      nac = adapter();
    });
    afterEach(async () => {
      await nac.close();
    });

    it('create-first: one POST per new device, plus the token once', async () => {
      const macs = [nextMac(), nextMac(), nextMac()];
      for (const mac of macs) {
        const res = await nac.createWhitelisted(mac, TAG);
        assert.equal(res.action, 'created');
        assert.deepEqual(res.endpoint.tag, { ...TAG, origin: 'created' });
        assert.deepEqual(
          calls(mac).map((r) => `${r.method} ${r.status}`),
          ['POST 201']
        );
      }
      assert.equal(oauthCalls(), 1);
      assert.equal(sim.requests().length, macs.length + 1);
      const rec = recordOf(macs[0]!)!;
      assert.equal(rec.status, 'Known');
      assert.equal(rec.attributes['ApprovalPlus Origin'], 'created');
    });

    it('exists: the create writes nothing and returns the prior state; ensureWhitelisted(known) is one PATCH', async () => {
      const mac = nextMac();
      sim.store.seed({ mac, status: 'Unknown', attributes: { Location: 'Lab 3F' } });
      const before = recordOf(mac);
      await nac.verify(); // token first, so the counts below are endpoint calls only
      sim.clearRequests();
      const res = await nac.createWhitelisted(mac, TAG);
      assert.equal(res.action, 'exists');
      assert.equal(res.endpoint.tag, undefined);
      assert.equal(res.endpoint.group, 'Unknown');
      assert.deepEqual(recordOf(mac), before, 'nothing written');
      assert.deepEqual(
        calls(mac).map((r) => `${r.method} ${r.status}`),
        ['POST 422', 'GET 200']
      );
      sim.clearRequests();
      const ensured = await nac.ensureWhitelisted(mac, TAG, res.endpoint);
      assert.equal(ensured.action, 'updated');
      assert.deepEqual(ensured.endpoint.tag, { ...TAG, origin: 'existing' });
      assert.deepEqual(
        calls(mac).map((r) => r.method),
        ['PATCH']
      );
      const rec = recordOf(mac)!;
      assert.equal(rec.status, 'Known');
      assert.equal(rec.attributes.Location, 'Lab 3F', 'PATCH merges: the prior attribute stays');
      assert.equal(rec.attributes['ApprovalPlus Grant'], TAG.grantId);
    });

    it('a retry after a create that committed answers created (so undo deletes it)', async () => {
      const slow = adapter({ timeoutMs: 300 });
      try {
        const mac = nextMac();
        sim.setFaults({ hangMs: 10_000, rules: [{ mac, timeoutAfterCommit: true, times: 1 }] });
        await rejectsWith(slow.createWhitelisted(mac, TAG), 'transient');
        assert.ok(recordOf(mac), 'the create committed');
        const retry = await slow.createWhitelisted(mac, TAG);
        assert.equal(retry.action, 'created');
        assert.equal(await slow.restore(mac, null, TAG.grantId), 'deleted');
        assert.equal(recordOf(mac), undefined);
      } finally {
        await slow.close();
      }
    });

    it('restores a pre-existing endpoint exactly (no description, its own attribute) and proves it', async () => {
      const mac = nextMac();
      sim.store.seed({ mac, status: 'Unknown', attributes: { Location: 'Lab 3F' } });
      const before = recordOf(mac);
      const prior = (await nac.createWhitelisted(mac, TAG)).endpoint;
      assert.equal('description' in prior.vendor, false, 'an empty description is omitted');
      await nac.ensureWhitelisted(mac, TAG, prior);
      sim.clearRequests();
      assert.equal(await nac.restore(mac, prior, TAG.grantId), 'restored');
      assert.deepEqual(recordOf(mac), before);
      assert.deepEqual(
        calls(mac).map((r) => r.method),
        ['GET', 'PATCH', 'GET'],
        'read, PATCH, read back'
      );
      const seen = await raw('GET', `/api/endpoint/mac-address/${mac}`);
      assert.deepEqual(seen.json.attributes, { Location: 'Lab 3F' });
      assert.equal('description' in seen.json, false);
      // A retry recognises its own work: one read, no write.
      sim.clearRequests();
      assert.equal(await nac.restore(mac, prior, TAG.grantId), 'restored');
      assert.deepEqual(
        calls(mac).map((r) => r.method),
        ['GET']
      );
    });

    it('an absent and an empty description are the same prior state', async () => {
      const mac = nextMac();
      sim.store.seed({ mac, status: 'Unknown', description: '' });
      const prior = (await nac.lookup(mac))!;
      const withEmpty: EndpointSnapshot = { ...prior, vendor: { ...prior.vendor, description: '' } };
      sim.clearRequests();
      assert.equal(await nac.restore(mac, withEmpty, TAG.grantId), 'restored');
      assert.equal(calls(mac).filter((r) => r.write).length, 0);
    });

    it('restore whose read-back still shows our attributes is transient, and a retry finishes it', async () => {
      const mac = nextMac();
      sim.store.seed({ mac, status: 'Unknown', description: 'Printer 3F', attributes: { Location: 'Lab 3F' } });
      const before = recordOf(mac);
      const prior = (await nac.createWhitelisted(mac, TAG)).endpoint;
      await nac.ensureWhitelisted(mac, TAG, prior);
      // A box on which the delete marker is not one: it stores "--For-Delete--" like a value.
      sim.setProfile(profile, { clearpassDeleteMarker: false });
      const err = await rejectsWith(nac.restore(mac, prior, TAG.grantId), 'transient');
      assert.match(err.message, /ApprovalPlus attributes remained: ApprovalPlus Grant/);
      assert.equal(err.retryable, true);
      assert.equal(recordOf(mac)!.attributes['ApprovalPlus Grant'], '--For-Delete--', 'the box kept the marker');
      assert.equal((await nac.lookup(mac))?.tag, undefined, 'a marker is never read as a tag');
      // The retry on the same box fails the same way, never "skipped": the residue is recognised as ours.
      await rejectsWith(nac.restore(mac, prior, TAG.grantId), 'transient');
      sim.setProfile(profile, { clearpassDeleteMarker: true });
      assert.equal(await nac.restore(mac, prior, TAG.grantId), 'restored');
      assert.deepEqual(recordOf(mac), before);
    });

    it('PATCH answered 304 Not Modified is "no change"', async () => {
      const mac = nextMac();
      sim.store.seed({ mac, status: 'Unknown' });
      const prior = (await nac.lookup(mac))!;
      sim.setFaults({ rules: [{ mac, method: 'PATCH', status: 304, times: 1 }] });
      const res = await nac.ensureWhitelisted(mac, TAG, prior);
      assert.equal(res.action, 'unchanged');
      assert.equal(res.endpoint.group, 'Known');
    });

    it('device_insight_tags (string or array) survive a grant and its restore untouched', async () => {
      for (const tags of ['Printer', ['Printer', 'IoT']]) {
        const mac = nextMac();
        sim.store.seed({ mac, status: 'Unknown', deviceInsightTags: tags });
        const before = recordOf(mac);
        const prior = (await nac.createWhitelisted(mac, TAG)).endpoint;
        assert.deepEqual(prior.vendor.device_insight_tags, tags);
        await nac.ensureWhitelisted(mac, TAG, prior);
        assert.equal(await nac.restore(mac, prior, TAG.grantId), 'restored');
        assert.deepEqual(recordOf(mac), before);
      }
    });

    it(`fields of ${profile}: randomized_mac ${profile === 'clearpass-6.11' ? 'absent' : 'present'}, profile only on request`, async () => {
      const mac = nextMac();
      await nac.createWhitelisted(mac, TAG);
      const snap = (await nac.lookup(mac))!;
      assert.equal('randomized_mac' in snap.vendor, profile === 'clearpass-6.12');
      assert.equal('profile' in snap.vendor, false);
      assert.equal(typeof snap.vendor.id, 'number');
      assert.equal(snap.id, String(snap.vendor.id));
      assert.match(String(snap.vendor.added_at), /^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{2}:\d{2}:\d{2} \w+$/);
      const detailed = await raw('GET', `/api/endpoint/mac-address/${mac}?profile_details=true`);
      assert.equal('profile' in detailed.json, profile === 'clearpass-6.12');
      // 6.11 does not know randomized_mac in requests either.
      const patched = await raw('PATCH', `/api/endpoint/${snap.id}`, { randomized_mac: true });
      assert.equal(patched.status, 200);
      assert.equal(patched.json.randomized_mac, profile === 'clearpass-6.12' ? true : undefined);
    });
  });
}

describe('clearpass simulator: endpoint semantics', () => {
  beforeEach(() => resetSim('clearpass-6.12'));

  it('PATCH merges attributes; "--For-Delete--" deletes one; "" does not; PUT replaces', async () => {
    const mac = nextMac();
    const created = await raw('POST', '/api/endpoint', { mac_address: mac, status: 'Unknown' });
    assert.equal(created.status, 201);
    const id = created.json.id as number;
    await raw('PATCH', `/api/endpoint/${id}`, { attributes: { Location: 'Pester' } });
    let ep = await raw('PATCH', `/api/endpoint/${id}`, { attributes: { 'Disabled by': 'PowerArubaCP' } });
    assert.deepEqual(ep.json.attributes, { Location: 'Pester', 'Disabled by': 'PowerArubaCP' });
    ep = await raw('PATCH', `/api/endpoint/${id}`, { attributes: { Location: '--For-Delete--' } });
    assert.deepEqual(ep.json.attributes, { 'Disabled by': 'PowerArubaCP' });
    ep = await raw('PATCH', `/api/endpoint/${id}`, { attributes: { 'Disabled by': '' } });
    assert.deepEqual(ep.json.attributes, { 'Disabled by': '' }, '"" stores an empty value, it does not delete');
    ep = await raw('PATCH', `/api/endpoint/${id}`, { status: 'Known', description: 'x' });
    assert.deepEqual(ep.json.attributes, { 'Disabled by': '' }, 'a PATCH without attributes keeps them');
    ep = await raw('PUT', `/api/endpoint/${id}`, {
      mac_address: mac,
      status: 'Known',
      profile: { device_category: 'Computer', device_os_family: 'Windows', device_name: 'Windows 10' },
    });
    assert.equal(ep.status, 200);
    assert.deepEqual(ep.json.attributes, {}, 'PUT replaces the attribute map');
    assert.equal('description' in ep.json, false, 'and drops the omitted description');
  });

  it('PATCH can change the MAC, and normalises a separated one', async () => {
    const mac = nextMac();
    const created = await raw('POST', '/api/endpoint', { mac_address: mac, status: 'Unknown' });
    const moved = nextMac();
    const separated = moved.replace(/(..)(?!$)/g, '$1-').toUpperCase();
    const ep = await raw('PATCH', `/api/endpoint/${created.json.id as number}`, { mac_address: separated });
    assert.equal(ep.status, 200);
    assert.equal(ep.json.mac_address, moved);
    assert.equal((await raw('GET', `/api/endpoint/mac-address/${moved}`)).status, 200);
    assert.equal((await raw('GET', `/api/endpoint/mac-address/${mac}`)).status, 404);
  });

  it('6.12 PUT without profile: refused by default, accepted with the knob off; 6.11 never asks', async () => {
    for (const [profile, strict] of [
      ['clearpass-6.12', true],
      ['clearpass-6.12', false],
      ['clearpass-6.11', false],
    ] as const) {
      resetSim(profile, { clearpassPutRequiresProfile: profile === 'clearpass-6.12' ? strict : undefined });
      const mac = nextMac();
      const created = await raw('POST', '/api/endpoint', { mac_address: mac, status: 'Unknown' });
      const put = await raw('PUT', `/api/endpoint/${created.json.id as number}`, { mac_address: mac, status: 'Known' });
      assert.equal(put.status, strict ? 422 : 200, `${profile} strict=${strict}`);
      if (strict) {
        assert.equal(put.type, 'application/problem+json');
        assert.ok((put.json.validation_messages as Record<string, unknown>).profile);
      }
    }
  });

  it('restore on 6.12 never depends on PUT: both knob settings leave no ApprovalPlus attribute', async () => {
    for (const strict of [true, false]) {
      resetSim('clearpass-6.12', { clearpassPutRequiresProfile: strict });
      const nac = adapter();
      try {
        const mac = nextMac();
        sim.store.seed({ mac, status: 'Unknown', attributes: { Location: 'Lab' }, randomizedMac: true });
        const before = recordOf(mac);
        const prior = (await nac.createWhitelisted(mac, TAG)).endpoint;
        await nac.ensureWhitelisted(mac, TAG, prior);
        assert.equal(await nac.restore(mac, prior, TAG.grantId), 'restored');
        const left = Object.keys(recordOf(mac)!.attributes).filter((k) => k.startsWith('ApprovalPlus'));
        assert.deepEqual(left, [], `strict=${strict}`);
        assert.deepEqual(recordOf(mac), before);
        assert.equal(sim.requests({ mac }).filter((r) => r.method === 'PUT').length, 0);
      } finally {
        await nac.close();
      }
    }
  });

  it('speaks ClearPass: content types, the verbatim 404, duplicate create 422, timestamps', async () => {
    const token = await fetch(`${sim.url}/api/oauth`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'client_credentials',
        client_id: CREDS.clientId,
        client_secret: CREDS.clientSecret,
      }),
    });
    assert.equal(token.headers.get('content-type'), 'application/json');
    const body = (await token.json()) as Record<string, unknown>;
    assert.match(String(body.access_token), /^[0-9a-f]{40}$/);
    assert.deepEqual(
      { expires_in: body.expires_in, token_type: body.token_type, scope: body.scope },
      { expires_in: 28800, token_type: 'Bearer', scope: null }
    );
    const badClient = await fetch(`${sim.url}/api/oauth`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: CREDS.clientId, client_secret: 'nope' }),
    });
    assert.equal(badClient.status, 400);
    assert.equal(((await badClient.json()) as { title: string }).title, 'invalid_client');

    const missing = await raw('GET', `/api/endpoint/mac-address/${nextMac()}`);
    assert.equal(missing.status, 404);
    assert.equal(missing.type, 'application/problem+json');
    assert.deepEqual(missing.json, {
      type: 'http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html',
      title: 'Not Found',
      status: 404,
      detail: 'Object not found',
    });
    const mac = nextMac();
    const created = await raw('POST', '/api/endpoint', { mac_address: mac, status: 'Unknown' });
    assert.equal(created.type, 'application/hal+json');
    assert.deepEqual(Object.keys(created.json), [
      'id',
      'mac_address',
      'status',
      'randomized_mac',
      'attributes',
      'added_at',
      'updated_at',
      '_links',
    ]);
    const dup = await raw('POST', '/api/endpoint', { mac_address: mac, status: 'Known' });
    assert.equal(dup.status, 422);
    assert.equal(dup.json.detail, 'Failed Validation');
    assert.ok((dup.json.validation_messages as Record<string, unknown>).mac_address);
    const me = await raw('GET', '/api/oauth/me');
    assert.equal(me.json.name, CREDS.clientId);
    const list = await raw('GET', `/api/endpoint?filter=${encodeURIComponent(JSON.stringify({ mac_address: mac }))}`);
    assert.equal((list.json._embedded as { items: unknown[] }).items.length, 1);
    assert.match(
      (list.json._links as { self: { href: string } }).self.href,
      /\?calculate_count=false&offset=0&limit=25&sort=%2Bid&filter=/
    );
  });
});

describe('clearpass privileges', () => {
  afterEach(() => resetSim('clearpass-6.12'));

  it('read-only endpoints: verify fails with one line naming the operator-profile privilege', async () => {
    resetSim('clearpass-6.12', {
      clearpassPrivileges: ['?api_index', 'api_docs', 'apigility', '#cppm_endpoints', 'guest_sessions'],
    });
    const nac = adapter();
    try {
      const err = await rejectsWith(nac.verify(), 'auth');
      assert.match(err.message, /read-only.*cppm_endpoints/);
      assert.match(err.message, /Administration » API Services » API Clients → the client's Operator Profile/);
      assert.doesNotMatch(err.message, /\n/);
      // The box itself refuses the write the same way.
      const denied = await rejectsWith(nac.createWhitelisted(nextMac(), TAG), 'auth');
      assert.match(denied.message, /HTTP 403 \(Forbidden: Access denied\)/);
      assert.equal(await nac.lookup(nextMac()), null, 'reading still works');
    } finally {
      await nac.close();
    }
  });

  it('no session control: verify warns (CoA would fail) unless NAC_COA is off; the CoA itself is transient', async () => {
    resetSim('clearpass-6.12', { clearpassPrivileges: ['?api_index', 'api_docs', 'apigility', 'cppm_endpoints'] });
    const nac = adapter();
    const off = adapter({ coa: 'off' });
    try {
      const warnings = await nac.verify();
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /Change of Authorization \(NAC_COA=reauth\) would fail/);
      assert.match(warnings[0]!, /guest_sessions/);
      assert.match(warnings[0]!, /Administration » API Services » API Clients/);
      assert.deepEqual(await off.verify(), []);
      const mac = nextMac();
      sim.connect({ mac });
      const err = await rejectsWith(nac.changeOfAuthorization(mac, 'reauth'), 'transient');
      assert.match(err.message, /HTTP 403.*guest_sessions/);
      assert.deepEqual(sim.coa({ mac }), []);
    } finally {
      await nac.close();
      await off.close();
    }
  });

  it('full privileges: verify passes without warnings', async () => {
    resetSim('clearpass-6.12');
    const nac = adapter();
    try {
      assert.deepEqual(await nac.verify(), []);
    } finally {
      await nac.close();
    }
  });
});

for (const profile of PROFILES) {
  describe(`clearpass Change of Authorization on ${profile}`, () => {
    let nac: ClearPassAdapter;

    beforeEach(() => {
      resetSim(profile);
      nac = adapter();
    });
    afterEach(async () => {
      await nac.close();
      // Whatever happened, the adapter never used the filterless route.
      assert.equal(
        sim.requests().filter((r) => /^\/api\/session-action\/(disconnect|coa)(\?|$)/.test(r.path)).length,
        0
      );
    });

    it('reauth after a grant: one session-action request, recorded with the enforcement profile', async () => {
      const mac = nextMac();
      const session = sim.connect({ mac, nasIp: '10.9.9.9' });
      assert.equal(session.authorization.cpStatus, 'Unknown');
      const prior = await nac.createWhitelisted(mac, TAG);
      assert.equal(prior.action, 'exists', 'authenticating made the NAC learn the device');
      await nac.ensureWhitelisted(mac, TAG, prior.endpoint);
      sim.clearRequests();
      assert.deepEqual(await nac.changeOfAuthorization(mac, 'reauth'), { outcome: 'reauthenticated' });
      const req = calls(mac, 'session');
      assert.deepEqual(
        req.map((r) => `${r.method} ${r.path}`),
        [`POST /api/session-action/coa/mac/${mac}?async=false`]
      );
      const coa = sim.coa({ mac });
      assert.equal(coa.length, 1);
      assert.deepEqual(
        { action: coa[0]!.action, detail: coa[0]!.detail, result: coa[0]!.result, nasIp: coa[0]!.nasIp },
        { action: 'reauth', detail: REAUTH, result: 'ok', nasIp: '10.9.9.9' }
      );
      assert.equal(sim.sessions.active(mac)?.authorization.cpStatus, 'Known', 'the session now has the new access');
    });

    it('disconnect after a revoke ends the session', async () => {
      const mac = nextMac();
      sim.connect({ mac });
      assert.deepEqual(await nac.changeOfAuthorization(mac, 'disconnect'), { outcome: 'disconnected' });
      assert.deepEqual(
        calls(mac, 'session').map((r) => r.path),
        [`/api/session-action/disconnect/mac/${mac}?async=false`]
      );
      assert.equal(sim.sessions.active(mac), undefined);
      assert.deepEqual(
        sim.coa({ mac }).map((r) => `${r.action} ${r.result}`),
        ['disconnect ok']
      );
      // The closed session is still listed, with its stop time and state.
      const listed = await raw(
        'GET',
        `/api/session?filter=${encodeURIComponent(JSON.stringify({ mac_address: mac }))}`
      );
      const items = (listed.json._embedded as { items: Array<Record<string, unknown>> }).items;
      assert.equal(items.length, 1);
      assert.equal(items[0]!.state, 'closed');
      assert.ok(items[0]!.acctstoptime);
    });

    it('no session: no-session, and no CoA sent', async () => {
      const never = nextMac();
      assert.deepEqual(await nac.changeOfAuthorization(never, 'reauth'), { outcome: 'no-session' });
      const ended = nextMac();
      sim.connect({ mac: ended });
      await nac.changeOfAuthorization(ended, 'disconnect');
      assert.deepEqual(await nac.changeOfAuthorization(ended, 'disconnect'), { outcome: 'no-session' });
      assert.deepEqual(sim.coa({ mac: never }), []);
      assert.equal(sim.coa({ mac: ended }).length, 1, 'only the first disconnect reached a session');
      assert.equal(calls(never, 'session').length, 1);
    });

    it('a CoA that fails is transient: unknown enforcement profile, 5xx', async () => {
      const mac = nextMac();
      sim.connect({ mac });
      const wrong = adapter({ reauthProfiles: ['[No Such Profile]'] });
      try {
        const err = await rejectsWith(wrong.changeOfAuthorization(mac, 'reauth'), 'transient');
        assert.match(err.message, /failed \(0 of 1 sessions\): Enforcement profile \[No Such Profile\] not found/);
        assert.match(err.message, /reconnect/);
        assert.deepEqual(
          sim.coa({ mac }).map((r) => r.result),
          ['refused']
        );
      } finally {
        await wrong.close();
      }
      sim.setFaults({ rules: [{ mac, area: 'session', status: 503, times: 1 }] });
      await rejectsWith(nac.changeOfAuthorization(mac, 'reauth'), 'transient');
      assert.deepEqual(await nac.changeOfAuthorization(mac, 'reauth'), { outcome: 'reauthenticated' });
    });

    it('an asynchronous 202 answer is not taken for success', async () => {
      const mac = nextMac();
      sim.connect({ mac });
      await nac.verify();
      sim.setFaults({ rules: [{ mac, area: 'session', status: 202, times: 1 }] });
      await rejectsWith(nac.changeOfAuthorization(mac, 'reauth'), 'transient');
    });

    it('reauth without an enforcement profile is a configuration error, sent nowhere', async () => {
      const none = adapter({ reauthProfiles: [] });
      try {
        const err = await rejectsWith(none.changeOfAuthorization(nextMac(), 'reauth'), 'invalid');
        assert.match(err.message, /NAC_CLEARPASS_REAUTH_PROFILE/);
        assert.equal(sim.requests().length, 0);
      } finally {
        await none.close();
      }
    });
  });
}

describe('clearpass simulator: session control', () => {
  beforeEach(() => resetSim('clearpass-6.12'));

  it('the filterless disconnect disconnects every active session, and says so in the CoA log', async () => {
    const macs = [nextMac(), nextMac(), nextMac()];
    for (const mac of macs) sim.connect({ mac });
    const res = await raw('POST', '/api/session-action/disconnect?async=false', {});
    assert.equal(res.status, 200);
    assert.deepEqual(
      { status: res.json.status, count: res.json.count, ok: res.json.count_success },
      { status: 'complete', count: 3, ok: 3 }
    );
    assert.equal(sim.sessions.list({ state: 'active' }).length, 0);
    const log = sim.coa();
    assert.equal(log.length, 3);
    assert.ok(log.every((r) => r.action === 'disconnect' && r.detail === FILTERLESS_DISCONNECT_DETAIL));
  });

  it('by MAC with no session: 200, status failed, count 0', async () => {
    const res = await raw('POST', `/api/session-action/disconnect/mac/${nextMac()}?async=false`, {});
    assert.equal(res.status, 200);
    assert.equal(res.type, 'application/hal+json');
    assert.deepEqual(
      { status: res.json.status, count: res.json.count, count_success: res.json.count_success },
      { status: 'failed', count: 0, count_success: 0 }
    );
    assert.match(String(res.json.action_id), /^async_action_\d+$/);
    assert.match((res.json._links as { self: { href: string } }).self.href, /session-action\/disconnect%2Fmac%2F/);
  });

  it('lists sessions (active filter, default sort -id), disconnects and reauthorizes one by id', async () => {
    const mac = nextMac();
    const first = sim.connect({ mac });
    await raw('POST', `/api/session-action/disconnect/mac/${mac}?async=false`, {});
    const second = sim.connect({ mac });
    const all = await raw('GET', `/api/session?filter=${encodeURIComponent(JSON.stringify({ mac_address: mac }))}`);
    const items = (all.json._embedded as { items: Array<Record<string, unknown>> }).items;
    assert.deepEqual(
      items.map((i) => [i.id, i.state]),
      [
        [second.id, 'active'],
        [first.id, 'closed'],
      ]
    );
    const activeFilter = { mac_address: mac, acctstoptime: { $exists: false } };
    const active = await raw('GET', `/api/session?filter=${encodeURIComponent(JSON.stringify(activeFilter))}`);
    assert.deepEqual(
      (active.json._embedded as { items: Array<{ id: string }> }).items.map((i) => i.id),
      [second.id]
    );
    const one = await raw('GET', `/api/session/${first.id}`);
    assert.deepEqual([one.json.mac_address, one.json.state], [mac, 'closed']);
    assert.equal((await raw('GET', '/api/session/NO-SUCH-SESSION')).json.detail, 'Object not found');
    const orFilter = { $or: [{ mac_address: mac }, { username: 'x' }] };
    assert.equal((await raw('GET', `/api/session?filter=${encodeURIComponent(JSON.stringify(orFilter))}`)).status, 422);

    const profiles = await raw('GET', `/api/session/${second.id}/reauthorize`);
    assert.ok((profiles.json.profiles as string[]).includes(REAUTH));
    const reauth = await raw('POST', `/api/session/${second.id}/reauthorize`, {
      confirm_reauthorize: true,
      reauthorize_profile: REAUTH,
    });
    assert.deepEqual(reauth.json, { error: 0, message: 'Success' });
    const unconfirmed = await raw('POST', `/api/session/${second.id}/disconnect`, { id: second.id });
    assert.equal(unconfirmed.status, 400);
    const done = await raw('POST', `/api/session/${second.id}/disconnect`, { id: second.id, confirm_disconnect: true });
    assert.deepEqual(done.json, { error: 0, message: 'Success' });
    assert.equal(sim.sessions.active(mac), undefined);
    assert.deepEqual(
      sim.coa({ mac }).map((r) => `${r.action} ${r.detail}`),
      ['disconnect session-action disconnect', `reauth ${REAUTH}`, 'disconnect session disconnect']
    );
  });

  it('async=true queues: 202 with the action id, whose outcome GET /api/session-action/{id} reads', async () => {
    const mac = nextMac();
    sim.connect({ mac });
    const queued = await raw('POST', `/api/session-action/coa/mac/${mac}?async=true`, {
      enforcement_profile: [REAUTH],
    });
    assert.equal(queued.status, 202);
    const state = await raw('GET', `/api/session-action/${String(queued.json.action_id)}`);
    assert.deepEqual(
      { status: state.json.status, count_success: state.json.count_success },
      { status: 'complete', count_success: 1 }
    );
  });

  it('read-only session history lists sessions but cannot act on them (403 Access denied)', async () => {
    resetSim('clearpass-6.12', { clearpassPrivileges: ['cppm_endpoints', '#guest_sessions_history'] });
    const mac = nextMac();
    sim.connect({ mac });
    assert.equal((await raw('GET', '/api/session')).status, 200);
    const denied = await raw('POST', `/api/session-action/disconnect/mac/${mac}?async=false`, {});
    assert.equal(denied.status, 403);
    assert.equal(denied.json.detail, 'Access denied');
    assert.ok(sim.sessions.active(mac));
    resetSim('clearpass-6.12', { clearpassPrivileges: ['cppm_endpoints'] });
    assert.equal((await raw('GET', '/api/session')).status, 403);
  });

  it('CoA without an enforcement profile is refused (422)', async () => {
    const mac = nextMac();
    sim.connect({ mac });
    const res = await raw('POST', `/api/session-action/coa/mac/${mac}?async=false`, {});
    assert.equal(res.status, 422);
    assert.deepEqual(sim.coa({ mac }), []);
  });
});

describe('clearpass simulator control API', () => {
  it('POST /_sim/profile sets the ClearPass knobs (kept across profile changes); malformed ones are 400', async () => {
    resetSim('clearpass-6.12');
    const post = async (body: unknown) =>
      fetch(`${sim.url}/_sim/profile`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const set = await post({
      profile: 'clearpass-6.12',
      clearpassPutRequiresProfile: false,
      clearpassPrivileges: ['cppm_endpoints'],
      clearpassDeleteMarker: false,
    });
    assert.equal(set.status, 200);
    const clearpass = ((await set.json()) as { clearpass: Record<string, unknown> }).clearpass;
    assert.deepEqual(clearpass, {
      version: '6.12',
      putRequiresProfile: false,
      privileges: ['cppm_endpoints'],
      deleteMarker: false,
    });
    const to611 = (await (await post({ profile: 'clearpass-6.11' })).json()) as { clearpass: Record<string, unknown> };
    assert.deepEqual(to611.clearpass.privileges, ['cppm_endpoints']);
    assert.equal(to611.clearpass.putRequiresProfile, false, '6.11 never requires profile');
    assert.equal((await post({ clearpassPrivileges: 'cppm_endpoints' })).status, 400);
    assert.equal((await post({ clearpassDeleteMarker: 'yes' })).status, 400);
    resetSim('clearpass-6.12');
  });
});

describe('clearpass factory', () => {
  it('NAC_DRIVER=sim with a ClearPass profile: the ClearPass adapter, reported as sim, with the reauth profiles', async () => {
    resetSim('clearpass-6.12');
    const nac = createNacAdapter({
      driver: 'sim',
      baseUrl: sim.url,
      clientId: CREDS.clientId,
      clientSecret: CREDS.clientSecret,
      iseGroup: CREDS.whitelistGroup,
      maxRps: 100,
      timeoutMs: 5000,
      tlsInsecure: false,
      coa: 'reauth',
      iseMntUrl: sim.url,
      iseOpenApiUrl: sim.url,
      iseCustomAttributes: 'auto',
      clearpassReauthProfiles: [REAUTH],
      simProfile: 'clearpass-6.12',
      simIseCsrf: false,
    });
    try {
      assert.ok(nac instanceof ClearPassAdapter);
      assert.equal(nac.driver, 'sim');
      assert.deepEqual(await nac.verify(), []);
      const mac = nextMac();
      sim.connect({ mac });
      assert.deepEqual(await nac.changeOfAuthorization(mac, 'reauth'), { outcome: 'reauthenticated' });
      assert.equal(sim.coa({ mac })[0]?.detail, REAUTH);
    } finally {
      await nac.close?.();
    }
  });
});
