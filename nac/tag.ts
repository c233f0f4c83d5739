import { type GrantTag } from './adapter';

/**
 * How a grant's ownership is written onto an NAC endpoint, so reconcile and undo can tell "ours" from "someone
 * else's". Two carriers: a description line (always stored by every NAC) and key/value attributes (ISE custom
 * attributes are silently dropped unless defined on the appliance, so the description is the one ISE trusts).
 *
 *   description: `ApprovalPlus grant=<grantId> owner=<owner> code=<approvalCode> expires=<iso|never>[ origin=created|existing]`
 *   attributes:  { <prefix>Grant, <prefix>Owner, <prefix>Code, <prefix>Expires[, <prefix>Origin] }
 *
 * Values are URI-encoded in the line. `origin` (whether the grant created the endpoint) came later: tags without it
 * are read as "unknown", and reconcile then never deletes the endpoint.
 */

const LINE = /ApprovalPlus grant=(\S+) owner=(\S+) code=(\S+) expires=(\S+)(?: origin=(created|existing))?/;

export function tagDescription(tag: GrantTag): string {
  const enc = encodeURIComponent;
  return `ApprovalPlus grant=${enc(tag.grantId)} owner=${enc(tag.owner)} code=${enc(tag.approvalCode)} expires=${enc(tag.expiresAt ?? 'never')}${tag.origin ? ` origin=${tag.origin}` : ''}`;
}

export function parseTagDescription(description: unknown): GrantTag | undefined {
  if (typeof description !== 'string') return undefined;
  const m = LINE.exec(description);
  if (!m) return undefined;
  try {
    const [grantId, owner, approvalCode, expires] = m.slice(1, 5).map((s) => decodeURIComponent(s!));
    return makeTag(grantId!, owner!, approvalCode!, expires!, m[5]);
  } catch {
    return undefined; // a malformed %-escape: not a tag we wrote
  }
}

/** Attribute names for a vendor: ISE `ApprovalPlusGrant`, ClearPass `ApprovalPlus Grant`. */
export function tagAttributeNames(separator: '' | ' '): {
  grant: string;
  owner: string;
  code: string;
  expires: string;
  origin: string;
} {
  const p = `ApprovalPlus${separator}`;
  return { grant: `${p}Grant`, owner: `${p}Owner`, code: `${p}Code`, expires: `${p}Expires`, origin: `${p}Origin` };
}

/** Every attribute name a tag may use, e.g. to check that none is left after a restore. */
export function allTagAttributeNames(separator: '' | ' '): string[] {
  return Object.values(tagAttributeNames(separator));
}

export function tagAttributes(tag: GrantTag, separator: '' | ' '): Record<string, string> {
  const n = tagAttributeNames(separator);
  return {
    [n.grant]: tag.grantId,
    [n.owner]: tag.owner,
    [n.code]: tag.approvalCode,
    [n.expires]: tag.expiresAt ?? 'never',
    ...(tag.origin ? { [n.origin]: tag.origin } : {}),
  };
}

export function parseTagAttributes(attrs: unknown, separator: '' | ' '): GrantTag | undefined {
  if (!attrs || typeof attrs !== 'object') return undefined;
  const a = attrs as Record<string, unknown>;
  const n = tagAttributeNames(separator);
  const [grant, owner, code, expires] = [a[n.grant], a[n.owner], a[n.code], a[n.expires]];
  if (typeof grant !== 'string' || !grant) return undefined;
  return makeTag(grant, str(owner), str(code), str(expires) || 'never', str(a[n.origin]));
}

/** Whether two tags name the same grant with the same terms (`origin`, the adapter's note, is not compared). */
export function sameTag(a: GrantTag | undefined, b: GrantTag | undefined): boolean {
  if (!a || !b) return false;
  return (
    a.grantId === b.grantId &&
    a.owner === b.owner &&
    a.approvalCode === b.approvalCode &&
    (a.expiresAt ?? 'never') === (b.expiresAt ?? 'never')
  );
}

function makeTag(grantId: string, owner: string, approvalCode: string, expires: string, origin?: string): GrantTag {
  return {
    grantId,
    owner,
    approvalCode,
    ...(expires && expires !== 'never' ? { expiresAt: expires } : {}),
    ...(origin === 'created' || origin === 'existing' ? { origin } : {}),
  };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** Order-insensitive deep equality for JSON values (vendor field comparison). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return stableJson(a) === stableJson(b);
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}
