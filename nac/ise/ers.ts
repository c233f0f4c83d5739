import { headerValue, type NacHttpClient, type NacRequest, type NacResponse } from '../http';
import { isCsrfRefusal } from './errors';

/**
 * The ERS client: HTTP Basic on every request, the ERS session cookies, and the CSRF token, working whether ISE's
 * "CSRF Check" is on or off without being told which.
 *
 * - Session: ERS answers a cookie-less request with `JSESSIONIDSSO` and `APPSESSIONID`; clients send them back
 *   (falkowich/pyise-ers cassettes; requests.Session in ciscoisesdk and pyise-ers). A response that sets them again
 *   means ISE started a new session (ours timed out or was dropped): the token of the old one is dead.
 * - CSRF: with the check on, POST/PUT/DELETE need the token fetched by a GET with `X-CSRF-Token: fetch` in the same
 *   session, returned in the `X-CSRF-Token` response header (Cisco's ERS swagger; ciscoisesdk `_get_csrf_token`;
 *   pyise-ers). Writes go out without a token until ISE refuses one with 403; then the token is fetched once (single
 *   flight for concurrent writes) and the write retried once (ciscoisesdk does the same: one retry after a 403). From
 *   then on writes carry the token, and a session idle near ERS's 60 s time-out (ISE 2.4 admin guide) is replaced
 *   with a fresh one before a write, instead of paying a refused write.
 * - The session a token belongs to is kept with it: when concurrent requests that carried stale cookies each come
 *   back with a different new session, only the first is adopted, so a fetched token and the cookies sent with it
 *   always match.
 */

export interface ErsClientOptions {
  http: NacHttpClient;
  username: string;
  password: string;
  /** ERS session idle time-out (default 60 s, ISE's). */
  sessionIdleMs?: number;
}

interface ErsSession {
  /** `name=value` pairs as sent in `Cookie`. */
  cookies: Map<string, string>;
  token?: string;
  lastUsedAt: number;
}

const DEFAULT_IDLE_MS = 60_000;
/** The versioninfo GET is what ciscoisesdk fetches the token with; any ERS GET would do (ciscoise-go-sdk). */
const TOKEN_PATH = '/ers/config/endpoint/versioninfo';

export class ErsClient {
  private readonly http: NacHttpClient;
  private readonly authHeader: string;
  private readonly refreshAfterMs: number;
  private session: ErsSession = { cookies: new Map(), lastUsedAt: 0 };
  /** Learnt from ISE: a write was refused and a token came back, so the check is on. */
  private csrfOn = false;
  private tokenFetch: Promise<string | undefined> | undefined;

  constructor(opts: ErsClientOptions) {
    this.http = opts.http;
    this.authHeader = 'Basic ' + Buffer.from(`${opts.username}:${opts.password}`).toString('base64');
    const idle = opts.sessionIdleMs ?? DEFAULT_IDLE_MS;
    // Replace the session a little before ISE would: 5 s early, or a quarter early for short time-outs (tests).
    this.refreshAfterMs = idle - Math.min(5000, idle / 4);
  }

  /** Send one ERS request; a write refused for its CSRF token is retried once with a fresh token. */
  async send(req: NacRequest): Promise<NacResponse> {
    if (!isWrite(req.method)) return this.exchange(req, this.session);
    if (this.csrfOn) await this.ensureToken();
    const session = this.session;
    const token = session.token;
    const res = await this.exchange(req, session, token);
    if (res.status !== 403) return res;
    // Either the check is on and our token is missing or stale, or the account/node may not write: a token
    // settles it (none comes back when the check is off, and then the 403 is the answer).
    const fresh = await this.refreshToken(token);
    if (!fresh) return res;
    const retried = await this.exchange(req, this.session, fresh);
    if (isCsrfRefusal(retried)) this.dropSession(this.session); // start over next time; the error says transient
    return retried;
  }

  private async exchange(req: NacRequest, session: ErsSession, token?: string): Promise<NacResponse> {
    const cookie = [...session.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await this.http.send({
      ...req,
      headers: {
        authorization: this.authHeader,
        ...(cookie ? { cookie } : {}),
        ...(token ? { 'x-csrf-token': token } : {}),
        ...req.headers,
      },
    });
    this.adopt(session, res);
    return res;
  }

  /** Take a new session from Set-Cookie, but only in place of the session the request was sent with. */
  private adopt(sentWith: ErsSession, res: NacResponse): ErsSession {
    if (sentWith !== this.session) return this.session;
    const set = setCookiePairs(res.headers['set-cookie']);
    if (set.size === 0) {
      sentWith.lastUsedAt = Date.now();
      return sentWith;
    }
    // New server session: its cookies replace ours; a token of the old session is worthless in it.
    this.session = { cookies: new Map([...sentWith.cookies, ...set]), lastUsedAt: Date.now() };
    return this.session;
  }

  private dropSession(session: ErsSession): void {
    if (session === this.session) this.session = { cookies: new Map(), lastUsedAt: 0 };
  }

  /** With the check known on: a token for the current session, replacing a session idle near its time-out. */
  private async ensureToken(): Promise<void> {
    const s = this.session;
    if (s.token && Date.now() - s.lastUsedAt < this.refreshAfterMs) return;
    if (s.token) this.dropSession(s); // idle too long: ISE has (or is about to have) dropped it
    await this.refreshToken(undefined);
  }

  /**
   * A token for the current session. Concurrent callers share one fetch; a caller whose refused token is already
   * replaced takes the new one without fetching again.
   */
  private refreshToken(refused: string | undefined): Promise<string | undefined> {
    if (this.tokenFetch) return this.tokenFetch;
    const current = this.session.token;
    if (current && current !== refused) return Promise.resolve(current);
    this.tokenFetch = this.fetchToken().finally(() => {
      this.tokenFetch = undefined;
    });
    return this.tokenFetch;
  }

  private async fetchToken(): Promise<string | undefined> {
    const res = await this.exchange(
      { method: 'GET', path: TOKEN_PATH, headers: { 'x-csrf-token': 'fetch' }, what: 'fetch the ERS CSRF token' },
      this.session
    );
    const token = res.status === 200 ? headerValue(res.headers, 'x-csrf-token') : undefined;
    if (!token || token.toLowerCase() === 'fetch') return undefined;
    this.csrfOn = true;
    // The response's session is the current one (adopt() switched to it if ISE started a new one).
    this.session.token = token;
    return token;
  }
}

function isWrite(method: NacRequest['method']): boolean {
  return method === 'POST' || method === 'PUT' || method === 'DELETE' || method === 'PATCH';
}

/** `name=value` of each Set-Cookie (attributes such as Path and Secure are not needed: we only talk to /ers). */
export function setCookiePairs(header: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of Array.isArray(header) ? header : header ? [header] : []) {
    const pair = line.split(';', 1)[0]!;
    const eq = pair.indexOf('=');
    if (eq > 0) out.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return out;
}
