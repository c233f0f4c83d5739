import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NacSimProfileName } from '../simulators/nac/profiles';
import { normalizeMac, type SimEndpoint } from '../simulators/nac/store';
import { cancelSignal, workflowIdFor, type GrantStatus } from '../workflows/definitions';
import type { NacWhitelistResult } from '../workflows/nac-whitelist.workflow';
import { startTestStack, until, type TestStack } from './support/harness';

/**
 * Change of Authorization end to end, per vendor, on the real Temporal dev server: the NAC simulator plays one vendor
 * release and holds live sessions; the app runs with that vendor's adapter (NAC_DRIVER=ise|clearpass). A device that
 * is connected when its grant starts is re-authenticated, so its session carries the whitelist at once; when the
 * grant ends it is re-authenticated (or disconnected) again, so the access ends at once too. A device the NAC never
 * saw needs no CoA, and one without a session gets none.
 */
interface VendorCase {
  name: string;
  driver: 'ise' | 'clearpass';
  profile: NacSimProfileName;
  env?: Record<string, string>;
  coa: 'reauth' | 'disconnect';
}

const CASES: VendorCase[] = [
  { name: 'Cisco ISE 3.3, CoA reauth', driver: 'ise', profile: 'ise-3.3', coa: 'reauth' },
  {
    name: 'Cisco ISE 2.7 with the ERS CSRF check on, CoA disconnect',
    driver: 'ise',
    profile: 'ise-2.7',
    env: { NAC_SIM_ISE_CSRF: 'true' },
    coa: 'disconnect',
  },
  { name: 'Aruba ClearPass 6.12, CoA reauth', driver: 'clearpass', profile: 'clearpass-6.12', coa: 'reauth' },
  {
    name: 'Aruba ClearPass 6.11, CoA disconnect',
    driver: 'clearpass',
    profile: 'clearpass-6.11',
    coa: 'disconnect',
  },
];

let macSeq = 0x10;
const nextMac = () =>
  `00:1B:44:C0:A${(macSeq >> 4) & 0xf}:${(macSeq++ & 0xff).toString(16).padStart(2, '0').toUpperCase()}`;

for (const c of CASES) {
  describe(`Change of Authorization end to end: ${c.name}`, () => {
    let t: TestStack;
    before(async () => {
      t = await startTestStack({
        env: { NAC_DRIVER: c.driver, NAC_SIM_PROFILE: c.profile, NAC_COA: c.coa, ...c.env },
      });
    });
    after(async () => {
      await t?.close();
    });

    const endpoint = (mac: string): SimEndpoint | undefined => t.nacSim!.store.byMac(normalizeMac(mac)!);
    const whitelisted = (ep: { groupId: string; status: string } | undefined) =>
      c.driver === 'ise' ? ep?.groupId === t.nacSim!.whitelistGroupId : ep?.status === 'Known';
    const sessionOf = (mac: string) => t.nacSim!.sessions.list().find((s) => s.mac === normalizeMac(mac));
    const coaOf = (mac: string) => t.nacSim!.coa({ mac });
    const status = (id: string) => t.client.workflow.getHandle(id).query<GrantStatus>('status');
    const macStatus = async (id: string, mac: string) => (await status(id)).macs.find((m) => m.mac === mac)!;

    it('connected device: re-authorised when granted and when revoked; new and session-less devices get no CoA', async () => {
      const connected = nextMac(); // known to the NAC because it authenticated (and was not let in)
      const fresh = nextMac(); // never seen by the NAC
      const offline = nextMac(); // known to the NAC, no live session
      t.nacSim!.connect({ mac: connected, nasIp: '10.9.0.2' });
      t.nacSim!.store.seed({ mac: offline, group: 'Profiled', status: 'Unknown', description: 'lab printer' });
      const beforeConnected = endpoint(connected)!;
      const beforeOffline = endpoint(offline)!;
      assert.equal(whitelisted(sessionOf(connected)!.authorization as never), false);
      assert.equal(
        whitelisted({ groupId: beforeConnected.groupId, status: beforeConnected.status }),
        false,
        'not whitelisted before the approval'
      );

      const instance = t.createApproval(`${connected} ${fresh} ${offline}`, { duration: '7天' });
      const id = workflowIdFor('feishu', instance);
      await t.waitForPhase(id, ['active']);
      for (const mac of [connected, fresh, offline]) assert.ok(whitelisted(endpoint(mac)), `${mac} whitelisted`);

      // Access starts now: the live session was re-authorised against the whitelisted endpoint.
      const granted = coaOf(connected);
      assert.equal(granted.length, 1, 'one CoA for the connected device');
      assert.equal(granted[0]!.action, c.coa);
      assert.equal(granted[0]!.result, 'ok');
      if (c.coa === 'reauth') {
        const s = sessionOf(connected)!;
        assert.equal(s.state, 'active');
        assert.ok(
          whitelisted({ groupId: s.authorization.iseGroupId, status: s.authorization.cpStatus }),
          'the session now carries the whitelist'
        );
      } else {
        assert.equal(sessionOf(connected)!.state, 'ended', 'disconnected: the device reconnects with the new access');
      }
      assert.equal(coaOf(fresh).length, 0, 'a device the NAC never saw has no session: no CoA');
      assert.equal(coaOf(offline).length, 0, 'no session: no CoA');
      assert.equal((await macStatus(id, connected)).coa, c.coa === 'reauth' ? 'reauthenticated' : 'disconnected');
      assert.equal((await macStatus(id, fresh)).coa, 'not-needed');
      assert.equal((await macStatus(id, offline)).coa, 'no-session');

      // The device reconnects (after a disconnect) and holds a session under the grant; then the grant is cancelled.
      if (c.coa === 'disconnect') t.nacSim!.connect({ mac: connected, nasIp: '10.9.0.2' });
      t.nacSim!.connect({ mac: fresh, nasIp: '10.9.0.3' }); // the new device connected while its grant was live
      await t.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'test over', by: 'it-ops' });
      const result = (await t.client.workflow.getHandle(id).result()) as NacWhitelistResult;
      assert.equal(result.outcome, 'revoked');

      // The NAC is back as it was: pre-existing endpoints restored, the created one deleted.
      for (const [mac, was] of [
        [connected, beforeConnected],
        [offline, beforeOffline],
      ] as const) {
        const now = endpoint(mac)!;
        assert.equal(now.groupId, was.groupId, `${mac} group restored`);
        assert.equal(now.status, was.status, `${mac} status restored`);
        assert.equal(now.description, was.description, `${mac} description restored`);
      }
      assert.equal(endpoint(fresh), undefined, 'the endpoint the grant created is gone');

      // Access ends now: both connected devices got a CoA after the revocation; the offline one none.
      for (const mac of [connected, fresh]) {
        const revoked = coaOf(mac).at(-1)!;
        assert.equal(revoked.action, c.coa, `${mac} CoA after revoking`);
        assert.equal(revoked.result, 'ok');
        const s = sessionOf(mac)!;
        if (c.coa === 'reauth') {
          assert.equal(
            whitelisted({ groupId: s.authorization.iseGroupId, status: s.authorization.cpStatus }),
            false,
            `${mac}: the session lost the whitelist`
          );
        }
      }
      assert.equal(coaOf(offline).length, 0);
      const final = result.macs.find((m) => m.mac === connected)!;
      assert.equal(final.coa, c.coa === 'reauth' ? 'reauthenticated' : 'disconnected');
    });

    it('a CoA that keeps failing is retried, then shown; the grant stands and the requester is told to reconnect', async () => {
      const mac = nextMac();
      t.nacSim!.connect({ mac, nasIp: '10.9.0.4' });
      // The session API refuses every time (a NAS that does not answer its CoA port).
      t.nacSim!.setFaults({ rules: [{ mac, status: 500, area: c.driver === 'ise' ? 'mnt' : 'session' }] });
      const instance = t.createApproval(mac, { duration: '7天' });
      const id = workflowIdFor('feishu', instance);
      try {
        const s = await t.waitForPhase(id, ['active'], 90_000);
        const m = s.macs.find((x) => x.mac === mac)!;
        assert.equal(m.state, 'granted', 'a failed CoA never undoes the grant');
        assert.equal(m.coa, 'failed');
        assert.ok(m.coaDetail);
        assert.match(s.lastError ?? '', /Change of Authorization failed/);
        assert.ok(whitelisted(endpoint(mac)));
        const card = await until('the granted card', () =>
          t.feishuSim!.messages().find((x) => JSON.stringify(x.content).includes(instance))
        );
        assert.match(JSON.stringify(card.content), /connect again/);
        const desc = await t.client.workflow.getHandle(id).describe();
        assert.ok(desc.status.name === 'RUNNING');
      } finally {
        t.nacSim!.clearFaults();
        await t.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'test over' });
        await t.client.workflow.getHandle(id).result();
      }
    });
  });
}
