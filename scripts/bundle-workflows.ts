import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';

/**
 * Prebuilds the workflow bundle (webpack, once, at image build time) so a production worker starts without bundling:
 *   node --import tsx scripts/bundle-workflows.ts [out-file]        (default dist/workflow-bundle.js)
 * The worker loads it when WORKFLOW_BUNDLE names the file (app/stack.ts → worker/worker.ts). The bundle must be
 * built from the same workflows/ as the worker's activities: the Dockerfile builds both from one source tree.
 */

export const DEFAULT_BUNDLE_PATH = path.resolve(__dirname, '..', 'dist', 'workflow-bundle.js');

export async function bundleWorkflows(
  outFile: string = DEFAULT_BUNDLE_PATH,
  opts: { quiet?: boolean } = {}
): Promise<{ path: string; bytes: number }> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    logger: opts.quiet ? new DefaultLogger('WARN') : undefined,
  });
  mkdirSync(path.dirname(outFile), { recursive: true });
  writeFileSync(outFile, code);
  return { path: outFile, bytes: Buffer.byteLength(code) };
}

if (require.main === module) {
  const out = path.resolve(process.argv[2] ?? DEFAULT_BUNDLE_PATH);
  bundleWorkflows(out)
    .then(({ path: p, bytes }) => console.log(`workflow bundle: ${p} (${Math.round(bytes / 1024)} KiB)`))
    .catch((err: Error) => {
      console.error(`bundle-workflows: ${err.message}`);
      process.exit(1);
    });
}
