import { IntegrationError } from '../../domain/errors';
import type { NacHttpClient, NacRequest, NacResponse } from '../http';

/**
 * ClearPass OAuth2, client credentials grant (`POST /api/oauth` with a JSON `TokenEndpoint` body: vendor OAS 6.12.7
 * api-operations; pyclearpass). One token is shared by every request: fetched once for concurrent callers (single
 * flight), refreshed a little before `expires_in` runs out (8 h by default), and once more after a 401 (revoked or
 * expired early). A bad client answers 400 `invalid_client` (recorded: techservicesillinois/clearpass-api
 * test_failed_connectivity.yaml), which is a credentials problem, not a bad request.
 */

/** Refresh this long before the token's stated expiry (capped to a tenth of short lifetimes). */
const TOKEN_MARGIN_MS = 30_000;

export class ClearPassOAuth {
  private token: { value: string; refreshAt: number } | undefined;
  private tokenPromise: Promise<string> | undefined;

  constructor(
    private readonly http: NacHttpClient,
    private readonly clientId: string,
    private readonly clientSecret: string
  ) {}

  /** Send with the bearer token; on a 401 fetch a fresh token once and retry. Answers of any status are returned. */
  async send(req: NacRequest): Promise<NacResponse> {
    const token = await this.accessToken();
    const res = await this.http.send({ ...req, headers: { ...req.headers, authorization: `Bearer ${token}` } });
    if (res.status !== 401) return res;
    this.invalidate(token);
    const fresh = await this.accessToken();
    return this.http.send({ ...req, headers: { ...req.headers, authorization: `Bearer ${fresh}` } });
  }

  /** The API client's operator-profile privileges (`GET /api/oauth/privileges` → `{privileges: [...]}`, OAS). */
  async privileges(): Promise<string[]> {
    const req = { method: 'GET', path: '/api/oauth/privileges', what: 'read API client privileges' } as const;
    const res = await this.send(req);
    if (res.status !== 200) throw this.http.errorFromResponse(req, res);
    const list = (res.body as { privileges?: unknown } | undefined)?.privileges;
    if (!Array.isArray(list)) {
      throw new IntegrationError(`clearpass ${req.what}: unexpected response shape`, 'transient', {
        system: 'clearpass',
      });
    }
    return list.filter((p): p is string => typeof p === 'string');
  }

  private accessToken(): Promise<string> {
    if (this.token && Date.now() < this.token.refreshAt) return Promise.resolve(this.token.value);
    this.tokenPromise ??= this.fetchToken().finally(() => {
      this.tokenPromise = undefined;
    });
    return this.tokenPromise;
  }

  private invalidate(token: string): void {
    if (this.token?.value === token) this.token = undefined;
  }

  private async fetchToken(): Promise<string> {
    const req = {
      method: 'POST',
      path: '/api/oauth',
      json: { grant_type: 'client_credentials', client_id: this.clientId, client_secret: this.clientSecret },
      what: 'get OAuth token',
    } as const;
    const res = await this.http.send(req);
    if (res.status !== 200) {
      const err = this.http.errorFromResponse(req, res);
      if (res.status === 400 || res.status === 401) {
        throw new IntegrationError(`${err.message} (check NAC_CLIENT_ID / NAC_CLIENT_SECRET)`, 'auth', err.details);
      }
      throw err;
    }
    // OAuth2Response {access_token, token_type "Bearer", expires_in} (OAS).
    const body = res.body as { access_token?: unknown; expires_in?: unknown } | undefined;
    if (typeof body?.access_token !== 'string' || !body.access_token) {
      throw new IntegrationError(`clearpass ${req.what}: unexpected response shape`, 'transient', {
        system: 'clearpass',
      });
    }
    const lifetimeMs = (typeof body.expires_in === 'number' ? body.expires_in : 3600) * 1000;
    const margin = Math.min(TOKEN_MARGIN_MS, lifetimeMs / 10);
    this.token = { value: body.access_token, refreshAt: Date.now() + lifetimeMs - margin };
    return body.access_token;
  }
}
