import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { formatMac } from '../../domain/mac';
import type { NacSimProfile } from './profiles';

/**
 * The NAC simulator's endpoint store: one vendor-neutral record per device, seen through the ISE ERS view (groupId,
 * customAttributes…) and the ClearPass view (status, attributes…). Optionally persisted to a JSON file after every
 * change, so the state survives a restart.
 */

export type CpStatus = 'Known' | 'Unknown' | 'Disabled';
/** ClearPass `ProfileReplace` (vendor OAS 6.12.7): the three fields a 6.12 PUT carries. */
export interface CpProfile {
  device_category: string;
  device_os_family: string;
  device_name: string;
}
export const CP_STATUSES: readonly CpStatus[] = ['Known', 'Unknown', 'Disabled'];

export interface SimEndpoint {
  /** ISE endpoint UUID. */
  id: string;
  /** ClearPass numeric id. */
  cpId: number;
  /** 12 lower-case hex digits. */
  mac: string;
  /** ISE `name` (ISE derives it from the MAC). */
  name: string;
  description: string;
  groupId: string;
  staticGroupAssignment: boolean;
  staticProfileAssignment: boolean;
  profileId: string;
  portalUser: string;
  identityStore: string;
  identityStoreId: string;
  /** ISE custom attributes (the inner map of `customAttributes.customAttributes`). */
  customAttributes: Record<string, unknown>;
  /** ISE-only fields some releases have (`simulators/nac/ise/ers.ts` decides when they are shown). */
  ise?: IseEndpointExtras;
  status: CpStatus;
  /** ClearPass endpoint attributes. */
  attributes: Record<string, unknown>;
  randomizedMac: boolean;
  /** ClearPass 6.12 endpoint profile (device category / OS family / name; absent until profiled or PUT). */
  cpProfile?: CpProfile;
  /** ClearPass Device Insight tags: a string in the API spec, an array in a captured response (both kept as given). */
  deviceInsightTags?: string | string[];
  createdAt: string;
  updatedAt: string;
}

/** ISE 3.3 endpoint fields (ERS endpoint swagger revision table: `*Defined` flags and `mdmAttributes` are 3.3). */
export interface IseEndpointExtras {
  staticGroupAssignmentDefined?: boolean;
  staticProfileAssignmentDefined?: boolean;
  mdmAttributes?: Record<string, unknown>;
  /** Whether a client ever wrote `description` (3.3 omits a description never set). */
  descriptionSet?: boolean;
}

export interface SimGroup {
  id: string;
  name: string;
  description: string;
  systemDefined: boolean;
}

/** What a seed or a create may set; everything else gets ISE/ClearPass defaults. */
export type EndpointInput = Partial<Omit<SimEndpoint, 'id' | 'cpId' | 'mac' | 'createdAt' | 'updatedAt'>> & {
  mac: string;
};

/**
 * ISE's built-in block group: one fixed UUID on every release, named `Blacklist` on 2.x and `Blocked List` later
 * (demisto/content Cisco ISE README lists "Blacklist" with this id; a DevNet sandbox run of 3.x shows "Blocked List"
 * with the same id; DISA STIG V-242586 names "Endpoint Identity Group:Blacklist").
 */
export const BLOCK_GROUP_ID = 'aa000c30-8bff-11e6-996c-525400b48521';

export function blockGroupName(profile: NacSimProfile): string {
  return profile.ise.version === '2.7' ? 'Blacklist' : 'Blocked List';
}

/** ISE's built-in endpoint identity groups (ids as shipped by ISE 2.x/3.x). */
const DEFAULT_GROUPS: SimGroup[] = [
  {
    id: 'aa0e8b20-8bff-11e6-996c-525400b48521',
    name: 'Unknown',
    description: 'Unknown Identity Group',
    systemDefined: true,
  },
  {
    id: 'aa10ae00-8bff-11e6-996c-525400b48521',
    name: 'Profiled',
    description: 'Profiled Identity Group',
    systemDefined: true,
  },
  {
    id: 'aa13bb40-8bff-11e6-996c-525400b48521',
    name: 'RegisteredDevices',
    description: 'Asset Registered Endpoints Identity Group',
    systemDefined: true,
  },
  {
    id: BLOCK_GROUP_ID,
    name: 'Blocked List',
    description: 'Blocked List Identity Group',
    systemDefined: true,
  },
  {
    id: 'aa178bd0-8bff-11e6-996c-525400b48521',
    name: 'GuestEndpoints',
    description: 'Guest Endpoints Identity Group',
    systemDefined: true,
  },
];
export const UNKNOWN_GROUP_ID = DEFAULT_GROUPS[0]!.id;

interface PersistedState {
  version: 1;
  nextCpId: number;
  groups: SimGroup[];
  endpoints: SimEndpoint[];
}

export function normalizeMac(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const hex = raw.replace(/[\s:.-]/g, '').toLowerCase();
  return /^[0-9a-f]{12}$/.test(hex) ? hex : undefined;
}

/** Stable id for a named group, so the whitelist group keeps its id across restarts even without a state file. */
function groupIdFor(name: string): string {
  const h = createHash('sha1').update(`approval-plus-sim-group:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export class EndpointStore {
  private endpoints = new Map<string, SimEndpoint>();
  private groups: SimGroup[] = [];
  private nextCpId = 3001;
  /** ISE custom attribute names that seeded endpoints carry: defined on the simulated box as if by its admin. */
  readonly seededCustomAttributes = new Set<string>();

  constructor(
    private readonly whitelistGroup: string,
    private readonly stateFile?: string,
    private readonly profile?: () => NacSimProfile
  ) {
    this.resetGroups();
    if (stateFile) this.load(stateFile);
    this.profileChanged();
  }

  /** The release changed: built-in groups take that release's names. */
  profileChanged(): void {
    const block = this.groupById(BLOCK_GROUP_ID);
    if (block && this.profile) {
      block.name = blockGroupName(this.profile());
      block.description = `${block.name} Identity Group`;
    }
  }

  // --- groups ---

  listGroups(): SimGroup[] {
    return [...this.groups];
  }

  groupById(id: string): SimGroup | undefined {
    return this.groups.find((g) => g.id === id);
  }

  groupByName(name: string): SimGroup | undefined {
    return this.groups.find((g) => g.name === name);
  }

  /** Test helper: remove a group (e.g. a box without ISE's block group); `reset()` brings the built-ins back. */
  deleteGroup(id: string): boolean {
    const before = this.groups.length;
    this.groups = this.groups.filter((g) => g.id !== id);
    return this.groups.length !== before;
  }

  get whitelistGroupId(): string {
    return this.groupByName(this.whitelistGroup)!.id;
  }

  // --- endpoints ---

  list(): SimEndpoint[] {
    return [...this.endpoints.values()].map(clone);
  }

  byMac(mac: string): SimEndpoint | undefined {
    return [...this.endpoints.values()].find((e) => e.mac === mac);
  }

  byId(id: string): SimEndpoint | undefined {
    return this.endpoints.get(id);
  }

  byCpId(cpId: number): SimEndpoint | undefined {
    return [...this.endpoints.values()].find((e) => e.cpId === cpId);
  }

  /** Create a record; the caller has checked the MAC is new. */
  create(input: EndpointInput): SimEndpoint {
    const mac = normalizeMac(input.mac);
    if (!mac) throw new Error(`invalid MAC ${JSON.stringify(input.mac)}`);
    const now = new Date().toISOString();
    const ep: SimEndpoint = {
      name: formatMac(mac, 'colon-upper'),
      description: '',
      groupId: UNKNOWN_GROUP_ID,
      staticGroupAssignment: false,
      staticProfileAssignment: false,
      profileId: '',
      portalUser: '',
      identityStore: '',
      identityStoreId: '',
      customAttributes: {},
      status: 'Unknown',
      attributes: {},
      randomizedMac: false,
      ...stripUndefined(input),
      id: randomUUID(),
      cpId: this.nextCpId++,
      mac,
      createdAt: now,
      updatedAt: now,
    };
    this.endpoints.set(ep.id, ep);
    this.persist();
    return clone(ep);
  }

  /** Apply changed fields; returns the fields that actually changed (ISE's UpdatedFieldsList). */
  update(id: string, fields: Partial<SimEndpoint>): Array<{ field: string; oldValue: unknown; newValue: unknown }> {
    const ep = this.endpoints.get(id);
    if (!ep) throw new Error(`no endpoint ${id}`);
    const changed: Array<{ field: string; oldValue: unknown; newValue: unknown }> = [];
    for (const [k, v] of Object.entries(stripUndefined(fields))) {
      if (k === 'id' || k === 'cpId' || k === 'mac' || k === 'createdAt') continue;
      const old = (ep as unknown as Record<string, unknown>)[k];
      if (JSON.stringify(old) === JSON.stringify(v)) continue;
      changed.push({ field: k, oldValue: old, newValue: v });
      (ep as unknown as Record<string, unknown>)[k] = v;
    }
    if (changed.length) {
      ep.updatedAt = new Date().toISOString();
      this.persist();
    }
    return changed;
  }

  /** Give an endpoint a new MAC (ClearPass PATCH can change it); the caller has checked the MAC is free. */
  changeMac(id: string, mac: string): void {
    const ep = this.endpoints.get(id);
    if (!ep) throw new Error(`no endpoint ${id}`);
    if (ep.mac === mac) return;
    ep.mac = mac;
    ep.name = formatMac(mac, 'colon-upper');
    ep.updatedAt = new Date().toISOString();
    this.persist();
  }

  /** Set (or, with undefined, remove) an endpoint's ISE-only fields; returns whether they changed. */
  setIseExtras(id: string, extras: IseEndpointExtras | undefined): boolean {
    const ep = this.endpoints.get(id);
    if (!ep) throw new Error(`no endpoint ${id}`);
    if (JSON.stringify(ep.ise) === JSON.stringify(extras)) return false;
    if (extras) ep.ise = structuredClone(extras);
    else delete ep.ise;
    ep.updatedAt = new Date().toISOString();
    this.persist();
    return true;
  }

  delete(id: string): boolean {
    const ok = this.endpoints.delete(id);
    if (ok) this.persist();
    return ok;
  }

  /** Test/operator helper: create or replace the record for a MAC directly. */
  seed(input: EndpointInput & { group?: string }): SimEndpoint {
    const { group, ...rest } = input;
    // A box where an endpoint carries a custom attribute has that attribute defined (ISE keeps only defined ones).
    for (const name of Object.keys(rest.customAttributes ?? {})) this.seededCustomAttributes.add(name);
    const groupId = group ? this.groupByName(group)?.id : rest.groupId;
    if (group && !groupId) throw new Error(`unknown group ${group}`);
    const mac = normalizeMac(rest.mac);
    if (!mac) throw new Error(`invalid MAC ${JSON.stringify(rest.mac)}`);
    const existing = this.byMac(mac);
    if (existing) this.endpoints.delete(existing.id);
    return this.create({ ...rest, ...(groupId ? { groupId } : {}) });
  }

  reset(): void {
    this.endpoints.clear();
    this.seededCustomAttributes.clear();
    this.resetGroups();
    this.profileChanged();
    this.nextCpId = 3001;
    this.persist();
  }

  // --- persistence ---

  private resetGroups(): void {
    this.groups = DEFAULT_GROUPS.map((g) => ({ ...g }));
    this.ensureWhitelistGroup();
  }

  private ensureWhitelistGroup(): void {
    if (this.groupByName(this.whitelistGroup)) return;
    this.groups.push({
      id: groupIdFor(this.whitelistGroup),
      name: this.whitelistGroup,
      description: 'Devices whitelisted by ApprovalPlus (MAB)',
      systemDefined: false,
    });
  }

  private load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return; // first start: nothing saved yet
    }
    const state = JSON.parse(text) as PersistedState;
    this.groups = state.groups;
    this.ensureWhitelistGroup();
    this.nextCpId = state.nextCpId;
    this.endpoints = new Map(state.endpoints.map((e) => [e.id, e]));
  }

  /** Write-then-rename so a crash mid-write never leaves a torn file. */
  private persist(): void {
    if (!this.stateFile) return;
    const state: PersistedState = {
      version: 1,
      nextCpId: this.nextCpId,
      groups: this.groups,
      endpoints: [...this.endpoints.values()],
    };
    mkdirSync(path.dirname(this.stateFile), { recursive: true });
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(state, null, 2));
    renameSync(tmp, this.stateFile);
  }
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
