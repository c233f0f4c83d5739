import { randomBytes } from 'node:crypto';

/**
 * ERS sessions and the CSRF token bound to them.
 *
 * - A request without (valid) session cookies starts a session: ERS answers it with exactly
 *   `JSESSIONIDSSO=<32 upper hex>; Path=/; Secure; HttpOnly` and `APPSESSIONID=<32 upper hex>; Path=/ers; Secure;
 *   HttpOnly`, and later requests that send them back get no Set-Cookie (falkowich/pyise-ers cassettes
 *   `test_ise_30/test_add_endpoint.yaml` at ef40a62; the same pair on 3.1 P3, terraform-provider-ciscoise#46, and on
 *   3.3 P1, ansible-ise#108). Cookies that name an unknown or timed-out session start a new one (I).
 * - "ERS session idle timeout is 60 sec … if idle > 60 s the session is reset and a new CSRF token is used" (ISE 2.4
 *   admin guide, shared/reference/nac.md §1.1); the time-out is a knob (`iseSessionIdleMs`) so tests can cross it.
 * - The token is handed out in the `X-CSRF-Token` response header of a GET sent with `X-CSRF-Token: fetch`
 *   (pyise-ers `_request()`, ciscoisesdk `_get_csrf_token`, ciscoise-go-sdk `setCSRFToken`); "same CSRF token" for the
 *   whole session (2.4 admin guide). The token belongs to the session that fetched it (I: every client keeps a cookie
 *   jar, none states the binding); one presented with another session's cookies is refused.
 */

export interface ErsSession {
  jsessionIdSso: string;
  appSessionId: string;
  lastUsedAt: number;
  token?: string;
}

/** Bound on remembered sessions; the oldest idle ones are dropped first (a real PAN expires them the same way). */
const MAX_SESSIONS = 5000;

export class ErsSessions {
  private readonly byAppSession = new Map<string, ErsSession>();

  constructor(private readonly idleMs: () => number) {}

  /** The session the request's cookies name, or a new one (`created`: the response must set its cookies). */
  resolve(cookieHeader: string | undefined): { session: ErsSession; created: boolean } {
    const cookies = parseCookieHeader(cookieHeader);
    const now = Date.now();
    const known = cookies.APPSESSIONID ? this.byAppSession.get(cookies.APPSESSIONID) : undefined;
    if (known && known.jsessionIdSso === cookies.JSESSIONIDSSO && now - known.lastUsedAt <= this.idleMs()) {
      known.lastUsedAt = now;
      return { session: known, created: false };
    }
    if (known) this.byAppSession.delete(known.appSessionId);
    this.sweep(now);
    const session: ErsSession = { jsessionIdSso: hex32(), appSessionId: hex32(), lastUsedAt: now };
    this.byAppSession.set(session.appSessionId, session);
    return { session, created: true };
  }

  /** The two Set-Cookie values of a new session, as recorded on ISE 3.0. */
  setCookies(session: ErsSession): string[] {
    return [
      `JSESSIONIDSSO=${session.jsessionIdSso}; Path=/; Secure; HttpOnly`,
      `APPSESSIONID=${session.appSessionId}; Path=/ers; Secure; HttpOnly`,
    ];
  }

  /** The session's CSRF token (one per session). Its format is not recorded anywhere (I). */
  token(session: ErsSession): string {
    session.token ??= randomBytes(16).toString('hex').toUpperCase();
    return session.token;
  }

  /** Whether `presented` is the token of this session. */
  validToken(session: ErsSession, created: boolean, presented: string | undefined): boolean {
    return !created && !!session.token && presented === session.token;
  }

  /** `/_sim/expire-tokens`, `/_sim/reset`, a profile change: every client must start a new session. */
  forget(): void {
    this.byAppSession.clear();
  }

  private sweep(now: number): void {
    if (this.byAppSession.size < MAX_SESSIONS) return;
    for (const [id, s] of this.byAppSession) {
      if (now - s.lastUsedAt > this.idleMs() || this.byAppSession.size >= MAX_SESSIONS) this.byAppSession.delete(id);
    }
  }
}

function hex32(): string {
  return randomBytes(16).toString('hex').toUpperCase();
}

export function parseCookieHeader(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}
