import type { Client } from '@temporalio/client';
import { DWClient, EventAck, type DWClientDownStream, type EventAckData } from 'dingtalk-stream';
import type { Logger } from '../../app/logger';
import type { AppConfig, DingTalkConfig } from '../../config/config';
import { normaliseDingTalkEvent } from './envelope';
import { EventProcessor, timingFor } from '../../ingress/event-processor';
import { HttpError } from '../../ingress/http-error';
import type { ReadinessCheck } from '../../ingress/routes/health';

/**
 * DingTalk Stream mode (DINGTALK_EVENT_MODE=stream, reference dingtalk-wecom.md §3): the official `dingtalk-stream`
 * client feeds the same EventProcessor as the HTTP push. Two things differ from the SDK's defaults:
 * - ACK after acceptance. The SDK's event handler is synchronous and ACKs as soon as it returns (§3.4); here `onEvent`
 *   is overridden so that the ACK frame is sent only once the EventProcessor has durably accepted the event
 *   (SUCCESS), or LATER when it could not (Temporal unreachable) so DingTalk pushes it again. A malformed event is
 *   ACKed SUCCESS after logging: pushing it again would not make it valid.
 * - The gateway URL. The SDK hard-codes api.dingtalk.com; `getEndpoint` is overridden to use DINGTALK_BASE_URL, which
 *   is also what lets the DingTalk simulator stand in for the gateway.
 * Supervised: keepAlive pings detect half-open sockets, and a client that is not connected (dropped, `disconnect`
 * frame, failed connect) is replaced with backoff; the SDK's own reconnect is off (it has known failure modes, §3.4).
 * After a SYSTEM `disconnect` frame DingTalk closes the connection 10 s later and pushes nothing more on it
 * (developerpedia protocol.md): a new connection is opened at once, and the old one is closed only once the events it
 * is still accepting have been ACKed on it (or those 10 s are up).
 */

export type StreamAckHandler = (message: DWClientDownStream) => Promise<EventAckData>;

/** DingTalk closes a connection 10 s after its `disconnect` frame (developerpedia protocol.md 系统推送). */
const DISCONNECT_GRACE_MS = 10_000;

/** The handler the stream client runs for each EVENT frame; exported so tests can drive it without a socket. */
export function createDingTalkStreamHandler(deps: {
  processor: Pick<EventProcessor, 'process'>;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
}): StreamAckHandler {
  return async function handleStreamEvent(message) {
    const eventType = message.headers?.eventType ?? message.headers?.topic ?? '';
    const eventId = message.headers?.eventId || undefined;
    let data: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(message.data);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      data = parsed as Record<string, unknown>;
    } catch {
      deps.logger.warn({ platform: 'dingtalk', eventType, eventId, via: 'stream' }, 'stream event data is not JSON');
      return { status: EventAck.SUCCESS, message: 'malformed event ignored' };
    }
    let event;
    try {
      event = { ...normaliseDingTalkEvent(eventType, eventId, data, message.data), raw: data };
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      deps.logger.warn({ platform: 'dingtalk', eventType, eventId, via: 'stream' }, err.message);
      return { status: EventAck.SUCCESS, message: 'malformed event ignored' };
    }
    try {
      const result = await deps.processor.process(event);
      deps.logger.info(
        { platform: 'dingtalk', eventId: event.eventId, type: eventType, outcome: result.outcome, via: 'stream' },
        'event accepted'
      );
      return { status: EventAck.SUCCESS };
    } catch (err) {
      deps.logger.error(
        { platform: 'dingtalk', eventId: event.eventId, type: eventType, err: (err as Error).message, via: 'stream' },
        'event not accepted; asking DingTalk to push it again'
      );
      return { status: EventAck.LATER, message: 'not accepted yet' };
    }
  };
}

/** DWClient that ACKs after the handler settles, and opens its connection through DINGTALK_BASE_URL. */
export class AckAfterAcceptClient extends DWClient {
  constructor(
    opts: { clientId: string; clientSecret: string; keepAlive?: boolean; autoReconnect?: boolean },
    private readonly handler: StreamAckHandler,
    private readonly gatewayBaseUrl: string,
    private readonly log?: Pick<Logger, 'warn'>
  ) {
    // autoReconnect is a DWClientConfig field the constructor's type omits; the constructor copies it into config.
    super({ ua: 'approval-plus', ...opts } as ConstructorParameters<typeof DWClient>[0]);
  }

  /**
   * dingtalk-stream 2.1.5 starts a keepAlive interval on every connect and clears only the last one on disconnect,
   * so each reconnect leaks one; two live intervals then terminate each other's healthy socket (a reconnect storm).
   * Clear the previous interval before connecting, and on disconnect.
   */
  private clearHeartbeat(): void {
    const self = this as unknown as { heartbeatIntervallId?: NodeJS.Timeout };
    if (self.heartbeatIntervallId !== undefined) clearInterval(self.heartbeatIntervallId);
    self.heartbeatIntervallId = undefined;
  }

  override _connect(): Promise<void> {
    this.clearHeartbeat();
    return super._connect();
  }

  override disconnect(): void {
    super.disconnect();
    this.clearHeartbeat();
  }

  /** Events being accepted on this connection: their ACKs must go out on it. */
  private readonly pending = new Set<Promise<void>>();
  /** DingTalk sent SYSTEM `disconnect`: this connection is going away. */
  disconnectRequested = false;

  override onSystem(downstream: DWClientDownStream): void {
    if (downstream.headers?.topic === 'disconnect') {
      this.disconnectRequested = true;
      this.log?.warn(
        { platform: 'dingtalk', data: downstream.data },
        'DingTalk stream asked to reconnect (disconnect)'
      );
    }
    super.onSystem(downstream);
  }

  override onEvent(message: DWClientDownStream): void {
    const messageId = message.headers?.messageId;
    const done = this.handler(message)
      .catch((err: unknown) => {
        this.log?.warn({ platform: 'dingtalk', err: (err as Error).message }, 'stream handler failed');
        return { status: EventAck.LATER, message: 'handler failed' } as EventAckData;
      })
      .then((ack) => {
        // The socket may have been closed meanwhile; without an ACK DingTalk pushes the event again.
        if (messageId) this.send(messageId, ack);
      });
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  /** Close this connection once the ACKs of the events it is accepting are sent, or after `maxWaitMs`. */
  async retire(maxWaitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.pending]),
      new Promise((resolve) => (timer = setTimeout(resolve, maxWaitMs))),
    ]);
    clearTimeout(timer);
    this.disconnect();
  }

  override async getEndpoint(): Promise<this> {
    const config = this.getConfig();
    const res = await fetch(`${this.gatewayBaseUrl}/v1.0/gateway/connections/open`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: JSON.stringify({
        clientId: config.clientId,
        clientSecret: config.clientSecret,
        ua: config.ua,
        subscriptions: config.subscriptions,
      }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json().catch(() => ({}))) as { endpoint?: unknown; ticket?: unknown };
    if (!res.ok || typeof body.endpoint !== 'string' || typeof body.ticket !== 'string') {
      throw new Error(`dingtalk stream: connections/open answered HTTP ${res.status}`);
    }
    // `dw_url` is private in the SDK's typings; it is the URL `_connect` opens.
    (this as unknown as { dw_url: string }).dw_url = `${body.endpoint}?ticket=${encodeURIComponent(body.ticket)}`;
    return this;
  }
}

export interface DingTalkStream {
  readiness: ReadinessCheck;
  /** The handler (tests). */
  handler: StreamAckHandler;
  connected(): boolean;
  stop(): Promise<void>;
}

export async function startDingTalkStream(
  config: AppConfig & { dingtalk: DingTalkConfig },
  client: Client,
  logger: Logger,
  opts: { supervisorIntervalMs?: number } = {}
): Promise<DingTalkStream> {
  const processor = new EventProcessor({
    client,
    routes: config.routes,
    forwarding: config.forwarding,
    ...timingFor(config),
    logger,
  });
  const handle = createDingTalkStreamHandler({ processor, logger });
  // Events still being accepted when the stream stops get to finish (and ACK) before the Temporal connection closes.
  const inflight = new Set<Promise<EventAckData>>();
  let stopped = false;
  const handler: StreamAckHandler = (message) => {
    // A frame that arrives while stopping is not processed (the Temporal connection is about to close): LATER makes
    // DingTalk push it again, to whichever replica is still up.
    if (stopped) return Promise.resolve({ status: EventAck.LATER, message: 'shutting down' } as EventAckData);
    const p = handle(message);
    inflight.add(p);
    void p.finally(() => inflight.delete(p)).catch(() => undefined);
    return p;
  };
  const dt = config.dingtalk;
  // The SDK's own reconnect is off: it can open two sockets for one failure (an 'error' both rejects the connect,
  // which retries, and closes the socket, which retries too). The supervisor replaces a client that is not connected
  // with a new one (fresh ticket), backing off 1 s → 60 s while connecting fails.
  const makeClient = () =>
    new AckAfterAcceptClient(
      { clientId: dt.appKey, clientSecret: dt.appSecret, keepAlive: true, autoReconnect: false },
      handler,
      dt.baseUrl,
      logger
    );
  let ws = makeClient();
  let connecting: Promise<void> | undefined;
  let failures = 0;
  let nextAttemptAt = 0;
  const connect = () => {
    connecting = ws.connect().finally(() => {
      connecting = undefined;
      if (ws.connected) failures = 0;
      else nextAttemptAt = Date.now() + Math.min(60_000, 1000 * 2 ** failures++);
    });
  };
  connect();
  const retiring = new Set<Promise<void>>();
  const supervisor = setInterval(() => {
    if (stopped || connecting || ws.connected || Date.now() < nextAttemptAt) return;
    const old = ws;
    if (old.disconnectRequested) {
      logger.info({ platform: 'dingtalk' }, 'DingTalk stream: reconnecting after its disconnect frame');
      const r = old.retire(DISCONNECT_GRACE_MS);
      retiring.add(r);
      void r.finally(() => retiring.delete(r));
    } else {
      logger.warn({ platform: 'dingtalk', failures }, 'DingTalk stream not connected; starting a new client');
      old.disconnect();
    }
    ws = makeClient();
    connect();
  }, opts.supervisorIntervalMs ?? 1000);
  supervisor.unref();
  return {
    handler,
    connected: () => ws.connected,
    readiness: {
      name: 'dingtalk-stream',
      async check() {
        return ws.connected ? undefined : 'DingTalk stream is not connected';
      },
    },
    async stop() {
      stopped = true;
      clearInterval(supervisor);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...inflight]),
        new Promise((resolve) => (timer = setTimeout(resolve, 5000))),
      ]);
      clearTimeout(timer);
      ws.disconnect();
      await Promise.allSettled([...retiring]);
      // The Temporal connection closes after this: no call of ours may still be retrying inside it.
      await processor.idle();
    },
  };
}
