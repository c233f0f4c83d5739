import { formatMac } from '../../../domain/mac';
import type { ApiResult, SimRequest, SimShared } from '../api';
import { segments } from '../api';
import type { SimSession } from '../sessions';
import { normalizeMac } from '../store';

/**
 * ISE Monitoring (MnT) REST API (`https://{mnt-node}/admin/API/mnt/...`, port 443, HTTP Basic, XML): the live sessions
 * of `sessions.ts` and Change of Authorization on them. Sources are research report §5/§6 (/tmp/research/ise.md):
 *
 * - `GET Session/MACAddress/{MAC}` → `<sessionParameters>` (Cisco MnT spec `SessionParameters`, api-evangelist/cisco-ise
 *   `cisco-ise-monitoring-open-api-monitoring-open-api.yaml`; the 2.x sample in Cisco's DevNet doc). Booleans carry
 *   `xsi:type="xs:boolean"` with the namespaces declared inline, as newer builds write them (I: captures of unknown
 *   provenance).
 * - "Only uppercase characters are accepted for the MAC address input" (Cisco's guide); lowercase gave HTTP 500 on
 *   3.1 (ansible-ise#34). The lookup is modelled as case-sensitive, so a lowercase MAC finds no session and gets the
 *   same 500 as a device without one (I: the body).
 * - No session → HTTP 500 `<mnt-rest-result>` "Session data is not available for …" (practitioner code checks
 *   `internal-error-info` for "not available"; the body from a fixture of unknown provenance: I).
 * - `GET CoA/Reauth/{server}/{MAC}/{0|1|2}` → `<remoteCoA requestType="reauth"><results>true</results></remoteCoA>`
 *   (ISE 2.6 API reference ch. 4; ciscoisesdk `misc.py`; the MnT spec `CoAResult`). Types: 0 REAUTH_TYPE_DEFAULT,
 *   1 REAUTH_TYPE_LAST, 2 REAUTH_TYPE_RERUN.
 * - `GET CoA/Disconnect/{server}/{MAC}/{0|1|2}` (MnT spec, Splunk connector) and the 5-segment form
 *   `/{nasIpv4}/{endpointIp}` (ciscoisesdk `session_disconnect`, ISE 1.4 guide). Types: 0 DYNAMIC_AUTHZ_PORT_DEFAULT,
 *   1 …_BOUNCE, 2 …_SHUTDOWN. `requestType="disconnect"` is I (Cisco's own sample says "reauth").
 * - `{server}` names the PSN that holds the session (ciscoisesdk calls it PSN_NAME; the Splunk connector passes the
 *   session's `acs_server`). A server segment, NAS IP or type that does not fit the session → `<results>false`
 *   (I: no CoA error was ever recorded); no session at all → the 500 above (I).
 * - `Session/ActiveCount` → `<sessionCount><count>`; `Session/ActiveList` → `<activeList noOfActiveSession="N">` of
 *   `<activeSession>` (ciscoisesdk `misc.py`; MnT spec `SimpleActiveSession`).
 */

const PROLOG = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>';
const XS_NS = 'xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';
const UPPER_COLON_MAC = /^([0-9A-F]{2}:){5}[0-9A-F]{2}$/;

export interface Mnt {
  handle(req: SimRequest): ApiResult;
  macOf(req: SimRequest): string | undefined;
  error(status: number, detail: string): ApiResult;
}

export function createMnt(shared: SimShared): Mnt {
  const { sessions, store } = shared;

  function handle(req: SimRequest): ApiResult {
    const seg = segments(req.path).slice(3); // drop admin/API/mnt
    if (req.method !== 'GET') return mntError(405, `${req.method} is not supported`, 'CLIENT_ERROR');
    const route = `${seg[0]}/${seg[1]}`;
    if (route === 'Session/ActiveCount' && seg.length === 2) {
      return xml(200, `<sessionCount><count>${sessions.list({ state: 'active' }).length}</count></sessionCount>`);
    }
    if (route === 'Session/ActiveList' && seg.length === 2) return activeList();
    if (route === 'Session/MACAddress' && seg.length === 3) return sessionByMac(seg[2]!);
    if (route === 'CoA/Reauth' && seg.length === 5) return coa('reauth', seg[2]!, seg[3]!, seg[4]!);
    if (route === 'CoA/Disconnect' && (seg.length === 5 || seg.length === 7)) {
      return coa('disconnect', seg[2]!, seg[3]!, seg[4]!, seg[5], seg[6]);
    }
    return mntError(404, `No such MnT resource: ${req.path}`, 'CLIENT_ERROR');
  }

  /** The active session of a MAC as MnT looks it up: exactly `XX:XX:XX:XX:XX:XX`, upper case. */
  function lookup(raw: string): SimSession | undefined {
    if (!UPPER_COLON_MAC.test(raw)) return undefined;
    const mac = normalizeMac(raw);
    return mac ? sessions.active(mac) : undefined;
  }

  function sessionByMac(raw: string): ApiResult {
    const s = lookup(raw);
    if (!s) return notAvailable(raw);
    const group = store.groupById(s.authorization.iseGroupId)?.name ?? '';
    const bool = (name: string, v: boolean) => `<${name} xsi:type="xs:boolean" ${XS_NS}>${v}</${name}>`;
    const el = (name: string, v: string) => `<${name}>${esc(v)}</${name}>`;
    return xml(
      200,
      [
        '<sessionParameters>',
        bool('passed', true),
        bool('failed', false),
        el('user_name', s.username),
        el('nas_ip_address', s.nasIp),
        el('calling_station_id', formatMac(s.mac, 'colon-upper')),
        el('identity_group', group),
        el('network_device_name', 'sim-switch-1'),
        el('acs_server', s.server),
        el('authentication_method', 'mab'),
        el('framed_ip_address', s.endpointIp),
        el('auth_acs_timestamp', s.authorization.at),
        el('audit_session_id', s.id),
        el('acct_session_id', s.acctSessionId),
        bool('started', false),
        bool('stopped', false),
        '</sessionParameters>',
      ].join('\n')
    );
  }

  function activeList(): ApiResult {
    const active = sessions.list({ state: 'active' });
    const items = active.map(
      (s) =>
        `<activeSession><user_name>${esc(s.username)}</user_name><calling_station_id>${formatMac(s.mac, 'colon-upper')}</calling_station_id><nas_ip_address>${esc(s.nasIp)}</nas_ip_address><acct_session_id>${esc(s.acctSessionId)}</acct_session_id><audit_session_id>${esc(s.id)}</audit_session_id><server>${esc(s.server)}</server><framed_ip_address>${esc(s.endpointIp)}</framed_ip_address></activeSession>`
    );
    return xml(200, `<activeList noOfActiveSession="${active.length}">${items.join('')}</activeList>`);
  }

  function coa(
    action: 'reauth' | 'disconnect',
    server: string,
    rawMac: string,
    type: string,
    nasIp?: string,
    endpointIp?: string
  ): ApiResult {
    const mac = normalizeMac(rawMac) ?? rawMac.toLowerCase();
    const session = lookup(rawMac);
    const base = { vendor: 'ise' as const, action, mac, server, detail: type };
    if (!session) {
      sessions.recordCoa({ ...base, ...(nasIp ? { nasIp } : {}), result: 'no-session' });
      return notAvailable(rawMac);
    }
    const fits =
      /^[012]$/.test(type) &&
      server === session.server &&
      (nasIp === undefined || nasIp === session.nasIp) &&
      (endpointIp === undefined || endpointIp === session.endpointIp);
    if (fits) {
      if (action === 'reauth') sessions.reauthenticate(session);
      else sessions.disconnect(session);
    }
    sessions.recordCoa({
      ...base,
      sessionId: session.id,
      nasIp: nasIp ?? session.nasIp,
      result: fits ? 'ok' : 'refused',
    });
    return xml(200, `<remoteCoA requestType="${action}">\n<results>${fits}</results>\n</remoteCoA>`);
  }

  function notAvailable(raw: string): ApiResult {
    return mntError(500, `Session data is not available for ${raw}.`, 'SERVER_ERROR');
  }

  return {
    handle,
    macOf(req) {
      const seg = segments(req.path).slice(3);
      if (seg[0] === 'Session' && seg[1] === 'MACAddress') return normalizeMac(seg[2]);
      if (seg[0] === 'CoA') return normalizeMac(seg[3]);
      return undefined;
    },
    error: (status, detail) => mntError(status, detail, status >= 500 ? 'SERVER_ERROR' : 'CLIENT_ERROR'),
  };
}

/** Cisco's `mnt-rest-result` error document (MnT spec `components.schemas.mnt-rest-result`). */
function mntError(status: number, info: string, kind: 'SERVER_ERROR' | 'CLIENT_ERROR'): ApiResult {
  return xml(
    status,
    [
      '<mnt-rest-result>',
      `<http-code>${status}</http-code>`,
      `<description>${status >= 500 ? 'Server has encountered error while processing the REST request' : 'Client request is invalid'}</description>`,
      '<module-name>MnT</module-name>',
      `<internal-error-info>${esc(info)}</internal-error-info>`,
      `<status>${kind}</status>`,
      '<link/>',
      '</mnt-rest-result>',
    ].join('\n')
  );
}

/** MnT answers XML (ciscoisesdk's MnT session sends and accepts `application/xml`); the charset is I. */
function xml(status: number, body: string): ApiResult {
  return { status, raw: { contentType: 'application/xml;charset=utf-8', text: `${PROLOG}\n${body}` } };
}

function esc(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
