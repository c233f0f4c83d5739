import type { Client } from '@temporalio/client';
import { DWClient, EventAck, type DWClientDownStream, type EventAckData } from 'dingtalk-stream';
import type { Logger } from '../app/logger';
import type { AppConfig, DingTalkConfig } from '../config/config';
import { normaliseDingTalkEvent } from './dingtalk-envelope';
import { EventProcessor, timingFor } from './event-processor';
import { HttpError } from './http-error';
import type { ReadinessCheck } from './routes/health';

/**
 * DingTalk Stream mode (DINGTALK_EVENT_MODE=stream, reference dingtalk-wecom.md §3): the official `dingtalk-stream`
 * client feeds the same EventProcessor as the HTTP push. Two things differ from the SDK's defaults:
 * - ACK after acceptance. The SDK's event handler is synchronous and ACKs as soon as it returns (§3.4); here `onEvent`
 *   is overridden so that the ACK frame is sent only once the EventProcessor has durably accepted the event
 *   (SUCCESS), or LATER when it could not (Temporal unreachable) so DingTalk pushes it again. A malformed event is
 *   ACKed SUCCESS after logging: pushing it again would not make it valid.
 * - The gateway URL. The SDK hard-codes api.dingtalk.com; `getEndpoint` is overridden to use DINGTALK_BASE_URL, which
 *   is also what lets the DingTalk simulator stand in for the gateway.
 * Supervised: keepAlive pings detect half-open sockets; a client that stays disconnected for two checks in a row
 * (the SDK's reconnect has known failure modes, §3.4) is thrown away and replaced.
 */

export type StreamAckHandler = (message: DWClientDownStream) => Promise<EventAckData>;

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
    opts: { clientId: string; clientSecret: string; keepAlive?: boolean },
    private readonly handler: StreamAckHandler,
    private readonly gatewayBaseUrl: string,
    private readonly log?: Pick<Logger, 'warn'>
  ) {
    super({ ...opts, ua: 'approval-plus' });
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

  override onEvent(message: DWClientDownStream): void {
    const messageId = message.headers?.messageId;
    void this.handler(message)
      .catch((err: unknown) => {
        this.log?.warn({ platform: 'dingtalk', err: (err as Error).message }, 'stream handler failed');
        return { status: EventAck.LATER, message: 'handler failed' } as EventAckData;
      })
      .then((ack) => {
        // The socket may have been replaced meanwhile; without an ACK DingTalk pushes the event again.
        if (messageId) this.send(messageId, ack);
      });
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
  const handler = createDingTalkStreamHandler({ processor, logger });
  const dt = config.dingtalk;
  const makeClient = () =>
    new AckAfterAcceptClient(
      { clientId: dt.appKey, clientSecret: dt.appSecret, keepAlive: true },
      handler,
      dt.baseUrl,
      logger
    );
  let ws = makeClient();
  void ws.connect();
  let downChecks = 0;
  let stopped = false;
  const supervisor = setInterval(() => {
    if (stopped) return;
    downChecks = ws.connected ? 0 : downChecks + 1;
    if (downChecks >= 2) {
      logger.warn({ platform: 'dingtalk' }, 'DingTalk stream disconnected; starting a new client');
      downChecks = 0;
      ws.disconnect();
      ws = makeClient();
      void ws.connect();
    }
  }, opts.supervisorIntervalMs ?? 15_000);
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
      ws.disconnect();
    },
  };
}
