import { runB1 } from './b1-ingress';
import { runB2 } from './b2-end-to-end';
import { runB3 } from './b3-onboarding';
import { runB4 } from './b4-grants-held';
import { machineInfo, writeBenchJson, type BenchContext, type BenchReport } from './lib/report';

/**
 * `npm run bench -- <b1|b2|b3|b4|all> [--quick] [--n <count>] [--<option> <value>…]`
 * Prints each benchmark's table and writes .bench-out/<name>.json. See docs/benchmarks.md.
 */
type Bench = (ctx: BenchContext) => Promise<BenchReport>;

const BENCHES: Record<string, { title: string; run: Bench }> = {
  b1: { title: 'B1 ingress acknowledgement', run: runB1 },
  b2: { title: 'B2 end to end', run: runB2 },
  b3: { title: 'B3 onboarding day', run: runB3 },
  b4: { title: 'B4 grants held', run: runB4 },
};

function parseArgs(argv: string[]): { names: string[]; args: Record<string, string | boolean> } {
  const names: string[] = [];
  const args: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const [k, v] = a.slice(2).split('=', 2) as [string, string | undefined];
      if (v !== undefined) args[k] = v;
      else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) args[k] = argv[++i]!;
      else args[k] = true;
    } else names.push(a.toLowerCase());
  }
  return { names, args };
}

async function main(): Promise<void> {
  const { names, args } = parseArgs(process.argv.slice(2));
  const wanted = names.includes('all') ? Object.keys(BENCHES) : names;
  const unknown = wanted.filter((n) => !(n in BENCHES));
  if (wanted.length === 0 || unknown.length) {
    console.error(
      `usage: npm run bench -- <${Object.keys(BENCHES).join('|')}|all> [--quick] [--n <count>]` +
        (unknown.length ? `\nunknown bench: ${unknown.join(', ')}` : '')
    );
    process.exit(2);
  }
  const quick = args.quick === true || args.quick === 'true';
  const n = args.n !== undefined ? Number(args.n) : undefined;
  if (n !== undefined && !(Number.isInteger(n) && n > 0)) {
    console.error(`invalid --n: a whole number > 0 (got ${String(args.n)})`);
    process.exit(2);
  }
  const say = (line: string) => process.stderr.write(line + '\n');
  for (const name of wanted) {
    const bench = BENCHES[name]!;
    say(`\n== ${bench.title}${quick ? ' (quick)' : ''} ==`);
    const atStart = machineInfo();
    const started = Date.now();
    const report = await bench.run({ quick, n, args, say });
    const durationSec = Math.round((Date.now() - started) / 100) / 10;
    const file = writeBenchJson(name, {
      name,
      quick,
      durationSec,
      machine: { atStart, atEnd: machineInfo() },
      ...report,
    });
    console.log(`\n${bench.title}${quick ? ' (quick)' : ''} — ${durationSec} s`);
    console.log(report.table);
    for (const note of report.notes ?? []) console.log(`note: ${note}`);
    console.log(`→ ${file}`);
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`bench failed: ${err.stack ?? err.message}`);
    process.exit(1);
  }
);
