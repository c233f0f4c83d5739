import { statusQuery, workflowIdFor } from '../workflows/definitions';
import { configOrExit, connectClient, uiLink } from './common';

/**
 * `approval-plus demo`: against a running sandbox (`npm start`), creates a sample Wi‑Fi approval in the Feishu
 * simulator (which delivers its signed, encrypted event to the ingress), follows the run, and prints what happened.
 */
export async function runDemo(opts: { macs: string; duration: string }): Promise<void> {
  const config = configOrExit();
  const route = config.routes.find((r) => r.platform === 'feishu');
  if (!route) throw new Error('no Feishu route in the routes file');
  const sim = `http://127.0.0.1:${config.feishuSimPort}`;
  const nacSim = `http://127.0.0.1:${config.nacSimPort}`;
  const openId = 'ou_demo_requester';
  const form = [
    { id: 'widget_reason', name: '申请事由', type: 'input', value: 'New laptop and phone (demo)' },
    { id: 'widget_macs', name: route.macFields[0], type: 'textarea', value: opts.macs },
    ...(route.durationField
      ? [{ id: 'widget_duration', name: route.durationField, type: 'radioV2', value: opts.duration }]
      : []),
  ];
  let res: Response;
  try {
    res = await fetch(`${sim}/_sim/approval/instances`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ approval_code: route.approvalCode, open_id: openId, form }),
    });
  } catch {
    throw new Error(`the Feishu simulator is not reachable at ${sim}: start the sandbox first with \`npm start\``);
  }
  if (!res.ok)
    throw new Error(`the Feishu simulator refused the sample approval: HTTP ${res.status} ${await res.text()}`);
  const { instance_code: instanceCode } = (await res.json()) as { instance_code: string };
  const workflowId = workflowIdFor('feishu', instanceCode);
  console.log(
    `1. Approval ${instanceCode} created in the Feishu simulator and APPROVED; its event goes to the ingress.`
  );
  console.log(`   MACs in the form: ${opts.macs}   有效期: ${opts.duration}`);

  const { client, close } = await connectClient(config);
  try {
    const handle = client.workflow.getHandle(workflowId);
    const deadline = Date.now() + 60_000;
    let phase = '';
    for (;;) {
      try {
        const s = await handle.query(statusQuery);
        if (s.phase !== phase) {
          phase = s.phase;
          console.log(`2. workflow ${workflowId}: ${phase}`);
        }
        if (['active', 'failed', 'rejected', 'revoked', 'expired', 'ignored'].includes(s.phase)) {
          console.log('3. Devices:');
          for (const m of s.macs)
            console.log(`     ${m.mac.padEnd(20)} ${m.state}${m.detail ? `  (${m.detail})` : ''}`);
          if (s.expiresAt) console.log(`   Access expires ${s.expiresAt}; the workflow stays open until then.`);
          break;
        }
      } catch {
        // not started yet (the event is on its way) — keep polling
      }
      if (Date.now() > deadline) throw new Error(`no result within 60 s; look at ${uiLink(config, workflowId)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    const endpoints = (await (await fetch(`${nacSim}/_sim/state`)).json()) as unknown;
    const list = Array.isArray(endpoints) ? endpoints : ((endpoints as { endpoints?: unknown[] }).endpoints ?? []);
    const ours = (list as { mac?: string; description?: string }[]).filter((e) => e.description?.includes(workflowId));
    console.log(`4. NAC simulator whitelist entries for this grant: ${ours.length}`);
    for (const e of ours) console.log(`     ${e.mac}  ${e.description}`);
    const messages = (await (await fetch(`${sim}/_sim/messages`)).json()) as { receive_id: string; content: unknown }[];
    const card = messages.filter((m) => m.receive_id === openId).pop();
    console.log(`5. Card sent to the requester (GET ${sim}/_sim/messages):`);
    console.log(
      card
        ? JSON.stringify(card.content, null, 2)
            .split('\n')
            .map((l) => '     ' + l)
            .join('\n')
        : '     (none yet)'
    );
    console.log(`6. Temporal UI: ${uiLink(config, workflowId)}`);
    console.log(`   Revoke it:   npx approval-plus cancel ${instanceCode} --reason "demo over"`);
  } finally {
    await close();
  }
}
