import path from 'node:path';
import { createLogger } from '../app/logger';
import { startStack } from '../app/stack';
import { redactedConfig } from '../config/config';
import { configOrExit } from './common';

interface Parts {
  temporal: boolean;
  simulators: boolean | 'sandbox';
  worker: boolean;
  ingress: boolean;
}

/** Run (part of) the system in the foreground until SIGINT/SIGTERM, then stop everything it started. */
export async function runStack(parts: Parts): Promise<void> {
  const config = configOrExit();
  const logger = createLogger(config.logLevel, undefined, config.logFormat);
  const say = (line: string) => process.stderr.write(line + '\n');
  logger.info({ config: redactedConfig(config) }, 'starting');
  const simulators = parts.simulators === 'sandbox' ? config.sandbox : parts.simulators;
  let stack;
  try {
    stack = await startStack(config, { ...parts, simulators }, logger, {
      temporalDbFile: path.join(config.dataDir, 'temporal.db'),
      nacSimStateFile: path.join(config.dataDir, 'nac-sim.json'),
      say,
    });
  } catch (err) {
    console.error(`approval-plus: ${(err as Error).message}`);
    process.exit(1);
  }
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`\n${signal}: stopping…`);
    await stack.stop();
    say('stopped.');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  const lines = ['', 'ApprovalPlus (审批+) is running.'];
  if (stack.temporalUiUrl) lines.push(`  Temporal UI        ${stack.temporalUiUrl}`);
  if (stack.temporalAddress) lines.push(`  Temporal gRPC      ${stack.temporalAddress}`);
  if (stack.ingressUrl)
    lines.push(
      `  Ingress            ${stack.ingressUrl}  (POST /webhook/${config.feishu.eventMode === 'ws' ? '' : 'feishu|'}dingtalk|wecom, /healthz, /readyz, /metrics)`
    );
  if (stack.feishuSim)
    lines.push(
      `  Feishu simulator   ${stack.feishuSim.url}  (GET /_sim/messages, /_sim/comments${config.feishu.eventMode === 'ws' ? '; events over the long connection: GET /_sim/ws/connections' : ''})`
    );
  if (stack.dingtalkSim) lines.push(`  DingTalk simulator ${stack.dingtalkSim.url}  (GET /_sim/messages)`);
  if (stack.wecomSim) lines.push(`  WeCom simulator    ${stack.wecomSim.url}  (GET /_sim/messages)`);
  if (stack.nacSim)
    lines.push(
      `  NAC simulator      ${stack.nacSim.url}  (profile ${stack.nacSim.profile().name}: ISE ERS + MnT, ClearPass API; GET /_sim/state, /_sim/coa; POST /_sim/sessions)`
    );
  if (config.sandbox && parts.ingress) {
    lines.push(
      '',
      'Sandbox mode (no Feishu credentials configured): Feishu and the NAC are simulated.',
      'Send a sample Wi‑Fi approval and follow it:   npx approval-plus demo',
      `or by hand:  curl -s -XPOST ${stack.feishuSim?.url}/_sim/approval/instances -H 'content-type: application/json' \\`,
      `  -d '{"approval_code":"${config.routes[0]?.approvalCode}","open_id":"ou_demo","form":[{"id":"macs","name":"MAC地址","type":"textarea","value":"AA:BB:CC:DD:EE:01"}]}'`
    );
  }
  lines.push('', 'Ctrl-C stops everything.');
  say(lines.join('\n'));
}
