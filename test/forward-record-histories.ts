/**
 * Records forwardEventWorkflow histories for the replay guard (test/replay.test.ts replays test/histories/*.json):
 * a delivery that succeeds after two 503s, and one a receiver refuses with 404. Run on the code of a release before
 * changing the workflow:
 *
 *   node --import tsx test/forward-record-histories.ts [outDir]
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { forwardWorkflowId } from '../forwarding/model';
import { freePort } from '../temporal/dev-server';
import { findTemporalCli } from '../temporal/find-cli';
import { startTestStack, until } from './support/harness';

async function main() {
  const outDir = process.argv[2] ?? path.join(__dirname, 'histories');
  const label = process.env.HISTORY_LABEL ? `.${process.env.HISTORY_LABEL}` : '';
  const port = await freePort();
  const answers: number[] = [];
  const receiver = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(answers.shift() ?? 200).end());
  });
  await new Promise<void>((r) => receiver.listen(port, '127.0.0.1', r));
  const routes = path.join(mkdtempSync(path.join(os.tmpdir(), 'ap-record-')), 'routes.yaml');
  writeFileSync(
    routes,
    `routes:
  - platform: feishu
    approval_code: RECORD-FORWARD
    automation: forward
    subscribers:
      - { name: recorder, url: "http://127.0.0.1:${port}/hook", secret_env: FORWARD_SECRET_RECORDER }
`
  );
  const t = await startTestStack({
    env: {
      APPROVAL_PLUS_CONFIG: routes,
      FORWARD_SECRET_RECORDER: `whsec_${randomBytes(32).toString('base64')}`,
      FORWARD_RETRY_INITIAL: '100ms',
      FORWARD_RETRY_MAX_INTERVAL: '1s',
      FORWARD_RETRY_FOR: '1m',
      FORWARD_TIMEOUT: '2s',
    },
  });
  const cli = await findTemporalCli();
  mkdirSync(outDir, { recursive: true });
  try {
    for (const [name, script] of [
      ['delivered-after-retries', [503, 503, 200]],
      ['rejected', [404]],
    ] as const) {
      answers.splice(0, answers.length, ...script);
      const instance = t.feishuSim!.createInstance({
        approval_code: 'RECORD-FORWARD',
        open_id: 'ou_rec',
        form: [],
      }).instance_code;
      const eventId = await until(
        'event acknowledged',
        () => t.feishuSim!.deliveries().find((d) => d.instance_code === instance && d.ok)?.event_id
      );
      const id = forwardWorkflowId('feishu', eventId, 'recorder');
      await t.client.workflow
        .getHandle(id)
        .result()
        .catch(() => undefined);
      const { stdout } = await promisify(execFile)(
        cli,
        ['workflow', 'show', '-w', id, '--address', t.temporalAddress, '--output', 'json'],
        { maxBuffer: 64 * 1024 * 1024 }
      );
      const file = path.join(outDir, `forward-event-${name}${label}.json`);
      writeFileSync(file, stdout);
      console.log(`recorded ${file}`);
    }
  } finally {
    await t.close();
    receiver.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
