import type { ApiArea, ApiResult, SimRequest, SimShared, VendorApi } from '../api';
import { createErs, ersError } from './ers';
import { createMnt } from './mnt';
import { createOpenApi, CustomAttributeDefinitions } from './openapi';
import { ErsSessions } from './session';

/**
 * Cisco ISE as the simulator serves it, every API behind HTTP Basic with the ISE credentials:
 * - ERS (`/ers/config/...`, port 9060 on a real PAN): `ers.ts`, with the ERS session, CSRF and role gates below;
 * - MnT (`/admin/API/mnt/...`, port 443 on a real MnT node): `mnt.ts`;
 * - the OpenAPI (`/api/v1/...`, port 443; endpoint custom-attribute definitions only): `openapi.ts`.
 * A real deployment serves them on different ports; the simulator serves all of them on its one port.
 */
export function createIseApi(shared: SimShared): VendorApi {
  const definitions = new CustomAttributeDefinitions(shared);
  const sessions = new ErsSessions(() => shared.profile().ise.sessionIdleMs);
  const ers = createErs(shared, definitions);
  const mnt = createMnt(shared);
  const openapi = createOpenApi(shared, definitions);
  /** What the ERS gate decided for a request and its response must carry (new session cookies, a CSRF token). */
  const context = new WeakMap<SimRequest, { setCookie?: string[]; csrfToken?: string }>();

  /**
   * The ERS gates, in the order a request meets them (after Basic auth): the session (cookies), a CSRF token fetch,
   * then for a write the CSRF check, the node role and the account role.
   */
  function ersGate(req: SimRequest): ApiResult | undefined {
    const profile = shared.profile().ise;
    const { session, created } = sessions.resolve(req.headers.cookie);
    const ctx: { setCookie?: string[]; csrfToken?: string } = {};
    if (created) ctx.setCookie = sessions.setCookies(session);
    context.set(req, ctx);
    const header = headerOf(req, 'x-csrf-token');
    // A token is handed out on a GET asking `X-CSRF-Token: fetch` while the check is on (I: whether ISE also hands
    // one out with the check off is not recorded; clients must cope with both).
    if (req.method === 'GET' && header?.toLowerCase() === 'fetch' && profile.csrf) {
      ctx.csrfToken = sessions.token(session);
    }
    if (!isWriteMethod(req.method)) return undefined;
    // POST/PUT/DELETE need the session's token "only if enabled from GUI" (Cisco's ERS swagger, every operation);
    // without it: 403 and an HTML page "CSRF nonce validation failed" (ciscoisesdk#20; the page layout is I).
    if (profile.csrf && !sessions.validToken(session, created, header))
      return htmlForbidden('CSRF nonce validation failed');
    // A PSN serves ERS read-only ("you may only read objects from an ISE Policy Service Node", community.cisco.com
    // "ISE ERS API Examples"). What a write there gets was never recorded: 400 with Cisco's
    // UNSUPPORTED_METHOD_EXCEPTION code (DevNet error table) is I; the adapter does not depend on it.
    if (profile.node === 'psn') {
      return ersError(
        400,
        'Write operations are allowed only on the Primary Administration Node',
        req,
        'Unsupported method exception'
      );
    }
    // ERS Operator: "Read Only access (GET request only)" (DevNet setting-up); a write gets 403 (enauto.silvancodes.dev
    // ISE deep dive, third party). The body was never recorded: the same HTML 403 page without a message (I).
    if (profile.account === 'operator') return htmlForbidden('');
    return undefined;
  }

  /** Attach what the gate decided (cookies, token) and ERS's JSON content type to any ERS answer. */
  function finishErs(req: SimRequest, result: ApiResult): ApiResult {
    const ctx = context.get(req);
    const headers: Record<string, string | string[]> = { ...result.headers };
    if (result.body !== undefined && result.raw === undefined)
      headers['content-type'] ??= 'application/json;charset=utf-8';
    if (ctx?.setCookie) headers['set-cookie'] = ctx.setCookie;
    if (ctx?.csrfToken) headers['x-csrf-token'] = ctx.csrfToken;
    return { ...result, headers };
  }

  return {
    vendor: 'ise',
    areaOf(path) {
      if (path.startsWith('/ers/')) return 'ers';
      if (path.startsWith('/admin/API/mnt/')) return 'mnt';
      if (path.startsWith('/api/v1/')) return 'openapi';
      return undefined;
    },
    authenticate(req, area) {
      const denied = basicAuth(shared, req);
      if (denied) return denied;
      if (area !== 'ers') return undefined;
      const refused = ersGate(req);
      return refused && finishErs(req, refused);
    },
    isWrite: (req, area) => (area === 'ers' || area === 'openapi') && isWriteMethod(req.method),
    macOf: (req, area) => (area === 'ers' ? ers.macOf(req) : area === 'mnt' ? mnt.macOf(req) : undefined),
    handle(req, area: ApiArea) {
      if (area === 'ers') return finishErs(req, ers.handle(req));
      if (area === 'mnt') return mnt.handle(req);
      return openapi.handle(req);
    },
    error(status, detail, req, area) {
      if (area === 'mnt') return mnt.error(status, detail);
      if (area === 'openapi') return openapi.error(status, detail);
      return finishErs(req, ersError(status, detail, req));
    },
    forgetClients: () => sessions.forget(),
  };
}

/** ERS (and MnT) use HTTP Basic; a failure is Tomcat's HTML page, not JSON (pyise-ers handles exactly that). */
export function basicAuth(shared: SimShared, req: SimRequest): ApiResult | undefined {
  const { iseUsername, isePassword } = shared.opts;
  const expected = 'Basic ' + Buffer.from(`${iseUsername}:${isePassword}`).toString('base64');
  if (req.headers.authorization === expected) return undefined;
  return {
    status: 401,
    raw: {
      contentType: 'text/html;charset=utf-8',
      text: '<!doctype html><html lang="en"><head><title>HTTP Status 401 – Unauthorized</title></head><body><h1>HTTP Status 401 – Unauthorized</h1></body></html>',
    },
    headers: { 'www-authenticate': 'Basic realm="Cisco ISE"' },
  };
}

/** ISE's HTML 403 page as ciscoisesdk#20 logged it: "CSRF nonce validation failed" and `<h1>[ 403 ] </h1>`. */
function htmlForbidden(message: string): ApiResult {
  return {
    status: 403,
    raw: {
      contentType: 'text/html;charset=utf-8',
      text: `${message}<!DOCTYPE html>\n<html lang="en"> <head> </head> <body> <div class="container"> <h1>[ 403 ] </h1> <p>${message}</p> <p></p> </div> </body> </html>`,
    },
  };
}

function isWriteMethod(method: string): boolean {
  return method === 'POST' || method === 'PUT' || method === 'DELETE';
}

function headerOf(req: SimRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
