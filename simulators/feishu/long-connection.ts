import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import protobuf from 'protobufjs';
import { WebSocketServer, type WebSocket } from 'ws';

/**
 * The server side of Feishu's long connection (长连接), as the SDKs' WSClient speaks it. Sources: the Node SDK
 * `larksuite/node-sdk` at f54b49f, `ws-client/index.ts` (and the npm build 1.74.0, `lib/index.js` WSClient,
 * L102148–102830), `ws-client/enum.ts`, `ws-client/proto-buf/pbbp2.js`; the Go SDK `larksuite/oapi-sdk-go`
 * `ws/client.go`, `ws/model.go`, `ws/const.go`, `ws/pbbp2.pb.go`; the doc page 使用长连接接收事件
 * (event-subscription-guide/…/request-url-configuration-case, doc-hub-mcp 9617d88). (I) marks inference.
 *
 * 1. `POST /callback/ws/endpoint` `{AppID, AppSecret}` → HTTP 200 `{code, msg, data: {URL, ClientConfig}}`
 *    (node `pullConnectConfig`, go `getConnURL`). A rejection is HTTP 200 with a code, since both SDKs treat a
 *    non-200 as retryable and only a code ≠ 0 as the app's fault (I: the HTTP status of real rejections).
 * 2. The client opens `URL` as a WebSocket and speaks protobuf `pbbp2.Frame`s: control frames (method 0) for
 *    ping/pong, data frames (method 1) for events and their ACKs.
 * 3. Each event is pushed to ONE of the app's connections, chosen at random ("集群模式，不支持广播…只有其中随机一个
 *    客户端会收到消息", doc), and counts as received only when that client ACKs it with code 200 within the deadline
 *    ("需要在 3 秒内处理完成且不抛出异常，否则会触发超时重推机制", doc); the SDK ACKs 500 when the handler throws.
 */

// ---- frames ---------------------------------------------------------------------------------------------------

/**
 * pbbp2, field for field as the SDKs define it: node `ws-client/proto-buf/pbbp2.js` (encode: tags 8, 16, 24, 32, 42,
 * 50, 58, 66, 74; decode: SeqID, LogID, service, method required) and go `ws/pbbp2.pb.go` (`req`/`opt`/`rep`, the
 * names `payload_encoding`, `payload_type`). Parsed by protobufjs, which also turns those two into payloadEncoding /
 * payloadType, the names the node SDK's generated code uses.
 */
export const PBBP2_PROTO = `
syntax = "proto2";
package pbbp2;
message Header {
  required string key = 1;
  required string value = 2;
}
message Frame {
  required uint64 SeqID = 1;
  required uint64 LogID = 2;
  required int32 service = 3;
  required int32 method = 4;
  repeated Header headers = 5;
  optional string payload_encoding = 6;
  optional string payload_type = 7;
  optional bytes payload = 8;
  optional string LogIDNew = 9;
}
`;

const FrameMessage = protobuf.parse(PBBP2_PROTO).root.lookupType('pbbp2.Frame');

export interface FrameHeader {
  key: string;
  value: string;
}

export interface Pbbp2Frame {
  SeqID: number;
  LogID: number;
  service: number;
  method: number;
  headers: FrameHeader[];
  payloadEncoding?: string;
  payloadType?: string;
  payload?: Uint8Array;
  LogIDNew?: string;
}

/** `FrameType` (node enum.ts, go const.go). */
export const FRAME_CONTROL = 0;
export const FRAME_DATA = 1;

export function encodeFrame(frame: Pbbp2Frame): Buffer {
  return Buffer.from(FrameMessage.encode(FrameMessage.fromObject(frame)).finish());
}

/** Throws on bytes that are not a Frame with its required fields (as the SDK's generated decoder does). */
export function decodeFrame(bytes: Uint8Array): Pbbp2Frame {
  const message = FrameMessage.decode(bytes);
  return FrameMessage.toObject(message, { longs: Number, defaults: true }) as Pbbp2Frame;
}

export function headerOf(frame: Pick<Pbbp2Frame, 'headers'>, key: string): string | undefined {
  return frame.headers.find((h) => h.key === key)?.value;
}

// ---- configuration --------------------------------------------------------------------------------------------

/** What the endpoint and every pong hand out, in seconds (node `pullConnectConfig` / `handleControlData`). */
export interface ClientConfig {
  PingInterval: number;
  /** -1: retry for ever. */
  ReconnectCount: number;
  ReconnectInterval: number;
  /** The first reconnect waits a random part of this. */
  ReconnectNonce: number;
}

/**
 * The values real endpoint responses carry (I: from third-party captures, eastreams/loong PR #377 "real endpoint
 * payload shape including -1" and its fixtures, 90 / -1 / 90 / 25; the SDK's own defaults are 120 / -1 / 120 / 30,
 * node `ws-config.ts`).
 */
export const FEISHU_CLIENT_CONFIG: ClientConfig = {
  PingInterval: 90,
  ReconnectCount: -1,
  ReconnectInterval: 90,
  ReconnectNonce: 25,
};

/** Endpoint codes: node `ws-client/enum.ts` `ErrorCode`, go `ws/const.go`. */
export const WS_CODES = {
  ok: 0,
  systemBusy: 1,
  forbidden: 403,
  authFailed: 514,
  internalError: 1000040343,
  exceedConnLimit: 1000040350,
  /** Answered for an app id the deployment does not know (an app of the other brand): field reports, I. */
  incorrectDomain: 1000040351,
} as const;

export interface LongConnectionOptions {
  appId: string;
  appSecret: string;
  clientConfig?: Partial<ClientConfig>;
  /** How long an event waits for its ACK before it counts as failed (Feishu: 3 s, doc). */
  ackTimeoutMs: number;
  /** Split event payloads bigger than this into `sum`/`seq` fragments (I: Feishu's size is not documented). */
  fragmentBytes?: number;
  /** "每个应用最多建立 50 个连接" (doc). */
  maxConnections?: number;
}

export interface LongConnectionInfo {
  connection_id: string;
  service_id: number;
  opened_at: string;
  /** Dropped silently: the simulator no longer answers or pushes on it, but the client's socket stays open. */
  silent: boolean;
  pings: number;
  pushed: number;
  acks: number;
}

export interface LongConnectionPush {
  /** The ACK's code (200 or 500), when one came. */
  status?: number;
  error?: string;
  connectionId?: string;
  durationMs: number;
}

export interface LongConnectionGateway {
  /** `POST /callback/ws/endpoint`; `host` is where the client reached the simulator (the URL points back there). */
  endpoint(body: Record<string, unknown>, host: string | undefined): Record<string, unknown>;
  /** The HTTP server's `upgrade` event for the URL the endpoint handed out. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Push one event (its plaintext envelope) to one connection chosen at random and wait for the ACK. */
  push(body: object): Promise<LongConnectionPush>;
  connections(): LongConnectionInfo[];
  /** Connections accepted so far. */
  connectionCount(): number;
  /**
   * `close`: end connections the way a server restart does (the client sees the close and reconnects). `silent`:
   * stop answering them, the way a dead NAT mapping does (half-open: only the client's ping time-out notices).
   */
  drop(opts?: { mode?: 'close' | 'silent'; connectionId?: string }): number;
  close(): void;
}

interface Ticket {
  connectionId: string;
  serviceId: number;
  expiresAt: number;
}

interface Connection extends LongConnectionInfo {
  socket: WebSocket;
  seq: number;
}

/** A ticket is good for one connection within this (I: Feishu's ticket lifetime and reuse are not documented). */
const TICKET_TTL_MS = 5 * 60_000;

export function createLongConnectionGateway(options: LongConnectionOptions): LongConnectionGateway {
  const clientConfig: ClientConfig = { ...FEISHU_CLIENT_CONFIG, ...options.clientConfig };
  const maxConnections = options.maxConnections ?? 50;
  const wss = new WebSocketServer({ noServer: true });
  const tickets = new Map<string, Ticket>();
  const live = new Map<string, Connection>();
  const pendingAcks = new Map<
    string,
    { connectionId: string; settle: (r: { code?: number; error?: string }) => void }
  >();
  let accepted = 0;

  function endpoint(body: Record<string, unknown>, host: string | undefined): Record<string, unknown> {
    // Node sends {AppID, AppSecret}; go also ClientAssertion (keyless credentials), which the simulator does not issue.
    if (body.AppID !== options.appId) {
      return { code: WS_CODES.incorrectDomain, msg: 'Incorrect domain name', data: {} };
    }
    if (body.AppSecret !== options.appSecret) {
      // (I) the code for a wrong secret: the SDKs' enum names 514 auth_failed.
      return { code: WS_CODES.authFailed, msg: 'auth failed', data: {} };
    }
    const connectionId = String(7_000_000_000_000_000_000n + BigInt(randomInt(1, 2 ** 47)));
    const serviceId = 33_554_678;
    const ticket = randomUUID();
    tickets.set(ticket, { connectionId, serviceId, expiresAt: Date.now() + TICKET_TTL_MS });
    // The real URL's shape: wss://msg-frontier.feishu.cn/ws/v2?fpid=…&aid=…&device_id=…&access_key=…&service_id=…
    // &ticket=… (third-party captures). device_id must not come first: the node SDK reads the query with
    // `qs.parse(URL)` over the whole URL, which would swallow the first key into the path.
    const query = new URLSearchParams({
      fpid: '493',
      aid: '552564',
      device_id: connectionId,
      access_key: randomBytes(16).toString('hex'),
      service_id: String(serviceId),
      ticket,
    });
    return {
      code: WS_CODES.ok,
      msg: 'ok',
      data: { URL: `ws://${host ?? '127.0.0.1'}/ws/v2?${query.toString()}`, ClientConfig: clientConfig },
    };
  }

  /** Refused handshakes carry Handshake-Status / -Msg / -Autherrcode headers (go `ws/client.go` `parseErr`). */
  function refuse(socket: Duplex, status: number, msg: string, authCode?: number): void {
    const headers = [
      'HTTP/1.1 401 Unauthorized', // (I) the status line; the SDKs read only the headers
      `Handshake-Status: ${status}`,
      `Handshake-Msg: ${msg}`,
      ...(authCode !== undefined ? [`Handshake-Autherrcode: ${authCode}`] : []),
      'Content-Length: 0',
      'Connection: close',
    ];
    socket.end(headers.join('\r\n') + '\r\n\r\n');
  }

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://sim');
    if (url.pathname !== '/ws/v2') {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const key = url.searchParams.get('ticket') ?? '';
    const ticket = tickets.get(key);
    tickets.delete(key);
    if (!ticket || ticket.expiresAt < Date.now()) {
      refuse(socket, WS_CODES.authFailed, 'ticket invalid');
      return;
    }
    if (live.size >= maxConnections) {
      refuse(socket, WS_CODES.authFailed, 'exceed connection limit', WS_CODES.exceedConnLimit);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => open(ws, ticket));
  }

  function open(socket: WebSocket, ticket: Ticket): void {
    accepted += 1;
    const connection: Connection = {
      connection_id: ticket.connectionId,
      service_id: ticket.serviceId,
      opened_at: new Date().toISOString(),
      silent: false,
      pings: 0,
      pushed: 0,
      acks: 0,
      socket,
      seq: 0,
    };
    live.set(connection.connection_id, connection);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      live.delete(connection.connection_id);
      for (const [messageId, pending] of pendingAcks) {
        // (I) Feishu would only notice at the ACK deadline; settling now keeps the redelivery prompt.
        if (pending.connectionId === connection.connection_id) {
          pendingAcks.delete(messageId);
          pending.settle({ error: 'connection closed before the ACK' });
        }
      }
    });
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (connection.silent || !isBinary) return;
      let frame: Pbbp2Frame;
      try {
        frame = decodeFrame(data);
      } catch {
        return; // not a frame: the server ignores it (I)
      }
      if (frame.method === FRAME_CONTROL && headerOf(frame, 'type') === 'ping') {
        connection.pings += 1;
        // The pong carries the ClientConfig as JSON (node `handleControlData`).
        send(connection, {
          SeqID: 0,
          LogID: 0,
          service: frame.service,
          method: FRAME_CONTROL,
          headers: [{ key: 'type', value: 'pong' }],
          payload: Buffer.from(JSON.stringify(clientConfig)),
        });
        return;
      }
      if (frame.method === FRAME_DATA) ack(connection, frame);
    });
  }

  function send(connection: Connection, frame: Pbbp2Frame): void {
    if (connection.socket.readyState === connection.socket.OPEN) connection.socket.send(encodeFrame(frame));
  }

  /**
   * The client's ACK echoes the event frame with its headers plus `biz_rt`, and a JSON payload: node
   * `{code, data?}` (`handleEventData`), go `{code, headers, data}` (`ws/model.go` Response). Code 200 = received.
   */
  function ack(connection: Connection, frame: Pbbp2Frame): void {
    const messageId = headerOf(frame, 'message_id');
    const pending = messageId ? pendingAcks.get(messageId) : undefined;
    if (!messageId || !pending || pending.connectionId !== connection.connection_id) return;
    pendingAcks.delete(messageId);
    connection.acks += 1;
    let code: number | undefined;
    try {
      const payload = JSON.parse(Buffer.from(frame.payload ?? []).toString('utf8')) as { code?: unknown };
      if (typeof payload.code === 'number') code = payload.code;
    } catch {
      // not JSON: an ACK without a code
    }
    pending.settle(code === undefined ? { error: 'ACK without a code' } : { code });
  }

  async function push(body: object): Promise<LongConnectionPush> {
    const started = Date.now();
    const candidates = [...live.values()].filter((c) => c.socket.readyState === c.socket.OPEN);
    // (I) With no client connected the push fails like a missed ACK and waits for the next redelivery.
    if (candidates.length === 0) return { error: 'no long-connection client connected', durationMs: 0 };
    // A silently dropped connection still looks alive to the server, so it stays a candidate (and times out).
    const connection = candidates[randomInt(candidates.length)]!;
    const messageId = randomBytes(16).toString('hex');
    const payload = Buffer.from(JSON.stringify(body), 'utf8');
    const size = options.fragmentBytes && options.fragmentBytes > 0 ? options.fragmentBytes : payload.length || 1;
    const parts: Buffer[] = [];
    for (let offset = 0; offset < payload.length; offset += size) parts.push(payload.subarray(offset, offset + size));
    const traceId = randomBytes(8).toString('hex');
    const result = await new Promise<{ code?: number; error?: string }>((resolve) => {
      const timer = setTimeout(() => {
        pendingAcks.delete(messageId);
        resolve({ error: `no ACK within ${options.ackTimeoutMs} ms` });
      }, options.ackTimeoutMs);
      pendingAcks.set(messageId, {
        connectionId: connection.connection_id,
        settle: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
      connection.pushed += 1;
      if (connection.silent) return; // the frame goes nowhere, as on a dead TCP path
      parts.forEach((part, seq) => {
        connection.seq += 1;
        // Event headers: type, message_id, sum, seq, trace_id (node `handleEventData`); timestamp in ms (go const.go).
        send(connection, {
          SeqID: connection.seq,
          LogID: randomInt(1, 2 ** 47),
          service: connection.service_id,
          method: FRAME_DATA,
          headers: [
            { key: 'type', value: 'event' },
            { key: 'message_id', value: messageId },
            { key: 'sum', value: String(parts.length) },
            { key: 'seq', value: String(seq) },
            { key: 'trace_id', value: traceId },
            { key: 'timestamp', value: String(Date.now()) },
          ],
          payload: part,
        });
      });
    });
    const durationMs = Date.now() - started;
    const connectionId = connection.connection_id;
    if (result.error) return { error: result.error, connectionId, durationMs };
    return {
      status: result.code,
      connectionId,
      durationMs,
      error: result.code === 200 ? undefined : `ACK ${result.code}`,
    };
  }

  function connections(): LongConnectionInfo[] {
    return [...live.values()].map(({ socket: _s, seq: _q, ...info }) => ({ ...info }));
  }

  function drop(opts: { mode?: 'close' | 'silent'; connectionId?: string } = {}): number {
    const targets = [...live.values()].filter((c) => !opts.connectionId || c.connection_id === opts.connectionId);
    for (const c of targets) {
      if (opts.mode === 'silent') c.silent = true;
      else c.socket.terminate();
    }
    return targets.length;
  }

  function close(): void {
    for (const c of live.values()) c.socket.terminate();
    live.clear();
    for (const pending of pendingAcks.values()) pending.settle({ error: 'simulator closed' });
    pendingAcks.clear();
    wss.close();
  }

  return {
    endpoint,
    handleUpgrade,
    push,
    connections,
    connectionCount: () => accepted,
    drop,
    close,
  };
}
