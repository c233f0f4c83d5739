import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

/**
 * Every benchmark in quick mode, as `npm run bench -- <name> --quick` runs it (a child process: real dev server,
 * worker and ingress child processes, simulators). Asserts on counts and correctness only, never on time.
 */
const ROOT = path.resolve(__dirname, '..');
const out = mkdtempSync(path.join(os.tmpdir(), 'approval-plus-bench-smoke-'));

interface BenchJson {
  name: string;
  quick: boolean;
  topology: { workers: number; ingress: number };
  machine: { atStart: { nproc: number | null } };
  params: Record<string, unknown>;
  results: Record<string, unknown>;
}

async function runBench(name: string): Promise<BenchJson> {
  // A deterministic topology: whatever BENCH_* the caller's shell has, the smoke run uses the embedded defaults.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BENCH_')));
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', name, '--quick'], {
    cwd: ROOT,
    env: { ...env, BENCH_OUT_DIR: out },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, `bench ${name} failed:\n${output.slice(-4000)}`);
  assert.match(output, /→ .*\.json/, 'prints where the JSON went');
  const json = JSON.parse(readFileSync(path.join(out, `${name}.json`), 'utf8')) as BenchJson;
  assert.equal(json.name, name);
  assert.equal(json.quick, true);
  assert.ok(json.machine.atStart.nproc === null || json.machine.atStart.nproc > 0);
  return json;
}

describe('benchmarks in quick mode (real Temporal dev server, child worker and ingress processes)', () => {
  after(() => rmSync(out, { recursive: true, force: true }));

  it('B1 ingress: every kind answered as the kind it is, ratios reported, workflows = starts', async () => {
    const j = await runBench('b1');
    type Step = { kind: string; ok: number; outcomes: Record<string, number> };
    const steps = j.results.steps as Step[];
    for (const kind of ['bare', 'unrouted', 'duplicate', 'new']) {
      assert.ok(
        steps.some((s) => s.kind === kind && s.ok > 0),
        `${kind} measured`
      );
    }
    const expectOutcome: Record<string, string> = { unrouted: 'unrouted', duplicate: 'duplicate', new: 'started' };
    for (const s of steps.filter((x) => x.kind !== 'bare')) {
      assert.deepEqual(Object.keys(s.outcomes), s.ok > 0 ? [expectOutcome[s.kind]] : [], `${s.kind} outcomes`);
      assert.equal(s.outcomes[expectOutcome[s.kind]!] ?? 0, s.ok);
    }
    const summary = j.results.summary as {
      ratioToBare: Record<string, number>;
      workflowsOfRun: number;
      expectedWorkflows: number;
    };
    for (const k of ['unrouted', 'duplicate', 'new']) assert.ok(summary.ratioToBare[k]! > 0, `ratio ${k}`);
    assert.equal(
      summary.workflowsOfRun,
      summary.expectedWorkflows,
      'one workflow per new approval, none per duplicate'
    );
  });

  it('B2 end to end: every requester notified exactly once, NAC exact', async () => {
    const j = await runBench('b2');
    const r = j.results as {
      approvals: number;
      endToEndMs: { count: number };
      requestersNotNotifiedExactlyOnce: number;
      workflows: number;
      nac: { missing: number; duplicates: number; unexpected: number; notInGroup: number };
    };
    assert.equal(r.endToEndMs.count, r.approvals);
    assert.equal(r.requestersNotNotifiedExactlyOnce, 0);
    assert.equal(r.workflows, r.approvals);
    assert.deepEqual([r.nac.missing, r.nac.duplicates, r.nac.unexpected, r.nac.notInGroup], [0, 0, 0, 0]);
  });

  it('B3 onboarding day: zero missing, zero duplicates under the NAC rate limit; RSS sampled', async () => {
    const j = await runBench('b3');
    const r = j.results as {
      macs: number;
      nac: { expected: number; endpoints: number; missing: number; duplicates: number; unexpected: number };
      requestersNotNotifiedExactlyOnce: number;
      memory: { workers: { hwmBytes: number | null }[]; ingress: { hwmBytes: number | null }[] };
      lowerBoundWritesSec: number;
    };
    assert.equal(r.nac.expected, r.macs);
    assert.equal(r.nac.endpoints, r.macs);
    assert.deepEqual([r.nac.missing, r.nac.duplicates, r.nac.unexpected], [0, 0, 0]);
    assert.equal(r.requestersNotNotifiedExactlyOnce, 0);
    assert.equal(r.lowerBoundWritesSec, r.macs / 20);
    for (const m of [...r.memory.workers, ...r.memory.ingress]) assert.ok((m.hwmBytes ?? 0) > 0, 'VmHWM read');
  });

  it('B4 grants held: all grants live, the leaver’s revoked and nobody else’s', async () => {
    const j = await runBench('b4');
    const r = j.results as {
      grants: number;
      held: { runningWorkflows: number; dbBytes: number | null; workerRssBytes: (number | null)[] };
      nacBeforeLeaver: { missing: number; duplicates: number; unexpected: number };
      leaver: { grants: number; ack: { status: number; outcome: string } };
      nacAfterLeaver: { missing: number; duplicates: number; unexpected: number };
      runningAfterLeaver: number;
      expiringThisWeek: {
        expected: number;
        counted: number;
        allPages: { rows: number; unknownPhase: number };
      };
    };
    assert.equal(r.held.runningWorkflows, r.grants);
    // `grants --expiring 7d` finds exactly the 7-day grants, each answered by its run's status query.
    assert.ok(r.expiringThisWeek.expected > 0);
    assert.equal(r.expiringThisWeek.counted, r.expiringThisWeek.expected);
    assert.equal(r.expiringThisWeek.allPages.rows, r.expiringThisWeek.expected);
    assert.equal(r.expiringThisWeek.allPages.unknownPhase, 0);
    assert.ok((r.held.dbBytes ?? 0) > 0, 'sqlite size measured');
    assert.ok((r.held.workerRssBytes[0] ?? 0) > 0);
    assert.deepEqual(
      [r.nacBeforeLeaver.missing, r.nacBeforeLeaver.duplicates, r.nacBeforeLeaver.unexpected],
      [0, 0, 0]
    );
    assert.equal(r.leaver.ack.status, 200);
    assert.equal(r.leaver.ack.outcome, 'signalled');
    assert.deepEqual([r.nacAfterLeaver.missing, r.nacAfterLeaver.duplicates, r.nacAfterLeaver.unexpected], [0, 0, 0]);
    assert.equal(r.runningAfterLeaver, r.grants - r.leaver.grants);
  });
});
