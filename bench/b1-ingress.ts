import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import type { SignedRequest } from '../simulators/feishu/event-signer';
import { closedLoop, LoadTarget, openLoop, type LoadResult } from './lib/load';
import { procMemory } from './lib/proc';
import type { BenchContext, BenchReport } from './lib/report';
import { r, table, waitFor } from './lib/stats';
import { ROOT, Topology } from './lib/topology';

/**
 * B1 — ingress acknowledgement. Signed and encrypted Feishu events (the simulator's independent signer) at rising
 * rates against the ingress of a running stack, and the same load against a bare Koa handler that does nothing (the
 * ceiling). Kinds of event, each durably accepted when answered 200:
 *   - unrouted:  an APPROVED event for an approval code with no route — decoded, verified, acknowledged, no Temporal call;
 *   - duplicate: an APPROVED event (fresh event id) for an instance whose workflow already started — one
 *                StartWorkflowExecution answered "already started";
 *   - new:       a real new approval — one StartWorkflowExecution that creates the workflow.
 * No worker runs by default (`--with-worker` adds one): the started workflows wait in their task queue, so the
 * worker does not compete with the ingress for the machine's cores. B2 measures the whole path.
 */

type Kind = 'bare' | 'unrouted' | 'duplicate' | 'new';

interface StepRow {
  kind: Kind;
  mode: 'open' | 'closed';
  rate?: number;
  concurrency?: number;
  sent: number;
  ok: number;
  throughput: number;
  p50: number;
  p99: number;
  max: number;
  statuses: Record<string, number>;
  outcomes: Record<string, number>;
  saturated: boolean;
}

async function startBareKoa(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'bare-koa.ts'), '0'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`bare Koa exited (${code})`)));
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

export async function runB1(ctx: BenchContext): Promise<BenchReport> {
  const quick = ctx.quick;
  const stepMs = Number(ctx.args['step-seconds'] ?? (quick ? 1 : 5)) * 1000;
  const rates = quick ? [20, 50] : [100, 200, 400, 800, 1600];
  const newRates = quick ? [20, 50] : [25, 50, 100, 200, 400];
  const closedConcurrency = quick ? 4 : 32;
  const closedMax = quick ? 200 : 4000;
  const withWorker = ctx.args['with-worker'] === true;

  const journal = Topology.journalArg(ctx.args);
  const topo = new Topology({ name: 'b1', workers: withWorker ? undefined : 0, journal, say: ctx.say });
  let bare: { child: ChildProcess; url: string } | undefined;
  const rows: StepRow[] = [];
  try {
    await topo.start();
    bare = await startBareKoa();
    const ingress = new LoadTarget(topo.ingressUrls, '/webhook/feishu', 64);
    const bareTarget = new LoadTarget([bare.url], '/webhook/feishu', 64);

    // Instances whose workflows are already started, for the duplicate events.
    const dupInstances: string[] = [];
    for (let i = 0; i < 20; i++) {
      const code = topo.createApproval(`ou_b1_dup_${i}`, [Topology.mac(i, 1)]);
      const res = await topo.post(topo.approvedEvent(code));
      if (res.outcome !== 'started') throw new Error(`could not start the duplicate target (${res.outcome})`);
      dupInstances.push(code);
    }
    let newIndex = 0;
    const build: Record<Exclude<Kind, 'bare'>, (n: number) => SignedRequest[]> = {
      unrouted: (n) =>
        Array.from({ length: n }, (_, i) =>
          topo.sign(topo.approvedEvent(`B1-UNROUTED-${i}`, 'NOT-ROUTED-APPROVAL-CODE'))
        ),
      duplicate: (n) =>
        Array.from({ length: n }, (_, i) => topo.sign(topo.approvedEvent(dupInstances[i % dupInstances.length]!))),
      new: (n) =>
        Array.from({ length: n }, () => {
          const i = newIndex++;
          return topo.sign(topo.approvedEvent(topo.createApproval(`ou_b1_new_${i}`, [Topology.mac(i, 2)])));
        }),
    };
    // The bare handler gets the same bytes the ingress would (it ignores them).
    const bareBodies = build.unrouted(1);

    const record = (kind: Kind, res: LoadResult, saturated: boolean) => {
      rows.push({
        kind,
        mode: res.mode,
        rate: res.targetRate,
        concurrency: res.concurrency,
        sent: res.sent,
        ok: res.ok,
        throughput: r(res.throughput),
        p50: r(res.latencyMs.p50, 2),
        p99: r(res.latencyMs.p99, 2),
        max: r(res.latencyMs.max, 2),
        statuses: res.statuses,
        outcomes: res.outcomes,
        saturated,
      });
      ctx.say(
        `  ${kind.padEnd(9)} ${res.mode === 'open' ? `${res.targetRate}/s` : `c=${res.concurrency}`}: ` +
          `${r(res.throughput)} ok/s, p50 ${r(res.latencyMs.p50, 2)} ms, p99 ${r(res.latencyMs.p99, 2)} ms` +
          `${saturated ? ' (saturated)' : ''}`
      );
    };

    for (const kind of ['bare', 'unrouted', 'duplicate', 'new'] as Kind[]) {
      const target = kind === 'bare' ? bareTarget : ingress;
      const kindRates = kind === 'new' ? newRates : rates;
      for (const rate of kindRates) {
        const n = Math.round((rate * stepMs) / 1000);
        const bodies = kind === 'bare' ? bareBodies : build[kind](n);
        const res = await openLoop(target, {
          rate,
          durationMs: stepMs,
          body: (i) => bodies[i % bodies.length]!,
        });
        // Saturated: it could not keep up with the offered rate (or refused some): higher rates are pointless.
        const saturated = res.ok < res.sent || res.throughput < rate * 0.9;
        record(kind, res, saturated);
        if (saturated) break;
      }
      const bodies = kind === 'bare' ? bareBodies : build[kind](kind === 'unrouted' ? closedMax * 5 : closedMax);
      const max = await closedLoop(target, {
        concurrency: closedConcurrency,
        durationMs: stepMs,
        body: (i) => bodies[i % bodies.length]!,
        maxRequests: kind === 'bare' ? undefined : bodies.length,
      });
      record(kind, max, false);
    }
    await ingress.close();
    await bareTarget.close();

    // The ceiling of "new": raw workflow starts straight from @temporalio/client, as many in flight as the closed
    // loops, on a task queue nobody polls — what the dev server itself takes, with no ingress in front.
    const raw = await rawStarts(topo, { concurrency: closedConcurrency, durationMs: stepMs });
    ctx.say(
      `  raw starts c=${closedConcurrency}: ${r(raw.perSec)} starts/s, p50 ${r(raw.p50, 2)} ms, p99 ${r(raw.p99, 2)} ms`
    );

    const started = rows.filter((x) => x.kind === 'new').reduce((a, x) => a + (x.outcomes.started ?? 0), 0);
    // Visibility is eventually consistent: wait (bounded) until it shows every started workflow.
    let workflows = 0;
    await waitFor(
      'visibility to list the run’s workflows',
      async () => {
        workflows = await topo.countWorkflows();
        return workflows >= started + dupInstances.length;
      },
      30_000,
      500
    ).catch(() => undefined);
    const mem = {
      ingress: topo.memory().ingress,
      bare: procMemory(bare.child.pid),
    };
    const maxOf = (k: Kind) => rows.find((x) => x.kind === k && x.mode === 'closed')!;
    const ratio = (k: Kind) => r(maxOf(k).throughput / maxOf('bare').throughput, 3);
    const summary = {
      maxThroughput: {
        bare: maxOf('bare').throughput,
        unrouted: maxOf('unrouted').throughput,
        duplicate: maxOf('duplicate').throughput,
        new: maxOf('new').throughput,
      },
      ratioToBare: { unrouted: ratio('unrouted'), duplicate: ratio('duplicate'), new: ratio('new') },
      rawStartsPerSec: r(raw.perSec),
      newToRawStarts: r(maxOf('new').throughput / raw.perSec, 3),
      workflowsStartedByNewEvents: started,
      workflowsOfRun: workflows,
      expectedWorkflows: started + dupInstances.length,
    };
    if (topo.external) await topo.terminateRun('benchmark B1 finished');

    const header = ['kind', 'load', 'sent', '200', 'ok/s', 'p50 ms', 'p99 ms', 'max ms', 'note'];
    const lines = rows.map((x) => [
      x.kind,
      x.mode === 'open' ? `${x.rate}/s open` : `c=${x.concurrency} closed`,
      x.sent,
      x.ok,
      x.throughput,
      x.p50,
      x.p99,
      x.max,
      x.saturated
        ? 'saturated'
        : Object.entries(x.outcomes)
            .map(([k, v]) => `${k}:${v}`)
            .join(' '),
    ]);
    const ratioTable = table([
      ['event kind', 'max ok/s (closed loop)', 'ratio to bare Koa'],
      ['bare Koa (ceiling)', summary.maxThroughput.bare, 1],
      ['unrouted', summary.maxThroughput.unrouted, summary.ratioToBare.unrouted],
      ['duplicate', summary.maxThroughput.duplicate, summary.ratioToBare.duplicate],
      ['new approval', summary.maxThroughput.new, summary.ratioToBare.new],
    ]);
    const rawTable = table([
      ['Temporal alone', 'starts/s', 'new approvals ÷ raw starts'],
      [
        `raw workflow starts, c=${closedConcurrency} (${journal} journal)`,
        summary.rawStartsPerSec,
        summary.newToRawStarts,
      ],
    ]);
    return {
      topology: topo.info(),
      params: {
        stepSeconds: stepMs / 1000,
        rates,
        newRates,
        closedConcurrency,
        withWorker,
        journal,
        eventKinds: {
          unrouted: 'APPROVED event for an unrouted approval code: verified, decrypted, acknowledged, no Temporal call',
          duplicate:
            'APPROVED event (fresh event id) for an instance already started: StartWorkflowExecution → already started',
          new: 'APPROVED event for a new instance: StartWorkflowExecution creates the workflow',
        },
      },
      results: { steps: rows, summary, rawStarts: raw, memory: mem },
      table: `${table([header, ...lines])}\n\n${ratioTable}\n\n${rawTable}\n\nworkflows of the run: ${workflows} (expected ${summary.expectedWorkflows}); ingress VmHWM ${mem.ingress.map((m) => r((m.hwmBytes ?? 0) / 1048576)).join(', ')} MiB`,
      notes: [
        'latency is measured from the moment each request was due (open loop), so queueing shows; load generator, ingress, Temporal and the bare Koa process share the same cores',
        withWorker ? 'a worker was running' : 'no worker was running: started workflows waited in their task queue',
      ],
    };
  } finally {
    if (bare) {
      bare.child.kill('SIGTERM');
      if (bare.child.exitCode === null) await once(bare.child, 'exit').catch(() => {});
    }
    await topo.close();
  }
}

/** Closed loop of raw `workflow.start` calls for `durationMs`; each start its own workflow id, on an unpolled queue. */
async function rawStarts(
  topo: Topology,
  opts: { concurrency: number; durationMs: number }
): Promise<{ started: number; perSec: number; p50: number; p99: number }> {
  const latencies: number[] = [];
  const t0 = performance.now();
  const end = t0 + opts.durationMs;
  let next = 0;
  const lane = async () => {
    while (performance.now() < end) {
      const i = next++;
      const s = performance.now();
      await topo.client.workflow.start('nacWhitelistWorkflow', {
        workflowId: `b1-raw-start-${process.pid}-${i}`,
        taskQueue: 'b1-raw-starts-unpolled',
        args: [],
      });
      latencies.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, lane));
  const elapsedSec = (performance.now() - t0) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  return { started: sorted.length, perSec: sorted.length / elapsedSec, p50: q(0.5), p99: q(0.99) };
}
