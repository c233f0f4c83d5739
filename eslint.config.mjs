// Lint rules. The workflows/ override is the determinism guard from Temporal's samples: workflow code runs in a
// sandbox and is replayed, so Node built-ins, SDK clients and ambient time/randomness/IO are kept out of it.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', 'docs/**', 'test/histories/**', 'dist/**', '.bench-out/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports' },
      ],
      'object-shorthand': ['error', 'always'],
      'no-console': 'off',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    languageOptions: { globals: {} },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({ name, message: 'Workflow code is deterministic: no Node built-ins.' })),
            ...[
              '@temporalio/activity',
              '@temporalio/client',
              '@temporalio/worker',
              '@larksuiteoapi/node-sdk',
              'undici',
              'koa',
              'pino',
            ].map((name) => ({
              name,
              message: 'Workflow code may not import SDK clients or I/O libraries; call an activity instead.',
            })),
          ],
          patterns: [
            {
              group: ['../activities', '../activities/*'],
              allowTypeImports: true,
              message: 'Import activities only as types (import type).',
            },
            {
              group: [
                '../nac/*',
                '../platforms/*',
                '../ingress/*',
                '../simulators/*',
                '../worker/*',
                '../config/*',
                '../temporal/*',
              ],
              allowTypeImports: true,
              message: 'Workflow code may not import I/O modules (types are fine).',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow.' },
        { name: 'setInterval', message: 'Use sleep() in a loop.' },
        { name: 'fetch', message: 'Network I/O belongs in an activity.' },
        { name: 'process', message: 'No process access in workflows.' },
        { name: 'require', message: 'No dynamic requires in workflows.' },
      ],
      'no-console': 'error',
    },
  }
);
