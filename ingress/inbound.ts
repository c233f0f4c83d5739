import type Router from '@koa/router';
import type { Client } from '@temporalio/client';
import type { Logger } from '../app/logger';
import type { PlatformName } from '../domain/types';
import type { EventProcessor } from './event-processor';
import type { IngressMetrics } from './metrics';
import type { ReadinessCheck } from './routes/health';

/**
 * One platform's way in. Each platform folder exports one (`platforms/<name>/inbound.ts`): the ingress mounts its
 * webhook routes, the stack runs its receiver (a connection the app opens to the platform: Feishu's long connection,
 * DingTalk Stream). Both hand every event, normalised (`events.ts`), to the same EventProcessor, so what happens to
 * an event does not depend on how it arrived.
 */
export interface PlatformInbound {
  readonly platform: PlatformName;
  /** Mount the platform's webhook routes, when its events arrive over HTTP in this configuration. */
  mountWebhook?(router: Router, deps: InboundDeps): void;
  /** Open the platform's outbound connection for events, when it is configured to push them that way. */
  startReceiver?(deps: { client: Client; logger: Logger }): Promise<InboundReceiver>;
}

export interface InboundDeps {
  processor: EventProcessor;
  metrics: IngressMetrics;
  logger: Logger;
}

export interface InboundReceiver {
  /** Ready while the connection is up (part of `/readyz`). */
  readiness: ReadinessCheck;
  stop(): Promise<void>;
}
