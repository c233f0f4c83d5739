import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import {
  bundleWorkflowCode,
  DefaultLogger,
  makeTelemetryFilterString,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';

/**
 * Versioning guard: every committed history of a real run (test/histories/*.json, exported with
 * `temporal workflow show --output json`) must replay on today's workflow code. A change to a live workflow that
 * breaks this needs `patched()`; see docs in README "Changing a workflow".
 */
const dir = path.join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('workflow replay over recorded histories', () => {
  let bundle: WorkflowBundleWithSourceMap;
  before(async () => {
    // Replaying a broken history makes the SDK core log a warning; the assertion below is what matters.
    Runtime.install({
      logger: new DefaultLogger('ERROR'),
      telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }), forward: {} } },
    });
    bundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../workflows'),
      logger: { log() {}, info() {}, warn() {}, error() {}, debug() {}, trace() {} } as never,
    });
  });

  it('has at least one recorded history', () => assert.ok(files.length > 0));

  for (const file of files) {
    it(`replays ${file} deterministically`, async () => {
      const history = historyFromJSON(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
      await Worker.runReplayHistory({ workflowBundle: bundle }, history, file);
    });

    it(`detects a non-deterministic change against ${file}`, async () => {
      const raw = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
      // Drop the first scheduled activity: replay must notice the code no longer matches the history.
      const idx = raw.events.findIndex(
        (e: { eventType: string }) => e.eventType === 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED'
      );
      const scheduled = raw.events[idx];
      scheduled.activityTaskScheduledEventAttributes.activityType.name = 'somethingElse';
      await assert.rejects(
        Worker.runReplayHistory({ workflowBundle: bundle }, historyFromJSON(raw), file),
        (err: unknown) => (err as Error).name === 'DeterminismViolationError'
      );
    });
  }
});
