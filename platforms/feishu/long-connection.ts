import * as lark from '@larksuiteoapi/node-sdk';
import type { Client } from '@temporalio/client';
import type { Logger } from '../../app/logger';
import type { AppConfig, FeishuConfig } from '../../config/config';
import { EventProcessor, timingFor } from '../../ingress/event-processor';
import { HttpError } from '../../ingress/http-error';
import type { InboundReceiver } from '../../ingress/inbound';
import { SDK_WS_APP_ID } from './config';
import { decodeFeishuEvent } from './envelope';

/**
 * Feishu long-connection mode (FEISHU_EVENT_MODE=ws): the SDK's WSClient (node-sdk `ws-client/index.ts`, f54b49f;
 * npm 1.74.0 `lib/index.js` L102148–102830) receives events over a WebSocket the app opens, and they go to the same
 * EventProcessor as the webhook's.
 *
 * Events. The WSClient hands the event's envelope, parsed from the frame payload, to `eventDispatcher.invoke(data,
 * {needCheck: false})` (`handleEventData`), and ACKs the frame after that returns: code 200, or 500 when it throws,
 * and Feishu pushes the event again (doc 使用长连接接收事件: "需要在 3 秒内处理完成且不抛出异常，否则会触发超时重推").
 * The dispatcher here decodes that envelope with the webhook's decoder instead of the SDK's, which would flatten
 * it (`dispatcher/request-handle.ts`: v1 `{...event, ...rest}`, v2 `{...header, ...event}`), so forward
 * subscribers get the same `raw` in both modes. It throws only when the event could not be accepted yet (Temporal
 * unavailable, or stopping); a malformed event is ACKed 200 after a warning, since a redelivery would not fix it.
 *
 * Supervision: the SDK client can stop in ways it does not report.
 * - `start()` resolves before any connection exists (it calls `reConnect(true)` without awaiting it), so start-up
 *   waits for the connection itself: up to `firstConnectTimeoutMs`, then it goes on not ready.
 * - An app id not matching `/^cli_[0-9a-fA-F]{16}$/` makes `start()` log and return: idle for ever. Config refuses
 *   such an id in ws mode (`SDK_WS_APP_ID`); here an idle client right after `start()` fails start-up too.
 * - The endpoint refusing the credentials (a code ≠ 0 other than 1000040343) ends in `failed` (`pullConnectConfig`,
 *   `onError`): fatal at start-up with one line, replaced with backoff later (a rotated secret comes back).
 * - A finite server ReconnectCount ends in `failed` after that many attempts: replaced with backoff.
 * - A half-open socket: only the SDK's liveness watchdog notices, and it is off unless `wsConfig.pingTimeout` is
 *   set (`armLiveness`); set here (30 s), it terminates the socket and the SDK reconnects.
 * - A handshake that never completes: `handshakeTimeoutMs` makes it a retryable failure; any client still not
 *   connected after `stuckAfterMs`, or idle, is replaced.
 * Readiness (`/readyz`, check `feishu-long-connection`) is ready only while connected, and says why not.
 */

type WSClientParams = ConstructorParameters<typeof lark.WSClient>[0];
type ConnectionState = ReturnType<lark.WSClient['getConnectionStatus']>['state'];

/** What the supervisor uses of the SDK's client (tests can pass their own). */
export type WSClientLike = Pick<lark.WSClient, 'start' | 'close' | 'getConnectionStatus'>;

export interface LongConnectionOptions {
  /** Seconds without any frame after a ping before the SDK drops the socket (half-open). Default 30. */
  pingTimeoutSec?: number;
  /** Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Start-up waits this long for the first connection, then goes on not ready. Default 30 s. */
  firstConnectTimeoutMs?: number;
  /**
   * A client not connected for this long is replaced. Longer than the SDK's own retry interval (the server's
   * ReconnectInterval, 90 s observed): default 5 min.
   */
  stuckAfterMs?: number;
  /** Default 1 s. */
  checkIntervalMs?: number;
  /** Between replacements: doubling from `initialMs` (1 s) to `maxMs` (60 s); reset once connected. */
  backoff?: { initialMs?: number; maxMs?: number };
  createClient?: (params: WSClientParams) => WSClientLike;
}

export interface LongConnectionStatus {
  state: ConnectionState;
  /** Why it is not ready; undefined while connected. */
  reason?: string;
  /** SDK clients created so far (the first, then each replacement). */
  clients: number;
}

export interface FeishuLongConnection extends InboundReceiver {
  status(): LongConnectionStatus;
}

/** Decodes and accepts one envelope; throws only to have Feishu push it again. */
type EnvelopeHandler = (envelope: unknown) => Promise<void>;

/** An EventDispatcher that takes the WSClient's parsed envelope as it is (see the module comment). */
class EnvelopeDispatcher extends lark.EventDispatcher {
  constructor(private readonly handleEnvelope: EnvelopeHandler) {
    super({ loggerLevel: lark.LoggerLevel.error });
  }

  override async invoke(data: unknown): Promise<undefined> {
    await this.handleEnvelope(data);
    // Nothing to put in the ACK's `data` (that is for card callbacks).
    return undefined;
  }
}

/** The SDK logs through this: warnings and errors go to our log, and the last error explains readiness. */
function sdkLogger(logger: Logger, onError: (line: string) => void): lark.Logger {
  const line = (args: unknown[]) =>
    args
      .map((a) => (typeof a === 'string' ? a : a instanceof Error ? a.message : JSON.stringify(a)))
      .filter((s) => s && s !== '[ws]')
      .join(' ');
  return {
    error: (...args: unknown[]) => {
      const text = line(args);
      // A handler that threw is logged by the handler itself, with the event's id.
      if (text.startsWith('invoke event failed')) return;
      onError(text);
      logger.warn({ platform: 'feishu', sdk: 'WSClient' }, text);
    },
    warn: (...args: unknown[]) => logger.warn({ platform: 'feishu', sdk: 'WSClient' }, line(args)),
    info: () => undefined,
    debug: () => undefined,
    trace: () => undefined,
  };
}

/** One line for a client the SDK gave up on at start-up. */
function startupFailure(feishu: Pick<FeishuConfig, 'appId' | 'baseUrl'>, error: string): string {
  const code = /code=(\d+)/.exec(error)?.[1];
  if (code === '1000040351') {
    return `Feishu long connection: ${feishu.baseUrl} does not know FEISHU_APP_ID ${feishu.appId} (${error}); an app on Lark connects through FEISHU_BASE_URL=https://open.larksuite.com`;
  }
  if (code !== undefined) {
    return `Feishu long connection: the connection endpoint refused FEISHU_APP_ID / FEISHU_APP_SECRET (${error})`;
  }
  return `Feishu long connection: the SDK gave up (${error})`;
}

export async function startFeishuLongConnection(
  config: AppConfig,
  client: Client,
  logger: Logger,
  options: LongConnectionOptions = {}
): Promise<FeishuLongConnection> {
  const processor = new EventProcessor({
    client,
    routes: config.routes,
    forwarding: config.forwarding,
    ...timingFor(config),
    logger,
  });
  const receiver = await startLongConnection({ feishu: config.feishu, processor, logger, options });
  return {
    ...receiver,
    // Temporal calls that ran out of budget settle before the stack closes the client's connection.
    stop: async () => {
      await receiver.stop();
      await processor.idle();
    },
  };
}

/** The receiver with its processor passed in (tests drive it without Temporal). */
export async function startLongConnection(deps: {
  feishu: Pick<FeishuConfig, 'appId' | 'appSecret' | 'baseUrl'>;
  processor: Pick<EventProcessor, 'process'>;
  logger: Logger;
  options?: LongConnectionOptions;
}): Promise<FeishuLongConnection> {
  const { feishu, processor, logger } = deps;
  const opts = deps.options ?? {};
  const checkIntervalMs = opts.checkIntervalMs ?? 1000;
  const stuckAfterMs = opts.stuckAfterMs ?? 300_000;
  const backoffInitialMs = opts.backoff?.initialMs ?? 1000;
  const backoffMaxMs = opts.backoff?.maxMs ?? 60_000;
  const createClient = opts.createClient ?? ((params: WSClientParams) => new lark.WSClient(params));

  if (!SDK_WS_APP_ID.test(feishu.appId)) {
    // Config already refuses it; this keeps the supervisor honest when called another way.
    throw new Error(
      `Feishu long connection: the SDK does not start with FEISHU_APP_ID ${feishu.appId} (it must be cli_ and 16 hex digits)`
    );
  }

  let stopped = false;
  const inflight = new Set<Promise<void>>();
  const accept: EnvelopeHandler = async (envelope) => {
    // Not processed while stopping (the Temporal connection is about to close): the 500 ACK has Feishu push it
    // again, to another connection if there is one.
    if (stopped) throw new Error('shutting down');
    let event;
    try {
      if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) {
        throw new HttpError(400, 'malformed_json', 'the event payload is not a JSON object');
      }
      event = decodeFeishuEvent(envelope as Record<string, unknown>, { appId: feishu.appId });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      logger.error(
        { platform: 'feishu', via: 'ws', error: err.id },
        `feishu event acknowledged but not processed: ${err.message}`
      );
      return;
    }
    try {
      const result = await processor.process(event);
      logger.info(
        {
          eventId: event.eventId,
          type: event.eventType,
          outcome: result.outcome,
          workflows: result.workflowIds,
          via: 'ws',
        },
        'event accepted'
      );
    } catch (err) {
      logger.error(
        { eventId: event.eventId, type: event.eventType, err: (err as Error).message, via: 'ws' },
        'event not accepted; the ACK says 500 and Feishu pushes it again'
      );
      throw err;
    }
  };
  const dispatcher = new EnvelopeDispatcher((envelope) => {
    const p = accept(envelope);
    inflight.add(p);
    void p.finally(() => inflight.delete(p)).catch(() => undefined);
    return p;
  });

  interface Attempt {
    ws: WSClientLike;
    startedAt: number;
    started: Promise<void>;
    /** What the SDK gave up with (`onError`). */
    fatal?: string;
    /** The SDK's last error line (`[ws] connect failed`, `code: …`, `handshake timeout …`). */
    lastError?: string;
  }
  let clients = 0;
  const launch = (): Attempt => {
    const attempt = { startedAt: Date.now() } as Attempt;
    attempt.ws = createClient({
      appId: feishu.appId,
      appSecret: feishu.appSecret,
      domain: feishu.baseUrl,
      source: 'approval-plus',
      loggerLevel: lark.LoggerLevel.warn,
      // The generic "connect failed" that follows a specific error (handshake time-out, endpoint code) adds nothing.
      logger: sdkLogger(logger, (text) => {
        if (text !== 'connect failed' || !attempt.lastError) attempt.lastError = text;
      }),
      autoReconnect: true,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
      wsConfig: { pingTimeout: opts.pingTimeoutSec ?? 30 },
      onError: (err) => (attempt.fatal = err.message),
    });
    clients += 1;
    attempt.started = Promise.resolve(attempt.ws.start({ eventDispatcher: dispatcher })).catch((err: unknown) => {
      attempt.fatal = (err as Error).message;
    });
    return attempt;
  };

  let current = launch();
  let notConnectedSince: number | undefined = Date.now();
  let failures = 0;
  let nextReplaceAt = 0;
  let idleTicks = 0;

  const state = (): ConnectionState => current.ws.getConnectionStatus().state;
  const reason = (): string | undefined => {
    const s = current.ws.getConnectionStatus();
    if (s.state === 'connected') return undefined;
    const why = current.fatal ?? current.lastError;
    const attempts = s.reconnectAttempts ? `, attempt ${s.reconnectAttempts}` : '';
    const since = notConnectedSince ? `, not connected since ${new Date(notConnectedSince).toISOString()}` : '';
    return `Feishu long connection is ${s.state}${attempts}${since}${why ? `: ${why}` : ''}`;
  };

  // Start-up: wait for the connection (start() does not), fail on what will not fix itself.
  await current.started;
  if (state() === 'idle' && current.ws.getConnectionStatus().lastConnectTime === undefined) {
    current.ws.close({ force: true });
    throw new Error(`Feishu long connection: the SDK did not start with FEISHU_APP_ID ${feishu.appId}`);
  }
  const firstDeadline = Date.now() + (opts.firstConnectTimeoutMs ?? 30_000);
  while (state() !== 'connected' && Date.now() < firstDeadline) {
    if (state() === 'failed') {
      current.ws.close({ force: true });
      throw new Error(startupFailure(feishu, current.fatal ?? current.lastError ?? 'unknown error'));
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  if (state() === 'connected') {
    notConnectedSince = undefined;
    logger.info({ platform: 'feishu' }, 'Feishu long connection up');
  } else {
    logger.warn({ platform: 'feishu', reason: reason() }, 'Feishu long connection not up yet; going on, not ready');
  }

  const supervise = () => {
    if (stopped) return;
    const s = state();
    const now = Date.now();
    if (s === 'connected') {
      if (notConnectedSince !== undefined) logger.info({ platform: 'feishu' }, 'Feishu long connection up');
      notConnectedSince = undefined;
      failures = 0;
      idleTicks = 0;
      current.lastError = undefined;
      return;
    }
    notConnectedSince ??= now;
    idleTicks = s === 'idle' ? idleTicks + 1 : 0;
    const replaceBecause =
      s === 'failed'
        ? `the SDK gave up (${current.fatal ?? 'no reason given'})`
        : idleTicks >= 2
          ? 'the SDK client is neither connected nor connecting'
          : now - Math.max(notConnectedSince, current.startedAt) >= stuckAfterMs
            ? `not connected for ${Math.round((now - current.startedAt) / 1000)} s`
            : undefined;
    if (!replaceBecause || now < nextReplaceAt) return;
    logger.warn({ platform: 'feishu', reason: replaceBecause, failures }, 'Feishu long connection: new client');
    current.ws.close({ force: true });
    current = launch();
    idleTicks = 0;
    nextReplaceAt = now + Math.min(backoffMaxMs, backoffInitialMs * 2 ** failures);
    failures += 1;
  };
  const supervisor = setInterval(supervise, checkIntervalMs);
  supervisor.unref();

  return {
    status: () => ({ state: state(), reason: reason(), clients }),
    readiness: {
      name: 'feishu-long-connection',
      async check() {
        return reason();
      },
    },
    async stop() {
      stopped = true;
      clearInterval(supervisor);
      // Events being accepted get to finish (and ACK) before the connection and Temporal close.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...inflight]),
        new Promise((resolve) => (timer = setTimeout(resolve, 5000))),
      ]);
      clearTimeout(timer);
      current.ws.close({ force: true });
    },
  };
}
