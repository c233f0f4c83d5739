import type { ApiResult, SimRequest, SimShared } from '../api';
import type { NacSimProfile } from '../profiles';

/**
 * ISE's OpenAPI (`/api/v1/...`, port 443 on a real node; the simulator serves it on its one port): only the endpoint
 * custom-attribute definitions ApprovalPlus needs.
 *
 * - `GET /api/v1/endpoint-custom-attribute` → 200, a bare JSON array of `{attributeName, attributeType}`; `POST` the
 *   same object → 200 with the JSON string "Added Custom Attribute successfully"; `GET|DELETE …/{name}`; types
 *   `Boolean, Date, Float, IP, Int, Long, String` (Cisco's spec, api-evangelist/cisco-ise
 *   `openapi/_original/cisco-ise-open-api-custom-attributes.yaml`; ciscoisesdk `v3_3_patch_1/custom_attributes.py`).
 * - Only on 3.3: the SDKs carry it from 3.3 patch 1 on (ciscoisesdk CHANGELOG 2.2.0; terraform `test_tags: [ISE33]`),
 *   and 2.7 has no OpenAPI at all (the API gateway came with 3.1). On 2.7 every `/api/v1/` path is Tomcat's HTML 404
 *   (I: the body).
 * - The spec declares only `Error {code, message}` for a 400; the messages of a duplicate or bad type are I.
 */

const TYPES = ['Boolean', 'Date', 'Float', 'IP', 'Int', 'Long', 'String'] as const;

/** The box's endpoint custom attributes (ERS honours only these). Seeded from the profile knob; POST adds. */
export class CustomAttributeDefinitions {
  private defined = new Map<string, string>();
  private seenProfile: NacSimProfile | undefined;

  constructor(private readonly shared: SimShared) {}

  list(): Array<{ attributeName: string; attributeType: string }> {
    this.sync();
    return [...this.defined].map(([attributeName, attributeType]) => ({ attributeName, attributeType }));
  }

  has(name: string): boolean {
    this.sync();
    return this.defined.has(name);
  }

  /** Definitions implied by seeded endpoints (an endpoint can only carry a defined attribute). */
  private absorbSeeded(): void {
    for (const name of this.shared.store.seededCustomAttributes)
      if (!this.defined.has(name)) this.defined.set(name, 'String');
  }

  add(name: string, type: string): boolean {
    this.sync();
    if (this.defined.has(name)) return false;
    this.defined.set(name, type);
    return true;
  }

  delete(name: string): boolean {
    this.sync();
    return this.defined.delete(name);
  }

  /** A profile change (`/_sim/profile`, setProfile) starts again from the knob's list. */
  private sync(): void {
    const profile = this.shared.profile();
    if (profile !== this.seenProfile) {
      this.seenProfile = profile;
      this.defined = new Map(profile.ise.customAttributes.map((n) => [n, 'String']));
    }
    this.absorbSeeded();
  }
}

export interface OpenApi {
  handle(req: SimRequest): ApiResult;
  error(status: number, detail: string): ApiResult;
}

export function createOpenApi(shared: SimShared, definitions: CustomAttributeDefinitions): OpenApi {
  function handle(req: SimRequest): ApiResult {
    if (shared.profile().ise.version === '2.7') return tomcat404(req.path);
    const seg = req.path.replace(/\/+$/, '').split('/').filter(Boolean).map(decodeSafe);
    if (seg[2] !== 'endpoint-custom-attribute' || seg.length > 4) return error(404, `No resource at ${req.path}`);
    if (seg.length === 3) {
      if (req.method === 'GET') return json(200, definitions.list());
      if (req.method === 'POST') return create(req);
      return error(405, `${req.method} is not supported`);
    }
    const name = seg[3]!;
    if (req.method === 'GET') {
      const found = definitions.list().find((d) => d.attributeName === name);
      return found ? json(200, found) : error(404, `Custom attribute ${name} not found`);
    }
    if (req.method === 'DELETE') {
      return definitions.delete(name)
        ? json(200, 'Deleted Custom Attribute successfully')
        : error(404, `Custom attribute ${name} not found`);
    }
    return error(405, `${req.method} is not supported`);
  }

  function create(req: SimRequest): ApiResult {
    const body = req.json as { attributeName?: unknown; attributeType?: unknown } | undefined;
    const name = body?.attributeName;
    const type = body?.attributeType;
    if (typeof name !== 'string' || !name) return error(400, 'attributeName is required');
    if (typeof type !== 'string' || !(TYPES as readonly string[]).includes(type)) {
      return error(400, `attributeType must be one of ${TYPES.join(', ')}`);
    }
    if (!definitions.add(name, type)) return error(400, `Custom attribute ${name} already exists`);
    return json(200, 'Added Custom Attribute successfully');
  }

  function error(status: number, message: string): ApiResult {
    return json(status, { code: status, message });
  }

  return { handle, error };
}

function json(status: number, body: unknown): ApiResult {
  return { status, body, headers: { 'content-type': 'application/json' } };
}

function tomcat404(path: string): ApiResult {
  return {
    status: 404,
    raw: {
      contentType: 'text/html;charset=utf-8',
      text: `<!doctype html><html lang="en"><head><title>HTTP Status 404 – Not Found</title></head><body><h1>HTTP Status 404 – Not Found</h1><p>${path.replace(/[<>&]/g, '')}</p></body></html>`,
    },
  };
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
