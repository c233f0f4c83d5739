#!/usr/bin/env node
// `npm run build`: compiles the TypeScript sources to CommonJS JavaScript (tsc -p tsconfig.build.json), and copies
// beside them the files they read at run time, so `node dist/cli/main.js` runs without tsx — the Docker image's
// entry point. Development keeps running the sources through tsx (bin/approval-plus.mjs).
//   node scripts/build.mjs [outDir]      default dist/; a workflow bundle already there (workflow-bundle.js) is kept
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const outDir = path.resolve(process.argv[2] ?? path.join(root, 'dist'));
/** Non-TypeScript files the compiled code opens relative to its own location (config/config.ts SANDBOX_ROUTES_FILE). */
export const RUNTIME_ASSETS = ['config/routes.sandbox.yaml'];
const KEEP = new Set(['workflow-bundle.js']);

// A clean tree: a module deleted from the sources must not live on in dist/.
if (existsSync(outDir))
  for (const name of readdirSync(outDir))
    if (!KEEP.has(name)) rmSync(path.join(outDir, name), { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', outDir], {
  cwd: root,
  stdio: 'inherit',
});
if (r.status !== 0) {
  console.error(`build: tsc failed (exit ${r.status ?? r.signal})`);
  process.exit(r.status || 1);
}
for (const asset of RUNTIME_ASSETS) {
  mkdirSync(path.dirname(path.join(outDir, asset)), { recursive: true });
  cpSync(path.join(root, asset), path.join(outDir, asset));
}
if (!existsSync(path.join(outDir, 'cli', 'main.js'))) {
  console.error(`build: ${path.join(outDir, 'cli', 'main.js')} was not produced`);
  process.exit(1);
}
console.log(
  `build: ${path.relative(root, outDir) || '.'}/cli/main.js (node ${path.relative(root, outDir) || '.'}/cli/main.js <command>)`
);
