import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { cancelSignal, workflowIdFor } from '../workflows/definitions';
import type { NacWhitelistResult } from '../workflows/nac-whitelist.workflow';
import { startTestStack, until, type TestStack } from './support/harness';

/** The worker runs in its own process here, so it can be SIGKILLed in the middle of a run and restarted. */
describe('worker killed mid-run (real Temporal dev server)', () => {
  let t: TestStack;
  before(async () => {
    t = await startTestStack({ worker: false });
  });
  after(async () => {
    await t?.close();
  });

  it('completes after a restart with exactly the right NAC state', async () => {
    const first = t.spawnWorker();
    t.nacSim!.setFaults({ latencyMs: 500 });
    const macs = ['00:1B:44:22:00:01', '00:1B:44:22:00:02', '00:1B:44:22:00:03', '00:1B:44:22:00:04'];
    const instance = t.createApproval(macs.join(' '));
    const id = workflowIdFor('feishu', instance);
    await until('first MAC whitelisted', async () => ((await t.iseEndpoint(macs[0]!)) ? true : undefined), 90_000);
    first.kill('SIGKILL');
    await once(first, 'exit');
    const whitelistedAtKill = (await Promise.all(macs.map((m) => t.iseEndpoint(m)))).filter(Boolean).length;
    assert.ok(whitelistedAtKill < macs.length, 'killed in the middle of the run');

    t.spawnWorker();
    const status = await t.waitForPhase(id, ['active'], 120_000);
    t.nacSim!.clearFaults();
    assert.deepEqual(
      status.macs.map((m) => m.state),
      ['granted', 'granted', 'granted', 'granted']
    );
    const stored = (t.nacSim!.store.list() as { mac: string; groupId: string }[]).filter((e) =>
      e.mac
        .toUpperCase()
        .replace(/[^0-9A-F]/g, '')
        .startsWith('001B442200')
    );
    assert.equal(stored.length, 4, 'one endpoint per MAC, no duplicates');
    for (const e of stored) assert.equal(e.groupId, t.nacSim!.whitelistGroupId);
    assert.equal(t.feishuSim!.messages().filter((m) => JSON.stringify(m.content).includes(instance)).length, 1);

    await t.client.workflow.getHandle(id).signal(cancelSignal, { reason: 'test over' });
    const r = (await t.client.workflow.getHandle(id).result()) as NacWhitelistResult;
    assert.equal(r.outcome, 'revoked');
    for (const mac of macs) assert.equal(await t.iseEndpoint(mac), null);
  });
});
