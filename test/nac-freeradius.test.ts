import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { IntegrationError } from '../domain/errors';
import { type GrantTag } from '../nac/adapter';
import { FreeRadiusAdapter, TAG_COLUMN, type FreeRadiusAdapterOptions } from '../nac/freeradius/adapter';
import { classifyPgError } from '../nac/freeradius/sql';
import { macOfUsername, RADIUS_USERNAME_FORMATS, radiusUsername } from '../nac/freeradius/username';
import { freePort } from '../temporal/dev-server';
import {
  createFreeRadiusDatabase,
  freeradiusMissing,
  radclient,
  startFreeRadius,
  type FreeRadius,
  type TestDatabase,
} from './support/freeradius';

/**
 * The FreeRADIUS adapter against the real thing: FreeRADIUS 3 (Debian's package) with its SQL module on a database of
 * this test's own in the local PostgreSQL, asked by the real `radclient` as a switch doing MAB would ask it.
 */

const SKIP = process.env.CI === 'true' ? false : freeradiusMissing();

const STAFF = 'wifi-staff';
const GUESTS = 'guests';
const QUARANTINE = 'quarantine';
const tag = (grantId: string): GrantTag => ({ grantId, owner: 'owner-hash', approvalCode: 'CODE-1' });

async function seedGroups(db: TestDatabase): Promise<void> {
  await db.sql.query(
    `INSERT INTO radgroupreply (groupname, attribute, op, value) VALUES
       ($1, 'Tunnel-Type', ':=', 'VLAN'), ($1, 'Tunnel-Medium-Type', ':=', 'IEEE-802'), ($1, 'Tunnel-Private-Group-Id', ':=', '30'),
       ($2, 'Tunnel-Type', ':=', 'VLAN'), ($2, 'Tunnel-Medium-Type', ':=', 'IEEE-802'), ($2, 'Tunnel-Private-Group-Id', ':=', '99')`,
    [STAFF, GUESTS]
  );
  await db.sql.query(
    `INSERT INTO radgroupcheck (groupname, attribute, op, value) VALUES ($1, 'Auth-Type', ':=', 'Reject')`,
    [QUARANTINE]
  );
}

/** A MAB Access-Request for the device, as a Cisco switch sends it: the MAC as User-Name and User-Password. */
async function mab(fr: FreeRadius, user: string) {
  return radclient({
    port: fr.authPort,
    secret: fr.secret,
    type: 'auth',
    attributes: { 'User-Name': user, 'User-Password': user, 'Calling-Station-Id': user, 'Service-Type': 'Call-Check' },
  });
}

async function rowsOf(db: TestDatabase, user: string) {
  const q = async (sql: string) => (await db.sql.query(sql, [user])).rows;
  return {
    radcheck: await q(
      `SELECT id, attribute, op, value, ${TAG_COLUMN} AS tag FROM radcheck WHERE username = $1 ORDER BY id`
    ),
    radreply: await q('SELECT id, attribute, op, value FROM radreply WHERE username = $1 ORDER BY id'),
    radusergroup: await q(
      `SELECT groupname, priority, ${TAG_COLUMN} AS tag FROM radusergroup WHERE username = $1 ORDER BY priority`
    ),
  };
}

describe('FreeRADIUS adapter (real FreeRADIUS, PostgreSQL and radclient)', { skip: SKIP }, () => {
  let db: TestDatabase;
  let fr: FreeRadius;
  let nac: FreeRadiusAdapter;
  const made: FreeRadiusAdapter[] = [];
  const adapter = (o: Partial<FreeRadiusAdapterOptions> = {}) => {
    const a = new FreeRadiusAdapter({
      databaseUrl: db.url,
      group: STAFF,
      usernameFormat: 'aabbccddeeff',
      timeoutMs: 3000,
      maxRps: 1000,
      coa: 'disconnect',
      coaPort: fr.coaPort,
      coaSecret: fr.coaSecret,
      ...o,
    });
    made.push(a);
    return a;
  };

  before(async () => {
    db = await createFreeRadiusDatabase();
    await seedGroups(db);
    fr = await startFreeRadius(db);
    nac = adapter();
    assert.deepEqual(await nac.verify(), []);
  });
  after(async () => {
    for (const a of made) await a.close();
    await fr?.stop();
    await db?.drop();
  });

  it('verify adds the tag column FreeRADIUS never selects, and FreeRADIUS still answers', async () => {
    const cols = await db.sql.query(
      `SELECT table_name FROM information_schema.columns WHERE column_name = $1 ORDER BY table_name`,
      [TAG_COLUMN]
    );
    assert.deepEqual(
      cols.rows.map((r) => r.table_name),
      ['radcheck', 'radusergroup']
    );
    assert.equal((await mab(fr, '001b44110001')).code, 'Access-Reject');
  });

  it('a device it never saw: Access-Reject before, Access-Accept with the VLAN after, Access-Reject after undo', async () => {
    const mac = '001b44110002';
    assert.equal(await nac.lookup(mac), null);
    assert.equal((await mab(fr, mac)).code, 'Access-Reject');
    const created = await nac.createWhitelisted(mac, tag('g-new'));
    assert.equal(created.action, 'created');
    assert.equal(created.action === 'created' && created.sessionPossible, true);
    assert.equal(created.endpoint.tag?.origin, 'created');
    const ok = await mab(fr, mac);
    assert.equal(ok.code, 'Access-Accept');
    assert.equal(ok.attributes['Tunnel-Private-Group-Id'], '30');
    assert.equal(ok.attributes['Tunnel-Type'], 'VLAN');
    assert.equal(await nac.restore(mac, null, 'g-new'), 'deleted');
    assert.equal((await mab(fr, mac)).code, 'Access-Reject');
    assert.deepEqual(await rowsOf(db, mac), { radcheck: [], radreply: [], radusergroup: [] });
  });

  it('a device in another group goes back to it with its old replies and the same rows, ids included', async () => {
    const mac = '001b44110003';
    await db.sql.query(
      `INSERT INTO radcheck (username, attribute, op, value) VALUES ($1, 'Cleartext-Password', ':=', $1)`,
      [mac]
    );
    await db.sql.query(
      `INSERT INTO radreply (username, attribute, op, value) VALUES ($1, 'Session-Timeout', ':=', '3600')`,
      [mac]
    );
    await db.sql.query(`INSERT INTO radusergroup (username, groupname, priority) VALUES ($1, $2, 5)`, [mac, GUESTS]);
    const before = await rowsOf(db, mac);
    const guest = await mab(fr, mac);
    assert.equal(guest.attributes['Tunnel-Private-Group-Id'], '99');

    const first = await nac.createWhitelisted(mac, tag('g-move'));
    assert.equal(first.action, 'exists');
    const prior = first.endpoint;
    assert.equal(prior.group, GUESTS);
    const moved = await nac.ensureWhitelisted(mac, tag('g-move'));
    assert.equal(moved.action, 'updated');
    assert.equal(moved.endpoint.tag?.origin, 'existing');
    const staff = await mab(fr, mac);
    assert.equal(staff.code, 'Access-Accept');
    assert.equal(staff.attributes['Tunnel-Private-Group-Id'], '30');
    assert.equal(staff.attributes['Session-Timeout'], undefined, 'the old per-device reply is not applied meanwhile');
    // A retry of the same write changes nothing.
    assert.equal((await nac.ensureWhitelisted(mac, tag('g-move'))).action, 'unchanged');

    assert.equal(await nac.restore(mac, prior, 'g-move'), 'restored');
    assert.deepEqual(await rowsOf(db, mac), before);
    assert.deepEqual((await nac.lookup(mac))?.vendor, prior.vendor);
    const back = await mab(fr, mac);
    assert.equal(back.attributes['Tunnel-Private-Group-Id'], '99');
    assert.equal(back.attributes['Session-Timeout'], '3600');
    // A retry of the restore after it committed: the rows are the prior ones, nothing to do.
    assert.equal(await nac.restore(mac, prior, 'g-move'), 'restored');
    assert.deepEqual(await rowsOf(db, mac), before);
  });

  it('retries are idempotent: a create that committed answers created again, one row each', async () => {
    const mac = '001b44110004';
    assert.equal((await nac.createWhitelisted(mac, tag('g-retry'))).action, 'created');
    const again = await nac.createWhitelisted(mac, tag('g-retry'));
    assert.equal(again.action, 'created');
    assert.equal((await nac.ensureWhitelisted(mac, tag('g-retry'))).action, 'unchanged');
    const rows = await rowsOf(db, mac);
    assert.equal(rows.radcheck.length, 1);
    assert.equal(rows.radusergroup.length, 1);
    assert.equal(await nac.restore(mac, null, 'g-retry'), 'deleted');
    assert.equal(await nac.restore(mac, null, 'g-retry'), 'deleted');
  });

  it('a device blocked by a reject rule or a rejecting group is never whitelisted, and is left as it was', async () => {
    const byRule = '001b44110005';
    await db.sql.query(
      `INSERT INTO radcheck (username, attribute, op, value) VALUES ($1, 'Auth-Type', ':=', 'Reject')`,
      [byRule]
    );
    const byGroup = '001b44110006';
    await db.sql.query(
      `INSERT INTO radcheck (username, attribute, op, value) VALUES ($1, 'Cleartext-Password', ':=', $1)`,
      [byGroup]
    );
    await db.sql.query(`INSERT INTO radusergroup (username, groupname, priority) VALUES ($1, $2, 1)`, [
      byGroup,
      QUARANTINE,
    ]);
    for (const [mac, why] of [
      [byRule, /Auth-Type := Reject in radcheck/],
      [byGroup, /group quarantine/],
    ] as const) {
      const before = await rowsOf(db, mac);
      const first = await nac.createWhitelisted(mac, tag(`g-block-${mac}`));
      assert.equal(first.action, 'exists');
      await assert.rejects(nac.ensureWhitelisted(mac, tag(`g-block-${mac}`)), (err: unknown) => {
        assert.ok(err instanceof IntegrationError);
        assert.equal(err.kind, 'conflict');
        assert.equal(err.details.code, 'blocked');
        assert.match(err.message, why);
        assert.match(err.message, /never lifts a security block/);
        return true;
      });
      assert.deepEqual(await rowsOf(db, mac), before);
      assert.equal((await mab(fr, mac)).code, 'Access-Reject');
    }
  });

  it('a change by someone else meanwhile is never overwritten by undo', async () => {
    const mac = '001b44110007';
    await nac.createWhitelisted(mac, tag('g-other'));
    // An administrator takes the device over by hand: new rows, no tag of ours.
    await db.sql.query('DELETE FROM radcheck WHERE username = $1', [mac]);
    await db.sql.query('DELETE FROM radusergroup WHERE username = $1', [mac]);
    await db.sql.query(
      `INSERT INTO radcheck (username, attribute, op, value) VALUES ($1, 'Cleartext-Password', ':=', $1)`,
      [mac]
    );
    const theirs = await rowsOf(db, mac);
    assert.equal(await nac.restore(mac, null, 'g-other'), 'skipped');
    assert.deepEqual(await rowsOf(db, mac), theirs);
  });

  it('hand-over: a second grant takes the device over, the first undo is skipped, the last restores the original', async () => {
    const mac = '001b44110008';
    await db.sql.query(`INSERT INTO radusergroup (username, groupname, priority) VALUES ($1, $2, 1)`, [mac, GUESTS]);
    const original = await rowsOf(db, mac);
    const a = await nac.createWhitelisted(mac, tag('g-a'));
    assert.equal(a.action, 'exists');
    await nac.ensureWhitelisted(mac, tag('g-a'));
    const b = await nac.createWhitelisted(mac, tag('g-b'));
    assert.equal(b.action, 'exists');
    assert.equal(b.endpoint.tag?.grantId, 'g-a');
    assert.equal((await nac.ensureWhitelisted(mac, tag('g-b'))).action, 'updated');
    assert.equal(await nac.restore(mac, a.endpoint, 'g-a'), 'skipped', 'g-b holds it now');
    // The workflow hands g-a's prior state to g-b (adoptPrior); g-b's undo then restores the original.
    assert.equal(await nac.restore(mac, a.endpoint, 'g-b'), 'restored');
    assert.deepEqual(await rowsOf(db, mac), original);
  });

  it('two grants writing one device at once take turns: one set of rows, never two', async () => {
    const mac = '001b44110009';
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => nac.ensureWhitelisted(mac, tag(`g-race-${i % 2}`)))
    );
    assert.ok(results.every((r) => ['created', 'updated', 'unchanged'].includes(r.action)));
    const rows = await rowsOf(db, mac);
    assert.equal(rows.radcheck.length, 1);
    assert.equal(rows.radusergroup.length, 1);
  });

  it('listTagged finds every tagged device, by MAC, and nothing else', async () => {
    const tagged = await nac.listTagged();
    const macs = tagged.map((e) => e.mac);
    assert.ok(macs.includes('001b44110004') === false, 'deleted devices are gone');
    for (const e of tagged) assert.ok(e.tag?.grantId, `${e.mac} carries a tag`);
    assert.ok(macs.includes('001b44110008') === false, 'restored to the untagged original');
    assert.ok(macs.includes('001b44110009'));
  });

  for (const format of RADIUS_USERNAME_FORMATS) {
    it(`NAC_RADIUS_USERNAME_FORMAT=${format}: the rows are written as the NAS sends the MAC`, async () => {
      const mac = '001b4411000a';
      const a = adapter({ usernameFormat: format });
      const user = radiusUsername(mac, format);
      assert.equal((await a.createWhitelisted(mac, tag(`g-fmt-${format}`))).action, 'created');
      assert.equal((await db.sql.query('SELECT 1 FROM radcheck WHERE username = $1', [user])).rowCount, 1);
      const ok = await mab(fr, user);
      assert.equal(ok.code, 'Access-Accept');
      assert.equal((await a.listTagged()).find((e) => e.mac === mac)?.tag?.grantId, `g-fmt-${format}`);
      assert.equal(await a.restore(mac, null, `g-fmt-${format}`), 'deleted');
      assert.equal((await mab(fr, user)).code, 'Access-Reject');
    });
  }

  it('User-Names round-trip for every format (property)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-f]{12}$/), fc.constantFrom(...RADIUS_USERNAME_FORMATS), (mac, format) => {
        const user = radiusUsername(mac, format);
        assert.equal(user.length, format.length);
        assert.equal(macOfUsername(user), mac);
      })
    );
  });

  it('verify: a group without replies is a warning, a rejecting group and a missing schema are errors', async () => {
    const none = adapter({ group: 'no-such-group' });
    const warnings = await none.verify();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /no-such-group .* has no radgroupreply rows/);
    await assert.rejects(adapter({ group: QUARANTINE }).verify(), /rejects its members/);
    const empty = await createFreeRadiusDatabase();
    try {
      await empty.sql.query('DROP TABLE radcheck, radreply, radusergroup, radgroupcheck, radgroupreply');
      await assert.rejects(adapter({ databaseUrl: empty.url }).verify(), (err: unknown) => {
        assert.ok(err instanceof IntegrationError);
        assert.equal(err.kind, 'invalid');
        assert.match(
          err.message,
          /no radcheck, radreply, radusergroup, radgroupcheck, radgroupreply tables: load FreeRADIUS's schema/
        );
        return true;
      });
    } finally {
      await empty.drop();
    }
    const coaWarn = await adapter({ coaSecret: undefined }).verify();
    assert.ok(coaWarn.some((w) => /no NAC_RADIUS_COA_SECRET and no NAS/.test(w)));
  });

  it('the FreeRADIUS 2 schema (radusergroup without id) works the same', async () => {
    const old = await createFreeRadiusDatabase();
    try {
      await old.sql.query('ALTER TABLE radusergroup DROP COLUMN id');
      await seedGroups(old);
      const a = adapter({ databaseUrl: old.url });
      await a.verify();
      const mac = '001b4411000b';
      await old.sql.query(`INSERT INTO radusergroup (username, groupname, priority) VALUES ($1, $2, 3)`, [mac, GUESTS]);
      const first = await a.createWhitelisted(mac, tag('g-old'));
      assert.equal(first.action, 'exists');
      await a.ensureWhitelisted(mac, tag('g-old'));
      assert.equal(await a.restore(mac, first.endpoint, 'g-old'), 'restored');
      assert.deepEqual((await old.sql.query('SELECT * FROM radusergroup WHERE username = $1', [mac])).rows, [
        { username: mac, groupname: GUESTS, priority: 3, [TAG_COLUMN]: null },
      ]);
    } finally {
      await old.drop();
    }
  });

  it('an unreachable database is a transient error that names the cause, never the password', async () => {
    const port = await freePort();
    const a = adapter({ databaseUrl: `postgres://radius:hunter2-secret@127.0.0.1:${port}/radius` });
    await assert.rejects(a.lookup('001b4411000c'), (err: unknown) => {
      assert.ok(err instanceof IntegrationError);
      assert.equal(err.kind, 'transient');
      assert.match(err.message, /ECONNREFUSED/);
      assert.doesNotMatch(err.message, /hunter2/);
      return true;
    });
  });

  it('PostgreSQL errors are classified by SQLSTATE', () => {
    const pgErr = (code: string) => Object.assign(new Error('x'), { code, severity: 'ERROR' });
    assert.equal(classifyPgError('w', pgErr('28P01')).kind, 'auth');
    assert.equal(classifyPgError('w', pgErr('42501')).kind, 'auth');
    assert.equal(classifyPgError('w', pgErr('57P01')).kind, 'transient');
    assert.equal(classifyPgError('w', pgErr('40001')).kind, 'transient');
    assert.equal(classifyPgError('w', pgErr('08006')).kind, 'transient');
    assert.equal(classifyPgError('w', pgErr('3D000')).kind, 'invalid');
    assert.equal(classifyPgError('w', pgErr('42P01')).kind, 'invalid');
    assert.equal(classifyPgError('w', new Error('Connection terminated unexpectedly')).kind, 'transient');
  });

  describe('Change of Authorization (RFC 5176) to the NAS that holds the session', () => {
    const mac = '001b4411000d';
    const session = { 'Acct-Session-Id': 'sess-0d', 'NAS-IP-Address': '127.0.0.1', 'NAS-Port': '10' };
    const account = (status: 'Start' | 'Stop') =>
      radclient({
        port: fr.acctPort,
        secret: fr.secret,
        type: 'acct',
        attributes: {
          'User-Name': mac,
          'Acct-Status-Type': status,
          'Calling-Station-Id': '00-1B-44-11-00-0D',
          ...session,
        },
      });

    it('no accounting session: nothing to send', async () => {
      assert.deepEqual(await nac.changeOfAuthorization(mac, 'disconnect'), { outcome: 'no-session' });
    });

    it('disconnect: a Disconnect-Request with the session and the NAS secret, acknowledged', async () => {
      assert.equal((await account('Start')).code, 'Accounting-Response');
      const seen = fr.coaReceived().length;
      const r = await nac.changeOfAuthorization(mac, 'disconnect');
      assert.deepEqual(r, { outcome: 'disconnected', where: `127.0.0.1:${fr.coaPort}` });
      const got = fr.coaReceived().slice(seen);
      assert.equal(got.length, 1);
      assert.equal(got[0]!['Packet-Type'], 'Disconnect-Request');
      assert.equal(got[0]!['User-Name'], mac);
      assert.equal(got[0]!['Acct-Session-Id'], 'sess-0d');
      assert.equal(got[0]!['Calling-Station-Id'], '00-1B-44-11-00-0D');
      assert.equal(got[0]!['NAS-IP-Address'], '127.0.0.1');
      assert.ok(got[0]!['Event-Timestamp'], 'Event-Timestamp (RFC 5176 §3.5)');
    });

    it('reauth: a CoA-Request with Cisco-AVPair subscriber:command=reauthenticate', async () => {
      const seen = fr.coaReceived().length;
      const r = await adapter({ coa: 'reauth' }).changeOfAuthorization(mac, 'reauth');
      assert.equal(r.outcome, 'reauthenticated');
      const got = fr.coaReceived().slice(seen);
      assert.equal(got[0]!['Packet-Type'], 'CoA-Request');
      assert.equal(got[0]!['Cisco-AVPair'], 'subscriber:command=reauthenticate');
    });

    it("the NAS's own secret from FreeRADIUS's nas table wins over NAC_RADIUS_COA_SECRET", async () => {
      await db.sql.query(`INSERT INTO nas (nasname, shortname, secret) VALUES ('127.0.0.1', 'switch-1', $1)`, [
        fr.coaSecret,
      ]);
      try {
        const r = await adapter({ coaSecret: 'not-the-secret' }).changeOfAuthorization(mac, 'disconnect');
        assert.equal(r.outcome, 'disconnected');
      } finally {
        await db.sql.query('DELETE FROM nas');
      }
    });

    it('a wrong secret gets no answer (the NAS drops it): a transient error that says so', async () => {
      const seen = fr.coaReceived().length;
      await assert.rejects(
        adapter({ coaSecret: 'wrong-secret', timeoutMs: 900 }).changeOfAuthorization(mac, 'disconnect'),
        (err: unknown) => {
          assert.ok(err instanceof IntegrationError);
          assert.equal(err.kind, 'transient');
          assert.match(err.message, /no valid answer after 3 tries/);
          return true;
        }
      );
      assert.equal(fr.coaReceived().length, seen, 'FreeRADIUS accepted nothing signed with the wrong secret');
    });

    it('no secret at all: an error naming both places to set one', async () => {
      await assert.rejects(
        adapter({ coaSecret: undefined }).changeOfAuthorization(mac, 'disconnect'),
        /NAC_RADIUS_COA_SECRET or list the NAS/
      );
    });

    it('after the accounting Stop, no session again', async () => {
      assert.equal((await account('Stop')).code, 'Accounting-Response');
      assert.deepEqual(await nac.changeOfAuthorization(mac, 'disconnect'), { outcome: 'no-session' });
    });
  });
});
