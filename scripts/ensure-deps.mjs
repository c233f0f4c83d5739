#!/usr/bin/env node
// Runs before `npm start` / `npm test`: installs node modules when they are missing or older than the lock file, so
// both work as the first command after `git clone`. `npm ci`: exactly the lock file (complete for every platform's
// optional packages), which it never rewrites, so a first run leaves `git status` clean.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const marker = path.join(root, 'node_modules', '.package-lock.json');
const lock = path.join(root, 'package-lock.json');
const stale = !existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs;
if (stale) {
  process.stderr.write('Installing node modules (npm ci)…\n');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
