import type { ApiResult, SimRequest, SimShared } from '../api';
import type { SimSession } from '../sessions';
import { normalizeMac } from '../store';
import {
  FilterError,
  cpTime,
  hal,
  listBody,
  listParams,
  matchesFilter,
  notFound,
  objectBody,
  problem,
  sortBy,
  unprocessable,
} from './common';

/**
 * ClearPass session control (session-control OAS 6.12.7; pyclearpass api_sessioncontrol): the session list
 * (`/api/session`), one session's disconnect and reauthorize (`/api/session/{id}/…`), and the session actions by
 * filter, MAC, IP or username (`/api/session-action/{disconnect|coa}[/mac|/ip|/username/…]`). Sessions live in the
 * shared session directory (`../sessions.ts`); every disconnect or CoA sent to a session is recorded there
 * (`GET /_sim/coa`), with the enforcement profile as its detail.
 */

/**
 * RADIUS CoA enforcement profiles the box has. `[Aerohive - Terminate Session]` is in the 6.12 user guide's table of
 * default enforcement profiles (techdocs ClearPass/6.12/PolicyManager/Content/CPPM_UserGuide/Enforce/
 * EnforcementProfile.html); the others follow the same naming (I), including the project's sandbox default
 * `[Cisco - Reauthenticate Session]` (nac/config.ts).
 */
export const CLEARPASS_COA_PROFILES: readonly string[] = [
  '[Aerohive - Terminate Session]',
  '[Aruba Terminate Session]',
  '[Cisco - Bounce-Host-Port]',
  '[Cisco - Reauthenticate Session]',
  '[Cisco - Terminate Session]',
  '[HPE Aruba Networking - Terminate Session]',
];

/** What the filterless disconnect does, in the CoA log's words (OAS: "If empty, all active sessions will be disconnected"). */
export const FILTERLESS_DISCONNECT_DETAIL = 'filterless session-action disconnect: every active session';

interface ActionResult {
  action_id: string;
  status: 'pending' | 'running' | 'complete' | 'failed';
  count: number;
  count_success: number;
  count_failed: number;
  count_queue: number;
  _embedded?: { items: Array<Record<string, unknown>> };
  _links: { self: { href: string } };
}

export interface SessionRoutes {
  handle(req: SimRequest, seg: string[]): ApiResult;
  macOf(req: SimRequest, seg: string[]): string | undefined;
}

export function createSessionRoutes(shared: SimShared): SessionRoutes {
  const { sessions } = shared;
  const actions = new Map<string, ActionResult>();
  let lastActionMs = 0;

  /** `ActiveSession` (OAS 6.12.7 field names). Formats of times and `mac_address` are not recorded (I). */
  function view(s: SimSession, req: SimRequest): Record<string, unknown> {
    const ended = s.state !== 'active';
    const stop = s.endedAt ?? new Date().toISOString();
    return {
      id: s.id, // a string (OAS "Accounting identifier of the record")
      acctsessionid: s.acctSessionId,
      acctstarttime: s.startedAt,
      // Absent while active: `{"acctstoptime":{"$exists":false}}` is the active-only filter that works
      // (nowireless4u/hpe-networking-mcp CHANGELOG v3.3.13.6, live-verified).
      ...(ended ? { acctstoptime: stop } : {}),
      acctsessiontime: Math.round((Date.parse(stop) - Date.parse(s.startedAt)) / 1000),
      // Bare lower-case hex like endpoints (I; XSOAR's fixture "001234567891" is synthetic).
      mac_address: s.mac,
      // The raw RADIUS Calling-Station-Id, as the NAS sent it (I).
      callingstationid: s.username,
      username: s.username,
      nasipaddress: s.nasIp,
      framedipaddress: s.endpointIp,
      // The list holds closed records too, not only active ones (hpe-networking-mcp, as above); OAS: "active, stale,
      // closed".
      state: ended ? 'closed' : 'active',
      updated_at: cpTime(s.endedAt ?? s.authorization.at),
      _links: { self: { href: `${req.base}/api/session/${encodeURIComponent(s.id)}` } },
    };
  }

  function list(req: SimRequest): ApiResult {
    const p = listParams(req, '-id'); // default sort -id (OAS; pyclearpass)
    if ('status' in p) return p;
    // "ClearPass rejects `$or` in a single filter" (hpe-networking-mcp CHANGELOG v3.3.13.6); the status is (I).
    if ('$or' in p.filter) return unprocessable('The $or operator is not supported for this filter');
    const all = sessions.list();
    const order = new Map(all.map((s, i) => [s.id, i]));
    let views: Array<Record<string, unknown>>;
    try {
      views = all.map((s) => view(s, req)).filter((v) => matchesFilter(v, p.filter));
    } catch (err) {
      if (err instanceof FilterError) return unprocessable(err.message);
      throw err;
    }
    // `id` sorts in the order the records were written (I: ids here are not numeric).
    const sorted = sortBy(views, p.sort, (v, field) => (field === 'id' ? order.get(String(v.id)) : v[field]));
    return listBody(req, p, sorted.slice(p.offset, p.offset + p.limit), sorted.length);
  }

  /** `POST /api/session/{id}/disconnect` {id, confirm_disconnect} (both required: OAS; pyclearpass every version). */
  function disconnectOne(req: SimRequest, s: SimSession): ApiResult {
    const body = objectBody(req) ?? {};
    if (body.confirm_disconnect !== true || body.id === undefined || String(body.id) !== s.id) {
      // Unconfirmed → 400 (I: a NETLOOM probe of an unconfirmed revoke moved to 400).
      return problem(400, 'Bad Request', 'id and confirm_disconnect: true are required');
    }
    if (s.state !== 'active') return hal(200, { error: 1, message: 'Session is not active' }); // (I)
    sessions.disconnect(s);
    record('disconnect', s, 'session disconnect', 'ok');
    // ActiveSessionAction {error, message} (OAS; XSOAR's synthetic fixture {"error":0,"message":"Success"}).
    return hal(200, { error: 0, message: 'Success' });
  }

  /** `GET|POST /api/session/{id}/reauthorize` (OAS ReauthorizationProfiles / ActiveSessionReauthorize). */
  function reauthorizeOne(req: SimRequest, s: SimSession): ApiResult {
    // GET only lists the profiles that may be applied (OAS; hpe-networking-mcp: "only lists templates").
    if (req.method === 'GET') return hal(200, { profiles: [...CLEARPASS_COA_PROFILES] });
    const body = objectBody(req) ?? {};
    const profile = body.reauthorize_profile;
    if (body.confirm_reauthorize !== true || typeof profile !== 'string' || !profile) {
      return problem(400, 'Bad Request', 'confirm_reauthorize: true and reauthorize_profile are required'); // (I)
    }
    if (s.state !== 'active') return hal(200, { error: 1, message: 'Session is not active' }); // (I)
    if (!CLEARPASS_COA_PROFILES.includes(profile)) {
      record('reauth', s, profile, 'refused');
      return hal(200, { error: 1, message: `Reauthorization profile ${profile} not found` }); // (I)
    }
    sessions.reauthenticate(s);
    record('reauth', s, profile, 'ok');
    return hal(200, { error: 0, message: 'Success' });
  }

  /**
   * `POST /api/session-action/{disconnect|coa}[/{mac|ip|username}/{value}]?async=…` with SessionActionParams
   * {filter, enforcement_profile, sort} (OAS; pyclearpass). Answers SessionActionList {action_id, status, count,
   * count_success, count_failed, count_queue, _links}; synchronously (async=false) with 200 and no `_embedded`
   * (UIUC-VCR test_disconnect_mac_address.yaml), and 200 `status: failed, count: 0` when no session matches
   * (UIUC-VCR test_disconnect_mac_not_found.yaml), never 404.
   */
  function sessionAction(req: SimRequest, seg: string[]): ApiResult {
    const kind = seg[2] as 'disconnect' | 'coa';
    const body = objectBody(req) ?? {};
    let selected: SimSession[];
    let detail: string | undefined;
    if (seg.length === 3) {
      const filter = body.filter;
      if (filter !== undefined && (typeof filter !== 'object' || filter === null || Array.isArray(filter))) {
        return unprocessable('filter must be a JSON object'); // (I)
      }
      const active = sessions.list({ state: 'active' });
      const f = (filter ?? {}) as Record<string, unknown>;
      // The documented danger: "If empty, all active sessions will be disconnected" (OAS requestBody.description of
      // POST /session-action/disconnect). Modelled as such, and each one recorded as what it is. The filterless CoA
      // is taken to select every active session the same way (I).
      if (Object.keys(f).length === 0) {
        selected = active;
        detail = kind === 'disconnect' ? FILTERLESS_DISCONNECT_DETAIL : undefined;
      } else {
        try {
          selected = active.filter((s) => matchesFilter(view(s, req), f));
        } catch (err) {
          if (err instanceof FilterError) return unprocessable(err.message);
          throw err;
        }
      }
    } else if (seg.length === 5 && ['mac', 'ip', 'username'].includes(seg[3]!)) {
      const value = seg[4]!;
      const mac = seg[3] === 'mac' ? normalizeMac(value) : undefined;
      selected = sessions
        .list({ state: 'active' })
        .filter((s) =>
          seg[3] === 'mac' ? s.mac === mac : seg[3] === 'ip' ? s.endpointIp === value : s.username === value
        );
    } else {
      return notFound();
    }

    let profiles: string[] = [];
    if (kind === 'coa') {
      // "When performing CoA, the 'enforcement_profile' parameter MUST be provided" (OAS SessionActionParams); a
      // list of names, e.g. ["...", "..."]; a single string is taken too (I). Missing → 422 (I).
      const ep = body.enforcement_profile;
      profiles = Array.isArray(ep)
        ? ep.filter((x): x is string => typeof x === 'string')
        : typeof ep === 'string'
          ? [ep]
          : [];
      if (!profiles.length) return unprocessable('enforcement_profile must be specified');
    }

    const items: Array<Record<string, unknown>> = [];
    let ok = 0;
    for (const s of selected) {
      if (kind === 'disconnect') {
        sessions.disconnect(s);
        record('disconnect', s, detail ?? 'session-action disconnect', 'ok');
        ok += 1;
        continue;
      }
      const unknown = profiles.find((p) => !CLEARPASS_COA_PROFILES.includes(p));
      if (unknown) {
        // An enforcement profile the box does not have: the action fails for that session. Shape from the OAS
        // (SessionAction {session_id, dyn_authz_action_name, success, message} in _embedded.items) (I).
        record('reauth', s, profiles.join(', '), 'refused');
        items.push({
          session_id: s.acctSessionId,
          dyn_authz_action_name: unknown,
          success: false,
          message: `Enforcement profile ${unknown} not found`,
        });
        continue;
      }
      sessions.reauthenticate(s);
      record('reauth', s, profiles.join(', '), 'ok');
      ok += 1;
    }
    const count = selected.length;
    const result: ActionResult = {
      action_id: nextActionId(),
      // No session matched → failed with count 0 (UIUC-VCR); any failure → failed (I).
      status: count > 0 && ok === count ? 'complete' : 'failed',
      count,
      count_success: ok,
      count_failed: count - ok,
      count_queue: 0,
      ...(items.length ? { _embedded: { items } } : {}),
      // The recorded self href percent-encodes the rest of the path: `…/session-action/disconnect%2Fmac%2F1231…`.
      _links: { self: { href: `${req.base}/api/session-action/${encodeURIComponent(seg.slice(2).join('/'))}` } },
    };
    actions.set(result.action_id, result);
    // `async` is marked required (OAS) but "live-verified" calls omit it (hpe-networking-mcp): absent = false (I).
    // async=true: 202 (OAS, empty schema); its body, assumed to carry action_id, is (I). The outcome is then read with
    // GET /api/session-action/{action_id}.
    if (req.query.get('async') === 'true') {
      return hal(202, { action_id: result.action_id, status: 'pending', _links: result._links });
    }
    return hal(200, result);
  }

  /** `action_id` looks like `async_action_<epoch-ms>` (UIUC-VCR); kept unique here. */
  function nextActionId(): string {
    lastActionMs = Math.max(Date.now(), lastActionMs + 1);
    return `async_action_${lastActionMs}`;
  }

  function record(action: 'reauth' | 'disconnect', s: SimSession, detail: string, result: 'ok' | 'refused'): void {
    sessions.recordCoa({
      vendor: 'clearpass',
      action,
      mac: s.mac,
      sessionId: s.id,
      nasIp: s.nasIp,
      detail,
      result,
    });
  }

  function handle(req: SimRequest, seg: string[]): ApiResult {
    if (seg[1] === 'session-action') {
      if (req.method === 'GET' && seg.length === 3 && !['disconnect', 'coa'].includes(seg[2]!)) {
        const found = actions.get(seg[2]!);
        return found ? hal(200, found) : notFound(); // GET /api/session-action/{action_id} (OAS)
      }
      if (req.method !== 'POST' || !['disconnect', 'coa'].includes(seg[2] ?? '')) return notFound();
      return sessionAction(req, seg);
    }
    if (seg[1] !== 'session') return notFound();
    if (seg.length === 2) {
      return req.method === 'GET' ? list(req) : problem(405, 'Method Not Allowed', 'Method not allowed');
    }
    const s = sessions.byId(seg[2]!);
    if (!s) return notFound();
    if (seg.length === 3) {
      return req.method === 'GET' ? hal(200, view(s, req)) : problem(405, 'Method Not Allowed', 'Method not allowed');
    }
    // Bulk `POST /session/reauthorize` (no id) answers 405 (hpe-networking-mcp) — it falls in the branch above.
    if (seg.length === 4 && seg[3] === 'disconnect' && req.method === 'POST') return disconnectOne(req, s);
    if (seg.length === 4 && seg[3] === 'reauthorize' && (req.method === 'POST' || req.method === 'GET')) {
      return reauthorizeOne(req, s);
    }
    return notFound();
  }

  return {
    handle,
    macOf(req, seg) {
      if (seg[1] === 'session-action' && seg[3] === 'mac') return normalizeMac(seg[4]);
      if (seg[1] === 'session' && seg[2]) return sessions.byId(seg[2])?.mac;
      return undefined;
    },
  };
}

/**
 * The privilege a session route needs. Listing and reading sessions: `guest_sessions_history`, read-only is enough
 * (netloom: `#guest_sessions_history` unlocks `/api/session`), or `guest_sessions` (I). Acting on sessions:
 * full `guest_sessions` (I: the research's best candidate) or full `cppm_session_action` (I: netloom's candidate for
 * `/session-action/*`); neither is verified on a box.
 */
export function sessionAccess(req: SimRequest, seg: string[]): 'read' | 'act' {
  if (seg[1] === 'session-action') return 'act';
  if (req.method === 'POST') return 'act';
  return 'read';
}
