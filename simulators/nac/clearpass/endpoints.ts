import type { ApiResult, SimRequest, SimShared } from '../api';
import type { ClearPassProfile } from '../profiles';
import { CP_STATUSES, normalizeMac, type CpProfile, type CpStatus, type SimEndpoint } from '../store';
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
  validationFailed,
} from './common';

/**
 * The ClearPass endpoint repository, `/api/endpoint` (identities OAS 6.12.7; pyclearpass 1.0.4 = 6.11.5 and 1.0.5+ =
 * 6.12.2). Per release (`profiles.ts`):
 *  - 6.11: no `randomized_mac` (requests or responses), no `profile`/`profile_details` (pyclearpass 91f3274 vs 6532d3c);
 *    PUT requires mac_address and status.
 *  - 6.12: `randomized_mac` in requests and responses; `profile` only with `?profile_details=true`; PUT also requires
 *    `profile` (ProfileReplace) unless the `putRequiresProfile` knob is off (see ClearPassProfile).
 * Both: PATCH merges attributes and `"--For-Delete--"` deletes one; PUT replaces them; GET omits an empty
 * description and device_insight_tags; MACs are bare lower-case hex.
 */

/** The delete marker for an endpoint attribute in PATCH (PowerArubaCP 853ad46, citing the CPPM 6.8.7 release notes). */
export const ATTRIBUTE_DELETE_MARKER = '--For-Delete--';

type Body = Record<string, unknown>;

export interface EndpointRoutes {
  handle(req: SimRequest, seg: string[]): ApiResult;
  /** The MAC an endpoint request concerns (path, or the body of a create). */
  macOf(req: SimRequest, seg: string[]): string | undefined;
}

export function createEndpointRoutes(shared: SimShared): EndpointRoutes {
  const { store } = shared;
  const cp = (): ClearPassProfile => shared.profile().clearpass;

  function target(seg: string[]): SimEndpoint | undefined | null {
    // `/api/endpoint/mac-address/{mac}` takes bare lower-case hex (UIUC-VCR); other separators are the UI search's
    // formats (techdocs 6.12 EndpointsHelp), accepted here too (I for the REST path).
    if (seg[2] === 'mac-address' && seg.length === 4) {
      const mac = normalizeMac(seg[3]);
      return mac ? store.byMac(mac) : undefined;
    }
    if (seg.length === 3 && /^\d+$/.test(seg[2]!)) return store.byCpId(Number(seg[2]));
    return null;
  }

  function handle(req: SimRequest, seg: string[]): ApiResult {
    if (seg.length === 2) {
      if (req.method === 'GET') return list(req);
      if (req.method === 'POST') return create(req);
      return problem(405, 'Method Not Allowed', 'Method not allowed');
    }
    const ep = target(seg);
    if (!ep) return notFound(); // no such endpoint, or no such route under /api/endpoint
    switch (req.method) {
      case 'GET':
        return hal(200, view(ep, req));
      case 'PATCH':
        return patch(req, ep);
      case 'PUT':
        return replace(req, ep);
      case 'DELETE':
        store.delete(ep.id);
        return { status: 204 }; // OAS/pyclearpass: 204, no body
      default:
        return problem(405, 'Method Not Allowed', 'Method not allowed');
    }
  }

  /** `EndpointResult` as a real box renders it (UIUC-VCR `test_enable_mac.yaml`, key order kept). */
  function view(ep: SimEndpoint, req: SimRequest): Record<string, unknown> {
    const profile = cp();
    const v: Record<string, unknown> = { id: ep.cpId, mac_address: ep.mac };
    // An empty description is omitted (UIUC-VCR; zemerick1/clearpasspy README, 2019).
    if (ep.description) v.description = ep.description;
    v.status = ep.status;
    // Omitted when empty (UIUC-VCR never shows it); a string per the spec, an array in FortiSOAR's captured schema.
    if (hasTags(ep.deviceInsightTags)) v.device_insight_tags = ep.deviceInsightTags;
    if (profile.version === '6.12') v.randomized_mac = ep.randomizedMac; // absent before 6.12 (pyclearpass diff)
    v.attributes = { ...ep.attributes }; // always present, `{}` when empty (UIUC-VCR)
    // `profile` only with profile_details=true, although EndpointResult marks it required (UIUC-VCR sends no
    // profile_details and gets none); an endpoint never profiled gives `{}` (I).
    if (profile.version === '6.12' && req.query.get('profile_details') === 'true') v.profile = { ...ep.cpProfile };
    v.added_at = cpTime(ep.createdAt);
    v.updated_at = cpTime(ep.updatedAt);
    v._links = { self: { href: `${req.base}/api/endpoint/${ep.cpId}` } };
    return v;
  }

  function list(req: SimRequest): ApiResult {
    const p = listParams(req, '+id'); // default sort +id (OAS)
    if ('status' in p) return p;
    let all: Array<Record<string, unknown>>;
    try {
      all = store
        .list()
        .map((e) => view(e, req))
        .filter((v) => matchesFilter(v, p.filter));
    } catch (err) {
      if (err instanceof FilterError) return unprocessable(err.message);
      throw err;
    }
    const sorted = sortBy(all, p.sort);
    return listBody(req, p, sorted.slice(p.offset, p.offset + p.limit), sorted.length);
  }

  function create(req: SimRequest): ApiResult {
    const body = objectBody(req);
    const invalid = validate(body, { mac: true, status: true, profile: false, replace: false });
    if (invalid) return invalid;
    // PowerArubaCP formats the MAC before POSTing; accepting separators here too is (I).
    const mac = normalizeMac(body!.mac_address)!;
    if (store.byMac(mac)) {
      // No recorded duplicate-create body exists (research: "not found in any source"); the status 422 is what
      // Aruba's own demo reads as "exists" (aruba-paulkim ATM2018), the body follows the NETLOOM shape (I).
      return validationFailed({ mac_address: { recordExists: `Endpoint with MAC address ${mac} already exists` } });
    }
    const ep = store.create({ ...writable(body!), mac });
    return hal(201, view(ep, req)); // 201 with the EndpointResult (OAS; pyclearpass)
  }

  /**
   * PATCH merges: fields sent replace, fields not sent stay, `attributes` merge key by key, and only the value
   * `"--For-Delete--"` deletes a key (PowerArubaCP Tests/integration/Endpoint.Tests.ps1 "Add Attribute"/"Remove
   * Attribute"; commit 853ad46). `""` does not delete (that is why 853ad46 exists): it is stored as an empty value (I).
   * The MAC may change: a separated MAC is normalised (PowerArubaCP test "Change MAC Address Endpoint" sends
   * `00-01-02-03-04-06` and reads back `000102030406`). 304 is documented but never observed: not emitted.
   */
  function patch(req: SimRequest, ep: SimEndpoint): ApiResult {
    const body = objectBody(req);
    const invalid = validate(body, { mac: false, status: false, profile: false, replace: false });
    if (invalid) return invalid;
    const moved = changeMac(ep, body!.mac_address);
    if (moved) return moved;
    const fields = writable(body!);
    if (fields.attributes) fields.attributes = mergeAttributes(ep.attributes, fields.attributes);
    if (fields.cpProfile) fields.cpProfile = { ...ep.cpProfile, ...fields.cpProfile } as CpProfile;
    store.update(ep.id, fields);
    return hal(200, view(store.byId(ep.id)!, req)); // 200 with the full object, GET shape (UIUC-VCR PUT replies)
  }

  /**
   * PUT replaces: the attribute map becomes exactly the one sent (none sent → `{}`) (UIUC-VCR test_enable_mac /
   * test_disable_mac); an omitted description is dropped too (I, same semantics). 6.12 requires `profile` unless the
   * knob is off. `updated_at` moves on every PUT, even an identical one (UIUC-VCR: 11:49:20 → 11:50:00), and an
   * identical PUT answers 200, not 304 (UIUC-VCR).
   */
  function replace(req: SimRequest, ep: SimEndpoint): ApiResult {
    const body = objectBody(req);
    const invalid = validate(body, { mac: true, status: true, profile: cp().putRequiresProfile, replace: true });
    if (invalid) return invalid;
    const moved = changeMac(ep, body!.mac_address);
    if (moved) return moved;
    const fields = writable(body!);
    store.update(ep.id, {
      status: fields.status!,
      description: fields.description ?? '',
      attributes: fields.attributes ?? {},
      deviceInsightTags: fields.deviceInsightTags ?? '',
      ...(cp().version === '6.12' ? { randomizedMac: fields.randomizedMac ?? false } : {}), // (I) default
      // The profile is the profiler's; a PUT that carries one sets (pins) it, one that does not leaves it (I).
      ...(fields.cpProfile ? { cpProfile: fields.cpProfile } : {}),
      updatedAt: new Date(Math.max(Date.now(), Date.parse(ep.updatedAt) + 1000)).toISOString(),
    });
    return hal(200, view(store.byId(ep.id)!, req));
  }

  /** A MAC change in PATCH/PUT; a MAC another endpoint has is refused (I: the duplicate-create shape). */
  function changeMac(ep: SimEndpoint, raw: unknown): ApiResult | undefined {
    if (raw === undefined) return undefined;
    const mac = normalizeMac(raw)!;
    if (mac === ep.mac) return undefined;
    if (store.byMac(mac)) {
      return validationFailed({ mac_address: { recordExists: `Endpoint with MAC address ${mac} already exists` } });
    }
    store.changeMac(ep.id, mac);
    return undefined;
  }

  function mergeAttributes(current: Record<string, unknown>, sent: Record<string, unknown>): Record<string, unknown> {
    const merged = { ...current };
    for (const [k, v] of Object.entries(sent)) {
      if (v === ATTRIBUTE_DELETE_MARKER && cp().deleteMarker) delete merged[k];
      else merged[k] = v ?? ''; // null is not a delete either (I: only the marker is documented)
    }
    return merged;
  }

  /** What a body may set. Attribute names are trimmed (PowerArubaCP test: `"Location "` is read back as `Location`). */
  function writable(body: Body): Partial<SimEndpoint> {
    const out: Partial<SimEndpoint> = {};
    if (typeof body.status === 'string') out.status = body.status as CpStatus;
    if (typeof body.description === 'string') out.description = body.description;
    if (body.attributes && typeof body.attributes === 'object') {
      out.attributes = Object.fromEntries(
        Object.entries(body.attributes as Record<string, unknown>).map(([k, v]) => [k.trim(), v])
      );
    }
    if (typeof body.device_insight_tags === 'string' || Array.isArray(body.device_insight_tags)) {
      out.deviceInsightTags = body.device_insight_tags as string | string[];
    }
    // Fields 6.11 does not know are ignored there (I: Apigility drops keys outside the input filter).
    if (cp().version === '6.12') {
      if (typeof body.randomized_mac === 'boolean') out.randomizedMac = body.randomized_mac;
      if (body.profile && typeof body.profile === 'object') out.cpProfile = { ...(body.profile as CpProfile) };
    }
    return out;
  }

  function validate(
    body: Body | undefined,
    required: { mac: boolean; status: boolean; profile: boolean; replace: boolean }
  ): ApiResult | undefined {
    if (!body) return unprocessable('JSON object expected'); // (I) wording
    const messages: Record<string, Record<string, string>> = {};
    // Laminas validator names and messages (Apigility's input filters) (I).
    const isEmpty = { isEmpty: "Value is required and can't be empty" };
    if (required.mac && body.mac_address === undefined) messages.mac_address = isEmpty;
    else if (body.mac_address !== undefined && !normalizeMac(body.mac_address)) {
      messages.mac_address = { invalidMac: 'Invalid MAC address' };
    }
    if (required.status && body.status === undefined) messages.status = isEmpty;
    // The enum is case-sensitive: Known, Unknown, Disabled (OAS `Status`; PowerArubaCP validates with IgnoreCase off).
    else if (body.status !== undefined && !CP_STATUSES.includes(body.status as CpStatus)) {
      messages.status = { notInArray: 'The input was not found in the haystack' };
    }
    if (body.attributes !== undefined && (typeof body.attributes !== 'object' || Array.isArray(body.attributes))) {
      messages.attributes = { invalidType: 'Attributes must be an object' };
    }
    if (cp().version === '6.12') {
      const profile = body.profile;
      if (required.profile && profile === undefined) messages.profile = isEmpty;
      else if (profile !== undefined && required.replace && !isProfileReplace(profile)) {
        // ProfileReplace requires all three fields (OAS); their enums are not modelled (I).
        messages.profile = { invalidProfile: 'device_category, device_os_family and device_name are required' };
      }
    }
    return Object.keys(messages).length ? validationFailed(messages) : undefined;
  }

  return {
    handle,
    macOf(req, seg) {
      if (seg[2] === 'mac-address') return normalizeMac(seg[3]);
      if (seg[2]) return /^\d+$/.test(seg[2]) ? store.byCpId(Number(seg[2]))?.mac : undefined;
      return normalizeMac((req.json as { mac_address?: unknown } | undefined)?.mac_address);
    },
  };
}

function isProfileReplace(p: unknown): boolean {
  if (!p || typeof p !== 'object') return false;
  const o = p as Record<string, unknown>;
  return ['device_category', 'device_os_family', 'device_name'].every((k) => typeof o[k] === 'string' && o[k] !== '');
}

function hasTags(tags: SimEndpoint['deviceInsightTags']): boolean {
  return Array.isArray(tags) ? tags.length > 0 : !!tags;
}
