import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { AppConfig } from '../config/config';
import { allSubscribers, ANY_APPROVAL_CODE } from '../forwarding/config';
import { createIngress } from '../ingress/app';
import { timingFor } from '../ingress/event-processor';
import type { ReadinessCheck } from '../ingress/routes/health';
import { createNacAdapter } from '../nac';
import type { NacAdapter } from '../nac/adapter';
import { createInbounds, createPlatforms } from '../platforms';
import type { FeishuPlatform } from '../platforms/feishu/feishu-platform';
import type { PlatformName } from '../domain/types';
import type { ApprovalPlatform } from '../platforms/platform';
import { startDingTalkSimulator, type DingTalkSimulator } from '../simulators/dingtalk/server';
import { startWeComSimulator, type WeComSimulator } from '../simulators/wecom/server';
import {
  routedFormDefinition,
  startFeishuSimulator,
  type FeishuSimulator,
  type FeishuSimulatorOptions,
} from '../simulators/feishu/server';
import { startNacSimulator, type NacSimulator } from '../simulators/nac/server';
import { allTagAttributeNames } from '../nac/tag';
import { checkSearchAttributes, startDevServer, assertPortFree, type DevServer } from '../temporal/dev-server';
import { namespaceAnswers } from '../temporal/namespace-answers';
import { activityCancellation, createWorkers, installRuntimeLogger, type Workers } from '../worker/worker';
import { startWorkerHttp } from '../worker/http';
import { createWorkerMetrics } from '../worker/metrics';
import { WorkerReadiness, type BackoffOptions } from '../worker/readiness';
import { ensureReconcileSchedule, RECONCILE_SCHEDULE_ID } from '../reconcile/schedule';
import type { Logger } from './logger';
import { parseDurationMs } from '../domain/duration';

/**
 * Composes the running system from its parts. `npm start` runs all of them in one process; `approval-plus worker`,
 * `ingress` and `sim` run one part each against a shared Temporal (TEMPORAL_ADDRESS).
 */
export interface StackParts {
  temporal: boolean; // embedded dev server (ignored when TEMPORAL_ADDRESS is set)
  simulators: boolean;
  worker: boolean;
  ingress: boolean;
}

export interface Stack {
  config: AppConfig;
  temporalAddress: string;
  temporalUiUrl?: string;
  ingressUrl?: string;
  /** The worker's HTTP endpoint (WORKER_HTTP_PORT): /healthz, /readyz, /metrics. */
  workerUrl?: string;
  client?: Client;
  feishuSim?: FeishuSimulator;
  nacSim?: NacSimulator;
  nac?: NacAdapter;
  platform?: FeishuPlatform;
  /** Started in sandbox mode when DingTalk / WeCom are enabled. */
  dingtalkSim?: DingTalkSimulator;
  wecomSim?: WeComSimulator;
  /** Every enabled platform, as the worker uses them. */
  platforms?: Partial<Record<PlatformName, ApprovalPlatform>>;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Dev-server state file; undefined = throw-away (tests). */
  temporalDbFile?: string;
  temporalPort?: number;
  temporalUiPort?: number | null;
  nacSimStateFile?: string;
  redeliveryScale?: number;
  /** The Feishu simulator's long connection (tests: short ping and reconnect intervals). */
  feishuLongConnection?: FeishuSimulatorOptions['longConnection'];
  budgetMs?: number;
  say?: (line: string) => void;
  /** How the worker's failed start-up checks are retried (tests: shorter). */
  workerCheckBackoff?: BackoffOptions;
}

export async function startStack(
  config: AppConfig,
  parts: StackParts,
  logger: Logger,
  opts: StackOptions = {}
): Promise<Stack> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((err) => logger.error({ err }, 'shutdown step failed'));
    stops.length = 0;
  };
  try {
    const stack: Stack = { config, temporalAddress: config.temporal.address ?? '', stop };
    if (parts.ingress) {
      await assertPortFree(
        config.port,
        config.host,
        'the ingress',
        'Stop whatever uses it, or set PORT to another port.'
      );
    }

    let devServer: DevServer | undefined;
    if (!config.temporal.address && parts.temporal) {
      devServer = await startDevServer({
        port: opts.temporalPort ?? 7233,
        uiPort: opts.temporalUiPort === undefined ? config.temporal.uiPort : opts.temporalUiPort,
        dbFile: opts.temporalDbFile,
        namespace: config.temporal.namespace,
        logFile: opts.temporalDbFile ? path.join(path.dirname(opts.temporalDbFile), 'temporal.log') : undefined,
        say: opts.say,
      });
      stops.push(() => devServer!.stop());
      stack.temporalAddress = devServer.address;
      stack.temporalUiUrl = devServer.uiUrl;
    } else if (!config.temporal.address && (parts.worker || parts.ingress)) {
      stack.temporalAddress = '127.0.0.1:7233';
    }

    if (parts.simulators) {
      stack.nacSim = await startNacSimulator({
        port: config.nacSimPort,
        iseUsername: config.nac.username ?? '',
        isePassword: config.nac.password ?? '',
        clientId: config.nac.clientId ?? '',
        clientSecret: config.nac.clientSecret ?? '',
        whitelistGroup: config.nac.iseGroup,
        stateFile: opts.nacSimStateFile,
        profile: config.nac.simProfile,
        iseCsrf: config.nac.simIseCsrf,
        // The sandbox ISE is one an administrator prepared: the ApprovalPlus custom attributes are defined.
        iseCustomAttributes: allTagAttributeNames(''),
      });
      stops.push(() => stack.nacSim!.close());
      stack.feishuSim = await startFeishuSimulator({
        port: config.feishuSimPort,
        appId: config.feishu.appId,
        appSecret: config.feishu.appSecret,
        encryptKey: config.feishu.encryptKey,
        verificationToken: config.feishu.verificationToken,
        webhookUrl: `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}/webhook/feishu`,
        // FEISHU_EVENT_MODE=ws: the simulator pushes events over the long connection the ingress opens.
        eventMode: config.feishu.eventMode,
        longConnection: opts.feishuLongConnection,
        redeliveryScale: opts.redeliveryScale,
      });
      stops.push(() => stack.feishuSim!.close());
      // The simulated tenant is one an administrator set up: each routed approval's form exists.
      for (const r of config.routes.filter((r) => r.platform === 'feishu'))
        stack.feishuSim.defineApproval(routedFormDefinition(r));
      const ingressBase = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}`;
      if (config.dingtalk) {
        stack.dingtalkSim = await startDingTalkSimulator({
          port: config.dingtalkSimPort,
          appKey: config.dingtalk.appKey,
          appSecret: config.dingtalk.appSecret,
          aesKey: config.dingtalk.aesKey,
          token: config.dingtalk.token,
          ownerKey: config.dingtalk.ownerKey,
          corpId: config.dingtalk.corpId,
          agentId: config.dingtalk.agentId,
          webhookUrl: `${ingressBase}/webhook/dingtalk`,
          eventMode: config.dingtalk.eventMode,
          redeliveryScale: opts.redeliveryScale,
        });
        stops.push(() => stack.dingtalkSim!.close());
      }
      if (config.wecom) {
        stack.wecomSim = await startWeComSimulator({
          port: config.wecomSimPort,
          ...config.wecom,
          webhookUrl: `${ingressBase}/webhook/wecom`,
          redeliveryScale: opts.redeliveryScale,
        });
        stops.push(() => stack.wecomSim!.close());
      }
    }

    if (!parts.worker && !parts.ingress) return stack;

    const tls = config.temporal.tls || config.temporal.apiKey ? {} : undefined;
    const connectOpts = { address: stack.temporalAddress, tls, apiKey: config.temporal.apiKey };
    const readiness: ReadinessCheck[] = [];

    if (parts.worker) {
      installRuntimeLogger(logger, { metricsAddress: config.worker.temporalMetricsAddress });
      const metrics = createWorkerMetrics({
        onCountError: (err) => logger.warn({ err }, 'live-grant count (approval_plus_grants_active) failed'),
      });
      const workerReadiness = new WorkerReadiness(logger, opts.workerCheckBackoff, (r) =>
        metrics.setReadiness(r.ready, r.checks)
      );
      // Up before anything that can wait on a peer: /healthz answers while the process lives, /readyz says why not.
      if (config.worker.httpPort) {
        const workerHttp = await startWorkerHttp({
          port: config.worker.httpPort,
          host: config.host,
          registry: metrics.registry,
          readiness: () => workerReadiness.report(),
        });
        stops.push(() => workerHttp.close());
        stack.workerUrl = workerHttp.url;
      }
      const nativeConnection = await NativeConnection.connect(connectOpts);
      stops.push(() => nativeConnection.close());
      // Configuration errors (a missing credential, an unreadable CA file) are thrown here and stay fatal.
      const platforms = createPlatforms(config, { logger });
      stack.platform = platforms.feishu;
      stack.platforms = platforms;
      stack.nac = createNacAdapter(config.nac, { observer: metrics.nacObserver, cancellation: activityCancellation });
      // Reconcile activities start workflows and read histories: they need a client connection of their own.
      const activityConnection = await Connection.connect(connectOpts);
      stops.push(() => activityConnection.close());
      const activityClient = new Client({ connection: activityConnection, namespace: config.temporal.namespace });

      // Start-up checks run beside the workers, retried until they pass: an outage of the NAC or Feishu at start must
      // not stop reminders, messages and forwards (NAC activities retry through Temporal meanwhile). field notes #12.
      const nac = stack.nac;
      workerReadiness.startCheck({ name: 'nac', run: () => nac.verify() });
      // Every routed Feishu approval code needs its event subscription, forwarded ones too ("*" cannot be subscribed).
      const feishuCodes = [...config.routes, ...config.forwarding.routes]
        .filter((r) => r.platform === 'feishu' && r.approvalCode !== ANY_APPROVAL_CODE)
        .map((r) => r.approvalCode);
      workerReadiness.startCheck({
        name: 'feishu-subscriptions',
        run: () => platforms.feishu.subscribeApprovals([...new Set(feishuCodes)]),
      });
      // A configured field the routed form lacks would only show as "form fields missing" on the first approval.
      workerReadiness.startCheck({
        name: 'feishu-forms',
        run: () => platforms.feishu.checkRoutedForms(config.routes.filter((r) => r.platform === 'feishu')),
      });
      // On a cluster of its own the deployment registers the search attributes (compose's namespace job, tcld on
      // Temporal Cloud); workers only check (field notes #4). The embedded dev server registers them in its flags.
      if (config.temporal.address) {
        workerReadiness.startCheck({
          name: 'search-attributes',
          run: () => checkSearchAttributes(activityConnection, config.temporal.namespace),
        });
      }
      workerReadiness.addLiveCheck({
        name: 'temporal',
        check: () => namespaceAnswers(activityConnection, config.temporal.namespace, 2000),
      });
      // Filled in once the workers are created (bundling the workflows can take seconds): "starting" until then.
      const created: { workers?: Workers } = {};
      workerReadiness.addLiveCheck({
        name: 'workers',
        check: async () => (created.workers ? created.workers.notRunning() : 'starting'),
      });
      // Live grants for the gauge: running workflows whose GrantPhase search attribute is "active".
      metrics.setGrantCounter(async () => {
        const res = await activityConnection.withDeadline(Date.now() + 2000, () =>
          activityConnection.workflowService.countWorkflowExecutions({
            namespace: config.temporal.namespace,
            query: `ExecutionStatus = 'Running' AND GrantPhase = 'active'`,
          })
        );
        return Number(res.count ?? 0);
      });
      const workers = await createWorkers({
        connection: nativeConnection,
        namespace: config.temporal.namespace,
        platforms,
        nac: stack.nac,
        nacMaxRps: config.nac.maxRps,
        nacCoa: config.nac.coa,
        workflowBundlePath: process.env.WORKFLOW_BUNDLE || undefined,
        forwardSubscribers: allSubscribers(config.forwarding.routes),
        timeZone: config.timeZone,
        shutdownGraceMs: config.worker.shutdownGraceMs,
        maxCachedWorkflows: config.worker.maxCachedWorkflows,
        amendments: { client: activityClient, routes: config.routes, platforms, timing: timingFor(config) },
        reconcile: {
          client: activityClient,
          routes: config.routes,
          platforms,
          nac: stack.nac,
          timing: timingFor(config),
          approvalMaxAgeMs: parseDurationMs(config.reconcile.approvalMaxAge),
        },
      });
      created.workers = workers;
      const schedule = await ensureReconcileSchedule(activityClient, config);
      logger.info(
        { schedule: RECONCILE_SCHEDULE_ID, every: config.reconcile.interval },
        `reconcile schedule ${schedule}`
      );
      const running = workers.run();
      // SIGTERM (cli/run-stack.ts) runs the stops last-first: the ingress closes, then this drains the workers —
      // running activities get WORKER_SHUTDOWN_GRACE to finish — and only then are the connections closed.
      stops.push(async () => {
        workerReadiness.stop();
        workers.shutdown();
        await running;
      });
      running.catch((err) => logger.error({ err }, 'worker stopped with an error'));
    }

    if (parts.ingress) {
      const connection = await Connection.connect(connectOpts);
      stops.push(() => connection.close());
      stack.client = new Client({ connection, namespace: config.temporal.namespace });
      const inbounds = createInbounds(config);
      for (const inbound of inbounds) {
        if (!inbound.startReceiver) continue;
        const receiver = await inbound.startReceiver({ client: stack.client, logger });
        stops.push(() => receiver.stop());
        readiness.push(receiver.readiness);
      }
      // The operator API's whois reads the NAC: an adapter of the ingress's own (not the worker's, whose requests
      // count in the worker's NAC metrics), made on the first whois — none at all while the operator API is off.
      let whoisNac: NacAdapter | undefined;
      if (config.adminToken) stops.push(async () => void (await whoisNac?.close?.()));
      const { app, processor } = createIngress({
        config,
        client: stack.client,
        logger,
        ...timingFor(config),
        extraReadiness: readiness,
        budgetMs: opts.budgetMs,
        forwarding: config.forwarding,
        inbounds,
        nac: config.adminToken ? () => (whoisNac ??= createNacAdapter(config.nac)) : undefined,
      });
      // Stops run last-first: the HTTP server closes, then in-flight Temporal calls settle, then the connection.
      stops.push(() => processor.idle());
      const server = http.createServer(app.callback());
      server.keepAliveTimeout = 5000;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => resolve());
      });
      stops.push(
        () =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          })
      );
      const addr = server.address() as AddressInfo;
      stack.ingressUrl = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${addr.port}`;
    }
    return stack;
  } catch (err) {
    await stop();
    throw err;
  }
}
