import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { createLogger } from '../../app/logger';
import { startStack, type Stack } from '../../app/stack';
import { loadConfig, type AppConfig } from '../../config/config';
import { freePort, startDevServer, type DevServer } from '../../temporal/dev-server';
import { statusQuery, type GrantPhase, type GrantStatus } from '../../workflows/definitions';

/**
 * The whole system on loopback for integration tests: a throw-away Temporal dev server, both simulators, the worker
 * and the ingress, on free ports, in sandbox mode with every secret set from here (as an external test would).
 */
export const APPROVAL_CODE = '7C468A54-8745-2245-9675-08B7C63E7A85';
export const ROOT = path.resolve(__dirname, '..', '..');

export interface TestStack extends Stack {
  env: Record<string, string>;
  client: Client;
  dataDir: string;
  /** ISE ERS GET of one endpoint by MAC, through the simulator's vendor API (null on 404). */
  iseEndpoint(mac: string): Promise<Record<string, unknown> | null>;
  /** Create an APPROVED Wi‑Fi approval in the Feishu simulator. */
  createApproval(
    macs: string,
    opts?: { duration?: string; openId?: string; deliver?: boolean; status?: string }
  ): string;
  waitForPhase(workflowId: string, phases: GrantPhase[], timeoutMs?: number): Promise<GrantStatus>;
  /** `approval-plus worker` as a child process, with the stack's environment plus `env`; `stdout` piped when asked. */
  spawnWorker(opts?: { env?: Record<string, string>; stdout?: boolean }): ChildProcess;
  stopTemporal(): Promise<void>;
  startTemporal(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestStack(
  opts: { worker?: boolean; env?: Record<string, string>; stoppableTemporal?: boolean } = {}
): Promise<TestStack> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'approval-plus-test-'));
  // A dev server of the test's own (fixed port, state on disk) when the test must stop and restart Temporal.
  let devServer: DevServer | undefined;
  const temporalPort = await freePort();
  const startTemporal = async () => {
    devServer = await startDevServer({ port: temporalPort, uiPort: null, dbFile: path.join(dataDir, 'temporal.db') });
  };
  if (opts.stoppableTemporal) await startTemporal();
  const [port, feishuSimPort, nacSimPort] = [await freePort(), await freePort(), await freePort()];
  const env: Record<string, string> = {
    SANDBOX: 'true',
    PORT: String(port),
    FEISHU_SIM_PORT: String(feishuSimPort),
    DINGTALK_APP_KEY: 'dingtestappkey0042',
    DINGTALK_APP_SECRET: 'test-dingtalk-secret',
    DINGTALK_AES_KEY: 'TestDingTalkAesKey0000000000000000000000042',
    DINGTALK_TOKEN: 'testdingtalktoken',
    DINGTALK_AGENT_ID: '42000042',
    WECOM_CORP_ID: 'wwtestcorp0000042',
    WECOM_CORP_SECRET: 'test-wecom-secret',
    WECOM_AGENT_ID: '1000042',
    WECOM_TOKEN: 'testwecomtoken',
    WECOM_ENCODING_AES_KEY: 'TestWeComEncodingAesKey00000000000000000042',
    NAC_SIM_PORT: String(nacSimPort),
    DINGTALK_SIM_PORT: String(await freePort()),
    WECOM_SIM_PORT: String(await freePort()),
    FEISHU_APP_ID: 'cli_9f8e7d6c5b4a3921',
    FEISHU_APP_SECRET: 'test-app-secret',
    FEISHU_ENCRYPT_KEY: 'test-encrypt-key',
    FEISHU_VERIFICATION_TOKEN: 'test-verification-token',
    NAC_DRIVER: 'sim',
    NAC_USERNAME: 'ers-test',
    NAC_PASSWORD: 'ers-test-password',
    NAC_TIMEOUT_MS: '1000',
    NAC_MAX_RPS: '200',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATA_DIR: dataDir,
    REMINDER_LEAD: '1d',
    // No scheduled reconcile in tests unless a test asks: it would race the tests' own deliveries.
    RECONCILE_INTERVAL: 'off',
    ...(devServer ? { TEMPORAL_ADDRESS: devServer.address } : {}),
    ...opts.env,
  };
  const config: AppConfig = loadConfig(env);
  const logger = createLogger(config.logLevel, undefined, config.logFormat);
  const stack = await startStack(
    config,
    { temporal: true, simulators: true, worker: opts.worker ?? true, ingress: true },
    logger,
    {
      temporalPort: 0,
      temporalUiPort: null,
      redeliveryScale: 0.002,
      // FEISHU_EVENT_MODE=ws: ping every second and reconnect at once (Feishu hands out 90 s / 25 s).
      feishuLongConnection: {
        clientConfig: { PingInterval: 1, ReconnectCount: -1, ReconnectInterval: 1, ReconnectNonce: 0 },
      },
    }
  );
  env.TEMPORAL_ADDRESS = stack.temporalAddress;
  const children: ChildProcess[] = [];
  const basic = 'Basic ' + Buffer.from(`${env.NAC_USERNAME}:${env.NAC_PASSWORD}`).toString('base64');

  const t: TestStack = {
    ...stack,
    env,
    client: stack.client!,
    dataDir,
    async iseEndpoint(mac) {
      const res = await fetch(`${stack.nacSim!.url}/ers/config/endpoint/name/${encodeURIComponent(mac)}`, {
        headers: { authorization: basic, accept: 'application/json' },
      });
      if (res.status === 404) return null;
      if (!res.ok) throw new Error(`ISE GET ${mac}: HTTP ${res.status}`);
      return ((await res.json()) as { ERSEndPoint: Record<string, unknown> }).ERSEndPoint;
    },
    createApproval(macs, o = {}) {
      const form = [
        { id: 'widget_reason', name: '申请事由', type: 'input', value: 'integration test' },
        { id: 'widget_macs', name: 'MAC地址', type: 'textarea', value: macs },
        ...(o.duration ? [{ id: 'widget_duration', name: '有效期', type: 'radioV2', value: o.duration }] : []),
      ];
      return stack.feishuSim!.createInstance({
        approval_code: APPROVAL_CODE,
        open_id: o.openId ?? 'ou_test_requester',
        form,
        deliver: o.deliver,
        status: o.status,
      }).instance_code;
    },
    async waitForPhase(workflowId, phases, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: GrantStatus | undefined;
      for (;;) {
        try {
          last = await stack.client!.workflow.getHandle(workflowId).query(statusQuery);
          if (phases.includes(last.phase)) return last;
        } catch {
          // not started yet, or closed: keep polling until the deadline
        }
        if (Date.now() > deadline)
          throw new Error(`${workflowId} did not reach ${phases.join('|')} (last: ${last?.phase})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    spawnWorker(o = {}) {
      const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'approval-plus.mjs'), 'worker'], {
        cwd: ROOT,
        env: { ...process.env, ...env, ...o.env },
        // A piped stdout must be read (the caller's job): a full pipe blocks the child's synchronous log writes.
        stdio: ['ignore', o.stdout ? 'pipe' : 'ignore', 'pipe'],
      });
      children.push(child);
      return child;
    },
    async stopTemporal() {
      await devServer?.stop();
    },
    startTemporal,
    async close() {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await stack.stop();
      await devServer?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return t;
}

export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
