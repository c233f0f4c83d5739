import type { ApiArea, ApiResult, SimRequest, SimShared, VendorApi } from '../api';
import { accessDenied, notFound, problem, segments, statusTitle } from './common';
import { createEndpointRoutes } from './endpoints';
import { createOAuth } from './oauth';
import { createSessionRoutes, sessionAccess } from './sessions';

/**
 * Aruba ClearPass Policy Manager as the simulator serves it: OAuth2 (`oauth.ts`), the endpoint repository
 * (`endpoints.ts`) and session control (`sessions.ts`), each release's quirks per `profiles.ts` (ClearPassProfile).
 * In front of every route: the bearer token, then the API client's operator-profile privileges (403 "Access denied").
 */

export function createClearPassApi(shared: SimShared): VendorApi {
  const oauth = createOAuth(shared);
  const endpoints = createEndpointRoutes(shared);
  const sessions = createSessionRoutes(shared);

  function areaOf(path: string): ApiArea | undefined {
    // ISE's OpenAPI lives under /api/v1/ on the same port; ClearPass has no versioned prefix.
    if (!path.startsWith('/api/') || path.startsWith('/api/v1/')) return undefined;
    if (path === '/api/oauth' || path.startsWith('/api/oauth/')) return 'oauth';
    if (/^\/api\/(session|session-action|active-session)(\/|$)/.test(path)) return 'session';
    return 'endpoint';
  }

  function authenticate(req: SimRequest, area: ApiArea): ApiResult | undefined {
    if (area === 'oauth' && req.path === '/api/oauth') return undefined; // the token endpoint authenticates by body
    if (!oauth.valid(req)) return oauth.unauthorized();
    return authorize(req, area);
  }

  /**
   * Operator-profile privileges (`/api/oauth/privileges`; `#` = read-only, `?` = allowed, none = full: netloom).
   * `/api/oauth/me|privileges` need only the baseline (netloom). Endpoints: `cppm_endpoints` unlocks the list
   * (netloom); a write needs it without `#` (the read-only prefix). Sessions: see `sessionAccess`.
   */
  function authorize(req: SimRequest, area: ApiArea): ApiResult | undefined {
    if (area === 'oauth') return undefined;
    const have = new Set(shared.profile().clearpass.privileges);
    const full = (key: string) => have.has(key);
    const any = (key: string) => have.has(key) || have.has(`#${key}`);
    if (area === 'session') {
      const seg = segments(req.path);
      const ok =
        sessionAccess(req, seg) === 'act'
          ? full('guest_sessions') || full('cppm_session_action')
          : any('guest_sessions_history') || any('guest_sessions');
      return ok ? undefined : accessDenied();
    }
    const ok = req.method === 'GET' ? any('cppm_endpoints') : full('cppm_endpoints');
    return ok ? undefined : accessDenied();
  }

  function handle(req: SimRequest, area: ApiArea): ApiResult {
    const seg = segments(req.path);
    if (area === 'oauth') return oauth.handle(req);
    if (area === 'session') return sessions.handle(req, seg);
    if (seg[1] === 'endpoint') return endpoints.handle(req, seg);
    return notFound();
  }

  return {
    vendor: 'clearpass',
    areaOf,
    authenticate,
    isWrite: (req) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method) && req.path !== '/api/oauth',
    macOf(req, area) {
      const seg = segments(req.path);
      if (area === 'session') return sessions.macOf(req, seg);
      if (area === 'endpoint' && seg[1] === 'endpoint') return endpoints.macOf(req, seg);
      return undefined;
    },
    handle,
    error: (status, detail) => problem(status, statusTitle(status), detail),
    forgetClients: () => oauth.forget(),
  };
}
