import { XMLParser } from 'fast-xml-parser';
import { IntegrationError } from '../../domain/errors';
import { formatMac } from '../../domain/mac';
import { errorFromResponse, type NacHttpClient, type NacRequest, type NacResponse } from '../http';

/**
 * ISE Monitoring (MnT) REST client: sessions by MAC and Change of Authorization (`https://{mnt}/admin/API/mnt/...`,
 * port 443, HTTP Basic, XML; ciscoisesdk's MnT session sends `Accept: application/xml`). The account must be an
 * internal admin in Super Admin, System Admin or MnT Admin ("Monitoring REST APIs are only supported for internal
 * users", DevNet "Introduction to the Monitoring REST API" 2.7/3.0); ERS Admin is not enough. MACs always go out as
 * `XX:XX:XX:XX:XX:XX` in upper case ("Only uppercase characters are accepted", Cisco's guide; lowercase is a 500,
 * ansible-ise#34).
 */

export interface MntSession {
  /** `acs_server`: the PSN that holds the session, the `{server}` segment of a CoA call. */
  server: string;
  nasIp?: string;
  endpointIp?: string;
  auditSessionId?: string;
}

export interface MntClientOptions {
  http: NacHttpClient;
  username: string;
  password: string;
}

const parser = new XMLParser({ ignoreAttributes: false, parseTagValue: false, attributeNamePrefix: '@' });
const ROLE_FIX =
  'the MnT account (NAC_ISE_MNT_USERNAME/NAC_ISE_MNT_PASSWORD, default the ERS account) must be an internal admin in Super Admin, System Admin or MnT Admin';

export class MntClient {
  private readonly http: NacHttpClient;
  private readonly authHeader: string;

  constructor(opts: MntClientOptions) {
    this.http = opts.http;
    this.authHeader = 'Basic ' + Buffer.from(`${opts.username}:${opts.password}`).toString('base64');
  }

  /**
   * The device's session, or null when MnT has none: ISE answers that with HTTP 500 and an `<mnt-rest-result>` whose
   * `internal-error-info` says "Session data is not available" (practitioner code checks "not available"; research
   * §5 "No session").
   */
  async sessionByMac(mac: string): Promise<MntSession | null> {
    const m = formatMac(mac, 'colon-upper');
    const req = {
      method: 'GET',
      path: `/admin/API/mnt/Session/MACAddress/${m}`,
      what: `read the session of ${m}`,
    } as const;
    const res = await this.send(req);
    const doc = parseXml(res.text);
    if (res.status === 500 && /not available/i.test(errorInfo(doc))) return null;
    if (res.status !== 200) throw this.error(req, res, doc);
    const sp = (doc as { sessionParameters?: Record<string, unknown> } | undefined)?.sessionParameters;
    const server = text(sp?.acs_server);
    if (!sp || !server) {
      throw new IntegrationError(`${this.http.system} ${req.what}: unexpected response shape`, 'transient', {
        system: this.http.system,
      });
    }
    return {
      server,
      ...(text(sp.nas_ip_address) ? { nasIp: text(sp.nas_ip_address) } : {}),
      ...(text(sp.framed_ip_address) ? { endpointIp: text(sp.framed_ip_address) } : {}),
      ...(text(sp.audit_session_id) ? { auditSessionId: text(sp.audit_session_id) } : {}),
    };
  }

  /** `GET CoA/Reauth/{server}/{MAC}/{type}`; throws a transient error unless ISE says `<results>true</results>`. */
  async reauthenticate(session: MntSession, mac: string, reauthType: 0 | 1 | 2): Promise<void> {
    const m = formatMac(mac, 'colon-upper');
    await this.coa(
      `/admin/API/mnt/CoA/Reauth/${encodeURIComponent(session.server)}/${m}/${reauthType}`,
      `re-authenticate the session of ${m} on ${session.server}`
    );
  }

  /**
   * `GET CoA/Disconnect/{server}/{MAC}/{type}`, with `/{nasIpv4}/{endpointIp}` when both are known (the form
   * ciscoisesdk `session_disconnect` and the ISE 1.4 guide use; Cisco's MnT spec and the Splunk connector use the
   * short one).
   */
  async disconnect(session: MntSession, mac: string, disconnectType: 0 | 1 | 2): Promise<void> {
    const m = formatMac(mac, 'colon-upper');
    const tail = session.nasIp && session.endpointIp ? `/${session.nasIp}/${session.endpointIp}` : '';
    await this.coa(
      `/admin/API/mnt/CoA/Disconnect/${encodeURIComponent(session.server)}/${m}/${disconnectType}${tail}`,
      `disconnect the session of ${m} on ${session.server}`
    );
  }

  /** A cheap authenticated read (start-up check): the number of active sessions. */
  async activeCount(): Promise<void> {
    const req = {
      method: 'GET',
      path: '/admin/API/mnt/Session/ActiveCount',
      what: 'read the MnT session count',
    } as const;
    const res = await this.send(req);
    if (res.status !== 200) throw this.error(req, res, parseXml(res.text));
  }

  /** `<remoteCoA requestType="…"><results>true|false</results></remoteCoA>`: "false" means not executed. */
  private async coa(path: string, what: string): Promise<void> {
    const req = { method: 'GET', path, what } as const;
    const res = await this.send(req);
    const doc = parseXml(res.text);
    if (res.status !== 200) {
      const err = this.error(req, res, doc);
      // A CoA that failed is retried briefly by the workflow; only a configuration error stops it.
      if (err.kind === 'auth' || err.kind === 'invalid' || err.retryable) throw err;
      throw new IntegrationError(err.message, 'transient', err.details);
    }
    const results = text((doc as { remoteCoA?: { results?: unknown } } | undefined)?.remoteCoA?.results);
    if (results !== 'true') {
      throw new IntegrationError(
        `${this.http.system} ${what}: ISE did not execute the CoA (results ${results || 'missing'})`,
        'transient',
        { system: this.http.system, code: 'COA_NOT_EXECUTED' }
      );
    }
  }

  private send(req: NacRequest): Promise<NacResponse> {
    return this.http.send({ ...req, headers: { authorization: this.authHeader, accept: 'application/xml' } });
  }

  private error(req: Pick<NacRequest, 'what'>, res: NacResponse, doc: unknown): IntegrationError {
    const system = this.http.system;
    if (res.status === 401 || res.status === 403) {
      return new IntegrationError(`${system} ${req.what}: HTTP ${res.status}: ${ROLE_FIX}`, 'auth', {
        system,
        status: res.status,
      });
    }
    if (res.status === 404) {
      return new IntegrationError(
        `${system} ${req.what}: HTTP 404: NAC_ISE_MNT_URL must be an ISE node with the Monitoring persona (https://<mnt-node>, port 443)`,
        'invalid',
        { system, status: 404 }
      );
    }
    const info = errorInfo(doc);
    // "This host is not a MnT node. MnT REST APIs can not be executed on this node." (Cisco's MnT spec example).
    if (/not a MnT node/i.test(info)) {
      return new IntegrationError(
        `${system} ${req.what}: ${info.slice(0, 200)}: point NAC_ISE_MNT_URL at a node with the Monitoring persona`,
        'invalid',
        { system, status: res.status }
      );
    }
    const base = errorFromResponse(system, req.what, res);
    return info
      ? new IntegrationError(
          `${system} ${req.what}: HTTP ${res.status} (${info.slice(0, 200)})`,
          base.kind,
          base.details
        )
      : base;
  }
}

function parseXml(xml: string): unknown {
  if (!xml.trimStart().startsWith('<')) return undefined;
  try {
    return parser.parse(xml) as unknown;
  } catch {
    return undefined;
  }
}

function errorInfo(doc: unknown): string {
  return text(
    (doc as { 'mnt-rest-result'?: { 'internal-error-info'?: unknown } } | undefined)?.['mnt-rest-result']?.[
      'internal-error-info'
    ]
  );
}

/** The text of an element: a string, or `#text` when it carries attributes (`xsi:type`). */
function text(v: unknown): string {
  if (typeof v === 'string') return v.trim();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v && typeof v === 'object' && '#text' in v) return text((v as { '#text': unknown })['#text']);
  return '';
}
