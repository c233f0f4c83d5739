import { IntegrationError } from '../../domain/errors';
import type { CoaMode, CoaResult } from '../adapter';
import type { NacHttpClient, NacResponse } from '../http';
import type { ClearPassOAuth } from './oauth';

/**
 * ClearPass Change of Authorization through session control, one request per device: the session actions by MAC,
 * `POST /api/session-action/coa/mac/{mac}?async=false` with `{enforcement_profile: [...]}` (re-authenticate) or
 * `POST /api/session-action/disconnect/mac/{mac}?async=false` (disconnect) (session-control OAS 6.12.7; pyclearpass).
 * ClearPass finds the device's active session and sends the RADIUS CoA/Disconnect to its NAS. The answer is a
 * SessionActionList; a real box answers 200 `status: complete, count_success: 1` for a session and 200 `status:
 * failed, count: 0` for none (recorded: techservicesillinois/clearpass-api test_disconnect_mac_address.yaml and
 * test_disconnect_mac_not_found.yaml). The filterless `POST /api/session-action/disconnect` is never used: with an
 * empty body it disconnects every active session (OAS).
 */

/** Where the session-control privilege is granted (Juniper's ClearPass connector guide; privilege labels are (I)). */
export const SESSION_PRIVILEGE_FIX =
  "in ClearPass Guest, Administration » API Services » API Clients → the client's Operator Profile (Administration » Operator Logins » Profiles), give Guest Manager » Active Sessions full access (privilege guest_sessions)";

interface SessionActionList {
  action_id?: unknown;
  status?: unknown;
  count?: unknown;
  count_success?: unknown;
  count_failed?: unknown;
  count_queue?: unknown;
  _embedded?: { items?: Array<{ message?: unknown; success?: unknown }> };
}

export class ClearPassSessions {
  constructor(
    private readonly http: NacHttpClient,
    private readonly oauth: ClearPassOAuth,
    private readonly reauthProfiles: readonly string[]
  ) {}

  async changeOfAuthorization(mac: string, mode: Exclude<CoaMode, 'off'>): Promise<CoaResult> {
    if (mode === 'reauth' && this.reauthProfiles.length === 0) {
      throw new IntegrationError(
        'clearpass CoA: no enforcement profile to re-authenticate with; set NAC_CLEARPASS_REAUTH_PROFILE (or NAC_COA=disconnect)',
        'invalid',
        { system: 'clearpass', code: 'no-reauth-profile' }
      );
    }
    const action = mode === 'reauth' ? 'coa' : 'disconnect';
    const req = {
      method: 'POST',
      // The literal `async=false` (pyclearpass sends `async_`, a bug); the MAC bare lower-case, as recorded.
      path: `/api/session-action/${action}/mac/${mac}?async=false`,
      json: mode === 'reauth' ? { enforcement_profile: [...this.reauthProfiles] } : {},
      what: `${mode === 'reauth' ? 're-authenticate' : 'disconnect'} the session of ${mac}`,
    } as const;
    const res = await this.oauth.send(req);
    // Synchronous (async=false) answers are 200 (recorded); 202 (queued, OAS) is not one, and is not relied on.
    if (res.status !== 200) throw this.failed(req.what, res);
    return this.outcome((res.body ?? {}) as SessionActionList, mode, req.what);
  }

  private outcome(r: SessionActionList, mode: Exclude<CoaMode, 'off'>, what: string): CoaResult {
    const n = (v: unknown) => (typeof v === 'number' ? v : Number.NaN);
    const [count, ok, queued] = [n(r.count), n(r.count_success), n(r.count_queue)];
    if (Number.isNaN(count)) {
      throw new IntegrationError(`clearpass ${what}: unexpected response shape`, 'transient', { system: 'clearpass' });
    }
    // No active session for the MAC: ClearPass answers `failed` with count 0; nothing to act on, not an error.
    if (count === 0) return { outcome: 'no-session' };
    const done = mode === 'reauth' ? 'reauthenticated' : 'disconnected';
    if (r.status !== 'failed' && (ok >= 1 || queued >= 1)) return { outcome: done };
    const reason = r._embedded?.items?.find((i) => i.success === false && typeof i.message === 'string')?.message;
    throw new IntegrationError(
      `clearpass ${what}: ClearPass reported the action ${String(r.status)} (${Number.isNaN(ok) ? 0 : ok} of ${count} sessions)${reason ? `: ${String(reason)}` : ''}; ask the requester to reconnect the device`,
      'transient',
      { system: 'clearpass', code: 'coa-failed' }
    );
  }

  /** A refused CoA is transient (the workflow retries briefly, then tells the requester to reconnect). */
  private failed(what: string, res: NacResponse): IntegrationError {
    const err = this.http.errorFromResponse({ what }, res);
    if (err.kind === 'rate-limited') return err;
    const fix = res.status === 403 ? `: the API client lacks session control; ${SESSION_PRIVILEGE_FIX}` : '';
    return new IntegrationError(`${err.message}${fix}`, 'transient', { ...err.details, code: 'coa-refused' });
  }
}
