import type { ApiArea, ApiResult, SimRequest, SimShared, VendorApi } from '../api';
import { createErs, ersError } from './ers';

/**
 * Cisco ISE as the simulator serves it: ERS (`/ers/config/...`, port 9060 on a real PAN, HTTP Basic).
 * Each area's behaviour, with its sources, is in its own file.
 */
export function createIseApi(shared: SimShared): VendorApi {
  const ers = createErs(shared);
  return {
    vendor: 'ise',
    areaOf: (path) => (path.startsWith('/ers/') ? 'ers' : undefined),
    authenticate: (req) => basicAuth(shared, req),
    isWrite: (req) => req.method === 'POST' || req.method === 'PUT' || req.method === 'DELETE',
    macOf: (req, area) => (area === 'ers' ? ers.macOf(req) : undefined),
    handle: (req, area: ApiArea) =>
      area === 'ers' ? ers.handle(req) : ersError(404, 'Resource not found', req.method, 'resource'),
    error: (status, detail, req) => ersError(status, detail, req.method, 'endpoint'),
    forgetClients: () => ers.forgetSessions(),
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
