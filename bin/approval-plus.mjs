#!/usr/bin/env node
// Entry point of the `approval-plus` CLI: loads the TypeScript sources through tsx (no build step), then the CLI.
import { register } from 'tsx/esm/api';
import { createRequire } from 'node:module';

register();
const require = createRequire(import.meta.url);
require('tsx/cjs/api').register();
require('../cli/main.ts');
