import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Agent, request } from 'undici';
import {
  approvalInstanceEventV1,
  buildSignedRequest,
  type FeishuEventBody,
  type SignedRequest,
} from '../../simulators/feishu/event-signer';
import { startFeishuSimulator, type FeishuSimulator } from '../../simulators/feishu/server';
import { type NacSimProfileName } from '../../simulators/nac/profiles';
import { startNacSimulator, type NacSimulator, type SimRequestRecord } from '../../simulators/nac/server';
import { ensureSearchAttributes, freePort, startDevServer, type DevServer } from '../../temporal/dev-server';
import { NAC_TASK_QUEUE, TASK_QUEUE } from '../../workflows/definitions';
import { bundleWorkflows } from '../../scripts/bundle-workflows';
import { procMemory, type ProcMemory } from './proc';
import { sleep, waitFor } from './stats';

/**
 * The system under test for a benchmark, as separate processes so each one's memory is its own:
 *   - Temporal: a dev server started here (state in a sqlite file), or an external one (BENCH_TEMPORAL_ADDRESS);
 *   - the Feishu and NAC simulators, in this process (their state is read directly);
 *   - BENCH_WORKERS worker and BENCH_INGRESS ingress child processes (`node bin/approval-plus.mjs worker|ingress`).
 * Events are built and signed here with the simulator's independent signer and posted round-robin over the ingress
 * replicas, with Feishu-style redelivery on any answer but 200. See /work/notes/bench-interface.md.
 */

export const ROOT = path.resolve(__dirname, '..', '..');
/** Where JSON results and child logs go: BENCH_OUT_DIR, default .bench-out/ (gitignored). */
export function outDir(): string {
  return path.resolve(ROOT, process.env.BENCH_OUT_DIR || '.bench-out');
}
const BIN = path.join(ROOT, 'bin', 'approval-plus.mjs');
/** `npm run build`'s output and the prebuilt workflow bundle, as the Docker image runs them. */
const BUILT_MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const BUILT_BUNDLE = path.join(ROOT, 'dist', 'workflow-bundle.js');

const SECRETS = {
  FEISHU_APP_ID: 'cli_bench0a1b2c3d4e5f',
  FEISHU_APP_SECRET: 'bench-app-secret',
  FEISHU_ENCRYPT_KEY: 'bench-encrypt-key',
  FEISHU_VERIFICATION_TOKEN: 'bench-verification-token',
  NAC_USERNAME: 'ers-bench',
  NAC_PASSWORD: 'ers-bench-password',
  NAC_CLIENT_ID: 'approval-plus-bench',
  NAC_CLIENT_SECRET: 'bench-client-secret',
};

export interface TopologyOptions {
  /** Benchmark name, for log file names. */
  name: string;
  /** Worker child processes; default BENCH_WORKERS or 1. 0 = none. */
  workers?: number;
  /** Ingress child processes; default BENCH_INGRESS or 1. */
  ingress?: number;
  /** Extra env for the children (NAC_MAX_RPS, …). */
  childEnv?: Record<string, string>;
  /** Extra env for the worker children alone (NODE_OPTIONS, …). */
  workerEnv?: Record<string, string>;
  /** The NAC simulator's version profile; the workers use that vendor's adapter (NAC_DRIVER=sim). */
  nacProfile?: NacSimProfileName;
  /**
   * How the children run: `tsx` (the sources through tsx, the worker bundling its workflows at start, as `npm start`
   * does; the default) or `built` (compiled JavaScript and a prebuilt workflow bundle, NODE_ENV=production, as the
   * Docker image runs them; the bench builds dist/ first).
   */
  runtime?: 'tsx' | 'built';
  /** The embedded dev server's SQLite journal (`--journal default|wal`; default wal, as `npm start` runs it). */
  journal?: 'wal' | 'default';
  say?: (line: string) => void;
}

export interface ChildInfo {
  role: 'worker' | 'ingress';
  index: number;
  pid: number;
  url?: string;
  child: ChildProcess;
  logFile: string;
}

export interface PostResult {
  status: number;
  outcome?: string;
  attempts: number;
  /** ms timestamps (Date.now()) of the first send and of the 200. */
  sentAt: number;
  ackAt: number;
  non200: number[];
}

export interface TopologyInfo {
  temporal: string;
  external: boolean;
  namespace: string;
  workers: number;
  ingress: number;
  label?: string;
  nacProfile: NacSimProfileName;
  journal?: 'wal' | 'default';
  runtime: 'tsx' | 'built';
}

export class Topology {
  client!: Client;
  feishuSim!: FeishuSimulator;
  nacSim!: NacSimulator;
  devServer?: DevServer;
  temporalAddress = '';
  namespace = process.env.BENCH_TEMPORAL_NAMESPACE || 'default';
  readonly external = !!process.env.BENCH_TEMPORAL_ADDRESS;
  readonly approvalCode = `BENCH-${randomBytes(6).toString('hex').toUpperCase()}`;
  readonly runDir: string;
  readonly dbFile: string;
  /** A `--<name> a|b` option as benchmarks take it: one of `choices`, else `fallback`. */
  static choiceArg<T extends string>(
    args: Record<string, string | boolean>,
    name: string,
    choices: readonly T[],
    fallback: T
  ): T {
    const v = args[name] ?? fallback;
    if (!choices.includes(v as T)) throw new Error(`--${name}: ${choices.join(' or ')}`);
    return v as T;
  }
  /** `--runtime` as benchmarks take it. */
  static runtimeArg(args: Record<string, string | boolean>, fallback: 'tsx' | 'built' = 'tsx'): 'tsx' | 'built' {
    return Topology.choiceArg(args, 'runtime', ['tsx', 'built'] as const, fallback);
  }
  /** `--journal` as benchmarks take it. */
  static journalArg(args: Record<string, string | boolean>): 'wal' | 'default' {
    return Topology.choiceArg(args, 'journal', ['wal', 'default'] as const, 'wal');
  }
  readonly children: ChildInfo[] = [];
  env: Record<string, string> = {};
  private connection?: Connection;
  private rr = 0;
  private readonly agent = new Agent({ connections: 128, keepAliveTimeout: 10_000 });
  private readonly say: (line: string) => void;
  private readonly nacLog: SimRequestRecord[] = [];
  private nacLogSeq = 0;
  private nacLogTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(readonly opts: TopologyOptions) {
    this.say = opts.say ?? ((line) => process.stderr.write(line + '\n'));
    this.runDir = mkdtempSync(path.join(os.tmpdir(), `approval-plus-bench-${opts.name}-`));
    this.dbFile = path.join(this.runDir, 'temporal.db');
  }

  get nacProfile(): NacSimProfileName {
    return this.opts.nacProfile ?? 'ise-3.3';
  }
  get nacVendor(): 'ise' | 'clearpass' {
    return this.nacProfile.startsWith('clearpass') ? 'clearpass' : 'ise';
  }

  get workerCount(): number {
    return this.opts.workers ?? intEnv('BENCH_WORKERS', 1);
  }
  get ingressCount(): number {
    return this.opts.ingress ?? intEnv('BENCH_INGRESS', 1);
  }
  get ingressUrls(): string[] {
    return this.children.filter((c) => c.role === 'ingress').map((c) => c.url!);
  }
  get workers(): ChildInfo[] {
    return this.children.filter((c) => c.role === 'worker');
  }
  get ingresses(): ChildInfo[] {
    return this.children.filter((c) => c.role === 'ingress');
  }

  info(): TopologyInfo {
    return {
      temporal: this.external ? this.temporalAddress : 'embedded dev server (sqlite file)',
      external: this.external,
      namespace: this.namespace,
      workers: this.workerCount,
      ingress: this.ingressCount,
      label: process.env.BENCH_LABEL || undefined,
      nacProfile: this.nacProfile,
      journal: this.external ? undefined : (this.opts.journal ?? 'wal'),
      runtime: this.opts.runtime ?? 'tsx',
    };
  }

  async start(): Promise<this> {
    process.once('exit', () => this.killAll('SIGKILL'));
    if (this.opts.runtime === 'built') {
      this.say("Building dist/ and the workflow bundle (the Docker image's way of running) …");
      const built = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], {
        cwd: ROOT,
        stdio: 'inherit',
      });
      if (built.status !== 0) throw new Error(`npm run build failed (exit ${built.status ?? built.signal})`);
      await bundleWorkflows(BUILT_BUNDLE, { quiet: true });
    }
    if (this.external) {
      this.temporalAddress = process.env.BENCH_TEMPORAL_ADDRESS!;
      this.say(`Temporal: external ${this.temporalAddress} (namespace ${this.namespace})`);
    } else {
      this.say('Temporal: starting a dev server (sqlite file)…');
      this.devServer = await startDevServer({
        port: 0,
        uiPort: null,
        dbFile: this.dbFile,
        journal: this.opts.journal,
        say: this.say,
      });
      this.temporalAddress = this.devServer.address;
    }
    this.connection = await Connection.connect({ address: this.temporalAddress });
    this.client = new Client({ connection: this.connection, namespace: this.namespace });
    // Registered once here, so several workers starting at once do not race to add them.
    await ensureSearchAttributes(this.connection, this.namespace);

    this.nacSim = await startNacSimulator({
      port: 0,
      iseUsername: SECRETS.NAC_USERNAME,
      isePassword: SECRETS.NAC_PASSWORD,
      clientId: SECRETS.NAC_CLIENT_ID,
      clientSecret: SECRETS.NAC_CLIENT_SECRET,
      whitelistGroup: 'ApprovalPlus-WiFi',
      profile: this.nacProfile,
    });
    this.feishuSim = await startFeishuSimulator({
      port: 0,
      appId: SECRETS.FEISHU_APP_ID,
      appSecret: SECRETS.FEISHU_APP_SECRET,
      encryptKey: SECRETS.FEISHU_ENCRYPT_KEY,
      verificationToken: SECRETS.FEISHU_VERIFICATION_TOKEN,
      redeliveryScale: 0.01,
    });
    const routesFile = path.join(this.runDir, 'routes.yaml');
    writeFileSync(
      routesFile,
      [
        'routes:',
        '  - platform: feishu',
        `    approval_code: ${this.approvalCode}`,
        '    automation: nac-whitelist',
        '    fields:',
        '      macs: MAC地址',
        '      duration: 有效期',
        '',
      ].join('\n')
    );
    this.env = {
      SANDBOX: 'true',
      ...SECRETS,
      FEISHU_BASE_URL: this.feishuSim.url,
      NAC_DRIVER: 'sim',
      NAC_SIM_PROFILE: this.nacProfile,
      NAC_BASE_URL: this.nacSim.url,
      NAC_ISE_GROUP: 'ApprovalPlus-WiFi',
      NAC_MAX_RPS: '200',
      NAC_TIMEOUT_MS: '5000',
      APPROVAL_PLUS_CONFIG: routesFile,
      DATA_DIR: path.join(this.runDir, 'data'),
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL || 'warn',
      TEMPORAL_ADDRESS: this.temporalAddress,
      TEMPORAL_NAMESPACE: this.namespace,
      REMINDER_LEAD: '1d',
      ...this.opts.childEnv,
    };
    this.nacLogTimer = setInterval(() => this.pullNacLog(), 500);
    this.nacLogTimer.unref();

    const starts: Promise<unknown>[] = [];
    for (let i = 0; i < this.workerCount; i++) starts.push(this.spawnWorker(i));
    for (let i = 0; i < this.ingressCount; i++) starts.push(this.spawnIngress(i));
    await Promise.all(starts);
    if (this.ingresses[0]) this.feishuSim.setWebhookUrl(`${this.ingresses[0].url}/webhook/feishu`);
    this.say(
      `Stack: ${this.workerCount} worker(s) [${this.workers.map((w) => w.pid).join(', ')}], ` +
        `${this.ingressCount} ingress [${this.ingressUrls.join(', ')}], approval code ${this.approvalCode}`
    );
    return this;
  }

  private spawnChild(role: 'worker' | 'ingress', index: number, extraEnv: Record<string, string>): ChildInfo {
    const logDir = path.join(outDir(), 'logs');
    mkdirSync(logDir, { recursive: true });
    const logFile = path.join(logDir, `${this.opts.name}-${role}-${index}.log`);
    const log = createWriteStream(logFile);
    const built = this.opts.runtime === 'built';
    const child = spawn(process.execPath, [built ? BUILT_MAIN : BIN, role], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...this.env,
        ...(built ? { NODE_ENV: 'production', WORKFLOW_BUNDLE: BUILT_BUNDLE } : {}),
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    const info: ChildInfo = { role, index, pid: child.pid!, child, logFile };
    this.children.push(info);
    return info;
  }

  private async spawnWorker(index: number): Promise<ChildInfo> {
    const info = this.spawnChild('worker', index, this.opts.workerEnv ?? {});
    // The worker's identity ends with its pid (approval-plus-worker@<host>/<pid> or …@<pid>).
    const mine = new RegExp(`[@/]${info.pid}$`);
    await waitFor(
      `worker ${index} (pid ${info.pid}) polling both task queues — see ${info.logFile}`,
      async () => {
        this.assertAlive(info);
        const polled = await Promise.all(
          [TASK_QUEUE, NAC_TASK_QUEUE].map(async (name) => {
            const res = await this.client.workflowService.describeTaskQueue({
              namespace: this.namespace,
              taskQueue: { name },
              taskQueueType: name === TASK_QUEUE ? 1 : 2,
            });
            return (res.pollers ?? []).some((p) => mine.test(p.identity ?? ''));
          })
        );
        return polled.every(Boolean);
      },
      120_000,
      250
    );
    return info;
  }

  private async spawnIngress(index: number): Promise<ChildInfo> {
    const port = await freePort();
    const info = this.spawnChild('ingress', index, { PORT: String(port) });
    info.url = `http://127.0.0.1:${port}`;
    await waitFor(
      `ingress ${index} (pid ${info.pid}) answering /healthz — see ${info.logFile}`,
      async () => {
        this.assertAlive(info);
        try {
          const res = await request(`${info.url}/healthz`, { dispatcher: this.agent });
          await res.body.dump();
          return res.statusCode === 200;
        } catch {
          return false;
        }
      },
      60_000,
      100
    );
    return info;
  }

  private assertAlive(info: ChildInfo): void {
    if (info.child.exitCode !== null || info.child.signalCode !== null) {
      throw new Error(
        `${info.role} ${info.index} exited (${info.child.exitCode ?? info.child.signalCode}); see ${info.logFile}`
      );
    }
  }

  /** Restart a worker child (after a kill); resolves once it polls again. */
  async respawnWorker(index: number): Promise<ChildInfo> {
    const i = this.children.findIndex((c) => c.role === 'worker' && c.index === index);
    if (i >= 0) this.children.splice(i, 1);
    return this.spawnWorker(index);
  }

  // ---- approvals and events ----

  /** A fresh, valid, globally administered MAC for index i (OUI 00:1B:44 + 3 bytes; salt keeps runs apart). */
  static mac(i: number, salt = 0): string {
    const n = (salt * 0x10000 + i) & 0xffffff;
    const b = [0x00, 0x1b, 0x44, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
    return b.map((x) => x.toString(16).padStart(2, '0').toUpperCase()).join(':');
  }

  /** Create an APPROVED Wi‑Fi approval in the Feishu simulator without delivering its event. */
  createApproval(openId: string, macs: string[], duration?: string): string {
    const form = [
      { id: 'widget_reason', name: '申请事由', type: 'input', value: 'benchmark' },
      { id: 'widget_macs', name: 'MAC地址', type: 'textarea', value: macs.join('\n') },
      ...(duration ? [{ id: 'widget_duration', name: '有效期', type: 'radioV2', value: duration }] : []),
    ];
    return this.feishuSim.createInstance({ approval_code: this.approvalCode, open_id: openId, form, deliver: false })
      .instance_code;
  }

  approvedEvent(instanceCode: string, approvalCode = this.approvalCode, status = 'APPROVED'): FeishuEventBody {
    return approvalInstanceEventV1({
      approvalCode,
      instanceCode,
      status,
      token: SECRETS.FEISHU_VERIFICATION_TOKEN,
      appId: SECRETS.FEISHU_APP_ID,
    });
  }

  /** Sign and encrypt a body exactly as Feishu does. */
  sign(body: object): SignedRequest {
    return buildSignedRequest({
      body,
      encryptKey: SECRETS.FEISHU_ENCRYPT_KEY,
      verificationToken: SECRETS.FEISHU_VERIFICATION_TOKEN,
    });
  }

  nextIngress(): string {
    const urls = this.ingressUrls;
    return urls[this.rr++ % urls.length]!;
  }

  /**
   * POST a signed event round-robin over the ingress replicas; any answer but 200 (or no answer within Feishu's 3 s)
   * is retried, on the next replica, after a short back-off — Feishu's redelivery, scaled down.
   */
  async post(body: object, opts: { maxAttempts?: number } = {}): Promise<PostResult> {
    const signed = this.sign(body);
    const maxAttempts = opts.maxAttempts ?? 30;
    const non200: number[] = [];
    const sentAt = Date.now();
    for (let attempt = 1; ; attempt++) {
      const url = `${this.nextIngress()}/webhook/feishu`;
      let status = 0;
      let text = '';
      try {
        const res = await request(url, {
          method: 'POST',
          headers: signed.headers,
          body: signed.rawBody,
          dispatcher: this.agent,
          headersTimeout: 3000,
          bodyTimeout: 3000,
        });
        status = res.statusCode;
        text = await res.body.text();
      } catch {
        status = 0; // no answer within 3 s, or connection refused
      }
      if (status === 200) {
        let outcome: string | undefined;
        try {
          outcome = (JSON.parse(text) as { outcome?: string }).outcome;
        } catch {
          outcome = undefined;
        }
        return { status, outcome, attempts: attempt, sentAt, ackAt: Date.now(), non200 };
      }
      non200.push(status);
      if (attempt >= maxAttempts) throw new Error(`event not accepted after ${attempt} attempts (last HTTP ${status})`);
      await sleep(Math.min(2000, 100 * 2 ** (attempt - 1)));
    }
  }

  // ---- observation ----

  /** Workflows of this run (scoped by the run's approval code), optionally narrowed by a visibility clause. */
  async countWorkflows(extra?: string): Promise<number> {
    const query = `ApprovalCode = '${this.approvalCode}'${extra ? ` AND ${extra}` : ''}`;
    return (await this.client.workflow.count(query)).count;
  }

  /** Requester messages grouped by open_id (the simulator's /_sim/messages). */
  messagesByOpenId(): Map<string, { count: number; firstAt: number }> {
    const m = new Map<string, { count: number; firstAt: number }>();
    for (const msg of this.feishuSim.messages()) {
      const e = m.get(msg.receive_id);
      const at = Number(msg.create_time);
      if (e) {
        e.count += 1;
        e.firstAt = Math.min(e.firstAt, at);
      } else m.set(msg.receive_id, { count: 1, firstAt: at });
    }
    return m;
  }

  private pullNacLog(): void {
    for (const r of this.nacSim.requests()) {
      if (r.seq > this.nacLogSeq) {
        this.nacLog.push(r);
        this.nacLogSeq = r.seq;
      }
    }
  }

  /** Every NAC API request seen so far (accumulated past the simulator's own 10,000-entry log). */
  nacRequests(): SimRequestRecord[] {
    this.pullNacLog();
    return this.nacLog;
  }

  /**
   * Check the NAC simulator against the MACs that should be whitelisted: missing ones, unexpected endpoints, MACs
   * created more than once (201 on POST), and endpoints not whitelisted (ISE: not in the whitelist group; ClearPass:
   * status not Known). `preexisting` MACs were seeded before the run (expected, never created). Requests are split
   * into the endpoint API (ERS, ClearPass endpoints and OAuth, ISE OpenAPI) and sessions/CoA (MnT, session control).
   */
  nacCheck(
    expectedMacs: string[],
    preexisting: string[] = []
  ): {
    expected: number;
    endpoints: number;
    missing: number;
    unexpected: number;
    duplicates: number;
    notInGroup: number;
    requests: number;
    endpointRequests: number;
    coaRequests: number;
    writes: number;
    rateLimited: number;
    serverErrors: number;
  } {
    const norm = (m: string) => m.toLowerCase().replace(/[^0-9a-f]/g, '');
    const want = new Set([...expectedMacs, ...preexisting].map(norm));
    const eps = this.nacSim.store.list();
    const byMac = new Map<string, number>();
    for (const e of eps) byMac.set(e.mac, (byMac.get(e.mac) ?? 0) + 1);
    const reqs = this.nacRequests();
    const creates = new Map<string, number>();
    for (const q of reqs)
      if (q.write && q.method === 'POST' && q.status === 201 && q.mac)
        creates.set(q.mac, (creates.get(q.mac) ?? 0) + 1);
    const groupId = this.nacSim.whitelistGroupId;
    const whitelisted = (e: (typeof eps)[number]) =>
      this.nacVendor === 'clearpass' ? e.status === 'Known' : e.groupId === groupId;
    const coaArea = (q: SimRequestRecord) => q.area === 'mnt' || q.area === 'session';
    return {
      expected: want.size,
      endpoints: eps.length,
      missing: [...want].filter((m) => !byMac.has(m)).length,
      unexpected: eps.filter((e) => !want.has(e.mac)).length,
      duplicates: [...byMac.values()].filter((n) => n > 1).length + [...creates.values()].filter((n) => n > 1).length,
      notInGroup: eps.filter((e) => want.has(e.mac) && !whitelisted(e)).length,
      requests: reqs.length,
      endpointRequests: reqs.filter((q) => !coaArea(q)).length,
      coaRequests: reqs.filter(coaArea).length,
      writes: reqs.filter((q) => q.write).length,
      rateLimited: reqs.filter((q) => q.status === 429).length,
      serverErrors: reqs.filter((q) => q.status >= 500).length,
    };
  }

  memory(): { workers: ProcMemory[]; ingress: ProcMemory[]; temporal: ProcMemory | null } {
    return {
      workers: this.workers.map((w) => procMemory(w.pid)),
      ingress: this.ingresses.map((w) => procMemory(w.pid)),
      temporal: this.devServer ? procMemory(this.devServer.pid) : null,
    };
  }

  /** Size of the dev server's sqlite database (with its WAL), or null for an external Temporal. */
  dbBytes(): number | null {
    if (this.external) return null;
    let total = 0;
    for (const suffix of ['', '-wal', '-shm']) {
      try {
        total += statSync(this.dbFile + suffix).size;
      } catch {
        // no such file
      }
    }
    return total;
  }

  /** End every workflow of this run (an external Temporal outlives the bench; its grants must not). */
  async terminateRun(reason: string): Promise<void> {
    const query = `ApprovalCode = '${this.approvalCode}' AND ExecutionStatus = 'Running'`;
    await this.client.workflowService.startBatchOperation({
      namespace: this.namespace,
      jobId: `bench-terminate-${randomBytes(6).toString('hex')}`,
      reason,
      visibilityQuery: query,
      terminationOperation: { identity: 'approval-plus-bench' },
    });
    await waitFor(
      'the run’s workflows to be terminated',
      async () => (await this.countWorkflows("ExecutionStatus = 'Running'")) === 0,
      300_000,
      1000
    );
  }

  private killAll(signal: NodeJS.Signals): void {
    for (const c of this.children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill(signal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.nacLogTimer) clearInterval(this.nacLogTimer);
    const exits = this.children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.child.exitCode !== null || c.child.signalCode !== null) return resolve();
          c.child.once('exit', () => resolve());
        })
    );
    this.killAll('SIGTERM');
    const force = setTimeout(() => this.killAll('SIGKILL'), 15_000);
    await Promise.all(exits);
    clearTimeout(force);
    await this.connection?.close().catch(() => {});
    await this.feishuSim?.close().catch(() => {});
    await this.nacSim?.close().catch(() => {});
    await this.devServer?.stop();
    await this.agent.close().catch(() => {});
    rmSync(this.runDir, { recursive: true, force: true });
  }
}

function intEnv(name: string, def: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`invalid ${name}: must be a whole number ≥ 0 (got ${JSON.stringify(v)})`);
  return n;
}
