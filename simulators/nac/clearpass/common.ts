import type { ApiResult, SimRequest } from '../api';

/**
 * What every ClearPass API route shares: content types, the API-Problem error envelope, HAL lists, the JSON filter
 * language and the box's timestamp format. Sources are named per item; the research report they come from is
 * /tmp/research/clearpass.md (UIUC-VCR = techservicesillinois/clearpass-api cassettes, recorded against a production
 * CPPM; NETLOOM = mathias-granlund/netloom live probe logs; OAS = the vendor OpenAPI 6.12.7).
 */

/** Every ClearPass error body's `type` (UIUC-VCR; NETLOOM, hundreds of bodies). */
export const PROBLEM_TYPE = 'http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html';

/** Resources are HAL (UIUC-VCR: `application/hal+json` on endpoint GET/PUT and session-action replies). */
export function hal(status: number, body: unknown): ApiResult {
  return { status, body, headers: { 'content-type': 'application/hal+json' } };
}

/** `/api/oauth` answers plain JSON, not cacheable (UIUC-VCR token reply headers). */
export function plainJson(status: number, body: unknown, headers: Record<string, string> = {}): ApiResult {
  return { status, body, headers: { 'content-type': 'application/json', ...headers } };
}

/**
 * Apigility ApiProblem: `{type, title, status, detail}` plus optional `validation_messages`, as
 * `application/problem+json` (UIUC-VCR 400/403/404 recordings; NETLOOM 422 bodies).
 */
export function problem(
  status: number,
  title: string,
  detail: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {}
): ApiResult {
  return {
    status,
    // NETLOOM's 422 bodies put validation_messages first, then the ApiProblem keys.
    body: { ...extra, type: PROBLEM_TYPE, title, status, detail },
    headers: { 'content-type': 'application/problem+json', ...headers },
  };
}

/** The verbatim 404 (UIUC-VCR `test_404_*.yaml`; NETLOOM logged the same body 55 times for other resources). */
export function notFound(): ApiResult {
  return problem(404, 'Not Found', 'Object not found');
}

/** A missing operator-profile privilege (UIUC-VCR `test_get_info_for_mac_address.yaml`; NETLOOM ×340). */
export function accessDenied(): ApiResult {
  return problem(403, 'Forbidden', 'Access denied');
}

/**
 * 422 with `validation_messages` keyed by field, `{field: {ValidatorName: message}}` (NETLOOM:
 * `{"validation_messages":{"privileges":{"NwaAclIsValidPrivileges":…}},…,"detail":"Failed Validation"}`).
 */
export function validationFailed(messages: Record<string, Record<string, string>>): ApiResult {
  return problem(422, 'Unprocessable Entity', 'Failed Validation', { validation_messages: messages });
}

/** 422 with a list of messages (NETLOOM: `{"validation_messages":["service_orders must be specified"],…}`). */
export function unprocessable(message: string): ApiResult {
  return problem(422, 'Unprocessable Entity', message, { validation_messages: [message] });
}

export function statusTitle(status: number): string {
  const titles: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    405: 'Method Not Allowed',
    409: 'Conflict',
    422: 'Unprocessable Entity',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    502: 'Bad Gateway',
    503: 'Service Unavailable',
    504: 'Gateway Timeout',
  };
  return titles[status] ?? 'Error';
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * `added_at`/`updated_at` are strings in the box's locale format, `"Nov 15, 2023 14:52:34 CST"`, not ISO 8601
 * (UIUC-VCR). The simulator's zone is UTC.
 */
export function cpTime(iso: string): string {
  const d = new Date(iso);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}, ${d.getUTCFullYear()} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} UTC`;
}

export { segments } from '../api';

export function objectBody(req: SimRequest): Record<string, unknown> | undefined {
  const b = req.json;
  return b && typeof b === 'object' && !Array.isArray(b) ? (b as Record<string, unknown>) : undefined;
}

// --- lists -------------------------------------------------------------------------------------------------------

export interface ListParams {
  filter: Record<string, unknown>;
  rawFilter?: string;
  sort: string;
  offset: number;
  limit: number;
  calculateCount: boolean;
}

/** Maximum `limit` (OAS: range 1–1000; default 25). */
export const LIST_LIMIT_MAX = 1000;

/** List query parameters with their OAS defaults (`filter` "{}", `offset` 0, `limit` 25, `calculate_count` false). */
export function listParams(req: SimRequest, defaultSort: string): ListParams | ApiResult {
  let filter: Record<string, unknown> = {};
  const rawFilter = req.query.get('filter') ?? undefined;
  if (rawFilter) {
    const parsed = parseJsonSafe(rawFilter);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      return unprocessable('filter must be a JSON object'); // (I) wording
    }
    filter = parsed as Record<string, unknown>;
  }
  const offset = Number(req.query.get('offset') ?? 0);
  const limit = Number(req.query.get('limit') ?? 25);
  if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(limit) || limit < 1 || limit > LIST_LIMIT_MAX) {
    return unprocessable(`offset must be >= 0 and limit 1..${LIST_LIMIT_MAX}`); // (I) wording
  }
  return {
    filter,
    rawFilter,
    sort: req.query.get('sort') ?? defaultSort,
    offset,
    limit,
    calculateCount: req.query.get('calculate_count') === 'true',
  };
}

/**
 * The HAL list body: `_links` (`self`, `first`; `next`/`prev` only when there are such pages (I, OAS)) whose hrefs
 * echo the normalised query in ClearPass's order `calculate_count, offset, limit, sort, filter` (UIUC-VCR), the page
 * in `_embedded.items`, and `count` only when `calculate_count=true` (OAS `EndpointList`).
 */
export function listBody(req: SimRequest, p: ListParams, items: unknown[], total: number): ApiResult {
  const href = (offset: number) => {
    const q = new URLSearchParams();
    q.set('calculate_count', String(p.calculateCount));
    q.set('offset', String(offset));
    q.set('limit', String(p.limit));
    q.set('sort', p.sort);
    if (p.rawFilter) q.set('filter', p.rawFilter);
    const profileDetails = req.query.get('profile_details');
    if (profileDetails) q.set('profile_details', profileDetails);
    return { href: `${req.base}${req.path}?${q.toString()}` };
  };
  const links: Record<string, { href: string }> = { self: href(p.offset), first: href(0) };
  if (p.offset + p.limit < total) links.next = href(p.offset + p.limit);
  if (p.offset > 0) links.prev = href(Math.max(0, p.offset - p.limit));
  return hal(200, {
    _links: links,
    _embedded: { items },
    ...(p.calculateCount ? { count: total } : {}),
  });
}

/** Sort `[+-]field` (OAS: e.g. `+id`, `-id`); `order` gives a field's sort key where the plain value would not do. */
export function sortBy<T extends Record<string, unknown>>(
  items: T[],
  sort: string,
  order: (item: T, field: string) => unknown = (item, field) => item[field]
): T[] {
  const desc = sort.startsWith('-');
  const field = sort.replace(/^[+-]/, '') || 'id';
  const key = (x: T) => order(x, field);
  return [...items].sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x ?? '').localeCompare(String(y ?? ''));
    return desc ? -c : c;
  });
}

// --- the JSON filter language --------------------------------------------------------------------------------------

export class FilterError extends Error {}

/**
 * ClearPass's list filter: `{field: value}` is equality; operators `$eq $in $nin $contains $ne $gt $gte $lt $lte
 * $regex ($options "i") $exists $and $or $not` (the API explorer's filter notes, i-am-smolli/terraform-provider-clearpass
 * feature_specs/LocalUser.json). Conditions on several fields are ANDed. Throws FilterError for an unknown operator.
 */
export function matchesFilter(item: Record<string, unknown>, filter: Record<string, unknown>): boolean {
  return Object.entries(filter).every(([key, cond]) => {
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(cond)) throw new FilterError(`${key} takes an array`);
      const subs = cond.map((c) => matchesFilter(item, (c ?? {}) as Record<string, unknown>));
      return key === '$and' ? subs.every(Boolean) : subs.some(Boolean);
    }
    return matchesCondition(item[key], cond);
  });
}

function matchesCondition(actual: unknown, cond: unknown): boolean {
  if (!cond || typeof cond !== 'object' || Array.isArray(cond)) return equal(actual, cond);
  const ops = cond as Record<string, unknown>;
  return Object.entries(ops).every(([op, x]) => {
    switch (op) {
      case '$eq':
        return equal(actual, x);
      case '$ne':
        return !equal(actual, x);
      case '$in':
        return Array.isArray(x) && x.some((v) => equal(actual, v));
      case '$nin':
        return Array.isArray(x) && !x.some((v) => equal(actual, v));
      case '$contains':
        return typeof actual === 'string' && actual.includes(String(x));
      case '$gt':
        return compare(actual, x) > 0;
      case '$gte':
        return compare(actual, x) >= 0;
      case '$lt':
        return compare(actual, x) < 0;
      case '$lte':
        return compare(actual, x) <= 0;
      case '$regex': {
        const flags = typeof ops.$options === 'string' && ops.$options.includes('i') ? 'i' : '';
        try {
          return typeof actual === 'string' && new RegExp(String(x), flags).test(actual);
        } catch {
          throw new FilterError('invalid $regex');
        }
      }
      case '$options':
        return true;
      case '$exists':
        return (actual !== undefined && actual !== null) === Boolean(x);
      case '$not':
        return !matchesCondition(actual, x);
      default:
        throw new FilterError(`unknown filter operator ${op}`);
    }
  });
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  // ids are numbers, but a JSON filter may carry them as strings (I).
  return (typeof a === 'number' || typeof b === 'number') && String(a) === String(b);
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a ?? '').localeCompare(String(b ?? ''));
}

export function parseJsonSafe(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
