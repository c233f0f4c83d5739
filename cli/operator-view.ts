import { createNacAdapter } from '../nac';
import { grantListParams, InvalidPageTokenError, listGrants, toListArgs, type GrantRow } from '../operator/grants';
import { formatWhois, InvalidMacError, parseWhoisMac, whois } from '../operator/whois';
import { configOrExit, connectClient } from './common';

/** The CLI flag for each listing parameter, so a refusal names what the operator typed. */
const FLAG: Record<string, string> = {
  expiring: '--expiring',
  requester: '--requester',
  platform: '--platform',
  limit: '--limit',
  pageToken: '--page-token',
};

export interface GrantsOptions {
  expiring?: string;
  requester?: string;
  platform?: string;
  limit?: string;
  pageToken?: string;
  json?: boolean;
}

/** `approval-plus grants [--expiring 7d] [--requester <id>] [--platform …] [--limit N] [--page-token T] [--json]` */
export async function runGrants(opts: GrantsOptions): Promise<void> {
  const { json, ...flags } = opts;
  const parsed = grantListParams.safeParse(
    Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined))
  );
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    console.error(`approval-plus: ${FLAG[String(issue.path[0])] ?? 'grants'}: ${issue.message}`);
    process.exit(2);
  }
  const { filter, page } = toListArgs(parsed.data);
  const config = configOrExit();
  const { client, close } = await connectClient(config);
  try {
    let listed: Awaited<ReturnType<typeof listGrants>>;
    try {
      listed = await listGrants(client, filter, page);
    } catch (err) {
      if (!(err instanceof InvalidPageTokenError)) throw err;
      console.error(`approval-plus: --page-token: ${err.message}`);
      process.exit(2);
    }
    const { grants, nextPageToken } = listed;
    if (json) {
      console.log(JSON.stringify({ grants, nextPageToken }, null, 2));
      return;
    }
    printTable(grants);
    if (nextPageToken) {
      // The same filters again, in a fixed order, quoted only where a shell needs it.
      const again = Object.entries(FLAG)
        .filter(([k]) => k !== 'pageToken' && flags[k as keyof typeof flags] !== undefined)
        .map(([k, flag]) => {
          const v = flags[k as keyof typeof flags]!;
          return `${flag} ${/^[\w.:@-]+$/.test(v) ? v : JSON.stringify(v)}`;
        });
      console.log(`\nmore: npx approval-plus grants ${[...again, `--page-token ${nextPageToken}`].join(' ')}`);
    }
  } finally {
    await close();
  }
}

function printTable(rows: GrantRow[]): void {
  if (rows.length === 0) {
    console.log('no live grants match');
    return;
  }
  const cells = rows.map((r) => ({
    id: r.workflowId,
    requester: r.requesterRef ?? '?',
    phase: r.phase,
    expires: r.expiresAt ?? 'permanent',
    devices: r.devices.join(', ') || '-',
    note: r.note,
  }));
  const w = (k: 'id' | 'requester' | 'phase' | 'expires', title: string) =>
    Math.max(title.length, ...cells.map((c) => c[k].length));
  const [wi, wr, wp, we] = [
    w('id', 'WORKFLOW ID'),
    w('requester', 'REQUESTER'),
    w('phase', 'PHASE'),
    w('expires', 'EXPIRES'),
  ];
  console.log(
    `${'WORKFLOW ID'.padEnd(wi)}  ${'REQUESTER'.padEnd(wr)}  ${'PHASE'.padEnd(wp)}  ${'EXPIRES'.padEnd(we)}  DEVICES`
  );
  for (const c of cells) {
    console.log(
      `${c.id.padEnd(wi)}  ${c.requester.padEnd(wr)}  ${c.phase.padEnd(wp)}  ${c.expires.padEnd(we)}  ${c.devices}`
    );
    if (c.note) console.log(`  ↳ ${c.note}`);
  }
}

/** `approval-plus whois <mac> [--json]` */
export async function runWhois(mac: string, opts: { json?: boolean }): Promise<void> {
  try {
    parseWhoisMac(mac); // refuse a typo before reaching for Temporal and the NAC
  } catch (err) {
    if (!(err instanceof InvalidMacError)) throw err;
    console.error(`approval-plus: ${err.message}`);
    process.exit(2);
  }
  const config = configOrExit();
  const { client, close } = await connectClient(config);
  const nac = createNacAdapter(config.nac);
  try {
    const answer = await whois({ client, nac }, mac);
    console.log(opts.json ? JSON.stringify(answer, null, 2) : formatWhois(answer).join('\n'));
  } finally {
    await nac.close?.();
    await close();
  }
}
