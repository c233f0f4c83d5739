import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { findTemporalCli } from '../temporal/find-cli';
import { assertPortFree, startDevServer } from '../temporal/dev-server';

describe('temporal CLI and the embedded dev server', () => {
  it('a wrong TEMPORAL_CLI_PATH is an error naming it, not silently ignored', async () => {
    const saved = process.env.TEMPORAL_CLI_PATH;
    process.env.TEMPORAL_CLI_PATH = '/nonexistent/temporal';
    try {
      await assert.rejects(
        findTemporalCli(() => {}),
        /invalid TEMPORAL_CLI_PATH/
      );
    } finally {
      process.env.TEMPORAL_CLI_PATH = saved;
    }
  });

  it('starts with the project search attributes registered, says when a port is taken, and stops cleanly', async () => {
    const server = await startDevServer({ uiPort: null });
    try {
      const port = Number(server.address.split(':')[1]);
      await assert.rejects(
        assertPortFree(port, '127.0.0.1', 'the Temporal dev server', 'hint'),
        /port \d+ on 127\.0\.0\.1 is taken/
      );
      const connection = await Connection.connect({ address: server.address });
      const client = new Client({ connection });
      const sa = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      for (const name of ['ApprovalCode', 'ApprovalPlatform', 'GrantPhase', 'RequesterRef', 'GrantExpiresAt']) {
        assert.ok(name in (sa.customAttributes ?? {}), `${name} registered`);
      }
      assert.ok(await client.workflowService.getSystemInfo({}));
      await connection.close();
    } finally {
      await server.stop();
    }
    assert.throws(() => process.kill(server.pid, 0), 'no process left behind');
  });
});
