import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { freePort } from '../../temporal/dev-server';

/**
 * A real FreeRADIUS 3 (Debian's `freeradius`, `freeradius-postgresql`) for the tests, on loopback ports with a
 * throw-away configuration, on a database of its own in the local PostgreSQL loaded with the package's own schema
 * (`mods-config/sql/main/postgresql/schema.sql`) and read with the package's own queries (`queries.conf`). What the
 * policy does is the MAB recipe of the FreeRADIUS wiki (guide/Mac-Auth) on the SQL module: the NAS sends the MAC as
 * User-Name and User-Password, `sql` finds `Cleartext-Password` in radcheck and the groups in radusergroup, `pap`
 * compares. A second virtual server listens for CoA and Disconnect requests (RFC 5176) as a switch would, with a
 * secret of its own, and writes every one it accepts to a detail file the test reads.
 */

/** Where Debian's package puts its configuration (its schema, its queries) and its modules. */
export const FREERADIUS_ETC = '/etc/freeradius/3.0';
const SCHEMA = path.join(FREERADIUS_ETC, 'mods-config/sql/main/postgresql/schema.sql');
const BINARY = ['/usr/sbin/freeradius', '/usr/sbin/radiusd'].find((b) => existsSync(b));

/** The local PostgreSQL the tests make their databases in (trust auth on loopback, as on this machine and CI). */
export const TEST_PG_ADMIN_URL = process.env.FREERADIUS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Why the FreeRADIUS tests cannot run here, or undefined when they can. */
export function freeradiusMissing(): string | undefined {
  if (!BINARY) return 'freeradius not installed (apt-get install freeradius freeradius-postgresql freeradius-utils)';
  if (!existsSync('/usr/lib/freeradius/rlm_sql_postgresql.so')) return 'freeradius-postgresql not installed';
  if (!existsSync('/usr/bin/radclient')) return 'freeradius-utils (radclient) not installed';
  if (!existsSync(SCHEMA)) return `FreeRADIUS PostgreSQL schema not found at ${SCHEMA}`;
  return undefined;
}

export interface TestDatabase {
  name: string;
  url: string;
  /** A connected client for the test's own reads and seeds. */
  sql: Client;
  drop(): Promise<void>;
}

/** A database of the test's own, with FreeRADIUS's schema loaded. */
export async function createFreeRadiusDatabase(adminUrl = TEST_PG_ADMIN_URL): Promise<TestDatabase> {
  const name = `approvalplus_fr_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const sql = new Client({ connectionString: url.toString() });
  sql.on('error', () => undefined); // the server restarted under it (fault tests): the test opens a new one
  await sql.connect();
  await sql.query(readFileSync(SCHEMA, 'utf8'));
  return {
    name,
    url: url.toString(),
    sql,
    async drop() {
      await sql.end().catch(() => undefined);
      const a = new Client({ connectionString: adminUrl });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

export interface FreeRadius {
  authPort: number;
  acctPort: number;
  /** The "NAS" CoA listener (RFC 5176's default is 3799; here a free port). */
  coaPort: number;
  /** Shared secret between radclient (the NAS) and FreeRADIUS. */
  secret: string;
  /** Shared secret of the NAS's CoA listener (what the adapter must sign with). */
  coaSecret: string;
  dir: string;
  /** The CoA / Disconnect requests the listener accepted, one attribute map each, in arrival order. */
  coaReceived(): Array<Record<string, string>>;
  log(): string;
  stop(): Promise<void>;
}

export async function startFreeRadius(db: { url: string }, opts: { coaSecret?: string } = {}): Promise<FreeRadius> {
  const missing = freeradiusMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'approval-plus-radius-'));
  const [authPort, acctPort, coaPort] = [await freePort(), await freePort(), await freePort()];
  const secret = 'testing123';
  const coaSecret = opts.coaSecret ?? 'nas-coa-secret';
  const pg = new URL(db.url);
  const coaDetail = path.join(dir, 'coa-received.detail');
  writeFileSync(path.join(dir, 'dictionary'), '# no local attributes\n');
  writeFileSync(
    path.join(dir, 'radiusd.conf'),
    radiusdConf({
      dir,
      authPort,
      acctPort,
      coaPort,
      secret,
      coaSecret,
      coaDetail,
      pg: {
        host: pg.hostname,
        port: Number(pg.port || 5432),
        user: decodeURIComponent(pg.username || 'postgres'),
        password: decodeURIComponent(pg.password),
        database: pg.pathname.slice(1),
      },
    })
  );
  // -f: foreground; -d: our configuration; -l stdout is not used, the log goes to <dir>/radius.log.
  const child: ChildProcess = spawn(BINARY!, ['-f', '-d', dir, '-n', 'radiusd'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const logFile = path.join(dir, 'radius.log');
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '') + stderr;
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready when it answers a Status-Server (RFC 5997) on the auth port.
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) {
      const text = log();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`FreeRADIUS exited at start-up:\n${text.split('\n').slice(-25).join('\n')}`);
    }
    const r = await radclient({ port: authPort, secret, type: 'status', attributes: STATUS, timeoutSec: 1 }).catch(
      () => undefined
    );
    if (r?.code) break;
    if (Date.now() > deadline) {
      const text = log();
      await stop();
      throw new Error(`FreeRADIUS did not answer on 127.0.0.1:${authPort} within 20 s:\n${text.slice(-3000)}`);
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  return {
    authPort,
    acctPort,
    coaPort,
    secret,
    coaSecret,
    dir,
    coaReceived: () => parseDetail(existsSync(coaDetail) ? readFileSync(coaDetail, 'utf8') : ''),
    log,
    stop,
  };
}

/** Status-Server must carry a Message-Authenticator (RFC 5997 §3); radclient fills in the zeros. */
const STATUS = { 'Message-Authenticator': '0x00' };

export interface RadclientAnswer {
  /** `Access-Accept`, `Access-Reject`, `Accounting-Response`, …; empty when nothing came back. */
  code: string;
  /** Reply attributes by name (values as radclient prints them, quotes removed). */
  attributes: Record<string, string>;
  output: string;
}

/** One request with the real `radclient` (freeradius-utils), as a NAS would send it. */
export function radclient(o: {
  port: number;
  secret: string;
  type: 'auth' | 'acct' | 'status' | 'coa' | 'disconnect';
  attributes: Record<string, string>;
  timeoutSec?: number;
}): Promise<RadclientAnswer> {
  const input =
    Object.entries(o.attributes)
      // Octets (0x…) and integers bare, everything else as a quoted string, as radclient's own examples write them.
      .map(([k, v]) => `${k} = ${/^(0x[0-9a-f]+|\d+)$/i.test(v) ? v : `"${v}"`}`)
      .join(',') + '\n';
  return new Promise((resolve, reject) => {
    const child = spawn(
      '/usr/bin/radclient',
      ['-x', '-r', '1', '-t', String(o.timeoutSec ?? 3), `127.0.0.1:${o.port}`, o.type, o.secret],
      { stdio: ['pipe', 'pipe', 'pipe'] }
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', () => {
      const m = /Received (\S+) Id/.exec(out);
      const attributes: Record<string, string> = {};
      if (m) {
        const after = out.slice(out.indexOf(m[0]));
        for (const line of after.split('\n').slice(1)) {
          const a = /^\s+([A-Za-z0-9-]+)(?::\d+)? = (.*)$/.exec(line);
          if (a) attributes[a[1]!] = a[2]!.replace(/^"|"$/g, '');
        }
      }
      resolve({ code: m?.[1] ?? '', attributes, output: out });
    });
    child.stdin.end(input);
  });
}

/** The detail module's file: records separated by blank lines, `\tName = value` lines. */
function parseDetail(text: string): Array<Record<string, string>> {
  return text
    .split(/\n\s*\n/)
    .map((rec) => {
      const attrs: Record<string, string> = {};
      for (const line of rec.split('\n')) {
        const a = /^\s+([A-Za-z0-9-]+)(?::\d+)? = (.*)$/.exec(line);
        if (a) attrs[a[1]!] = a[2]!.replace(/^"|"$/g, '');
      }
      return attrs;
    })
    .filter((a) => Object.keys(a).length > 0);
}

interface ConfParams {
  dir: string;
  authPort: number;
  acctPort: number;
  coaPort: number;
  secret: string;
  coaSecret: string;
  coaDetail: string;
  pg: { host: string; port: number; user: string; password: string; database: string };
}

/**
 * radiusd.conf of a minimal FreeRADIUS 3 server: Debian's module binaries and SQL queries, nothing else from
 * /etc/freeradius. Layout and keys as in Debian's own radiusd.conf, mods-available/sql and sites-available/coa.
 */
function radiusdConf(p: ConfParams): string {
  return `# Generated by test/support/freeradius.ts for one test run.
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = ${p.dir}
raddbdir = ${p.dir}
radacctdir = ${p.dir}
name = radiusd
confdir = ${p.dir}
modconfdir = ${FREERADIUS_ETC}/mods-config
run_dir = ${p.dir}
db_dir = ${p.dir}
libdir = /usr/lib/freeradius
pidfile = ${p.dir}/radiusd.pid
correct_escapes = true
max_request_time = 30
cleanup_delay = 0
max_requests = 16384
hostname_lookups = no

log {
	destination = files
	file = ${p.dir}/radius.log
	auth = yes
	auth_badpass = no
	auth_goodpass = no
}

security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}

thread pool {
	start_servers = 2
	max_servers = 8
	min_spare_servers = 1
	max_spare_servers = 4
	max_requests_per_server = 0
}

# The NAS (radclient) that sends Access- and Accounting-Requests.
client nas-loopback {
	ipaddr = 127.0.0.1
	secret = ${p.secret}
	require_message_authenticator = no
}

modules {
	# mods-available/sql, PostgreSQL dialect, standard table names, the package's queries.conf.
	sql {
		dialect = "postgresql"
		driver = "rlm_sql_postgresql"
		server = "${p.pg.host}"
		port = ${p.pg.port}
		login = "${p.pg.user}"
		password = "${p.pg.password}"
		radius_db = "${p.pg.database}"
		acct_table1 = "radacct"
		acct_table2 = "radacct"
		postauth_table = "radpostauth"
		authcheck_table = "radcheck"
		groupcheck_table = "radgroupcheck"
		authreply_table = "radreply"
		groupreply_table = "radgroupreply"
		usergroup_table = "radusergroup"
		delete_stale_sessions = yes
		read_groups = yes
		read_clients = no
		client_table = "nas"
		group_attribute = "SQL-Group"
		pool {
			start = 1
			min = 1
			max = 8
			spare = 4
			uses = 0
			retry_delay = 1
			lifetime = 0
			idle_timeout = 60
		}
		$INCLUDE \${modconfdir}/sql/main/postgresql/queries.conf
	}
	pap {
		normalise = yes
	}
	# %{tolower:…} and %{md5:…}, which queries.conf and preacct use.
	expr {
	}
	always ok {
		rcode = ok
	}
	# What the CoA listener accepted, for the test to read.
	detail coa_received {
		filename = ${p.coaDetail}
		escape_filenames = no
		permissions = 0600
		header = "%t"
	}
}

server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = ${p.authPort}
	}
	listen {
		type = acct
		ipaddr = 127.0.0.1
		port = ${p.acctPort}
	}
	# MAB (wiki.freeradius.org/guide/Mac-Auth, on SQL): radcheck's Cleartext-Password for the MAC, pap compares it
	# with the User-Password the NAS sent (the MAC again). No row: no known good password, Access-Reject.
	authorize {
		sql
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
	}
	preacct {
		# policy.d/accounting's acct_unique, inlined: the key queries.conf writes as AcctUniqueId.
		update request {
			&Acct-Unique-Session-Id := "%{md5:%{User-Name},%{Acct-Session-ID},%{NAS-IP-Address},%{NAS-Port}}"
		}
	}
	accounting {
		sql
	}
	post-auth {
		Post-Auth-Type REJECT {
			ok
		}
	}
}

# The switch's side of RFC 5176, as sites-available/coa receives it: CoA-Request and Disconnect-Request.
server nas-coa {
	listen {
		type = coa
		ipaddr = 127.0.0.1
		port = ${p.coaPort}
	}
	client adapter-loopback {
		ipaddr = 127.0.0.1
		secret = ${p.coaSecret}
		require_message_authenticator = no
	}
	recv-coa {
		coa_received
		ok
	}
	send-coa {
		ok
	}
}
`;
}
