import * as lark from '@larksuiteoapi/node-sdk';
import type { Client } from '@temporalio/client';
import type { AppConfig } from '../../config/config';
import { EventProcessor, timingFor } from '../../ingress/event-processor';
import { normaliseEventObject, rawFeishuEvent } from './envelope';
import type { ReadinessCheck } from '../../ingress/routes/health';
import type { Logger } from '../../app/logger';

/**
 * Feishu long-connection mode (FEISHU_EVENT_MODE=ws): the SDK's WSClient feeds the same EventProcessor as the
 * webhook. Supervised: a ping time-out detects half-open sockets, and a client that gave up (`failed`) is replaced.
 * A handler that throws (Temporal unavailable) makes the SDK ACK with 500, so Feishu pushes the event again.
 */
const EVENT_TYPES = ['approval_instance', 'approval.instance.status_changed_v4', 'contact.user.deleted_v3'];

export async function startFeishuLongConnection(config: AppConfig, client: Client, logger: Logger) {
  const processor = new EventProcessor({
    client,
    routes: config.routes,
    forwarding: config.forwarding,
    ...timingFor(config),
    logger,
  });
  const handlers: Record<string, (data: Record<string, unknown>) => Promise<string>> = {};
  for (const type of EVENT_TYPES) {
    handlers[type] = async (data) => {
      // v1 events arrive flattened with the envelope uuid; v2 with header.event_id as event_id.
      const eventId = String(data.event_id ?? data.uuid ?? '');
      const result = await processor.process({
        ...normaliseEventObject(type, eventId, data),
        raw: rawFeishuEvent(data),
      });
      logger.info({ eventId, type, outcome: result.outcome, via: 'ws' }, 'event accepted');
      return 'ok';
    };
  }
  const dispatcher = new lark.EventDispatcher({ loggerLevel: lark.LoggerLevel.error }).register(handlers);
  const makeClient = () =>
    new lark.WSClient({
      appId: config.feishu.appId,
      appSecret: config.feishu.appSecret,
      domain: config.feishu.baseUrl,
      loggerLevel: lark.LoggerLevel.warn,
      autoReconnect: true,
      wsConfig: { pingTimeout: 30 },
    });
  let ws = makeClient();
  await ws.start({ eventDispatcher: dispatcher });
  const supervisor = setInterval(() => {
    if (ws.getConnectionStatus().state === 'failed') {
      logger.warn('Feishu long connection failed; starting a new one');
      ws.close({ force: true });
      ws = makeClient();
      void ws.start({ eventDispatcher: dispatcher });
    }
  }, 15_000);
  const readiness: ReadinessCheck = {
    name: 'feishu-long-connection',
    async check() {
      const state = ws.getConnectionStatus().state;
      return state === 'connected' ? undefined : `Feishu long connection is ${state}`;
    },
  };
  return {
    readiness,
    async stop() {
      clearInterval(supervisor);
      ws.close({ force: true });
    },
  };
}
