import type { IncomingMessage } from 'node:http';
import type { NacSimulatorOptions } from './server';
import type { SessionStore } from './sessions';
import type { NacSimProfile } from './profiles';
import type { EndpointStore } from './store';

/**
 * What the NAC simulator's core hands to each vendor's API module, and what a module must provide. The core owns the
 * HTTP server, the request log, rate limiting and fault injection; a module owns its vendor's paths, authentication,
 * envelopes and version quirks (`profiles.ts`).
 */

export interface SimRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  rawBody: string;
  /** Parsed JSON body, undefined when the body is not JSON. */
  json: unknown;
  headers: IncomingMessage['headers'];
  /** `http://host:port` as the client addressed us (for Location headers and HAL links). */
  base: string;
}

export interface ApiResult {
  status: number;
  /** JSON body. */
  body?: unknown;
  /** Pre-rendered non-JSON body with its content type (ISE's HTML 401, MnT's XML). */
  raw?: { contentType: string; text: string };
  headers?: Record<string, string | string[]>;
}

/** The part of a vendor's API a request belongs to, for the request log (e.g. B3 counts CoA requests apart). */
export type ApiArea = 'ers' | 'mnt' | 'openapi' | 'oauth' | 'endpoint' | 'session' | 'other';

export interface SimShared {
  readonly opts: NacSimulatorOptions;
  readonly store: EndpointStore;
  readonly sessions: SessionStore;
  /** The active version profile (changeable at run time through `/_sim/profile`). */
  profile(): NacSimProfile;
}

export interface VendorApi {
  readonly vendor: 'ise' | 'clearpass';
  /** The area of this vendor's API a path belongs to, or undefined when the path is not this vendor's. */
  areaOf(path: string): ApiArea | undefined;
  /** Authentication gate, in front of faults and the API itself; a result refuses the request. */
  authenticate(req: SimRequest, area: ApiArea): ApiResult | undefined;
  /** Writes count as writes in the log and may be held after commit (time-out-after-commit faults). */
  isWrite(req: SimRequest, area: ApiArea): boolean;
  /** The MAC a request concerns (12 lower-case hex), for fault rules and the log. */
  macOf(req: SimRequest, area: ApiArea): string | undefined;
  handle(req: SimRequest, area: ApiArea): ApiResult | Promise<ApiResult>;
  /** The vendor's own error envelope, for injected faults and rate limiting. */
  error(status: number, detail: string, req: SimRequest, area: ApiArea): ApiResult;
  /** Forget per-client state (tokens, ERS sessions): `/_sim/reset`, `/_sim/expire-tokens`. */
  forgetClients(): void;
}

/** A request path's segments, each URI-decoded (a malformed escape stays as sent). */
export function segments(path: string): string[] {
  return path
    .replace(/\/+$/, '')
    .split('/')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
}
