import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import radius from 'radius';
import { IntegrationError } from '../../domain/errors';
import type { CoaMode, CoaResult } from '../adapter';
import type { NacHttpObserver, NacRequestOutcome } from '../http';
import { SYSTEM, type Sql } from './sql';

/**
 * Change of Authorization for FreeRADIUS sites. FreeRADIUS answers the NAS but never pushes a change to it, so the
 * adapter does what ISE and ClearPass do for their NASes: it finds the device's live session in FreeRADIUS's
 * accounting table (`radacct`, written by the sql module's accounting section: an open session has no
 * AcctStopTime) and sends the NAS that holds it an RFC 5176 request on its Dynamic Authorization port (3799):
 *  - `disconnect`: Disconnect-Request; the NAS ends the session and the device authenticates again, now with its
 *    new rows;
 *  - `reauth`: CoA-Request carrying Cisco-AVPair `subscriber:command=reauthenticate` (Cisco's "RADIUS Change of
 *    Authorization" command, the one ISE itself sends for a re-authentication; Aruba and others accept
 *    Disconnect-Request, so NAC_COA=disconnect is the portable choice).
 * The session is named as RFC 5176 §3 asks: NAS-IP-Address, then User-Name, Acct-Session-Id, Calling-Station-Id as
 * accounting recorded them, with Event-Timestamp (§3.5, replay protection). No Message-Authenticator (optional in
 * RFC 5176 §3.5): node-radius 1.1.4 computes it after the Request Authenticator for these codes, and FreeRADIUS drops
 * such a packet as "invalid Message-Authenticator" (seen in this project's CoA test). The packets are built, signed and checked by `radius` (npm,
 * node-radius), not here. The shared secret is the NAS's row in FreeRADIUS's `nas` table when it has one, else
 * NAC_RADIUS_COA_SECRET.
 */

/** RFC 5176 §3.6 Error-Cause values after which a retry can succeed (the rest mean the request is wrong). */
const RETRYABLE_ERROR_CAUSES = new Set([
  'Request-Not-Routable',
  'Other-Proxy-Processing-Error',
  'Resources-Unavailable',
]);
/** Cisco vendor id and Cisco-AVPair's attribute number (FreeRADIUS's dictionary.cisco). */
const CISCO_VENDOR_ID = 9;
const CISCO_AVPAIR = 1;
const REAUTHENTICATE = 'subscriber:command=reauthenticate';

export interface RadiusCoaOptions {
  /** The NASes' Dynamic Authorization port (NAC_RADIUS_COA_PORT, RFC 5176 §2.3: 3799). */
  port: number;
  /** NAC_RADIUS_COA_SECRET: used for a NAS without a row in the `nas` table. */
  secret?: string;
  /** Whole exchange, across retransmissions (NAC_TIMEOUT_MS). */
  timeoutMs: number;
  /** Transmissions of the same packet (RFC 5080 §2.2.1: a retransmission keeps its Identifier). Default 3. */
  tries?: number;
  observer?: NacHttpObserver;
}

/** One open accounting session, as `radacct` holds it. */
export interface AccountingSession {
  nas: string;
  username: string | null;
  acctSessionId: string;
  callingStationId: string | null;
  /** The NAS's secret from the `nas` table, when FreeRADIUS lists it there. */
  nasSecret: string | null;
}

/** The device's newest open session, matched by User-Name or by Calling-Station-Id in any notation. */
export async function findOpenSession(sql: Sql, mac: string, username: string): Promise<AccountingSession | null> {
  const { rows } = await sql.query<{
    nas: string;
    username: string | null;
    acctsessionid: string;
    callingstationid: string | null;
  }>(
    `SELECT host(nasipaddress) AS nas, username, acctsessionid, callingstationid
       FROM radacct
      WHERE acctstoptime IS NULL
        AND (username = $1 OR lower(regexp_replace(callingstationid, '[^0-9A-Fa-f]', '', 'g')) = $2)
      ORDER BY acctstarttime DESC NULLS LAST, radacctid DESC
      LIMIT 1`,
    [username, mac]
  );
  const row = rows[0];
  if (!row) return null;
  // `nas.nasname` is an address, a CIDR or a host name (clients.conf's ipaddr): the exact address or its /32.
  const hasNas = await sql.query<{ t: string | null }>(`SELECT to_regclass('nas')::text AS t`);
  let nasSecret: string | null = null;
  if (hasNas.rows[0]?.t) {
    const n = await sql.query<{ secret: string }>(
      `SELECT secret FROM nas WHERE nasname IN ($1, $1 || '/32', $1 || '/128') ORDER BY id LIMIT 1`,
      [row.nas]
    );
    nasSecret = n.rows[0]?.secret ?? null;
  }
  return {
    nas: row.nas,
    username: row.username,
    acctSessionId: row.acctsessionid,
    callingStationId: row.callingstationid,
    nasSecret,
  };
}

export class RadiusCoa {
  constructor(private readonly opts: RadiusCoaOptions) {}

  /** Send the request for `session` and read the NAS's answer. */
  async send(session: AccountingSession, mode: Exclude<CoaMode, 'off'>): Promise<CoaResult> {
    const where = `${session.nas}:${this.opts.port}`;
    const secret = session.nasSecret ?? this.opts.secret;
    if (!secret) {
      throw new IntegrationError(
        `${SYSTEM} change of authorization at ${where}: no shared secret for this NAS; set NAC_RADIUS_COA_SECRET or list the NAS (with its secret) in FreeRADIUS's nas table`,
        'invalid',
        { system: SYSTEM, code: 'coa-no-secret' }
      );
    }
    const attributes: unknown[] = [[isIP(session.nas) === 6 ? 'NAS-IPv6-Address' : 'NAS-IP-Address', session.nas]];
    if (session.username) attributes.push(['User-Name', session.username]);
    attributes.push(['Acct-Session-Id', session.acctSessionId]);
    if (session.callingStationId) attributes.push(['Calling-Station-Id', session.callingStationId]);
    attributes.push(['Event-Timestamp', new Date()]); // node-radius encodes a Date as the 32-bit date type
    if (mode === 'reauth') {
      attributes.push(['Vendor-Specific', CISCO_VENDOR_ID, [[CISCO_AVPAIR, Buffer.from(REAUTHENTICATE)]]]);
    }
    const code = mode === 'reauth' ? 'CoA-Request' : 'Disconnect-Request';
    const identifier = Math.floor(Math.random() * 256);
    const packet = radius.encode({ code, secret, identifier, attributes, add_message_authenticator: false });
    const started = performance.now();
    let outcome: NacRequestOutcome = 'error';
    try {
      const answer = await this.exchange(session.nas, packet, identifier, secret, where);
      const result = interpret(answer, mode, where);
      outcome = 'ok';
      return result;
    } catch (err) {
      if (err instanceof IntegrationError && err.details.code === 'coa-no-answer') outcome = 'timeout';
      throw err;
    } finally {
      this.opts.observer?.request({
        system: SYSTEM,
        area: 'coa',
        method: 'RADIUS',
        outcome,
        seconds: (performance.now() - started) / 1000,
      });
    }
  }

  /** Send `packet`, retransmitting it unchanged, until an answer with our Identifier passes the authenticator check. */
  private exchange(
    host: string,
    packet: Buffer,
    identifier: number,
    secret: string,
    where: string
  ): Promise<radius.RadiusPacket> {
    const tries = this.opts.tries ?? 3;
    const perTry = Math.max(100, Math.floor(this.opts.timeoutMs / tries));
    const socket = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    return new Promise<radius.RadiusPacket>((resolve, reject) => {
      let sent = 0;
      let forged = 0;
      let timer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        socket.close();
        fn();
      };
      socket.on('message', (msg, rinfo) => {
        if (rinfo.address !== host && !(host === '127.0.0.1' && rinfo.address === '::ffff:127.0.0.1')) return;
        if (msg.length < 20 || msg[1] !== identifier) return;
        // An answer that fails the Response Authenticator check is not from the NAS we share the secret with.
        let valid = false;
        try {
          valid = radius.verify_response({ request: packet, response: msg, secret });
        } catch {
          valid = false;
        }
        if (!valid) {
          forged++;
          return;
        }
        finish(() => resolve(radius.decode({ packet: msg, secret })));
      });
      socket.on('error', (err) =>
        finish(() =>
          reject(
            new IntegrationError(`${SYSTEM} change of authorization at ${where}: ${err.message}`, 'transient', {
              system: SYSTEM,
              code: 'coa-network',
            })
          )
        )
      );
      const transmit = () => {
        if (sent === tries) {
          const why = forged
            ? `${forged} answer(s) failed the authenticator check: the NAS's shared secret differs`
            : 'a NAS drops a request signed with the wrong secret without answering (RFC 5176 §3.5), so check the secret; or its Dynamic Authorization (CoA) server is not enabled or the port is filtered';
          finish(() =>
            reject(
              new IntegrationError(
                `${SYSTEM} change of authorization at ${where}: no valid answer after ${tries} tries (${why})`,
                'transient',
                { system: SYSTEM, code: 'coa-no-answer' }
              )
            )
          );
          return;
        }
        sent++;
        socket.send(packet, this.opts.port, host);
        timer = setTimeout(transmit, perTry);
      };
      transmit();
    });
  }
}

function interpret(answer: radius.RadiusPacket, mode: Exclude<CoaMode, 'off'>, where: string): CoaResult {
  if (answer.code === 'Disconnect-ACK') return { outcome: 'disconnected', where };
  if (answer.code === 'CoA-ACK') return { outcome: mode === 'reauth' ? 'reauthenticated' : 'disconnected', where };
  if (answer.code === 'Disconnect-NAK' || answer.code === 'CoA-NAK') {
    const cause = answer.attributes['Error-Cause'];
    const causeText = typeof cause === 'string' || typeof cause === 'number' ? String(cause) : 'no Error-Cause';
    // The NAS knows no such session: accounting still lists one the NAS has forgotten (a missed Stop).
    if (causeText === 'Session-Context-Not-Found' || causeText === '503') return { outcome: 'no-session', where };
    throw new IntegrationError(
      `${SYSTEM} change of authorization at ${where}: ${answer.code} (${causeText})`,
      RETRYABLE_ERROR_CAUSES.has(causeText) ? 'transient' : 'invalid',
      { system: SYSTEM, code: `coa-nak:${causeText}` }
    );
  }
  throw new IntegrationError(`${SYSTEM} change of authorization at ${where}: unexpected ${answer.code}`, 'transient', {
    system: SYSTEM,
    code: 'coa-unexpected',
  });
}
