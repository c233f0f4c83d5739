import { IntegrationError } from '../../domain/errors';
import type {
  CoaMode,
  CoaResult,
  CreateResult,
  EndpointSnapshot,
  EnsureResult,
  GrantTag,
  NacAdapter,
  NacDriver,
} from '../adapter';
import { blockedError } from '../blocked';
import type { NacHttpObserver } from '../http';
import { parseTagDescription, sameTag, tagDescription } from '../tag';
import { findOpenSession, RadiusCoa } from './coa';
import { FreeRadiusSql, SYSTEM, type Sql } from './sql';
import { macOfUsername, radiusUsername, type RadiusUsernameFormat } from './username';

/**
 * FreeRADIUS with its SQL module (rlm_sql, PostgreSQL): the whitelist is rows in FreeRADIUS's own tables, which it
 * reads on every Access-Request (Debian's mods-config/sql/main/postgresql/queries.conf: authorize_check_query,
 * authorize_reply_query, group_membership_query, authorize_group_check/reply_query).
 *
 * A device is whitelisted by exactly these rows for its User-Name (the MAC as the NAS writes it):
 *   radcheck      <user>  Cleartext-Password  :=  <user>     (MAB: the NAS sends the MAC as the password too; `pap`)
 *   radusergroup  <user>  NAC_FREERADIUS_GROUP  priority 1   (when set: the group's radgroupreply gives VLAN / role)
 * Whitelisting replaces whatever rows the device had (radcheck, radreply, radusergroup), as an ISE endpoint moves
 * into the whitelist group: the configured replies are then the ones it gets, not an old per-device VLAN. The
 * snapshot is every one of those rows, ids included, and restore puts exactly them back (a device that was in
 * another group is in it again, with the same row ids) in the same transaction that deletes ours.
 *
 * The grant's tag is the description line of nac/tag.ts in a column FreeRADIUS never selects
 * (`approval_plus_tag`, on radcheck and radusergroup: queries.conf names its columns), added by verify() when
 * missing. Every read-then-write runs in one transaction holding an advisory lock on the User-Name, so two grants
 * for one device (or a retry racing its first attempt) take turns.
 *
 * Blocked: a radcheck `Auth-Type := Reject` for the device, or a group of the device's with `Auth-Type := Reject`
 * in radgroupcheck — FreeRADIUS's own way to refuse a user (the "disabled group" of its SQL how-to) — is never
 * whitelisted by an approval.
 */

export const TAG_COLUMN = 'approval_plus_tag';
/** radusergroup priority of our row (FreeRADIUS processes groups by ascending priority; one group here). */
const GROUP_PRIORITY = 1;

export interface FreeRadiusAdapterOptions {
  databaseUrl: string;
  /** NAC_FREERADIUS_GROUP: the group whose radgroupreply rows (VLAN, role) a whitelisted device gets. */
  group?: string;
  usernameFormat: RadiusUsernameFormat;
  timeoutMs: number;
  maxRps: number;
  caFile?: string;
  tlsInsecure?: boolean;
  coa?: CoaMode;
  coaPort?: number;
  coaSecret?: string;
  observer?: NacHttpObserver;
  cancellation?: () => AbortSignal | undefined;
}

/** One radcheck or radreply row. */
export interface AttributeRow {
  id: number;
  username: string;
  attribute: string;
  op: string;
  value: string;
  /** radcheck only (radreply has no tag column). */
  tag?: string | null;
}

/** One radusergroup row; `id` is absent on a schema whose radusergroup has none (FreeRADIUS 2's). */
export interface GroupRow {
  id?: number;
  username: string;
  groupname: string;
  priority: number;
  tag?: string | null;
}

/** `EndpointSnapshot.vendor` for FreeRADIUS: every row the device has in the three tables. */
export interface FreeRadiusRows {
  username: string;
  radcheck: AttributeRow[];
  radreply: AttributeRow[];
  radusergroup: GroupRow[];
}

interface Schema {
  userGroupHasId: boolean;
}

export class FreeRadiusAdapter implements NacAdapter {
  readonly driver: NacDriver = 'freeradius';
  private readonly sql: FreeRadiusSql;
  private readonly coa: RadiusCoa;
  private schema: Schema | undefined;

  constructor(private readonly opts: FreeRadiusAdapterOptions) {
    this.sql = new FreeRadiusSql(opts);
    this.coa = new RadiusCoa({
      port: opts.coaPort ?? 3799,
      secret: opts.coaSecret,
      timeoutMs: opts.timeoutMs,
      observer: opts.observer,
    });
  }

  /**
   * The tables FreeRADIUS reads are there and writable, the tag column exists (added when missing: a nullable column
   * without default is a catalogue change, no table rewrite), the whitelist group has replies and does not itself
   * reject, and CoA has a secret to sign with.
   */
  async verify(): Promise<string[]> {
    const warnings: string[] = [];
    await this.sql.transaction('check the FreeRADIUS schema', async (sql) => {
      const tables = await sql.query<{ table_name: string; column_name: string }>(
        `SELECT table_name, column_name FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name IN ('radcheck','radreply','radusergroup','radgroupcheck','radgroupreply','radacct','nas')`
      );
      const columns = new Map<string, Set<string>>();
      for (const r of tables.rows) {
        if (!columns.has(r.table_name)) columns.set(r.table_name, new Set());
        columns.get(r.table_name)!.add(r.column_name);
      }
      const missing = ['radcheck', 'radreply', 'radusergroup', 'radgroupcheck', 'radgroupreply'].filter(
        (t) => !columns.has(t)
      );
      if (missing.length) {
        throw new IntegrationError(
          `freeradius database has no ${missing.join(', ')} table${missing.length > 1 ? 's' : ''}: load FreeRADIUS's schema (mods-config/sql/main/postgresql/schema.sql) into the database NAC_DATABASE_URL names, or point it at FreeRADIUS's database`,
          'invalid',
          { system: SYSTEM, code: 'schema' }
        );
      }
      for (const table of ['radcheck', 'radusergroup']) {
        if (columns.get(table)!.has(TAG_COLUMN)) continue;
        try {
          await sql.query('SAVEPOINT add_tag');
          await sql.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${TAG_COLUMN} text`);
          await sql.query('RELEASE SAVEPOINT add_tag');
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code !== '42501') throw err;
          throw new IntegrationError(
            `freeradius user cannot add the ${TAG_COLUMN} column to ${table} (not the table's owner): run \`ALTER TABLE radcheck ADD COLUMN ${TAG_COLUMN} text; ALTER TABLE radusergroup ADD COLUMN ${TAG_COLUMN} text;\` once as the owner, and grant SELECT, INSERT, UPDATE, DELETE on radcheck, radreply, radusergroup and SELECT on radgroupcheck, radgroupreply, radacct, nas`,
            'auth',
            { system: SYSTEM, code: 'tag-column' }
          );
        }
      }
      this.schema = { userGroupHasId: columns.get('radusergroup')!.has('id') };
      // Write access, proved without writing: the privileges the grants will use.
      const can = await sql.query<{ ok: boolean; what: string }>(
        `SELECT has_table_privilege(t, p) AS ok, t || ' ' || p AS what
           FROM unnest(ARRAY['radcheck','radreply','radusergroup']) t, unnest(ARRAY['SELECT','INSERT','DELETE']) p
         UNION ALL SELECT has_table_privilege(t, 'SELECT'), t || ' SELECT'
           FROM unnest(ARRAY['radgroupcheck','radgroupreply']) t`
      );
      const lacking = can.rows.filter((r) => !r.ok).map((r) => r.what);
      if (lacking.length) {
        throw new IntegrationError(
          `freeradius user lacks ${lacking.join(', ')}: grant them to the user in NAC_DATABASE_URL`,
          'auth',
          { system: SYSTEM, code: 'privilege' }
        );
      }
      if (this.opts.group) {
        const g = await sql.query<{ replies: string; rejects: string }>(
          `SELECT (SELECT count(*) FROM radgroupreply WHERE groupname = $1) AS replies,
                  (SELECT count(*) FROM radgroupcheck WHERE groupname = $1
                      AND lower(attribute) = 'auth-type' AND lower(value) = 'reject') AS rejects`,
          [this.opts.group]
        );
        if (Number(g.rows[0]!.rejects) > 0) {
          throw new IntegrationError(
            `freeradius group ${this.opts.group} (NAC_FREERADIUS_GROUP) rejects its members (Auth-Type := Reject in radgroupcheck): whitelisted devices would be refused; name the group that carries the VLAN`,
            'invalid',
            { system: SYSTEM, code: 'group-rejects' }
          );
        }
        if (Number(g.rows[0]!.replies) === 0) {
          warnings.push(
            `freeradius group ${this.opts.group} (NAC_FREERADIUS_GROUP) has no radgroupreply rows: whitelisted devices are accepted without a VLAN or role; add e.g. Tunnel-Type := VLAN, Tunnel-Medium-Type := IEEE-802, Tunnel-Private-Group-Id := <vlan>`
          );
        }
      }
      if ((this.opts.coa ?? 'reauth') !== 'off' && !this.opts.coaSecret) {
        const nas = columns.has('nas')
          ? Number((await sql.query<{ n: string }>('SELECT count(*) AS n FROM nas')).rows[0]!.n)
          : 0;
        if (nas === 0) {
          warnings.push(
            `freeradius: no NAC_RADIUS_COA_SECRET and no NAS in FreeRADIUS's nas table, so Change of Authorization (NAC_COA=${this.opts.coa ?? 'reauth'}) cannot sign its requests and devices keep their old access until they reconnect; set NAC_RADIUS_COA_SECRET (the NASes' CoA secret) or NAC_COA=off`
          );
        }
      }
    });
    return warnings;
  }

  async lookup(mac: string): Promise<EndpointSnapshot | null> {
    const user = this.username(mac);
    return this.sql.transaction(`read ${user}`, (sql) => this.read(sql, mac, user), { readOnly: true });
  }

  async createWhitelisted(mac: string, tag: GrantTag): Promise<CreateResult> {
    const user = this.username(mac);
    return this.sql.transaction(`whitelist ${user}`, async (sql) => {
      await lock(sql, user);
      const current = await this.read(sql, mac, user);
      // A device with no rows may still be online (a NAS's guest or auth-fail VLAN): CoA is due after a create too.
      if (!current) {
        const endpoint = await this.writeOurs(sql, mac, user, tag, 'created');
        return { action: 'created', endpoint, sessionPossible: true };
      }
      // Our own tag can only come from this grant's earlier create (a retry after it committed).
      if (current.tag?.grantId === tag.grantId) return { action: 'created', endpoint: current, sessionPossible: true };
      return { action: 'exists', endpoint: current };
    });
  }

  async ensureWhitelisted(mac: string, tag: GrantTag): Promise<EnsureResult> {
    // `known` is not needed: the read is in the write's own transaction, under the lock, at no extra round trip.
    const user = this.username(mac);
    return this.sql.transaction(`whitelist ${user}`, async (sql) => {
      await lock(sql, user);
      const current = await this.read(sql, mac, user);
      if (!current) return { action: 'created', endpoint: await this.writeOurs(sql, mac, user, tag, 'created') };
      if (sameTag(current.tag, tag) && this.isOurs(current)) return { action: 'unchanged', endpoint: current };
      const blocked = await blockedBy(sql, user);
      if (blocked) throw blockedError(this.driver, mac, blocked);
      const origin = current.tag?.grantId === tag.grantId ? (current.tag.origin ?? 'existing') : 'existing';
      await deleteRows(sql, user);
      return { action: 'updated', endpoint: await this.writeOurs(sql, mac, user, tag, origin) };
    });
  }

  async restore(
    mac: string,
    prior: EndpointSnapshot | null,
    grantId: string
  ): Promise<'restored' | 'deleted' | 'skipped'> {
    const user = this.username(mac);
    return this.sql.transaction(`restore ${user}`, async (sql) => {
      await lock(sql, user);
      const current = await this.read(sql, mac, user);
      if (!current) return prior ? 'skipped' : 'deleted';
      if (current.tag?.grantId !== grantId) {
        // Someone else's rows now, or our restore already committed (a retry): leave them.
        return prior && sameRows(rowsOf(current), rowsOf(prior)) ? 'restored' : 'skipped';
      }
      await deleteRows(sql, user);
      if (!prior) return 'deleted';
      await this.insertRows(sql, rowsOf(prior));
      return 'restored';
    });
  }

  async listTagged(): Promise<EndpointSnapshot[]> {
    return this.sql.transaction(
      'list tagged devices',
      async (sql) => {
        await this.ensureSchema(sql);
        const users = await sql.query<{ username: string }>(
          `SELECT username FROM radcheck WHERE ${TAG_COLUMN} IS NOT NULL
           UNION SELECT username FROM radusergroup WHERE ${TAG_COLUMN} IS NOT NULL
           ORDER BY username`
        );
        const out: EndpointSnapshot[] = [];
        for (const { username } of users.rows) {
          const mac = macOfUsername(username);
          if (!mac) continue;
          const snap = await this.read(sql, mac, username);
          if (snap?.tag) out.push(snap);
        }
        return out;
      },
      { readOnly: true }
    );
  }

  async changeOfAuthorization(mac: string, mode: Exclude<CoaMode, 'off'>): Promise<CoaResult> {
    const user = this.username(mac);
    const session = await this.sql.transaction(
      `find the session of ${user}`,
      (sql) => findOpenSession(sql, mac, user),
      {
        readOnly: true,
      }
    );
    if (!session) return { outcome: 'no-session' };
    return this.coa.send(session, mode);
  }

  async close(): Promise<void> {
    await this.sql.close();
  }

  // --- helpers -------------------------------------------------------------------------------------------------

  private username(mac: string): string {
    return radiusUsername(mac, this.opts.usernameFormat);
  }

  /** Learn the schema once (verify does at start-up, adding the tag column; a hand-built adapter asks on first use). */
  private async ensureSchema(sql: Sql): Promise<Schema> {
    if (this.schema) return this.schema;
    const r = await sql.query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name IN ('radcheck', 'radusergroup')
          AND column_name IN ('id', '${TAG_COLUMN}')`
    );
    const has = (t: string, c: string) => r.rows.some((x) => x.table_name === t && x.column_name === c);
    if (!has('radcheck', TAG_COLUMN) || !has('radusergroup', TAG_COLUMN)) {
      throw new IntegrationError(
        `freeradius tables have no ${TAG_COLUMN} column yet: the worker adds it when it starts (its NAC start-up check); retrying`,
        // Transient: the worker's start-up check runs beside the first activities and adds it (or says why not).
        'transient',
        { system: SYSTEM, code: 'tag-column' }
      );
    }
    this.schema = { userGroupHasId: has('radusergroup', 'id') };
    return this.schema;
  }

  private async read(sql: Sql, mac: string, user: string): Promise<EndpointSnapshot | null> {
    const schema = await this.ensureSchema(sql);
    const check = await sql.query<AttributeRow>(
      `SELECT id, username, attribute, op, value, ${TAG_COLUMN} AS tag FROM radcheck WHERE username = $1 ORDER BY id`,
      [user]
    );
    const reply = await sql.query<AttributeRow>(
      `SELECT id, username, attribute, op, value FROM radreply WHERE username = $1 ORDER BY id`,
      [user]
    );
    const groups = await sql.query<GroupRow>(
      schema.userGroupHasId
        ? `SELECT id, username, groupname, priority, ${TAG_COLUMN} AS tag FROM radusergroup WHERE username = $1 ORDER BY priority, id`
        : `SELECT username, groupname, priority, ${TAG_COLUMN} AS tag FROM radusergroup WHERE username = $1 ORDER BY priority, groupname`,
      [user]
    );
    if (!check.rows.length && !reply.rows.length && !groups.rows.length) return null;
    return snapshot(mac, { username: user, radcheck: check.rows, radreply: reply.rows, radusergroup: groups.rows });
  }

  /** Whether the device's rows are exactly what a whitelist writes (the password row, the group row when set). */
  private isOurs(s: EndpointSnapshot): boolean {
    const rows = rowsOf(s);
    const password = rows.radcheck.length === 1 && isPasswordRow(rows.radcheck[0]!, rows.username);
    const group = this.opts.group
      ? rows.radusergroup.length === 1 && rows.radusergroup[0]!.groupname === this.opts.group
      : rows.radusergroup.length === 0;
    return password && group && rows.radreply.length === 0;
  }

  private async writeOurs(
    sql: Sql,
    mac: string,
    user: string,
    tag: GrantTag,
    origin: 'created' | 'existing'
  ): Promise<EndpointSnapshot> {
    const line = tagDescription({ ...tag, origin });
    const check = await sql.query<AttributeRow>(
      `INSERT INTO radcheck (username, attribute, op, value, ${TAG_COLUMN}) VALUES ($1, 'Cleartext-Password', ':=', $1, $2)
       RETURNING id, username, attribute, op, value, ${TAG_COLUMN} AS tag`,
      [user, line]
    );
    const groups: GroupRow[] = [];
    if (this.opts.group) {
      const schema = await this.ensureSchema(sql);
      const g = await sql.query<GroupRow>(
        `INSERT INTO radusergroup (username, groupname, priority, ${TAG_COLUMN}) VALUES ($1, $2, $3, $4)
         RETURNING ${schema.userGroupHasId ? 'id, ' : ''}username, groupname, priority, ${TAG_COLUMN} AS tag`,
        [user, this.opts.group, GROUP_PRIORITY, line]
      );
      groups.push(...g.rows);
    }
    return snapshot(mac, { username: user, radcheck: check.rows, radreply: [], radusergroup: groups });
  }

  /** Put rows back as they were, ids included (a serial id freed by our delete is not reused by the sequence). */
  private async insertRows(sql: Sql, rows: FreeRadiusRows): Promise<void> {
    const schema = await this.ensureSchema(sql);
    for (const r of rows.radcheck) {
      await insertWithId(
        sql,
        'radcheck',
        ['username', 'attribute', 'op', 'value', TAG_COLUMN],
        [r.username, r.attribute, r.op, r.value, r.tag ?? null],
        r.id
      );
    }
    for (const r of rows.radreply) {
      await insertWithId(
        sql,
        'radreply',
        ['username', 'attribute', 'op', 'value'],
        [r.username, r.attribute, r.op, r.value],
        r.id
      );
    }
    for (const r of rows.radusergroup) {
      await insertWithId(
        sql,
        'radusergroup',
        ['username', 'groupname', 'priority', TAG_COLUMN],
        [r.username, r.groupname, r.priority, r.tag ?? null],
        schema.userGroupHasId ? r.id : undefined
      );
    }
  }
}

/** Serialise writers of one User-Name for the rest of the transaction (no table lock, nothing FreeRADIUS waits on). */
async function lock(sql: Sql, user: string): Promise<void> {
  await sql.query(`SELECT pg_advisory_xact_lock(hashtextextended('approval-plus:' || $1, 0))`, [user]);
}

async function deleteRows(sql: Sql, user: string): Promise<void> {
  await sql.query('DELETE FROM radcheck WHERE username = $1', [user]);
  await sql.query('DELETE FROM radreply WHERE username = $1', [user]);
  await sql.query('DELETE FROM radusergroup WHERE username = $1', [user]);
}

/** The reason the device is blocked (for the requester's message), or undefined. */
async function blockedBy(sql: Sql, user: string): Promise<string | undefined> {
  const r = await sql.query<{ how: string }>(
    `SELECT 'has Auth-Type := Reject in radcheck' AS how FROM radcheck
      WHERE username = $1 AND lower(attribute) = 'auth-type' AND lower(value) = 'reject'
     UNION ALL
     SELECT 'is in group ' || ug.groupname || ', which rejects (Auth-Type := Reject)' FROM radusergroup ug
       JOIN radgroupcheck gc ON gc.groupname = ug.groupname
      WHERE ug.username = $1 AND lower(gc.attribute) = 'auth-type' AND lower(gc.value) = 'reject'
     LIMIT 1`,
    [user]
  );
  return r.rows[0]?.how;
}

async function insertWithId(
  sql: Sql,
  table: string,
  columns: string[],
  values: unknown[],
  id: number | undefined
): Promise<void> {
  const params = values.map((_, i) => `$${i + 1}`);
  if (id !== undefined) {
    const r = await sql.query(
      `INSERT INTO ${table} (id, ${columns.join(', ')}) VALUES ($${values.length + 1}, ${params.join(', ')})
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      [...values, id]
    );
    if (r.rowCount) return;
    // The id was taken meanwhile (a row inserted by hand with an explicit id): the row, under a new id.
  }
  await sql.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${params.join(', ')})`, values);
}

function isPasswordRow(r: AttributeRow, user: string): boolean {
  return r.attribute === 'Cleartext-Password' && r.op === ':=' && r.value === user;
}

function snapshot(mac: string, rows: FreeRadiusRows): EndpointSnapshot {
  const tag =
    rows.radcheck.map((r) => parseTagDescription(r.tag)).find(Boolean) ??
    rows.radusergroup.map((r) => parseTagDescription(r.tag)).find(Boolean);
  const clean = {
    username: rows.username,
    radcheck: rows.radcheck.map((r) => ({ ...r, id: Number(r.id), tag: r.tag ?? null })),
    radreply: rows.radreply.map(({ tag: _t, ...r }) => ({ ...r, id: Number(r.id) })),
    radusergroup: rows.radusergroup.map((r) => ({
      ...(r.id !== undefined && r.id !== null ? { id: Number(r.id) } : {}),
      username: r.username,
      groupname: r.groupname,
      priority: Number(r.priority),
      tag: r.tag ?? null,
    })),
  };
  return {
    mac,
    id: rows.username,
    group: clean.radusergroup.map((g) => g.groupname).join(','),
    ...(tag ? { tag } : {}),
    vendor: clean as unknown as Record<string, unknown>,
  };
}

function rowsOf(s: EndpointSnapshot): FreeRadiusRows {
  const v = s.vendor as Partial<FreeRadiusRows>;
  return {
    username: String(v.username ?? s.id),
    radcheck: Array.isArray(v.radcheck) ? v.radcheck : [],
    radreply: Array.isArray(v.radreply) ? v.radreply : [],
    radusergroup: Array.isArray(v.radusergroup) ? v.radusergroup : [],
  };
}

/** Same rows, ids aside (a row put back under a new id is still the same row to FreeRADIUS). */
function sameRows(a: FreeRadiusRows, b: FreeRadiusRows): boolean {
  const attr = (rows: AttributeRow[]) =>
    rows.map((r) => JSON.stringify([r.attribute, r.op, r.value, r.tag ?? null])).sort();
  const grp = (rows: GroupRow[]) => rows.map((r) => JSON.stringify([r.groupname, r.priority, r.tag ?? null])).sort();
  return (
    JSON.stringify([attr(a.radcheck), attr(a.radreply), grp(a.radusergroup)]) ===
    JSON.stringify([attr(b.radcheck), attr(b.radreply), grp(b.radusergroup)])
  );
}
