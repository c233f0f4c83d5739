import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import {
  encodeSearchAttributeIndexedValueType,
  type SearchAttributeKey,
} from '@temporalio/common/lib/search-attributes';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';
import { findTemporalCli } from './find-cli';

/**
 * The embedded Temporal dev server (`temporal server start-dev`), used by `npm start` (state in .data/) and by the
 * tests (throw-away state, free ports). Registers the project's search attributes, waits until the frontend answers,
 * and stops with its child on stop(), SIGINT and SIGTERM.
 */

export interface DevServerOptions {
  ip?: string;
  /** gRPC port; 0 = pick a free one. */
  port?: number;
  /** Web UI port; 0 = pick a free one; null = headless. */
  uiPort?: number | null;
  /** SQLite file; undefined = in-memory (throw-away). */
  dbFile?: string;
  /**
   * The SQLite file's journal: `wal` (default) or SQLite's own default rollback journal. WAL with full synchronous
   * keeps every commit durable and lets readers run beside the writer: workflow starts measured 1.9× faster on this
   * machine (docs/benchmarks.md). Benchmarks pass `default` to compare.
   */
  journal?: 'wal' | 'default';
  namespace?: string;
  logFile?: string;
  say?: (line: string) => void;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  namespace: string;
  pid: number;
  stop(): Promise<void>;
}

export class PortTakenError extends Error {
  override readonly name = 'PortTakenError';
}

const SA_TYPE_NAMES: Record<string, string> = {
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.TEXT]: 'Text',
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.DOUBLE]: 'Double',
  [SearchAttributeType.BOOL]: 'Bool',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
};

export function searchAttributeFlags(keys: SearchAttributeKey<SearchAttributeType>[] = SEARCH_ATTRIBUTES): string[] {
  return keys.flatMap((k) => ['--search-attribute', `${k.name}=${SA_TYPE_NAMES[k.type]}`]);
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function assertPortFree(port: number, host: string, what: string, hint: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new PortTakenError(`port ${port} on ${host} is taken: ${what} cannot start. ${hint}`)
          : err
      )
    );
    srv.listen(port, host, () => srv.close(() => resolve()));
  });
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const say = opts.say ?? (() => {});
  const port = opts.port || (await freePort(ip));
  const uiPort = opts.uiPort === null ? null : opts.uiPort || (await freePort(ip));
  await assertPortFree(
    port,
    ip,
    'the Temporal dev server',
    `Stop whatever uses it (another \`temporal server start-dev\`?), or set TEMPORAL_ADDRESS=${ip}:${port} to use that server.`
  );
  if (uiPort !== null) {
    await assertPortFree(
      uiPort,
      ip,
      'the Temporal UI',
      'Stop whatever uses it, or set TEMPORAL_UI_PORT to another port.'
    );
  }
  const cli = await findTemporalCli(say);
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--namespace', namespace];
  args.push('--log-level', 'warn', ...searchAttributeFlags());
  if (uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(uiPort));
  if (opts.dbFile) {
    mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
    // The journal is the file's: an in-memory database has none to choose.
    if ((opts.journal ?? 'wal') === 'wal') {
      args.push('--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=full');
    }
  }
  // Two extra flags the app relies on: fast visibility for `RequesterRef` look-ups, and no 1-s throttle on timers.
  args.push('--dynamic-config-value', 'frontend.enableUpdateWorkflowExecution=true');
  // One partition per task queue, as deploy/temporal/dynamicconfig/approval-plus.yaml gives the NAC queue: matching
  // splits a queue's rate limit (NAC_MAX_RPS) evenly over its partitions (4 by default), so with four the NAC queue
  // runs in uneven bursts well below its limit (B3: ~14 of 20 activities/s). The dev server carries far less than
  // one partition can (the flag cannot name one queue: it applies to all).
  args.push('--dynamic-config-value', 'matching.numTaskqueueReadPartitions=1');
  args.push('--dynamic-config-value', 'matching.numTaskqueueWritePartitions=1');
  // Eager activity dispatch (off by default in the server): an activity scheduled by a workflow task on the worker's
  // own task queue (fetch the approval, message the requester, the audit comment) comes back in the answer to that
  // task's completion when the worker has a free slot, instead of a trip through matching. The NAC queue is another
  // queue, so its activities still go through matching and its server-side rate limit (eager never crosses queues).
  args.push('--dynamic-config-value', 'system.enableActivityEagerExecution=true');

  let logFd: number | undefined;
  if (opts.logFile) {
    mkdirSync(path.dirname(opts.logFile), { recursive: true });
    logFd = openSync(opts.logFile, 'a');
  }
  const child: ChildProcess = spawn(cli, args, {
    stdio: ['ignore', logFd ?? 'ignore', logFd ?? 'pipe'],
  });
  let stderrTail = '';
  child.stderr?.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-4000)));
  let exited = false;
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      if (logFd !== undefined) closeSync(logFd);
      resolve();
    })
  );
  const address = `${ip}:${port}`;

  const stop = async (): Promise<void> => {
    process.off('exit', killNow);
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exitPromise;
    clearTimeout(timer);
  };
  // Last resort if the parent exits without stop(): never leave the server behind.
  const killNow = () => {
    if (!exited) child.kill('SIGKILL');
  };
  process.once('exit', killNow);

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`the Temporal dev server exited at start-up:\n${stderrTail.trim()}`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.withDeadline(Date.now() + 2000, () => conn.workflowService.describeNamespace({ namespace }));
      } finally {
        await conn.close();
      }
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`the Temporal dev server did not answer on ${address} within 60 s: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return { address, uiUrl: uiPort === null ? undefined : `http://${ip}:${uiPort}`, namespace, pid: child.pid!, stop };
}

/** On an existing cluster (TEMPORAL_ADDRESS), register the search attributes if missing. */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = SEARCH_ATTRIBUTES.filter((k) => !(k.name in (existing.customAttributes ?? {})));
  if (missing.length === 0) return;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((k) => [k.name, encodeSearchAttributeIndexedValueType(k.type)!])),
  });
}

/** A namespace lacks search attributes the workflows set (or has them with another type): one line saying how to add them. */
export class MissingSearchAttributesError extends Error {
  override readonly name = 'MissingSearchAttributesError';
}

/**
 * What workers do on an existing cluster (TEMPORAL_ADDRESS): check, never register. Registering belongs to one place
 * (compose's namespace job), since workers scaled together race each other's adds, and Temporal Cloud refuses
 * OperatorService adds altogether (docs self-hosted-guide/visibility "on Temporal Cloud, use the tcld CLI";
 * temporalio/omes#74). Throws MissingSearchAttributesError naming what is missing and the commands that add it;
 * resolves with warnings when the server does not let this identity list them (PermissionDenied, Unimplemented):
 * the check is skipped rather than blocking readiness forever.
 */
export async function checkSearchAttributes(
  connection: Pick<Connection, 'operatorService'>,
  namespace: string,
  keys: SearchAttributeKey<SearchAttributeType>[] = SEARCH_ATTRIBUTES
): Promise<string[]> {
  let existing: Record<string, unknown>;
  try {
    existing = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
  } catch (err) {
    const code = (err as { code?: number }).code;
    // gRPC 7 PERMISSION_DENIED, 12 UNIMPLEMENTED: an API key without namespace-admin rights, a proxy without the API.
    if (code === 7 || code === 12) {
      return [
        `cannot list the search attributes of namespace "${namespace}" (${(err as Error).message.split('\n')[0]}): make sure ${keys.map((k) => `${k.name} (${SA_TYPE_NAMES[k.type]})`).join(', ')} exist`,
      ];
    }
    throw err;
  }
  const wrong = keys.filter((k) => existing[k.name] !== encodeSearchAttributeIndexedValueType(k.type));
  if (wrong.length === 0) return [];
  throw new MissingSearchAttributesError(missingSearchAttributesLine(namespace, wrong, existing));
}

/** The one line for missing (or mistyped) search attributes: which, and how to add them here and on Temporal Cloud. */
export function missingSearchAttributesLine(
  namespace: string,
  wrong: SearchAttributeKey<SearchAttributeType>[],
  existing: Record<string, unknown> = {}
): string {
  const named = wrong.map((k) => {
    const type = SA_TYPE_NAMES[k.type];
    return k.name in existing ? `${k.name} (exists with another type; needs ${type})` : `${k.name} (${type})`;
  });
  const pairs = wrong.map((k) => `--name ${k.name} --type ${SA_TYPE_NAMES[k.type]}`).join(' ');
  const sa = wrong.map((k) => `--sa ${k.name}=${SA_TYPE_NAMES[k.type]}`).join(' ');
  return (
    `namespace "${namespace}" lacks search attributes ${named.join(', ')}: add them once with ` +
    `\`temporal operator search-attribute create --namespace ${namespace} ${pairs}\` ` +
    `(Temporal Cloud: the namespace's Custom Search Attributes in the Cloud UI, or ` +
    `\`tcld namespace search-attributes add --namespace ${namespace} ${sa}\`); not ready until they exist`
  );
}
