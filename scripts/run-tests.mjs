#!/usr/bin/env node
// `npm test`: resolves the `temporal` binary once (building it if needed), then runs every test/**/*.test.ts with
// node's own test runner. Extra args are passed through (e.g. `npm test -- test/mac.test.ts`).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}

const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
const tests = (files.length ? files : walk(path.join(root, 'test')))
  .map((f) => path.relative(root, path.resolve(f)))
  .sort();

const found = spawnSync(process.execPath, ['--import', 'tsx', 'temporal/find-cli.ts'], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
  encoding: 'utf8',
});
if (found.status !== 0) process.exit(found.status ?? 1);
const temporalPath = found.stdout.trim().split('\n').pop();

const reporter = process.env.CI ? ['--test-reporter=spec'] : [];
const run = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=300000', ...reporter, ...flags, ...tests],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, TEMPORAL_CLI_PATH: temporalPath, LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' },
  }
);
process.exit(run.status ?? 1);
