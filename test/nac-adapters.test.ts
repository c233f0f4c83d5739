import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { IntegrationError } from '../domain/errors';
import { type GrantTag, type NacAdapter } from '../nac/adapter';
import { ClearPassAdapter } from '../nac/clearpass/adapter';
import { createNacAdapter } from '../nac/index';
import { IseAdapter } from '../nac/ise/adapter';
import { tagAttributes, tagDescription } from '../nac/tag';
import { startNacSimulator, type NacSimulator } from '../simulators/nac/server';
import { type SimEndpoint } from '../simulators/nac/store';

/**
 * One behavioural suite, run against the ISE ERS adapter and the ClearPass adapter, both talking to the NAC
 * simulator. Assertions count requests in the simulator's log rather than measuring time.
 */

const CREDS = {
  iseUsername: 'ers-admin',
  isePassword: 'ers-secret',
  clientId: 'approval-plus',
  clientSecret: 'cp-secret',
  whitelistGroup: 'ApprovalPlus-WiFi',
};

type Adapter = NacAdapter & { close(): Promise<void> };

interface AdapterOverrides {
  timeoutMs?: number;
  maxRps?: number;
  badCredentials?: boolean;
  url?: string;
}

interface DriverUnderTest {
  name: 'ise' | 'clearpass';
  make(sim: NacSimulator, o?: AdapterOverrides): Adapter;
  /** Put an endpoint that already carries `tag` straight into the store (reconcile fixtures). */
  seedTagged(sim: NacSimulator, mac: string, tag: GrantTag): void;
  /** Endpoints needed to force a second page in listTagged. */
  pageOverflow: number;
}

const drivers: DriverUnderTest[] = [
  {
    name: 'ise',
    make: (sim, o = {}) =>
      new IseAdapter({
        baseUrl: o.url ?? sim.url,
        username: CREDS.iseUsername,
        password: o.badCredentials ? 'wrong-password' : CREDS.isePassword,
        group: CREDS.whitelistGroup,
        timeoutMs: o.timeoutMs ?? 5000,
        maxRps: o.maxRps ?? 1000,
      }),
    seedTagged: (sim, mac, tag) =>
      sim.store.seed({
        mac,
        groupId: sim.whitelistGroupId,
        staticGroupAssignment: true,
        description: tagDescription(tag),
        customAttributes: tagAttributes(tag, ''),
      }),
    pageOverflow: 105,
  },
  {
    name: 'clearpass',
    make: (sim, o = {}) =>
      new ClearPassAdapter({
        baseUrl: o.url ?? sim.url,
        clientId: CREDS.clientId,
        clientSecret: o.badCredentials ? 'wrong-secret' : CREDS.clientSecret,
        timeoutMs: o.timeoutMs ?? 5000,
        maxRps: o.maxRps ?? 1000,
      }),
    seedTagged: (sim, mac, tag) =>
      sim.store.seed({ mac, status: 'Known', description: tagDescription(tag), attributes: tagAttributes(tag, ' ') }),
    pageOverflow: 1003,
  },
];

const TAG: GrantTag = {
  grantId: 'feishu-ABC123',
  owner: 'owner-hash-1',
  approvalCode: '7C468A54-8745-2245-9675-08B7C63E7A85',
  expiresAt: '2030-01-01T00:00:00.000Z',
};
const OTHER_TAG: GrantTag = { grantId: 'feishu-OTHER', owner: 'owner-hash-2', approvalCode: 'X', expiresAt: undefined };

let macCounter = 0;
/** A fresh, valid, globally administered unicast MAC per test. */
function nextMac(): string {
  macCounter += 1;
  return `0050c2${macCounter.toString(16).padStart(6, '0')}`;
}

function writes(sim: NacSimulator, mac: string): number {
  return sim.requests({ mac }).filter((r) => r.write).length;
}

/** The store record minus the bookkeeping timestamp: what "restored exactly" is compared on. */
function recordOf(sim: NacSimulator, mac: string): Omit<SimEndpoint, 'updatedAt'> | undefined {
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let sim: NacSimulator;

before(async () => {
  // ISE keeps only custom attributes defined on the box: the restore fixtures carry `AssetTag`.
  sim = await startNacSimulator({ port: 0, ...CREDS, iseCustomAttributes: ['AssetTag'] });
});

after(async () => {
  await sim.close();
});

for (const d of drivers) {
  describe(`${d.name} adapter`, () => {
    let nac: Adapter;

    beforeEach(() => {
      sim.store.reset();
      sim.clearFaults();
      sim.clearRequests();
      nac = d.make(sim);
    });

    afterEach(async () => {
      await nac.close();
    });

    it('verifies credentials and the whitelist group', async () => {
      await nac.verify();
    });

    it('creates a missing endpoint with the grant tag', async () => {
      const mac = nextMac();
      assert.equal(await nac.lookup(mac), null);
      const res = await nac.ensureWhitelisted(mac, TAG);
      assert.equal(res.action, 'created');
      assert.deepEqual(res.endpoint.tag, { ...TAG, origin: 'created' });
      const seen = await nac.lookup(mac);
      assert.ok(seen);
      assert.deepEqual(seen.tag, { ...TAG, origin: 'created' });
      assert.equal(seen.mac, mac);
      assert.equal(seen.id, res.endpoint.id);
      const rec = recordOf(sim, mac)!;
      if (d.name === 'ise') {
        assert.equal(rec.groupId, sim.whitelistGroupId);
        assert.equal(rec.staticGroupAssignment, true);
        assert.match(rec.description, /^ApprovalPlus grant=feishu-ABC123 owner=owner-hash-1 code=7C468A54/);
      } else {
        assert.equal(rec.status, 'Known');
        assert.equal(rec.attributes['ApprovalPlus Grant'], TAG.grantId);
        assert.equal(rec.attributes['ApprovalPlus Expires'], TAG.expiresAt);
      }
      assert.equal(writes(sim, mac), 1);
    });

    it('is idempotent: a repeat is unchanged and writes nothing', async () => {
      const mac = nextMac();
      await nac.ensureWhitelisted(mac, TAG);
      const again = await nac.ensureWhitelisted(mac, TAG);
      assert.equal(again.action, 'unchanged');
      assert.equal(writes(sim, mac), 1);
      assert.equal(sim.store.list().length, 1);
    });

    it('re-tags when the same grant changes its expiry', async () => {
      const mac = nextMac();
      await nac.ensureWhitelisted(mac, TAG);
      const res = await nac.ensureWhitelisted(mac, { ...TAG, expiresAt: undefined });
      assert.equal(res.action, 'updated');
      assert.equal((await nac.lookup(mac))?.tag?.expiresAt, undefined);
    });

    it('updates a pre-existing endpoint, then restores it exactly', async () => {
      const mac = nextMac();
      sim.store.seed({
        mac,
        group: 'Profiled',
        staticGroupAssignment: false,
        profileId: 'prof-printer',
        description: 'Printer 3F',
        customAttributes: { AssetTag: 'A-100' },
        status: 'Unknown',
        attributes: { Location: 'Lab 3F' },
      });
      const before = recordOf(sim, mac);
      const prior = await nac.lookup(mac);
      assert.ok(prior);
      assert.equal(prior.tag, undefined);

      const res = await nac.ensureWhitelisted(mac, TAG);
      assert.equal(res.action, 'updated');
      assert.deepEqual((await nac.lookup(mac))?.tag, { ...TAG, origin: 'existing' });
      assert.equal(sim.store.list().length, 1, 'no second endpoint for the same MAC');

      assert.equal(await nac.restore(mac, prior, TAG.grantId), 'restored');
      assert.deepEqual(recordOf(sim, mac), before);
      // A retry of the restore (e.g. after a time-out) recognises its own work and writes nothing more.
      const writesAfterRestore = writes(sim, mac);
      assert.equal(await nac.restore(mac, prior, TAG.grantId), 'restored');
      assert.equal(writes(sim, mac), writesAfterRestore);
      assert.deepEqual(recordOf(sim, mac), before);
    });

    it('restore of an endpoint it created deletes it (and a retry is harmless)', async () => {
      const mac = nextMac();
      const prior = await nac.lookup(mac);
      await nac.ensureWhitelisted(mac, TAG);
      assert.equal(await nac.restore(mac, prior, TAG.grantId), 'deleted');
      assert.equal(recordOf(sim, mac), undefined);
      assert.equal(await nac.restore(mac, prior, TAG.grantId), 'deleted');
    });

    it('restore is skipped when the endpoint carries another tag', async () => {
      const mac = nextMac();
      const prior = await nac.lookup(mac);
      await nac.ensureWhitelisted(mac, OTHER_TAG);
      const before = recordOf(sim, mac);
      assert.equal(await nac.restore(mac, prior, TAG.grantId), 'skipped');
      assert.deepEqual(recordOf(sim, mac), before);
    });

    it('restore is skipped when someone else changed the endpoint after us', async () => {
      const mac = nextMac();
      const prior = await nac.lookup(mac);
      await nac.ensureWhitelisted(mac, TAG);
      sim.store.seed({ mac, description: 'changed by the network team', status: 'Disabled' });
      const before = recordOf(sim, mac);
      assert.equal(await nac.restore(mac, prior, TAG.grantId), 'skipped');
      assert.deepEqual(recordOf(sim, mac), before);
    });

    it('time-out after commit, then retry: no duplicate, the retry says unchanged', async () => {
      const slow = d.make(sim, { timeoutMs: 300 });
      try {
        const mac = nextMac();
        sim.setFaults({ hangMs: 10_000, rules: [{ mac, timeoutAfterCommit: true, times: 1 }] });
        const err = await rejectsWith(slow.ensureWhitelisted(mac, TAG), 'transient');
        assert.equal(err.retryable, true);
        assert.ok(recordOf(sim, mac), 'the write committed');
        const retry = await slow.ensureWhitelisted(mac, TAG);
        assert.equal(retry.action, 'unchanged');
        assert.equal(writes(sim, mac), 1);
        assert.equal(sim.store.list().length, 1);
      } finally {
        await slow.close();
      }
    });

    it('a create that meets "already exists" re-reads and updates instead', async () => {
      const mac = nextMac();
      sim.store.seed({ mac, group: 'Profiled', status: 'Unknown', description: 'seen by profiler' });
      // The first read misses it (as if it were created between our read and our write).
      const readMethod = 'GET';
      sim.setFaults({ rules: [{ mac, status: 404, method: readMethod, times: 1 }] });
      const res = await nac.ensureWhitelisted(mac, TAG);
      assert.equal(res.action, 'updated');
      assert.deepEqual((await nac.lookup(mac))?.tag, { ...TAG, origin: 'existing' });
      assert.equal(sim.store.list().length, 1);
      const statuses = sim
        .requests({ mac })
        .filter((r) => r.method === 'POST')
        .map((r) => r.status);
      assert.deepEqual(statuses, [d.name === 'ise' ? 400 : 422]);
    });

    it('a permanent 4xx on create is invalid (not retryable)', async () => {
      const mac = nextMac();
      sim.setFaults({ rules: [{ mac, status: 400, method: 'POST' }] });
      const err = await rejectsWith(nac.ensureWhitelisted(mac, TAG), 'invalid');
      assert.equal(err.retryable, false);
      assert.equal(recordOf(sim, mac), undefined);
    });

    it('wrong credentials: IntegrationError auth, not retryable, no secret in the message', async () => {
      const bad = d.make(sim, { badCredentials: true });
      try {
        const err = await rejectsWith(bad.verify(), 'auth');
        assert.equal(err.retryable, false);
        assert.doesNotMatch(err.message, /wrong-(password|secret)|ers-secret|cp-secret/);
        await rejectsWith(bad.lookup(nextMac()), 'auth');
      } finally {
        await bad.close();
      }
    });

    it('429: rate-limited with retryAfterMs from Retry-After', async () => {
      const mac = nextMac();
      await nac.verify(); // ClearPass: fetch the token first so the rule hits the endpoint call
      sim.setFaults({ rules: [{ mac, status: 429, times: 1 }] });
      const err = await rejectsWith(nac.lookup(mac), 'rate-limited');
      assert.equal(err.retryable, true);
      assert.equal(err.details.retryAfterMs, 2000);
      assert.equal(await nac.lookup(mac), null, 'the rule fired once');
    });

    it("the simulator's rate limit answers 429 beyond rateLimitRps", async () => {
      await nac.verify();
      sim.setFaults({ rateLimitRps: 2 });
      const results = await Promise.allSettled(Array.from({ length: 6 }, () => nac.lookup(nextMac())));
      const limited = results.filter(
        (r) => r.status === 'rejected' && r.reason instanceof IntegrationError && r.reason.kind === 'rate-limited'
      );
      assert.ok(limited.length >= 3, `expected at least 3 of 6 rate-limited, got ${limited.length}`);
      const first = (limited[0] as PromiseRejectedResult).reason as IntegrationError;
      assert.ok((first.details.retryAfterMs ?? 0) >= 1000);
    });

    it('5xx: transient (retryable), and a retry after it succeeds', async () => {
      const mac = nextMac();
      sim.setFaults({ errorRate5xx: 1 });
      const err = await rejectsWith(nac.lookup(mac), 'transient');
      assert.equal(err.retryable, true);
      sim.setFaults({ rules: [{ mac, status: 503, method: 'POST', times: 1 }] });
      await rejectsWith(nac.ensureWhitelisted(mac, TAG), 'transient');
      assert.equal(recordOf(sim, mac), undefined);
      assert.equal((await nac.ensureWhitelisted(mac, TAG)).action, 'created');
    });

    it('network error (nothing listening): transient', async () => {
      const closed = await startNacSimulator({ port: 0, ...CREDS });
      const url = closed.url;
      await closed.close();
      const orphan = d.make(sim, { url, timeoutMs: 2000 });
      try {
        await rejectsWith(orphan.lookup(nextMac()), 'transient');
      } finally {
        await orphan.close();
      }
    });

    it('the rate limiter bounds request throughput', async () => {
      const maxRps = 10;
      const limited = d.make(sim, { maxRps });
      try {
        const started = performance.now();
        const all = Promise.all(Array.from({ length: 25 }, () => limited.lookup(nextMac())));
        await sleep(300);
        const sent = sim.counters().total;
        const elapsedSec = (performance.now() - started) / 1000;
        // Burst (= maxRps) plus the refill over the measured time; +1 for a request in flight at the boundary.
        assert.ok(sent <= maxRps + maxRps * elapsedSec + 1, `sent ${sent} after ${elapsedSec}s`);
        assert.ok(sent < 25, 'not everything went out at once');
        const results = await all;
        assert.equal(results.length, 25);
      } finally {
        await limited.close();
      }
    });

    it('listTagged returns exactly the tagged endpoints, across pages', async () => {
      const tagged = Array.from({ length: d.pageOverflow }, () => nextMac());
      for (const mac of tagged) d.seedTagged(sim, mac, { ...TAG, grantId: `feishu-${mac}` });
      const viaAdapter = nextMac();
      await nac.ensureWhitelisted(viaAdapter, TAG);
      // Untagged endpoints, one of them whitelisted by hand: never reported as ours.
      sim.store.seed({ mac: nextMac(), groupId: sim.whitelistGroupId, staticGroupAssignment: true, status: 'Known' });
      sim.store.seed({ mac: nextMac(), group: 'Profiled', description: 'not ours' });
      const found = await nac.listTagged();
      assert.equal(found.length, tagged.length + 1);
      const byMac = new Map(found.map((s) => [s.mac, s]));
      assert.deepEqual(byMac.get(viaAdapter)?.tag, { ...TAG, origin: 'created' });
      for (const mac of tagged) assert.equal(byMac.get(mac)?.tag?.grantId, `feishu-${mac}`);
    });

    it('state survives a simulator restart (stateFile)', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'nac-sim-'));
      const stateFile = path.join(dir, 'state.json');
      try {
        const first = await startNacSimulator({ port: 0, ...CREDS, stateFile });
        const a = d.make(first);
        const mac = nextMac();
        const created = await a.ensureWhitelisted(mac, TAG);
        await a.close();
        await first.close();

        const second = await startNacSimulator({ port: 0, ...CREDS, stateFile });
        const b = d.make(second);
        try {
          const seen = await b.lookup(mac);
          assert.deepEqual(seen?.tag, { ...TAG, origin: 'created' });
          assert.equal(seen?.id, created.endpoint.id);
          assert.equal((await b.ensureWhitelisted(mac, TAG)).action, 'unchanged');
          const other = await b.ensureWhitelisted(nextMac(), TAG);
          assert.notEqual(other.endpoint.id, created.endpoint.id, 'ids keep counting after a restart');
        } finally {
          await b.close();
          await second.close();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

describe('clearpass OAuth token handling', () => {
  beforeEach(() => {
    sim.store.reset();
    sim.clearFaults();
    sim.clearRequests();
  });

  const oauthCalls = (s: NacSimulator) => s.requests().filter((r) => r.path === '/api/oauth').length;

  it('fetches one token for concurrent callers (single flight)', async () => {
    const nac = drivers[1]!.make(sim);
    try {
      await Promise.all(Array.from({ length: 5 }, () => nac.lookup(nextMac())));
      assert.equal(oauthCalls(sim), 1);
    } finally {
      await nac.close();
    }
  });

  it('on a 401 (token revoked) refreshes once and retries', async () => {
    const nac = drivers[1]!.make(sim);
    try {
      await nac.lookup(nextMac());
      sim.expireTokens();
      const mac = nextMac();
      assert.equal((await nac.ensureWhitelisted(mac, TAG)).action, 'created');
      assert.equal(oauthCalls(sim), 2);
      assert.equal(sim.requests().filter((r) => r.status === 401).length, 1);
    } finally {
      await nac.close();
    }
  });

  it('refreshes a token before it expires', async () => {
    const shortLived = await startNacSimulator({ port: 0, ...CREDS, tokenLifetimeSec: 1 });
    const nac = drivers[1]!.make(shortLived);
    try {
      await nac.lookup(nextMac());
      await sleep(1100);
      await nac.lookup(nextMac());
      assert.equal(oauthCalls(shortLived), 2);
      assert.equal(shortLived.requests().filter((r) => r.status === 401).length, 0);
    } finally {
      await nac.close();
      await shortLived.close();
    }
  });
});

describe('createNacAdapter', () => {
  const base = {
    iseGroup: CREDS.whitelistGroup,
    maxRps: 100,
    timeoutMs: 5000,
    tlsInsecure: false,
    coa: 'reauth',
    iseCustomAttributes: 'auto',
    simProfile: 'ise-3.3',
    simIseCsrf: false,
    clearpassReauthProfiles: ['[Cisco - Reauthenticate Session]'] as string[],
    get iseMntUrl() {
      return sim.url;
    },
    get iseOpenApiUrl() {
      return sim.url;
    },
  } as const;

  it('sim: the ISE adapter against the simulator, reported as sim', async () => {
    const nac = createNacAdapter({
      ...base,
      driver: 'sim',
      baseUrl: sim.url,
      username: CREDS.iseUsername,
      password: CREDS.isePassword,
    });
    try {
      assert.equal(nac.driver, 'sim');
      await nac.verify();
    } finally {
      await nac.close?.();
    }
  });

  it('a missing whitelist group is invalid and names NAC_ISE_GROUP', async () => {
    const nac = createNacAdapter({
      ...base,
      iseGroup: 'No-Such-Group',
      driver: 'ise',
      baseUrl: sim.url,
      username: CREDS.iseUsername,
      password: CREDS.isePassword,
    });
    try {
      const err = await rejectsWith(nac.verify(), 'invalid');
      assert.match(err.message, /NAC_ISE_GROUP/);
    } finally {
      await nac.close?.();
    }
  });

  it('clearpass: the ClearPass adapter', async () => {
    const nac = createNacAdapter({
      ...base,
      driver: 'clearpass',
      baseUrl: sim.url,
      clientId: CREDS.clientId,
      clientSecret: CREDS.clientSecret,
    });
    try {
      assert.equal(nac.driver, 'clearpass');
      await nac.verify();
    } finally {
      await nac.close?.();
    }
  });
});

describe('NAC simulator control API', () => {
  it('drives faults, seeds, state and the request log over HTTP', async () => {
    const post = (p: string, body?: unknown) =>
      fetch(sim.url + p, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body ?? {}),
      });
    assert.equal((await post('/_sim/reset')).status, 204);
    const seeded = await post('/_sim/endpoints', { mac: 'AA-BB-CC-00-11-22', group: 'Blocked List' });
    assert.equal(seeded.status, 201);
    const state = (await (await fetch(sim.url + '/_sim/state')).json()) as {
      endpoints: SimEndpoint[];
      groups: unknown[];
    };
    assert.equal(state.endpoints.length, 1);
    assert.equal(state.endpoints[0]!.mac, 'aabbcc001122');
    assert.equal(state.groups.length, 6);
    const faults = await post('/_sim/faults', { errorRate5xx: 1 });
    assert.equal(faults.status, 200);
    const auth = 'Basic ' + Buffer.from(`${CREDS.iseUsername}:${CREDS.isePassword}`).toString('base64');
    const failing = await fetch(sim.url + '/ers/config/endpoint/name/AA:BB:CC:00:11:22', {
      headers: { authorization: auth, accept: 'application/json' },
    });
    assert.equal(failing.status, 500);
    const envelope = (await failing.json()) as { ERSResponse: { messages: Array<{ type: string }> } };
    assert.equal(envelope.ERSResponse.messages[0]!.type, 'ERROR');
    assert.equal((await fetch(sim.url + '/_sim/faults', { method: 'DELETE' })).status, 204);
    const log = (await (await fetch(sim.url + '/_sim/requests?mac=aabbcc001122')).json()) as {
      requests: Array<{ status: number; mac: string }>;
      byMac: Record<string, { reads: number; writes: number }>;
    };
    assert.deepEqual(
      log.requests.map((r) => r.status),
      [500]
    );
    assert.deepEqual(log.byMac.aabbcc001122, { reads: 1, writes: 0 });
    const unauth = await fetch(sim.url + '/ers/config/endpoint', { headers: { accept: 'application/json' } });
    assert.equal(unauth.status, 401);
    assert.match(await unauth.text(), /<title>HTTP Status 401/);
  });
});

describe('NAC HTTP TLS policy', () => {
  let dir: string;
  let url: string;
  let server: ReturnType<typeof createHttpsServer> | undefined;
  let opensslMissing = false;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'nac-tls-'));
    try {
      // A self-signed certificate for 127.0.0.1, like a lab ISE appliance's.
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-keyout',
          path.join(dir, 'key.pem'),
          '-out',
          path.join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' }
      );
    } catch {
      opensslMissing = true;
      return;
    }
    server = createHttpsServer(
      { key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) },
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ EndPointGroup: { id: 'group-1', name: CREDS.whitelistGroup } }));
      }
    );
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  const ise = (extra: { caFile?: string; tlsInsecure?: boolean }) =>
    new IseAdapter({
      baseUrl: url,
      username: CREDS.iseUsername,
      password: CREDS.isePassword,
      group: CREDS.whitelistGroup,
      timeoutMs: 5000,
      maxRps: 100,
      ...extra,
    });

  it('verifies certificates by default (an untrusted certificate is a configuration error)', async (t) => {
    if (opensslMissing) return t.skip('openssl not available');
    const nac = ise({});
    try {
      const err = await rejectsWith(nac.verify(), 'auth');
      assert.match(err.message, /TLS verification failed/);
    } finally {
      await nac.close();
    }
  });

  it('trusts an extra CA (NAC_CA_FILE)', async (t) => {
    if (opensslMissing) return t.skip('openssl not available');
    const nac = ise({ caFile: path.join(dir, 'cert.pem') });
    try {
      await nac.verify();
    } finally {
      await nac.close();
    }
  });

  it('tlsInsecure turns verification off', async (t) => {
    if (opensslMissing) return t.skip('openssl not available');
    const nac = ise({ tlsInsecure: true });
    try {
      await nac.verify();
    } finally {
      await nac.close();
    }
  });
});

for (const d of drivers) {
  describe(`${d.name} adapter: a security block wins over an approval`, () => {
    it('refuses to whitelist a blocked device, as a non-retryable conflict, and changes nothing', async () => {
      const nac = d.make(sim);
      try {
        const mac = nextMac();
        if (d.name === 'ise') sim.store.seed({ mac, group: 'Blocked List', description: 'stolen laptop' } as never);
        else sim.store.seed({ mac, status: 'Disabled', description: 'stolen laptop' } as never);
        const before = recordOf(sim, mac);
        const err = await rejectsWith(nac.ensureWhitelisted(mac, TAG), 'conflict');
        assert.equal(err.retryable, false);
        assert.match(err.message, /never lifts a security block/);
        assert.match(err.message, d.name === 'ise' ? /Blocked List/ : /Disabled/);
        assert.deepEqual(recordOf(sim, mac), before);
        assert.equal(writes(sim, mac), 0);
      } finally {
        await nac.close();
      }
    });
  });
}
