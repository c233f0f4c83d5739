import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { type AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { IntegrationError } from '../domain/errors';
import { type EndpointSnapshot, type GrantTag } from '../nac/adapter';
import { IseAdapter, ISE_BLOCK_GROUP_ID, type IseAdapterOptions } from '../nac/ise/adapter';
import { allTagAttributeNames } from '../nac/tag';
import { type NacSimProfileName, type ProfileKnobs } from '../simulators/nac/profiles';
import { startNacSimulator, type NacSimulator } from '../simulators/nac/server';
import { type SimEndpoint } from '../simulators/nac/store';

/**
 * Cisco ISE, simulator and adapter, per version profile (ise-2.7, ise-3.3): ERS sessions and CSRF, node and account
 * roles, the block group, custom attributes, restore exactness, paging, error classification, the create-first path,
 * MnT sessions and CoA. Assertions count requests in the simulator's log (and, where the body matters, in a
 * recording proxy in front of it), never time.
 */

const CREDS = {
  iseUsername: 'ers-admin',
  isePassword: 'ers-secret',
  clientId: 'approval-plus',
  clientSecret: 'cp-secret',
  whitelistGroup: 'ApprovalPlus-WiFi',
};
const TAG: GrantTag = {
  grantId: 'feishu-ISE1',
  owner: 'owner-hash-1',
  approvalCode: 'CODE-1',
  expiresAt: '2030-01-01T00:00:00.000Z',
};
const PROFILES: NacSimProfileName[] = ['ise-2.7', 'ise-3.3'];
/** Every ISE knob at its default, so each test starts from the same box. */
const DEFAULT_KNOBS: ProfileKnobs = {
  iseCsrf: false,
  iseNode: 'pan',
  iseAccount: 'admin',
  iseSessionIdleMs: 60_000,
  iseCustomAttributes: [],
  iseUndefinedCustomAttributes: 'drop',
};
const AUTH = 'Basic ' + Buffer.from(`${CREDS.iseUsername}:${CREDS.isePassword}`).toString('base64');
const UPPER_MAC_PATH = /\/([0-9A-F]{2}:){5}[0-9A-F]{2}(\/|$)/;

let sim: NacSimulator;
let macCounter = 0;
const nextMac = () => `0050c3${(++macCounter).toString(16).padStart(6, '0')}`;
const upper = (mac: string) => mac.toUpperCase().replace(/(..)(?!$)/g, '$1:');

function adapter(o: Partial<IseAdapterOptions> & { url?: string } = {}): IseAdapter {
  const url = o.url ?? sim.url;
  return new IseAdapter({
    baseUrl: url,
    mntUrl: url,
    openApiUrl: url,
    username: CREDS.iseUsername,
    password: CREDS.isePassword,
    group: CREDS.whitelistGroup,
    timeoutMs: 5000,
    maxRps: 1000,
    ...o,
  });
}

async function using<T>(nac: IseAdapter, fn: (nac: IseAdapter) => Promise<T>): Promise<T> {
  try {
    return await fn(nac);
  } finally {
    await nac.close();
  }
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

function recordOf(mac: string): Omit<SimEndpoint, 'updatedAt'> | undefined {
  const ep = sim.store.list().find((e) => e.mac === mac);
  if (!ep) return undefined;
  const { updatedAt: _u, ...rest } = ep;
  return rest;
}

/** The ERS requests (the custom-attribute definitions are read once per adapter, on the OpenAPI). */
const ersLog = () => sim.requests().filter((r) => r.area === 'ers');
const tokenFetches = () =>
  sim.requests().filter((r) => r.method === 'GET' && r.path.endsWith('/versioninfo') && r.area === 'ers').length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Talk to the simulator directly (what a real ISE would answer a hand-made request). */
function ise(path: string, init: { method?: string; headers?: Record<string, string>; body?: unknown } = {}) {
  return fetch(sim.url + path, {
    method: init.method ?? 'GET',
    headers: {
      authorization: AUTH,
      accept: 'application/json',
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
}

interface Proxy {
  url: string;
  /** Every request as the simulator received it, with its JSON body. */
  seen: Array<{ method: string; path: string; body: unknown }>;
  close(): Promise<void>;
}

/**
 * A recording proxy in front of the simulator: what the adapter really sent (bodies), and a hook that may rewrite
 * an answer or act between two requests (e.g. shrink the list while the adapter pages).
 */
async function startProxy(
  onResponse?: (req: { method: string; path: string }, status: number, text: string) => string | void
): Promise<Proxy> {
  const seen: Proxy['seen'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = raw ? JSON.parse(raw) : undefined;
        } catch {
          body = raw;
        }
        const method = req.method ?? 'GET';
        const path = req.url ?? '/';
        seen.push({ method, path, body });
        const upstream = await fetch(sim.url + path, {
          method,
          headers: forwardable(req.headers),
          ...(raw && method !== 'GET' ? { body: raw } : {}),
        });
        let text = await upstream.text();
        text = onResponse?.({ method, path }, upstream.status, text) ?? text;
        const headers: Record<string, string | string[]> = {};
        upstream.headers.forEach((v, k) => {
          if (!['set-cookie', 'content-length', 'transfer-encoding', 'connection', 'keep-alive'].includes(k)) {
            headers[k] = v;
          }
        });
        const cookies = upstream.headers.getSetCookie();
        if (cookies.length) headers['set-cookie'] = cookies;
        res.writeHead(upstream.status, headers);
        res.end(text);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function forwardable(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length'].includes(k)) continue;
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

function putBodies(proxy: Proxy): Array<Record<string, unknown>> {
  return proxy.seen
    .filter((r) => r.method === 'PUT')
    .map((r) => (r.body as { ERSEndPoint: Record<string, unknown> }).ERSEndPoint);
}

before(async () => {
  sim = await startNacSimulator({ port: 0, ...CREDS });
});

after(async () => {
  await sim.close();
});

function resetSim(profile: NacSimProfileName, knobs: ProfileKnobs = {}): void {
  sim.store.reset();
  sim.sessions.reset();
  sim.clearFaults();
  sim.setProfile(profile, { ...DEFAULT_KNOBS, ...knobs });
  sim.clearRequests();
}

for (const profile of PROFILES) {
  describe(`ISE ${profile}`, () => {
    beforeEach(() => resetSim(profile));

    describe('ERS sessions and CSRF', () => {
      it('works with the CSRF check off and on, the same adapter, no configuration', async () => {
        await using(adapter(), async (nac) => {
          const a = nextMac();
          assert.equal((await nac.createWhitelisted(a, TAG)).action, 'created');
          assert.deepEqual(
            ersLog().map((r) => `${r.method} ${r.status}`),
            ['GET 200', 'POST 201'], // the whitelist group once, then one POST
            'CSRF off: no token is ever fetched'
          );

          sim.setProfile(profile, { iseCsrf: true });
          sim.clearRequests();
          const b = nextMac();
          assert.equal((await nac.createWhitelisted(b, TAG)).action, 'created');
          // ISE asks for the token by refusing the write; the adapter fetches it in the same session and retries.
          assert.deepEqual(
            sim.requests().map((r) => `${r.method} ${r.path.split('?')[0]} ${r.status}`),
            [
              'POST /ers/config/endpoint 403',
              'GET /ers/config/endpoint/versioninfo 200',
              'POST /ers/config/endpoint 201',
            ]
          );
          sim.clearRequests();
          await nac.createWhitelisted(nextMac(), TAG);
          assert.deepEqual(
            sim.requests().map((r) => `${r.method} ${r.status}`),
            ['POST 201'],
            'the token is reused: one request per new device again'
          );

          sim.setProfile(profile, { iseCsrf: false });
          sim.clearRequests();
          assert.equal((await nac.createWhitelisted(nextMac(), TAG)).action, 'created');
          assert.equal(sim.requests().length, 1, 'switching the check off again costs nothing');
        });
      });

      it('CSRF on: a session expired mid-burst costs one token fetch; every concurrent write succeeds', async () => {
        sim.setProfile(profile, { iseCsrf: true });
        await using(adapter(), async (nac) => {
          const first = Array.from({ length: 5 }, nextMac);
          await Promise.all(first.map((m) => nac.createWhitelisted(m, TAG)));
          assert.equal(tokenFetches(), 1);
          sim.clearRequests();
          sim.expireTokens(); // ISE dropped the session: its cookies and token are dead
          const burst = Array.from({ length: 20 }, nextMac);
          const results = await Promise.all(burst.map((m) => nac.createWhitelisted(m, TAG)));
          assert.ok(results.every((r) => r.action === 'created'));
          for (const m of [...first, ...burst]) assert.ok(recordOf(m), `${m} created`);
          const log = sim.requests();
          const refused = log.filter((r) => r.status === 403).length;
          assert.equal(tokenFetches(), 1, 'one refetch for the whole burst');
          assert.ok(refused >= 1 && refused <= burst.length, `refused ${refused}`);
          assert.equal(log.filter((r) => r.method === 'POST' && r.status === 201).length, burst.length);
          assert.equal(log.length, burst.length + refused + 1, 'each refused write retried exactly once');
        });
      });

      it('CSRF on: a session idle past ISE’s time-out is recovered (refused write, one fetch, retry)', async () => {
        sim.setProfile(profile, { iseCsrf: true, iseSessionIdleMs: 200 });
        await using(adapter(), async (nac) => {
          await nac.createWhitelisted(nextMac(), TAG);
          await sleep(300);
          sim.clearRequests();
          assert.equal((await nac.createWhitelisted(nextMac(), TAG)).action, 'created');
          assert.deepEqual(
            sim.requests().map((r) => `${r.method} ${r.status}`),
            ['POST 403', 'GET 200', 'POST 201']
          );
        });
      });

      it('CSRF on: a session idle near the time-out is replaced before the write (no refused write)', async () => {
        sim.setProfile(profile, { iseCsrf: true, iseSessionIdleMs: 200 });
        await using(adapter({ sessionIdleMs: 200 }), async (nac) => {
          await nac.createWhitelisted(nextMac(), TAG);
          await sleep(300);
          sim.clearRequests();
          assert.equal((await nac.createWhitelisted(nextMac(), TAG)).action, 'created');
          assert.deepEqual(
            sim.requests().map((r) => `${r.method} ${r.status}`),
            ['GET 200', 'POST 201']
          );
        });
      });

      it('a CSRF refusal that survives the retry is transient, never auth', async () => {
        sim.setProfile(profile, { iseCsrf: true });
        const mac = nextMac();
        sim.setFaults({ rules: [{ mac, method: 'POST', status: 403, detail: 'CSRF nonce validation failed' }] });
        await using(adapter(), async (nac) => {
          const err = await rejectsWith(nac.createWhitelisted(mac, TAG), 'transient');
          assert.equal(err.retryable, true);
          assert.match(err.message, /CSRF/);
          assert.equal(sim.requests({ mac }).filter((r) => r.method === 'POST').length, 2, 'one retry');
        });
      });

      it('the simulator: cookies on a cookie-less request only, token only on a fetch, 403 page without it', async () => {
        sim.setProfile(profile, { iseCsrf: true });
        const first = await ise('/ers/config/deploymentinfo/versioninfo', { headers: { 'x-csrf-token': 'fetch' } });
        assert.equal(first.status, 200);
        const cookies = first.headers.getSetCookie();
        assert.equal(cookies.length, 2);
        assert.match(cookies[0]!, /^JSESSIONIDSSO=[0-9A-F]{32}; Path=\/; Secure; HttpOnly$/);
        assert.match(cookies[1]!, /^APPSESSIONID=[0-9A-F]{32}; Path=\/ers; Secure; HttpOnly$/);
        const token = first.headers.get('x-csrf-token');
        assert.ok(token);
        assert.deepEqual(await first.json(), {
          VersionInfo: {
            currentServerVersion: '1.0',
            supportedVersions: '1.0',
            link: { rel: 'self', href: `${sim.url}/ers/config/deploymentinfo/versioninfo`, type: 'application/json' },
          },
        });
        const cookie = cookies.map((c) => c.split(';')[0]).join('; ');
        const again = await ise('/ers/config/endpoint/versioninfo', { headers: { cookie } });
        assert.equal(again.headers.getSetCookie().length, 0, 'a known session gets no Set-Cookie');
        assert.equal(again.headers.get('content-type'), 'application/json;charset=utf-8');
        const v = (await again.json()) as { VersionInfo: { currentServerVersion: string } };
        assert.equal(v.VersionInfo.currentServerVersion, profile === 'ise-2.7' ? '1.2' : '1.3');
        const body = { ERSEndPoint: { mac: upper(nextMac()), groupId: sim.whitelistGroupId } };
        const noToken = await ise('/ers/config/endpoint', { method: 'POST', headers: { cookie }, body });
        assert.equal(noToken.status, 403);
        assert.match(noToken.headers.get('content-type') ?? '', /text\/html/);
        assert.match(await noToken.text(), /CSRF nonce validation failed.*<h1>\[ 403 \] <\/h1>/s);
        const otherSession = await ise('/ers/config/endpoint', {
          method: 'POST',
          headers: { 'x-csrf-token': token },
          body,
        });
        assert.equal(otherSession.status, 403, 'a token is bound to the session that fetched it');
        const good = await ise('/ers/config/endpoint', {
          method: 'POST',
          headers: { cookie, 'x-csrf-token': token },
          body,
        });
        assert.equal(good.status, 201);
      });
    });

    describe('the block group', () => {
      it(`a blocked device is refused and left blocked (${profile === 'ise-2.7' ? 'Blacklist' : 'Blocked List'})`, async () => {
        const name = profile === 'ise-2.7' ? 'Blacklist' : 'Blocked List';
        assert.equal(sim.store.groupById(ISE_BLOCK_GROUP_ID)?.name, name);
        const mac = nextMac();
        sim.store.seed({ mac, groupId: ISE_BLOCK_GROUP_ID, description: 'stolen laptop' });
        const before = recordOf(mac);
        await using(adapter(), async (nac) => {
          const found = await nac.createWhitelisted(mac, TAG);
          assert.equal(found.action, 'exists');
          const err = await rejectsWith(nac.ensureWhitelisted(mac, TAG, found.endpoint), 'conflict');
          assert.match(err.message, new RegExp(`${name}.*never lifts a security block`));
          assert.deepEqual(recordOf(mac), before);
          assert.equal(sim.requests({ mac }).filter((r) => r.method === 'PUT').length, 0);
        });
      });

      it('no block group on the box: verify() says the block check cannot run', async () => {
        assert.ok(sim.store.deleteGroup(ISE_BLOCK_GROUP_ID));
        await using(adapter(), async (nac) => {
          const warnings = await nac.verify();
          assert.ok(
            warnings.some((w) => /no ISE block group found.*cannot run/.test(w)),
            warnings.join('\n')
          );
        });
      });
    });

    describe('verify()', () => {
      it('passes on a writable PAN, with CSRF off and on (not an error)', async () => {
        for (const iseCsrf of [false, true]) {
          sim.setProfile(profile, { iseCsrf, iseCustomAttributes: allTagAttributeNames('') });
          await using(adapter(), async (nac) => {
            const warnings = await nac.verify();
            assert.deepEqual(
              warnings.filter((w) => !/custom attribute/.test(w)),
              []
            );
          });
        }
      });

      it('an ERS Operator account: one line naming the ERS Admin fix (CSRF on or off)', async () => {
        for (const iseCsrf of [false, true]) {
          sim.setProfile(profile, { iseAccount: 'operator', iseCsrf });
          await using(adapter(), async (nac) => {
            const err = await rejectsWith(nac.verify(), 'auth');
            assert.match(err.message, /may only read \(ERS Operator\).*ERS Admin/);
            assert.doesNotMatch(err.message, /CSRF|Primary Administration Node/);
          });
        }
      });

      it('a PSN: one line naming the PAN to point NAC_BASE_URL at (CSRF on or off)', async () => {
        for (const iseCsrf of [false, true]) {
          sim.setProfile(profile, { iseNode: 'psn', iseCsrf });
          await using(adapter(), async (nac) => {
            const err = await rejectsWith(nac.verify(), 'invalid');
            assert.match(err.message, /ise-psn-1, which is not the Primary Administration Node/);
            assert.match(err.message, /NAC_BASE_URL at the PAN \(ise-pan-1\.example\.com\)/);
          });
        }
      });

      it('a grant meeting an Operator account or a PSN fails fast (auth / invalid), never retried', async () => {
        sim.setProfile(profile, { iseAccount: 'operator' });
        await using(adapter(), async (nac) => {
          const err = await rejectsWith(nac.createWhitelisted(nextMac(), TAG), 'auth');
          assert.match(err.message, /ERS Admin.*Primary Administration Node/);
        });
        sim.setProfile(profile, { iseAccount: 'admin', iseNode: 'psn' });
        await using(adapter(), async (nac) => {
          assert.equal((await rejectsWith(nac.createWhitelisted(nextMac(), TAG), 'invalid')).retryable, false);
        });
      });

      it('the whitelist group missing, bad credentials, ERS unreachable: each its own line', async () => {
        await using(adapter({ group: 'No-Such-Group' }), async (nac) => {
          assert.match(
            (await rejectsWith(nac.verify(), 'invalid')).message,
            /"No-Such-Group" does not exist.*NAC_ISE_GROUP/
          );
        });
        await using(adapter({ password: 'wrong-password' }), async (nac) => {
          const err = await rejectsWith(nac.verify(), 'auth');
          assert.match(err.message, /NAC_USERNAME\/NAC_PASSWORD/);
          assert.doesNotMatch(err.message, /wrong-password|ers-secret/);
        });
        const gone = await startNacSimulator({ port: 0, ...CREDS });
        const url = gone.url;
        await gone.close();
        await using(adapter({ url, timeoutMs: 2000 }), async (nac) => {
          assert.match((await rejectsWith(nac.verify(), 'transient')).message, /ERS is not reachable.*NAC_BASE_URL/);
        });
      });

      it('MnT refusing the account is a warning naming the roles (CoA on)', async () => {
        await using(adapter({ coa: 'reauth', mntPassword: 'wrong' }), async (nac) => {
          const warnings = await nac.verify();
          assert.ok(
            warnings.some((w) => /Change of Authorization will fail.*Super Admin, System Admin or MnT Admin/.test(w)),
            warnings.join('\n')
          );
        });
        await using(adapter({ coa: 'reauth' }), async (nac) => {
          assert.ok(!(await nac.verify()).some((w) => /Change of Authorization/.test(w)));
        });
      });
    });

    describe('custom attributes', () => {
      it('auto, none defined: a warning saying how to create them; writes carry the description only', async () => {
        const proxy = await startProxy();
        try {
          await using(adapter({ url: proxy.url }), async (nac) => {
            const warnings = await nac.verify();
            const line = warnings.find((w) => /custom attribute/.test(w));
            assert.ok(line, warnings.join('\n'));
            if (profile === 'ise-3.3') {
              assert.match(
                line,
                /ApprovalPlusGrant.*are not defined.*Endpoint Custom Attributes.*NAC_ISE_CUSTOM_ATTRIBUTES=create/
              );
            } else {
              assert.match(line, /ISE before 3\.3.*description alone/);
            }
            const mac = nextMac();
            await nac.createWhitelisted(mac, TAG);
            const post = proxy.seen.find((r) => r.method === 'POST')!.body as {
              ERSEndPoint: { customAttributes: { customAttributes: object }; description: string };
            };
            assert.deepEqual(post.ERSEndPoint.customAttributes, { customAttributes: {} });
            assert.match(post.ERSEndPoint.description, /^ApprovalPlus grant=feishu-ISE1/);
            assert.deepEqual((await nac.lookup(mac))?.tag, { ...TAG, origin: 'created' });
          });
        } finally {
          await proxy.close();
        }
      });

      for (const behaviour of ['drop', 'reject'] as const) {
        it(`undefined attributes are never sent (the box ${behaviour}s them); defined ones are`, async () => {
          sim.setProfile(profile, {
            iseUndefinedCustomAttributes: behaviour,
            iseCustomAttributes: ['ApprovalPlusGrant', 'ApprovalPlusOwner'],
          });
          const proxy = await startProxy();
          try {
            await using(adapter({ url: proxy.url }), async (nac) => {
              const fresh = nextMac();
              assert.equal((await nac.createWhitelisted(fresh, TAG)).action, 'created');
              const existing = nextMac();
              sim.store.seed({ mac: existing, group: 'Profiled' });
              const found = await nac.createWhitelisted(existing, TAG);
              assert.equal((await nac.ensureWhitelisted(existing, TAG, found.endpoint)).action, 'updated');
              const sent = proxy.seen
                .filter((r) => r.method === 'POST' || r.method === 'PUT')
                .filter((r) => r.path.startsWith('/ers/'))
                .map(
                  (r) => (r.body as { ERSEndPoint: { customAttributes: { customAttributes: object } } }).ERSEndPoint
                );
              assert.equal(sent.length, 3);
              const expected =
                profile === 'ise-3.3'
                  ? { ApprovalPlusGrant: TAG.grantId, ApprovalPlusOwner: TAG.owner } // detected via the OpenAPI
                  : {}; // 2.7 has no OpenAPI: description only
              for (const body of sent) assert.deepEqual(body.customAttributes.customAttributes, expected);
              assert.deepEqual(recordOf(fresh)?.customAttributes, expected);
            });
          } finally {
            await proxy.close();
          }
        });
      }

      it('the simulator drops or rejects an undefined attribute as the knob says', async () => {
        const post = (mac: string) =>
          ise('/ers/config/endpoint', {
            method: 'POST',
            body: { ERSEndPoint: { mac: upper(mac), customAttributes: { customAttributes: { Nope: 'x' } } } },
          });
        const dropped = nextMac();
        assert.equal((await post(dropped)).status, 201);
        assert.deepEqual(recordOf(dropped)?.customAttributes, {});
        sim.setProfile(profile, { iseUndefinedCustomAttributes: 'reject' });
        const rejected = await post(nextMac());
        assert.equal(rejected.status, 400);
        const e = (await rejected.json()) as { ERSResponse: { messages: Array<{ title: string }> } };
        assert.match(e.ERSResponse.messages[0]!.title, /^Validation Error - .*not defined: Nope/);
      });

      if (profile === 'ise-3.3') {
        it('create mode defines the missing ones (String) and then uses them', async () => {
          sim.setProfile(profile, { iseCustomAttributes: ['ApprovalPlusGrant'] });
          await using(adapter({ customAttributes: 'create' }), async (nac) => {
            assert.ok(!(await nac.verify()).some((w) => /custom attribute/.test(w)));
            const defined = (await (await ise('/api/v1/endpoint-custom-attribute')).json()) as Array<{
              attributeName: string;
              attributeType: string;
            }>;
            assert.deepEqual(defined.map((d) => d.attributeName).sort(), allTagAttributeNames('').sort());
            assert.ok(defined.every((d) => d.attributeType === 'String'));
            const creates = sim.requests().filter((r) => r.area === 'openapi' && r.method === 'POST');
            assert.equal(creates.length, 4, 'only the missing four');
            const mac = nextMac();
            await nac.createWhitelisted(mac, TAG);
            assert.equal(recordOf(mac)?.customAttributes.ApprovalPlusGrant, TAG.grantId);
            assert.equal(recordOf(mac)?.customAttributes.ApprovalPlusOrigin, 'created');
          });
        });

        it('off mode never asks the OpenAPI and sends no attributes', async () => {
          sim.setProfile(profile, { iseCustomAttributes: allTagAttributeNames('') });
          await using(adapter({ customAttributes: 'off' }), async (nac) => {
            assert.deepEqual(await nac.verify(), []);
            const mac = nextMac();
            await nac.createWhitelisted(mac, TAG);
            assert.deepEqual(recordOf(mac)?.customAttributes, {});
            assert.equal(sim.requests().filter((r) => r.area === 'openapi').length, 0);
          });
        });

        it('the OpenAPI definitions: list, create, duplicate', async () => {
          assert.deepEqual(await (await ise('/api/v1/endpoint-custom-attribute')).json(), []);
          const body = { attributeName: 'AssetTag', attributeType: 'String' };
          const created = await ise('/api/v1/endpoint-custom-attribute', { method: 'POST', body });
          assert.equal(created.status, 200);
          assert.equal(await created.json(), 'Added Custom Attribute successfully');
          assert.equal((await ise('/api/v1/endpoint-custom-attribute', { method: 'POST', body })).status, 400);
          assert.deepEqual(await (await ise('/api/v1/endpoint-custom-attribute')).json(), [body]);
        });
      } else {
        it('2.7 has no OpenAPI: /api/v1/endpoint-custom-attribute is 404', async () => {
          assert.equal((await ise('/api/v1/endpoint-custom-attribute')).status, 404);
        });
      }
    });

    describe('endpoint shapes and restore exactness', () => {
      it('GET returns the fields this version returns', async () => {
        const mac = nextMac();
        sim.store.seed({ mac, group: 'Profiled' });
        const ep = ((await (await ise(`/ers/config/endpoint/name/${upper(mac)}`)).json()) as { ERSEndPoint: object })
          .ERSEndPoint;
        const keys = Object.keys(ep);
        if (profile === 'ise-2.7') {
          assert.deepEqual(keys, [
            'id',
            'name',
            'description',
            'mac',
            'profileId',
            'staticProfileAssignment',
            'groupId',
            'staticGroupAssignment',
            'portalUser',
            'identityStore',
            'identityStoreId',
            'link',
          ]);
        } else {
          assert.deepEqual(keys, [
            'id',
            'name',
            'mac',
            'profileId',
            'staticProfileAssignment',
            'staticProfileAssignmentDefined',
            'groupId',
            'staticGroupAssignment',
            'staticGroupAssignmentDefined',
            'portalUser',
            'identityStore',
            'identityStoreId',
            'customAttributes',
            'link',
          ]);
        }
      });

      it('PUT answers UpdatedFieldsList with strings; customAttributes listed whenever sent; identityStore ignored', async () => {
        const mac = nextMac();
        const seeded = sim.store.seed({ mac, group: 'Profiled', identityStore: 'ipsk-mgr-01' });
        const res = await ise(`/ers/config/endpoint/${seeded.id}`, {
          method: 'PUT',
          body: {
            ERSEndPoint: {
              id: seeded.id,
              staticGroupAssignment: true,
              identityStore: 'changed',
              identityStoreId: 'changed',
              customAttributes: { customAttributes: {} },
            },
          },
        });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), {
          UpdatedFieldsList: {
            updatedField: [
              { field: 'staticGroupAssignment', oldValue: 'false', newValue: 'true' },
              { field: 'customAttributes', oldValue: '{}', newValue: '{}' },
            ],
          },
        });
        assert.equal(recordOf(mac)?.identityStore, 'ipsk-mgr-01', 'read-only: ignored');
        const noId = await ise(`/ers/config/endpoint/${seeded.id}`, { method: 'PUT', body: { ERSEndPoint: {} } });
        assert.equal(noId.status, 400);
        const e = (await noId.json()) as { ERSResponse: { messages: Array<{ title: string }> } };
        assert.equal(e.ERSResponse.messages[0]!.title, 'Validation Error - Mandatory fields missing: [Id,]');
      });

      it('restore puts back exactly the fields the prior GET returned, never the read-only ones', async () => {
        sim.setProfile(profile, { iseCustomAttributes: ['AssetTag'] });
        const mac = nextMac();
        sim.store.seed({
          mac,
          group: 'Profiled',
          description: 'Printer 3F',
          profileId: 'prof-printer',
          identityStore: 'ipsk-mgr-01',
          identityStoreId: '6b3b2c3e-0000-4000-8000-000000000001',
          customAttributes: { AssetTag: 'A-100' },
          ...(profile === 'ise-3.3'
            ? { ise: { staticGroupAssignmentDefined: false, mdmAttributes: { mdmServerName: 'Intune' } } }
            : {}),
        });
        const before = recordOf(mac);
        const proxy = await startProxy();
        try {
          await using(adapter({ url: proxy.url }), async (nac) => {
            const found = await nac.createWhitelisted(mac, TAG);
            assert.equal(found.action, 'exists');
            const prior: EndpointSnapshot = found.endpoint;
            await nac.ensureWhitelisted(mac, TAG, prior);
            assert.equal(await nac.restore(mac, prior, TAG.grantId), 'restored');
            const [whitelist, restore] = putBodies(proxy);
            for (const body of [whitelist!, restore!]) {
              assert.equal(body.identityStore, undefined);
              assert.equal(body.identityStoreId, undefined);
              assert.equal(body.link, undefined);
            }
            const v33 = {
              staticGroupAssignmentDefined: false,
              staticProfileAssignmentDefined: true,
              mdmAttributes: { mdmServerName: 'Intune' },
            };
            assert.deepEqual(restore, {
              id: before!.id,
              name: upper(mac),
              mac: upper(mac),
              groupId: before!.groupId,
              staticGroupAssignment: false,
              staticProfileAssignment: false,
              description: 'Printer 3F',
              customAttributes: { customAttributes: { AssetTag: 'A-100' } },
              profileId: 'prof-printer',
              portalUser: '',
              ...(profile === 'ise-3.3' ? v33 : {}),
            });
            assert.deepEqual(recordOf(mac), before);
            // A retry recognises its own restore and writes nothing.
            const puts = putBodies(proxy).length;
            assert.equal(await nac.restore(mac, prior, TAG.grantId), 'restored');
            assert.equal(putBodies(proxy).length, puts);
          });
        } finally {
          await proxy.close();
        }
      });

      it('restore forces an empty description and map when the prior GET lacked them', async () => {
        const mac = nextMac();
        sim.store.seed({ mac, group: 'Profiled' });
        const proxy = await startProxy();
        try {
          await using(adapter({ url: proxy.url }), async (nac) => {
            const found = await nac.createWhitelisted(mac, TAG);
            assert.equal(found.action, 'exists');
            assert.equal(found.endpoint.vendor.description === undefined, profile === 'ise-3.3');
            await nac.ensureWhitelisted(mac, TAG, found.endpoint);
            assert.equal(await nac.restore(mac, found.endpoint, TAG.grantId), 'restored');
            const restore = putBodies(proxy)[1]!;
            assert.equal(restore.description, '');
            assert.deepEqual(restore.customAttributes, { customAttributes: {} });
            const rec = recordOf(mac)!;
            assert.equal(rec.description, '');
            assert.equal(rec.groupId, found.endpoint.group);
            assert.equal((await nac.lookup(mac))?.tag, undefined);
            assert.equal(await nac.restore(mac, found.endpoint, TAG.grantId), 'restored');
            assert.equal(putBodies(proxy).length, 2, 'the retry writes nothing');
          });
        } finally {
          await proxy.close();
        }
      });

      if (profile === 'ise-2.7') {
        it('2.7 refuses 3.3-only fields (so the adapter never sends them there)', async () => {
          const mac = nextMac();
          const seeded = sim.store.seed({ mac });
          const res = await ise(`/ers/config/endpoint/${seeded.id}`, {
            method: 'PUT',
            body: { ERSEndPoint: { id: seeded.id, staticGroupAssignmentDefined: true } },
          });
          assert.equal(res.status, 400);
        });
      }
    });

    describe('paging and errors', () => {
      it('a page past the end is ISE’s 400 "Page not exists", and ends listTagged (the list shrank)', async () => {
        const macs = Array.from({ length: 150 }, nextMac);
        for (const mac of macs) {
          sim.store.seed({
            mac,
            groupId: sim.whitelistGroupId,
            staticGroupAssignment: true,
            description: `ApprovalPlus grant=feishu-${mac} owner=o code=c expires=never`,
          });
        }
        // After the first page is served, 80 endpoints go away: page 2 no longer exists.
        let shrunk = false;
        const proxy = await startProxy((req, status) => {
          if (!shrunk && req.path.includes('page=1') && status === 200) {
            shrunk = true;
            for (const ep of sim.store.list().slice(-80)) sim.store.delete(ep.id);
          }
        });
        try {
          await using(adapter({ url: proxy.url }), async (nac) => {
            const found = await nac.listTagged();
            assert.equal(found.length, sim.store.list().filter((e) => found.some((f) => f.mac === e.mac)).length);
            assert.ok(found.length > 0 && found.length <= 100);
            const page2 = sim.requests().find((r) => r.path.includes('page=2'));
            assert.equal(page2?.status, 400);
          });
        } finally {
          await proxy.close();
        }
        const direct = await ise(`/ers/config/endpoint?filter=groupId.EQ.${sim.whitelistGroupId}&size=100&page=5`);
        assert.equal(direct.status, 400);
        assert.equal(direct.headers.get('content-type'), 'application/json;charset=utf-8');
        const body = (await direct.json()) as {
          ERSResponse: { messages: Array<{ title: string; code: string; type: string }>; link: { type: string } };
        };
        assert.deepEqual(body.ERSResponse.messages, [
          {
            title: 'The page 5 does not exist. Please refine your query.',
            type: 'ERROR',
            code: 'Page not exists exception',
          },
        ]);
        assert.equal(body.ERSResponse.link.type, 'application/xml');
      });

      it('a 500 validation error fails fast as invalid; a 500 CRUD internal error is transient', async () => {
        await using(adapter(), async (nac) => {
          const bad = nextMac();
          sim.setFaults({
            rules: [
              { mac: bad, method: 'POST', status: 500, detail: 'Validation Error - Illegal values: [description]' },
            ],
          });
          const invalid = await rejectsWith(nac.createWhitelisted(bad, TAG), 'invalid');
          assert.equal(invalid.retryable, false);
          const flaky = nextMac();
          sim.setFaults({
            rules: [{ mac: flaky, method: 'POST', status: 500, detail: 'Failed to create Endpoint. Internal error.' }],
          });
          assert.equal((await rejectsWith(nac.createWhitelisted(flaky, TAG), 'transient')).retryable, true);
          const raw = await ise(`/ers/config/endpoint/name/${upper(flaky)}`, { method: 'GET' });
          assert.equal(raw.status, 404);
          // The 500 envelope as recorded on 2.7: CRUD code, link.type application/xml.
          const r500 = await ise('/ers/config/endpoint', {
            method: 'POST',
            body: { ERSEndPoint: { mac: upper(flaky) } },
          });
          assert.equal(r500.status, 500);
          const env = (await r500.json()) as {
            ERSResponse: { operation: string; messages: Array<{ code: string }>; link: { type: string } };
          };
          assert.equal(env.ERSResponse.operation, 'POST-create-endpoint');
          assert.equal(env.ERSResponse.messages[0]!.code, 'CRUD operation exception');
          assert.equal(env.ERSResponse.link.type, 'application/xml');
        });
      });

      it('a duplicate create is 400 with the endpoint title and the validation code', async () => {
        const mac = nextMac();
        sim.store.seed({ mac });
        const res = await ise('/ers/config/endpoint', { method: 'POST', body: { ERSEndPoint: { mac: upper(mac) } } });
        assert.equal(res.status, 400);
        const e = (await res.json()) as { ERSResponse: { messages: Array<{ title: string; code: string }> } };
        assert.deepEqual(e.ERSResponse.messages[0], {
          title: `Unable to create the endpoint. Endpoint "${upper(mac)}" already exists.`,
          type: 'ERROR',
          code: 'Application resource validation exception',
        });
      });
    });

    describe('create first', () => {
      it('a new device costs one request; an existing one POST + GET, then one PUT with known', async () => {
        await using(adapter(), async (nac) => {
          await nac.verify();
          const fresh = nextMac();
          assert.equal((await nac.createWhitelisted(fresh, TAG)).action, 'created');
          assert.deepEqual(
            sim.requests({ mac: fresh }).map((r) => `${r.method} ${r.status}`),
            ['POST 201']
          );
          const existing = nextMac();
          sim.store.seed({ mac: existing, group: 'Profiled', description: 'seen by the profiler' });
          const found = await nac.createWhitelisted(existing, TAG);
          assert.equal(found.action, 'exists');
          assert.deepEqual(
            sim.requests({ mac: existing }).map((r) => `${r.method} ${r.status}`),
            ['POST 400', 'GET 200']
          );
          sim.clearRequests();
          const res = await nac.ensureWhitelisted(existing, TAG, found.endpoint);
          assert.equal(res.action, 'updated');
          assert.deepEqual(
            sim.requests({ mac: existing }).map((r) => `${r.method} ${r.status}`),
            ['PUT 200'],
            'no second read when known is given'
          );
          assert.deepEqual((await nac.lookup(existing))?.tag, { ...TAG, origin: 'existing' });
        });
      });

      it('a retry after a create that committed answers created (undo will delete it)', async () => {
        await using(adapter({ timeoutMs: 300 }), async (nac) => {
          const mac = nextMac();
          sim.setFaults({ hangMs: 5000, rules: [{ mac, timeoutAfterCommit: true, times: 1 }] });
          await rejectsWith(nac.createWhitelisted(mac, TAG), 'transient');
          const retry = await nac.createWhitelisted(mac, TAG);
          assert.equal(retry.action, 'created');
          assert.deepEqual(retry.endpoint.tag, { ...TAG, origin: 'created' });
          assert.equal(await nac.restore(mac, null, TAG.grantId), 'deleted');
          assert.equal(recordOf(mac), undefined);
        });
      });
    });

    describe('Change of Authorization (MnT)', () => {
      it('reauth: the session on its PSN, type 1, recorded; the device now has the whitelist group', async () => {
        const mac = nextMac();
        const session = sim.connect({ mac, server: 'ise-psn-2', nasIp: '10.9.0.1' });
        await using(adapter(), async (nac) => {
          const found = await nac.createWhitelisted(mac, TAG);
          assert.equal(found.action, 'exists', 'authenticating made ISE learn the device');
          await nac.ensureWhitelisted(mac, TAG, found.endpoint);
          assert.deepEqual(await nac.changeOfAuthorization(mac, 'reauth'), {
            outcome: 'reauthenticated',
            where: 'ise-psn-2',
          });
        });
        const [coa, ...more] = sim.coa({ mac });
        assert.deepEqual(more, []);
        assert.deepEqual(
          { ...coa, seq: 0, at: '' },
          {
            seq: 0,
            at: '',
            vendor: 'ise',
            action: 'reauth',
            mac,
            server: 'ise-psn-2',
            detail: '1',
            sessionId: session.id,
            nasIp: '10.9.0.1',
            result: 'ok',
          }
        );
        const live = sim.sessions.list().find((s) => s.id === session.id)!;
        assert.equal(live.authorization.iseGroupId, sim.whitelistGroupId);
        assert.equal(live.reauthentications, 1);
        const mnt = sim.requests().filter((r) => r.area === 'mnt');
        assert.deepEqual(
          mnt.map((r) => r.path),
          [`/admin/API/mnt/Session/MACAddress/${upper(mac)}`, `/admin/API/mnt/CoA/Reauth/ise-psn-2/${upper(mac)}/1`]
        );
      });

      it('disconnect: type 0 with the NAS and endpoint IPs; the session ends', async () => {
        const mac = nextMac();
        const session = sim.connect({ mac, nasIp: '10.9.0.1', endpointIp: '10.1.2.3' });
        await using(adapter(), async (nac) => {
          assert.deepEqual(await nac.changeOfAuthorization(mac, 'disconnect'), {
            outcome: 'disconnected',
            where: 'ise-psn-1',
          });
        });
        const [coa] = sim.coa({ mac });
        assert.equal(coa?.action, 'disconnect');
        assert.equal(coa?.detail, '0');
        assert.equal(coa?.result, 'ok');
        assert.equal(sim.sessions.list().find((s) => s.id === session.id)?.state, 'ended');
        assert.ok(
          sim
            .requests()
            .some((r) => r.path === `/admin/API/mnt/CoA/Disconnect/ise-psn-1/${upper(mac)}/0/10.9.0.1/10.1.2.3`)
        );
      });

      it('no session: no-session, and no CoA is sent', async () => {
        const mac = nextMac();
        await using(adapter(), async (nac) => {
          await nac.createWhitelisted(mac, TAG);
          assert.deepEqual(await nac.changeOfAuthorization(mac, 'reauth'), { outcome: 'no-session' });
        });
        assert.deepEqual(sim.coa({ mac }), []);
        assert.deepEqual(
          sim
            .requests()
            .filter((r) => r.area === 'mnt')
            .map((r) => `${r.path} ${r.status}`),
          [`/admin/API/mnt/Session/MACAddress/${upper(mac)} 500`]
        );
      });

      it('MnT: a lowercase MAC is a 500; the adapter always sends upper case', async () => {
        const mac = nextMac();
        sim.connect({ mac });
        const lower = await ise(`/admin/API/mnt/Session/MACAddress/${upper(mac).toLowerCase()}`);
        assert.equal(lower.status, 500);
        assert.match(await lower.text(), /<mnt-rest-result>.*Session data is not available/s);
        const ok = await ise(`/admin/API/mnt/Session/MACAddress/${upper(mac)}`);
        assert.equal(ok.status, 200);
        assert.match(await ok.text(), /<sessionParameters>[\s\S]*<acs_server>ise-psn-1<\/acs_server>/);
        sim.clearRequests();
        await using(adapter(), async (nac) => {
          await nac.changeOfAuthorization(mac, 'reauth');
        });
        const mnt = sim.requests().filter((r) => r.area === 'mnt');
        assert.equal(mnt.length, 2);
        for (const r of mnt) assert.match(r.path, UPPER_MAC_PATH);
      });

      it('a CoA ISE did not execute (results false) or an MnT error is transient', async () => {
        const mac = nextMac();
        sim.connect({ mac });
        // The session moved to another PSN between the lookup and the CoA.
        const proxy = await startProxy((req, _status, text) =>
          req.path.includes('/Session/MACAddress/') ? text.replace('ise-psn-1', 'ise-psn-9') : undefined
        );
        try {
          await using(adapter({ url: proxy.url }), async (nac) => {
            const err = await rejectsWith(nac.changeOfAuthorization(mac, 'reauth'), 'transient');
            assert.match(err.message, /did not execute the CoA/);
          });
        } finally {
          await proxy.close();
        }
        assert.equal(sim.coa({ mac })[0]?.result, 'refused');
        sim.setFaults({ rules: [{ mac, area: 'mnt', status: 500, times: 1, detail: 'MnT is busy' }] });
        await using(adapter(), async (nac) => {
          await rejectsWith(nac.changeOfAuthorization(mac, 'reauth'), 'transient');
        });
      });

      it('MnT refusing the account is auth, naming the MnT roles', async () => {
        sim.connect({ mac: nextMac() });
        await using(adapter({ mntPassword: 'wrong' }), async (nac) => {
          const err = await rejectsWith(nac.changeOfAuthorization(nextMac(), 'reauth'), 'auth');
          assert.match(err.message, /Super Admin, System Admin or MnT Admin/);
        });
      });
    });
  });
}

describe('ISE: one rate limiter for ERS, MnT and the OpenAPI', () => {
  beforeEach(() => resetSim('ise-3.3'));

  it('ERS and MnT requests share the token bucket', async () => {
    const maxRps = 4;
    await using(adapter({ maxRps }), async (nac) => {
      const started = performance.now();
      const calls = Array.from({ length: 12 }, (_, i) =>
        i % 2 ? nac.lookup(nextMac()) : nac.changeOfAuthorization(nextMac(), 'reauth')
      );
      const all = Promise.all(calls);
      await sleep(300);
      const sent = sim.counters();
      const elapsedSec = (performance.now() - started) / 1000;
      assert.ok((sent.byArea.mnt ?? 0) > 0 && (sent.byArea.ers ?? 0) > 0, JSON.stringify(sent.byArea));
      assert.ok(sent.total <= maxRps + maxRps * elapsedSec + 1, `sent ${sent.total} after ${elapsedSec}s`);
      await all;
    });
  });
});

describe('ISE simulator control knobs', () => {
  it('/_sim/profile takes the ISE knobs and refuses malformed ones', async () => {
    const post = (body: unknown) =>
      fetch(`${sim.url}/_sim/profile`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const ok = await post({
      profile: 'ise-2.7',
      iseCsrf: true,
      iseNode: 'psn',
      iseAccount: 'operator',
      iseSessionIdleMs: 1234,
      iseCustomAttributes: ['A'],
      iseUndefinedCustomAttributes: 'reject',
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(((await ok.json()) as { ise: unknown }).ise, {
      version: '2.7',
      csrf: true,
      node: 'psn',
      account: 'operator',
      sessionIdleMs: 1234,
      customAttributes: ['A'],
      undefinedCustomAttributes: 'reject',
    });
    // Knobs not given keep their value.
    const kept = (await (await post({ profile: 'ise-3.3' })).json()) as { ise: { node: string; csrf: boolean } };
    assert.equal(kept.ise.node, 'psn');
    assert.equal(kept.ise.csrf, true);
    for (const bad of [{ iseNode: 'x' }, { iseAccount: 1 }, { iseSessionIdleMs: -1 }, { iseCustomAttributes: 'A' }]) {
      assert.equal((await post(bad)).status, 400, JSON.stringify(bad));
    }
    resetSim('ise-3.3');
  });

  it('the ERS node resource names the PAN and the PSN', async () => {
    resetSim('ise-3.3', { iseNode: 'psn' });
    const list = (await (await ise('/ers/config/node')).json()) as {
      SearchResult: { total: number; resources: Array<{ id: string; name: string }> };
    };
    assert.equal(list.SearchResult.total, 2);
    const pan = list.SearchResult.resources.find((r) => r.name === 'ise-pan-1')!;
    const detail = (await (await ise(`/ers/config/node/${pan.id}`)).json()) as { Node: Record<string, unknown> };
    assert.equal(detail.Node.primaryPapNode, true);
    assert.equal(detail.Node.fqdn, 'ise-pan-1.example.com');
    const psn = (await (await ise('/ers/config/node/name/ise-psn-1')).json()) as { Node: Record<string, unknown> };
    assert.equal(psn.Node.primaryPapNode, false);
    assert.equal(psn.Node.ipAddress, '127.0.0.1', 'the node the client addressed');
    resetSim('ise-3.3');
  });
});
