import { Command } from 'commander';
import type { runDemo as RunDemo } from './demo';
import type { GrantsOptions } from './operator-view';
import type { runStack as RunStack } from './run-stack';

// Each command loads its module when it runs, not before: `approval-plus grants` need not load the worker's SDK, the
// HTTP server and every platform, and `--help` loads none of them.
const runStack = async (...a: Parameters<typeof RunStack>) => (await import('./run-stack.js')).runStack(...a);
const runDemo = async (...a: Parameters<typeof RunDemo>) => (await import('./demo.js')).runDemo(...a);
const operate = () => import('./operate.js');
const forwardCommands = () => import('./forward.js');
const operatorView = () => import('./operator-view.js');

/** `approval-plus` — one CLI for running and operating ApprovalPlus. */
const program = new Command()
  .name('approval-plus')
  .description('ApprovalPlus (审批+): run approved automations durably — Wi‑Fi access into the NAC whitelist.')
  .showHelpAfterError();

program
  .command('start')
  .description('Temporal dev server (unless TEMPORAL_ADDRESS) + worker + ingress; simulators too in sandbox mode')
  .action(() => runStack({ temporal: true, simulators: 'sandbox', worker: true, ingress: true }));
program
  .command('worker')
  .description('only the worker (needs a Temporal server: TEMPORAL_ADDRESS or 127.0.0.1:7233)')
  .action(() => runStack({ temporal: false, simulators: false, worker: true, ingress: false }));
program
  .command('ingress')
  .description('only the HTTP ingress (webhooks, health, metrics, operator API)')
  .action(() => runStack({ temporal: false, simulators: false, worker: false, ingress: true }));
program
  .command('sim')
  .description('only the Feishu and NAC simulators')
  .action(() => runStack({ temporal: false, simulators: true, worker: false, ingress: false }));
program
  .command('demo')
  .description('send a sample Wi‑Fi approval through the sandbox (run `npm start` first) and follow it to the end')
  .option('--macs <list>', 'MAC addresses for the sample form', '00:1B:44:11:3A:B7, 001b.4411.3ab8, 00-1B-44-11-3A-B9')
  .option('--duration <text>', 'the 有效期 field (1天, 7天, 永久…)', '7天')
  .action((opts: { macs: string; duration: string }) => runDemo(opts));
program
  .command('status <instance>')
  .description('phase, each MAC with its state, expiry, last error (instance code or workflow id)')
  .option('--json', 'print JSON')
  .action(async (instance: string, opts: { json?: boolean }) => (await operate()).runStatus(instance, opts));
program
  .command('cancel <instance>')
  .description('revoke a grant: undo every NAC change and tell the requester')
  .requiredOption('--reason <text>', 'why (the requester reads it)')
  .option('--by <who>', 'operator name for the audit trail', process.env.USER)
  .action(async (instance: string, opts: { reason: string; by?: string }) =>
    (await operate()).runCancel(instance, opts)
  );
program
  .command('extend <instance>')
  .description('extend an active grant; the requester is told and the reminder moves with the expiry')
  .requiredOption('--until <when>', 'new expiry: a date (2026-12-31), a duration from now (30d) or "permanent"')
  .option('--reason <text>', 'why (the requester reads it)')
  .option('--by <who>', 'operator name for the audit trail', process.env.USER)
  .action(async (instance: string, opts: { until: string; reason?: string; by?: string }) =>
    (await operate()).runExtend(instance, opts)
  );
program
  .command('reconcile')
  .description('start approved instances that have no workflow; report whitelist entries with no live grant')
  .option('--since <duration>', 'how far back to look for approvals', '24h')
  .option('--fix', 'restore whitelist entries whose grant is no longer live to the state the grant found')
  .option('--trigger', 'run the approval-plus-reconcile Schedule now, on the workers, instead of here')
  .action(async (opts: { since: string; fix?: boolean; trigger?: boolean }) =>
    (await import('./reconcile.js')).runReconcile(opts)
  );
program
  .command('grants')
  .description('the live grants, one line each: workflow id, requester (opaque ref), phase, expiry, devices; paged')
  .option('--expiring <duration>', 'only those whose access ends within this duration (7d, 12h…)')
  .option('--requester <id>', "only this requester's (the platform user id: Feishu open_id, DingTalk/WeCom userid)")
  .option('--platform <name>', 'only this platform: feishu | dingtalk | wecom')
  .option('--limit <n>', 'grants per page, 1–1000 (default 50)')
  .option('--page-token <token>', 'the next page, as the previous page printed it')
  .option('--json', 'print JSON')
  .action(async (opts: GrantsOptions) => (await operatorView()).runGrants(opts));
program
  .command('whois <mac>')
  .description('which grant holds a device (any MAC notation): since when, until when, what it replaced')
  .option('--json', 'print JSON')
  .action(async (mac: string, opts: { json?: boolean }) => (await operatorView()).runWhois(mac, opts));

const forward = program
  .command('forward')
  .description('events forwarded to downstream subscribers (routes with automation: forward)');
forward
  .command('list')
  .description('forwarded events, newest first: delivered, retrying (attempt, last failure) or failed (why)')
  .option('--failed', 'only failures no re-send has fixed yet')
  .option('--limit <n>', 'at most this many', '50')
  .option('--json', 'print JSON')
  .action(async (opts: { failed?: boolean; limit?: string; json?: boolean }) =>
    (await forwardCommands()).runForwardList(opts)
  );
forward
  .command('resend <workflowId>')
  .description('send a failed forward again (new run <id>-resend-<n>, same webhook-id, current retry policy)')
  .option('--force', 'also re-send one that was delivered')
  .option('--wait', 'wait until it is delivered or fails')
  .action(async (workflowId: string, opts: { force?: boolean; wait?: boolean }) =>
    (await forwardCommands()).runForwardResend(workflowId, opts)
  );

program.parseAsync(process.argv).catch((err: Error) => {
  console.error(`approval-plus: ${err.message}`);
  process.exit(1);
});
