import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cancelSignal, workflowIdFor } from '../workflows/definitions';
import type { NacWhitelistResult } from '../workflows/nac-whitelist.workflow';
import {
  createFreeRadiusDatabase,
  freeradiusMissing,
  radclient,
  startFreeRadius,
  type FreeRadius,
  type TestDatabase,
} from './support/freeradius';
import { startTestStack, until, type TestStack } from './support/harness';

/**
 * The whole system with NAC_DRIVER=freeradius on the real dev server: an approval in the Feishu simulator, the
 * worker writing FreeRADIUS's tables, and the real FreeRADIUS answering the real radclient as a switch doing MAB
 * would be answered — before the approval, while the grant lives, after cancel and after expiry.
 */

const SKIP = process.env.CI === 'true' ? false : freeradiusMissing();

describe('NAC_DRIVER=freeradius end to end (real dev server, real FreeRADIUS, radclient)', { skip: SKIP }, () => {
  let db: TestDatabase;
  let fr: FreeRadius;
  let t: TestStack;

  before(async () => {
    db = await createFreeRadiusDatabase();
    await db.sql.query(
      `INSERT INTO radgroupreply (groupname, attribute, op, value) VALUES
         ('wifi-staff', 'Tunnel-Type', ':=', 'VLAN'), ('wifi-staff', 'Tunnel-Medium-Type', ':=', 'IEEE-802'),
         ('wifi-staff', 'Tunnel-Private-Group-Id', ':=', '30'),
         ('guests', 'Tunnel-Type', ':=', 'VLAN'), ('guests', 'Tunnel-Medium-Type', ':=', 'IEEE-802'),
         ('guests', 'Tunnel-Private-Group-Id', ':=', '99')`
    );
    fr = await startFreeRadius(db);
    t = await startTestStack({
      env: {
        NAC_DRIVER: 'freeradius',
        NAC_DATABASE_URL: db.url,
        NAC_FREERADIUS_GROUP: 'wifi-staff',
        NAC_RADIUS_USERNAME_FORMAT: 'aabbccddeeff',
        NAC_COA: 'disconnect',
        NAC_RADIUS_COA_PORT: String(fr.coaPort),
        NAC_RADIUS_COA_SECRET: fr.coaSecret,
        NAC_TIMEOUT_MS: '3000',
      },
    });
  });
  after(async () => {
    await t?.close();
    await fr?.stop();
    await db?.drop();
  });

  const mab = (user: string) =>
    radclient({
      port: fr.authPort,
      secret: fr.secret,
      type: 'auth',
      attributes: { 'User-Name': user, 'User-Password': user, 'Service-Type': 'Call-Check' },
    });
  const result = (id: string) => t.client.workflow.getHandle(id).result() as Promise<NacWhitelistResult>;

  it('Access-Reject before the approval, Access-Accept with the VLAN after it, Access-Reject after cancel; the live session is disconnected both times', async () => {
    const user = '001b44770001';
    assert.equal((await mab(user)).code, 'Access-Reject');
    // The device is online already (the switch's auth-fail VLAN): accounting knows its session.
    const acct = await radclient({
      port: fr.acctPort,
      secret: fr.secret,
      type: 'acct',
      attributes: {
        'User-Name': user,
        'Acct-Status-Type': 'Start',
        'Acct-Session-Id': 'e2e-0001',
        'NAS-IP-Address': '127.0.0.1',
        'Calling-Station-Id': '00-1B-44-77-00-01',
      },
    });
    assert.equal(acct.code, 'Accounting-Response');

    const instance = t.createApproval('00:1B:44:77:00:01', { openId: 'ou_fr_1' });
    const id = workflowIdFor('feishu', instance);
    const active = await t.waitForPhase(id, ['active']);
    const accept = await mab(user);
    assert.equal(accept.code, 'Access-Accept');
    assert.equal(accept.attributes['Tunnel-Private-Group-Id'], '30');
    await until('the grant disconnected the session', () =>
      fr.coaReceived().filter((p) => p['Acct-Session-Id'] === 'e2e-0001').length >= 1 ? true : undefined
    );
    assert.equal(active.macs[0]?.state, 'granted');

    await t.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'test over', by: 'it-ops' });
    const r = await result(id);
    assert.equal(r.outcome, 'revoked');
    assert.equal((await mab(user)).code, 'Access-Reject');
    const sent = fr.coaReceived().filter((p) => p['Acct-Session-Id'] === 'e2e-0001');
    assert.equal(sent.length, 2, 'one Disconnect-Request at grant, one at revoke');
    for (const p of sent) {
      assert.equal(p['Packet-Type'], 'Disconnect-Request');
      assert.equal(p['User-Name'], user);
      assert.equal(p['NAS-IP-Address'], '127.0.0.1');
    }
    assert.equal((await db.sql.query('SELECT 1 FROM radcheck WHERE username = $1', [user])).rowCount, 0);
    assert.equal(r.macs[0]?.coa, 'disconnected');
  });

  it('a device in another group before is back in it, with its old replies, after expiry', async () => {
    const user = '001b44770002';
    await db.sql.query(
      `INSERT INTO radcheck (username, attribute, op, value) VALUES ($1, 'Cleartext-Password', ':=', $1)`,
      [user]
    );
    await db.sql.query(`INSERT INTO radusergroup (username, groupname, priority) VALUES ($1, 'guests', 2)`, [user]);
    const rows = async () => ({
      check: (
        await db.sql.query('SELECT id, attribute, op, value FROM radcheck WHERE username = $1 ORDER BY id', [user])
      ).rows,
      groups: (await db.sql.query('SELECT id, groupname, priority FROM radusergroup WHERE username = $1', [user])).rows,
    });
    const before = await rows();
    assert.equal((await mab(user)).attributes['Tunnel-Private-Group-Id'], '99');

    const instance = t.createApproval('00-1B-44-77-00-02', { openId: 'ou_fr_2', duration: '5秒' });
    const id = workflowIdFor('feishu', instance);
    await t.waitForPhase(id, ['active']);
    assert.equal((await mab(user)).attributes['Tunnel-Private-Group-Id'], '30');
    const r = await result(id);
    assert.equal(r.outcome, 'expired');
    assert.deepEqual(await rows(), before);
    const back = await mab(user);
    assert.equal(back.code, 'Access-Accept');
    assert.equal(back.attributes['Tunnel-Private-Group-Id'], '99');
  });
});
