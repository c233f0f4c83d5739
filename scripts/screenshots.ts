/**
 * Screenshots for docs/operating.md, from a real run: starts the sandbox (dev server with its UI, simulators, worker,
 * ingress) on free ports, sends a few Wi‑Fi approvals through the Feishu simulator (granted, cancelled, failed on the
 * NAC, unreadable form), then photographs the Temporal UI with headless Chromium (Debian's `chromium` package).
 *
 *   node --import tsx scripts/screenshots.ts [outDir=docs/img]
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../app/logger';
import { startStack } from '../app/stack';
import { loadConfig } from '../config/config';
import { freePort } from '../temporal/dev-server';
import { cancelSignal, statusQuery, workflowIdFor } from '../workflows/definitions';

const CHROMIUM = process.env.CHROMIUM ?? 'chromium';

async function shoot(url: string, file: string, size = '1600,1000') {
  await promisify(execFile)(CHROMIUM, [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--hide-scrollbars',
    '--force-device-scale-factor=1',
    `--window-size=${size}`,
    '--virtual-time-budget=20000',
    `--screenshot=${file}`,
    url,
  ]);
  if (!existsSync(file)) throw new Error(`chromium wrote no ${file}`);
  console.log(`wrote ${file}  (${url})`);
}

async function main() {
  const outDir = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'docs', 'img'));
  mkdirSync(outDir, { recursive: true });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'approval-plus-shots-'));
  const env = {
    SANDBOX: 'true',
    PORT: String(await freePort()),
    FEISHU_SIM_PORT: String(await freePort()),
    NAC_SIM_PORT: String(await freePort()),
    DINGTALK_SIM_PORT: String(await freePort()),
    WECOM_SIM_PORT: String(await freePort()),
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    RECONCILE_INTERVAL: 'off',
    NAC_TIMEOUT_MS: '1000',
  };
  const config = loadConfig(env);
  const uiPort = await freePort();
  const stack = await startStack(
    config,
    { temporal: true, simulators: true, worker: true, ingress: true },
    createLogger('warn'),
    { temporalPort: 0, temporalUiPort: uiPort, redeliveryScale: 0.01 }
  );
  const route = config.routes.find((r) => r.platform === 'feishu')!;
  const client = stack.client!;
  const approve = (macs: string, duration: string, openId: string) =>
    stack.feishuSim!.createInstance({
      approval_code: route.approvalCode,
      open_id: openId,
      form: [
        { id: 'widget_reason', name: '申请事由', type: 'input', value: 'new starter devices' },
        { id: 'widget_macs', name: route.macFields[0]!, type: 'textarea', value: macs },
        { id: 'widget_duration', name: route.durationField ?? '有效期', type: 'radioV2', value: duration },
      ],
    }).instance_code;
  const settle = async (id: string, phases: string[]) => {
    for (let i = 0; i < 300; i++) {
      try {
        const s = await client.workflow.getHandle(id).query(statusQuery);
        if (phases.includes(s.phase)) return;
      } catch {
        // not started yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${id} did not reach ${phases.join('|')}`);
  };
  try {
    const ids: string[] = [];
    for (const [macs, duration, who] of [
      ['00:1B:44:11:3A:B7, 001b.4411.3ab8', '7天', 'ou_alice'],
      ['3C-22-FB-10-00-01', '30天', 'ou_bob'],
      ['A4:83:E7:00:00:02\n001B44113AC0', '永久', 'ou_carol'],
    ] as const) {
      const id = workflowIdFor('feishu', approve(macs, duration, who));
      await settle(id, ['active']);
      ids.push(id);
    }
    // One revoked by an operator, one failed on the NAC (undone), one with nothing usable in the form.
    const revoked = workflowIdFor('feishu', approve('00:1B:44:11:3B:01 00:1B:44:11:3B:02', '7天', 'ou_dave'));
    await settle(revoked, ['active']);
    await client.workflow.getHandle(revoked).signal(cancelSignal, { reason: 'device returned to IT', by: 'it-ops' });
    await client.workflow.getHandle(revoked).result();
    stack.nacSim!.setFaults({ rules: [{ mac: '00:1B:44:11:3C:03', status: 400, method: 'POST' }] });
    const failed = workflowIdFor('feishu', approve('00:1B:44:11:3C:01 00:1B:44:11:3C:03', '1天', 'ou_erin'));
    await settle(failed, ['failed']);
    const rejected = workflowIdFor('feishu', approve('not-a-mac, FF:FF:FF:FF:FF:FF', '7天', 'ou_frank'));
    await settle(rejected, ['rejected']);
    await new Promise((r) => setTimeout(r, 1500)); // visibility is eventually consistent

    const ui = stack.temporalUiUrl!;
    const ns = config.temporal.namespace;
    const query = encodeURIComponent(`ApprovalCode="${route.approvalCode}"`);
    await shoot(`${ui}/namespaces/${ns}/workflows?query=${query}`, path.join(outDir, 'ui-list-by-approval-code.png'));
    await shoot(
      `${ui}/namespaces/${ns}/workflows?query=${encodeURIComponent(`ApprovalCode="${route.approvalCode}" AND GrantPhase="active"`)}`,
      path.join(outDir, 'ui-list-active-grants.png')
    );
    const desc = await client.workflow.getHandle(revoked).describe();
    await shoot(
      `${ui}/namespaces/${ns}/workflows/${encodeURIComponent(revoked)}/${desc.runId}/history`,
      path.join(outDir, 'ui-run-timeline.png'),
      '1600,1600'
    );
  } finally {
    await stack.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
