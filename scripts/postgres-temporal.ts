import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { ensureTemporalServerBinaries, startPostgresTemporal } from '../temporal/postgres-server';

/**
 * A real Temporal server (v1.29.x, built with Go) on a throw-away local PostgreSQL, in the foreground:
 *   node --import tsx scripts/postgres-temporal.ts [--port 7233] [--namespace default]
 *       prints `TEMPORAL_ADDRESS=127.0.0.1:<port>` once the namespace and search attributes are ready; Ctrl-C (or
 *       SIGTERM) stops the server and deletes the PostgreSQL cluster. Point the app or the benches at it:
 *       BENCH_TEMPORAL_ADDRESS=127.0.0.1:<port> BENCH_WORKERS=2 BENCH_INGRESS=2 npm run bench -- b2
 *   node --import tsx scripts/postgres-temporal.ts -- <command…>
 *       starts it, runs the command with TEMPORAL_ADDRESS and BENCH_TEMPORAL_ADDRESS set to it, then tears it all
 *       down and exits with the command's exit code, e.g.
 *       BENCH_WORKERS=2 BENCH_INGRESS=2 node --import tsx scripts/postgres-temporal.ts -- npm run bench -- b3
 *   node --import tsx scripts/postgres-temporal.ts --build-only
 *       only builds (or finds) temporal-server and temporal-sql-tool in ~/.cache/approval-plus/ and says how long
 *       the build took.
 */
async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      namespace: { type: 'string', default: 'default' },
      'log-level': { type: 'string', default: 'warn' },
      'build-only': { type: 'boolean', default: false },
    },
  });
  const say = (line: string) => process.stderr.write(line + '\n');
  if (values['build-only']) {
    const b = await ensureTemporalServerBinaries(say);
    console.log(`${b.server}\n${b.sqlTool}\nschema: ${b.schemaDir}`);
    if (b.buildSeconds !== undefined) console.log(`Go build took ${b.buildSeconds} s`);
    return;
  }
  const server = await startPostgresTemporal({
    port: values.port ? Number(values.port) : undefined,
    namespace: values.namespace,
    logLevel: values['log-level'],
    say,
  });
  if (positionals.length > 0) {
    const [cmd, ...args] = positionals as [string, ...string[]];
    const child = spawn(cmd, args, {
      stdio: 'inherit',
      env: { ...process.env, TEMPORAL_ADDRESS: server.address, BENCH_TEMPORAL_ADDRESS: server.address },
    });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const code = await new Promise<number>((resolve) => child.once('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
    await server.stop();
    process.exit(code);
  }
  console.log(`TEMPORAL_ADDRESS=${server.address}`);
  say(`Running until Ctrl-C. Server log: ${server.logFile}`);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: stopping temporal-server and removing the PostgreSQL cluster…`);
    await server.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err: Error) => {
  console.error(`postgres-temporal: ${err.message}`);
  process.exit(1);
});
