import { randomBytes } from 'node:crypto';
import type { ApiResult, SimRequest, SimShared } from '../api';
import { plainJson, problem } from './common';

/**
 * ClearPass OAuth2 (`/api/oauth`, `/api/oauth/me`, `/api/oauth/privileges`) for the one API client the simulator
 * knows (client credentials grant).
 */

/** Operator profile name `/api/oauth/me` reports (I: any name; the field is the profile's name, OAS `TokenInfo`). */
const OPERATOR_PROFILE = 'ApprovalPlus API';

export interface ClearPassOAuth {
  handle(req: SimRequest): ApiResult;
  /** Whether the request carries a live bearer token. */
  valid(req: SimRequest): boolean;
  /** The answer to a request without a live token. */
  unauthorized(): ApiResult;
  forget(): void;
}

export function createOAuth(shared: SimShared): ClearPassOAuth {
  const { opts } = shared;
  const tokens = new Map<string, number>();

  function token(req: SimRequest): ApiResult {
    // A JSON body `TokenEndpoint` (OAS api-operations; pyclearpass and PowerArubaCP send JSON); form bodies work too.
    const body = (req.json ?? Object.fromEntries(new URLSearchParams(req.rawBody))) as Record<string, unknown>;
    if (body.grant_type !== 'client_credentials') {
      // (I) the same ApiProblem pattern as invalid_client, with the OAuth error code as the title.
      return problem(400, 'unsupported_grant_type', 'The grant type was not specified in the request');
    }
    if (body.client_id !== opts.clientId || body.client_secret !== opts.clientSecret) {
      // Verbatim: 400, reason invalid_client, application/problem+json (UIUC-VCR test_failed_connectivity.yaml).
      return problem(400, 'invalid_client', 'The client credentials are invalid');
    }
    const lifetime = opts.tokenLifetimeSec ?? 28_800; // 8 h default (Dell W-ClearPass Guest 6.4 User Guide p.378)
    const value = randomBytes(20).toString('hex'); // 40 lower-case hex (zemerick1/clearpasspy README output)
    tokens.set(value, Date.now() + lifetime * 1000);
    // OAS OAuth2Response; key order and `scope: null` fitted to the recorded Content-Length (I); the client
    // credentials grant has no refresh token (I).
    return plainJson(
      200,
      { access_token: value, expires_in: lifetime, token_type: 'Bearer', scope: null },
      { 'cache-control': 'no-store', pragma: 'no-cache' }
    );
  }

  return {
    handle(req) {
      if (req.path === '/api/oauth') {
        return req.method === 'POST' ? token(req) : problem(405, 'Method Not Allowed', 'Method not allowed');
      }
      if (req.method !== 'GET') return problem(405, 'Method Not Allowed', 'Method not allowed');
      // OAS TokenInfo {info: operator profile, name: the authenticated client}; both work with the baseline
      // privileges only (netloom "Baseline Verified Services").
      if (req.path === '/api/oauth/me') return plainJson(200, { info: OPERATOR_PROFILE, name: opts.clientId });
      // OAS TokenPrivileges {privileges: [...]} ('#' read-only, '?' allowed, bare full: netloom).
      if (req.path === '/api/oauth/privileges') {
        return plainJson(200, { privileges: [...shared.profile().clearpass.privileges] });
      }
      return problem(404, 'Not Found', 'Object not found');
    },
    valid(req) {
      const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
      const expiresAt = m ? tokens.get(m[1]!) : undefined;
      return expiresAt !== undefined && expiresAt > Date.now();
    },
    unauthorized() {
      // No recorded 401 body exists; ClearPass is Apigility + bshaffer/oauth2, whose wording this follows (I).
      return problem(
        401,
        'invalid_token',
        'The access token provided is invalid',
        {},
        {
          'www-authenticate': 'Bearer realm="Service", error="invalid_token"',
        }
      );
    },
    forget: () => tokens.clear(),
  };
}
