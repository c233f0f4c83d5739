import { randomBytes } from 'node:crypto';
import { normalizeMac, type EndpointStore } from './store';

/**
 * Live network sessions of devices (what a NAC's session directory holds: ISE's MnT active sessions, ClearPass's
 * Access Tracker sessions), and the Change of Authorization requests made against them.
 *
 * A session is created through the control API (`POST /_sim/sessions`), as if the device had just authenticated by
 * MAB. Authenticating makes the NAC learn the device: an endpoint is created when the MAC is unknown (ISE puts it in
 * the Unknown identity group, ClearPass gives it status Unknown), which is why a device the NAC has never seen
 * cannot have a live session. Each session remembers the authorization it got (the endpoint's group and status at
 * that moment): a CoA re-authentication re-evaluates it from the endpoint's current state, a disconnect ends the
 * session. Every CoA request the NAC acts on is recorded (`GET /_sim/coa`), and so is one it refused; a by-MAC
 * session action that matched no session sends no RADIUS message and leaves no record.
 */

export interface SimSession {
  /** ClearPass session id / ISE audit session id (the NAS's Acct-Session-Id lives in `acctSessionId`). */
  id: string;
  acctSessionId: string;
  /** 12 lower-case hex digits. */
  mac: string;
  /** The switch or controller that holds the session (RADIUS NAS-IP-Address). */
  nasIp: string;
  /** The device's own address (Framed-IP-Address). */
  endpointIp: string;
  /** ISE: the PSN that authenticated the session (MnT `acs_server`). */
  server: string;
  /** RADIUS User-Name: the MAC for MAB. */
  username: string;
  startedAt: string;
  endedAt?: string;
  state: 'active' | 'ended';
  /** What the device was authorised with at its latest authentication. */
  authorization: { iseGroupId: string; cpStatus: string; at: string };
  /** How many times a CoA re-authenticated it. */
  reauthentications: number;
}

export interface CoaRecord {
  seq: number;
  at: string;
  vendor: 'ise' | 'clearpass';
  action: 'reauth' | 'disconnect';
  /** 12 lower-case hex digits. */
  mac: string;
  /** The session it acted on; absent when the device had none. */
  sessionId?: string;
  nasIp?: string;
  /** ISE: the PSN named in the request path. */
  server?: string;
  /** Vendor detail of the request (ISE reauth/disconnect type, ClearPass enforcement profile). */
  detail?: string;
  result: 'ok' | 'no-session' | 'refused';
}

export interface SessionInput {
  mac: string;
  nasIp?: string;
  endpointIp?: string;
  server?: string;
  username?: string;
}

export class SessionStore {
  private readonly sessions: SimSession[] = [];
  private readonly coaLog: CoaRecord[] = [];
  private seq = 0;
  private nextId = 1;

  constructor(private readonly store: EndpointStore) {}

  /** The device authenticates: learn it if unknown, then open a session with its current authorization. */
  connect(input: SessionInput): SimSession {
    const mac = normalizeMac(input.mac);
    if (!mac) throw new Error(`invalid MAC ${JSON.stringify(input.mac)}`);
    const ep = this.store.byMac(mac) ?? this.store.create({ mac });
    const n = this.nextId++;
    const now = new Date().toISOString();
    const session: SimSession = {
      id: `${randomBytes(4).toString('hex').toUpperCase()}${String(n).padStart(8, '0')}`,
      acctSessionId: `${n.toString(16).padStart(8, '0').toUpperCase()}`,
      mac,
      nasIp: input.nasIp ?? '10.0.0.2',
      endpointIp: input.endpointIp ?? `10.1.${(n >> 8) & 255}.${n & 255}`,
      server: input.server ?? 'ise-psn-1',
      username: input.username ?? mac.toUpperCase().replace(/(..)(?!$)/g, '$1-'),
      startedAt: now,
      state: 'active',
      authorization: { iseGroupId: ep.groupId, cpStatus: ep.status, at: now },
      reauthentications: 0,
    };
    this.sessions.push(session);
    return structuredClone(session);
  }

  /** The active session of a device, if any (a device has at most one here). */
  active(mac: string): SimSession | undefined {
    return this.sessions.find((s) => s.mac === mac && s.state === 'active');
  }

  byId(id: string): SimSession | undefined {
    return this.sessions.find((s) => s.id === id);
  }

  list(filter: { state?: SimSession['state'] } = {}): SimSession[] {
    return this.sessions.filter((s) => !filter.state || s.state === filter.state).map((s) => structuredClone(s));
  }

  /** A CoA re-authentication: the NAS re-runs authorization against the endpoint's current state. */
  reauthenticate(session: SimSession): void {
    const live = this.byId(session.id);
    if (!live || live.state !== 'active') return;
    const ep = this.store.byMac(live.mac);
    live.authorization = {
      iseGroupId: ep?.groupId ?? '',
      cpStatus: ep?.status ?? 'Unknown',
      at: new Date().toISOString(),
    };
    live.reauthentications += 1;
  }

  /** A Disconnect-Request: the NAS tears the session down (the device will reconnect and authenticate anew). */
  disconnect(session: SimSession): void {
    const live = this.byId(session.id);
    if (!live || live.state !== 'active') return;
    live.state = 'ended';
    live.endedAt = new Date().toISOString();
  }

  recordCoa(rec: Omit<CoaRecord, 'seq' | 'at'>): CoaRecord {
    const full: CoaRecord = { seq: ++this.seq, at: new Date().toISOString(), ...rec };
    this.coaLog.push(full);
    return { ...full };
  }

  coa(filter: { mac?: string } = {}): CoaRecord[] {
    const mac = filter.mac ? normalizeMac(filter.mac) : undefined;
    return this.coaLog.filter((r) => !mac || r.mac === mac).map((r) => ({ ...r }));
  }

  clearCoa(): void {
    this.coaLog.length = 0;
  }

  reset(): void {
    this.sessions.length = 0;
    this.coaLog.length = 0;
  }
}
