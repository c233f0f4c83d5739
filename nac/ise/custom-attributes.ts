import { type NacHttpClient, type NacResponse } from '../http';
import { tagAttributeNames } from '../tag';

/**
 * Which of the ApprovalPlus tag attributes (`ApprovalPlusGrant`, `…Owner`, `…Code`, `…Expires`, `…Origin`) may be
 * written as ISE endpoint custom attributes. ISE keeps only custom attributes defined on the box first
 * (Administration › Identity Management › Settings › Endpoint Custom Attributes, or the OpenAPI
 * `/api/v1/endpoint-custom-attribute`); what ERS does with an undefined one is unknown (dropped, or the whole write
 * refused), so only defined ones are ever sent and a write never depends on them: the description always carries
 * the tag.
 *
 * `NAC_ISE_CUSTOM_ATTRIBUTES`:
 * - `auto`: read the definitions (`GET /api/v1/endpoint-custom-attribute` → JSON array of `{attributeName,
 *   attributeType}`, Cisco's OpenAPI spec) and use the ApprovalPlus ones that exist. No OpenAPI (404: ISE before 3.3,
 *   where ciscoisesdk first carries it), no permission or any failure → description only.
 * - `create`: POST the missing ones as `String` (`{"attributeName","attributeType":"String"}` → 200 "Added Custom
 *   Attribute successfully"), then use them.
 * - `off`: description only.
 *
 * The answer is read once per adapter (definitions rarely change; a restart picks up new ones); a failure to read
 * them is retried after a minute, not on every write.
 */

export type CustomAttributesMode = 'auto' | 'create' | 'off';

export interface CustomAttributesOptions {
  http: NacHttpClient;
  username: string;
  password: string;
  mode: CustomAttributesMode;
}

interface Resolved {
  writable: Set<string>;
  /** One warning line when the tag cannot use (all) attributes; undefined when all is well or by choice (`off`). */
  warning?: string;
}

const PATH = '/api/v1/endpoint-custom-attribute';
const RETRY_AFTER_FAILURE_MS = 60_000;
const HOW_TO_DEFINE =
  'define them (type String) in Administration › Identity Management › Settings › Endpoint Custom Attributes, or set NAC_ISE_CUSTOM_ATTRIBUTES=create';

export class IseCustomAttributes {
  private readonly http: NacHttpClient;
  private readonly authHeader: string;
  private readonly mode: CustomAttributesMode;
  private resolved: Promise<Resolved> | undefined;
  private failedAt = 0;

  constructor(opts: CustomAttributesOptions) {
    this.http = opts.http;
    this.authHeader = 'Basic ' + Buffer.from(`${opts.username}:${opts.password}`).toString('base64');
    this.mode = opts.mode;
  }

  /** The attribute names a write may carry. Never throws. */
  async writable(): Promise<Set<string>> {
    return (await this.resolve()).writable;
  }

  /** Start-up: the warning, if the tag cannot be written into (all) custom attributes. */
  async check(): Promise<string[]> {
    const r = await this.resolve();
    return r.warning ? [r.warning] : [];
  }

  /** Keep only the attributes that may be written. */
  async filter(attrs: Record<string, string>): Promise<Record<string, string>> {
    const ok = await this.writable();
    return Object.fromEntries(Object.entries(attrs).filter(([k]) => ok.has(k)));
  }

  private resolve(): Promise<Resolved> {
    if (this.mode === 'off') return Promise.resolve({ writable: new Set() });
    if (this.resolved && this.failedAt && Date.now() - this.failedAt > RETRY_AFTER_FAILURE_MS) {
      this.resolved = undefined;
    }
    this.resolved ??= this.read();
    return this.resolved;
  }

  private async read(): Promise<Resolved> {
    this.failedAt = 0;
    const wanted = Object.values(tagAttributeNames(''));
    let res: NacResponse;
    try {
      res = await this.send('GET');
    } catch (err) {
      this.failedAt = Date.now();
      return { writable: new Set(), warning: this.unavailable(err instanceof Error ? err.message : String(err)) };
    }
    const defined = definedNames(res);
    if (!defined) {
      if (res.status >= 500 || res.status === 429) this.failedAt = Date.now();
      const why =
        res.status === 404
          ? 'ISE has no endpoint custom-attribute API here (ISE before 3.3, or NAC_ISE_OPENAPI_URL is not the node)'
          : `reading the definitions answered HTTP ${res.status}`;
      return { writable: new Set(), warning: this.unavailable(why) };
    }
    let missing = wanted.filter((n) => !defined.has(n));
    if (this.mode === 'create' && missing.length) {
      for (const name of missing) if (await this.create(name)) defined.add(name);
      missing = wanted.filter((n) => !defined.has(n));
    }
    const writable = new Set(wanted.filter((n) => defined.has(n)));
    if (!missing.length) return { writable };
    const verb = this.mode === 'create' ? 'could not be created' : 'are not defined';
    return {
      writable,
      warning: `ISE endpoint custom attributes ${missing.join(', ')} ${verb}: the grant tag is kept in the endpoint description${writable.size ? ' and the defined attributes' : ' alone'}; to add them, ${HOW_TO_DEFINE}`,
    };
  }

  private async create(name: string): Promise<boolean> {
    try {
      const res = await this.send('POST', { attributeName: name, attributeType: 'String' });
      return res.status === 200 || res.status === 201;
    } catch {
      return false;
    }
  }

  private unavailable(why: string): string {
    return `cannot read ISE's endpoint custom attribute definitions (${why}): the grant tag is kept in the endpoint description alone (custom attributes are optional; if you want them, ${HOW_TO_DEFINE} on ISE 3.3+)`;
  }

  private send(method: 'GET' | 'POST', json?: unknown): Promise<NacResponse> {
    return this.http.send({
      method,
      path: PATH,
      headers: { authorization: this.authHeader },
      ...(json !== undefined ? { json } : {}),
      what: method === 'GET' ? 'read endpoint custom attribute definitions' : 'define an endpoint custom attribute',
    });
  }
}

/** The defined names from a 200 list, or undefined when the answer is not one. */
function definedNames(res: NacResponse): Set<string> | undefined {
  if (res.status !== 200 || !Array.isArray(res.body)) return undefined;
  const names = (res.body as Array<{ attributeName?: unknown }>)
    .map((d) => d?.attributeName)
    .filter((n): n is string => typeof n === 'string');
  return new Set(names);
}
