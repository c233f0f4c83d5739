import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { tagDescription } from '../nac/tag';
import { listGrantExecutions, listGrants, type GrantRow } from '../operator/grants';
import type { WhoisAnswer } from '../operator/whois';
import { requesterRef } from '../platforms/requester-ref';
import type { DingTalkFormInput } from '../simulators/dingtalk/server';
import { ApprovalPlatformKey, TASK_QUEUE, workflowIdFor } from '../workflows/definitions';
import { APPROVAL_CODE, ROOT, startTestStack, until, type TestStack } from './support/harness';

/**
 * The operator's view on the real dev server: `approval-plus grants` and `whois` (the real bin as a child process)
 * and `GET /api/grants`, `GET /api/whois/:mac`, over grants of different durations, requesters and platforms.
 */
describe('operator view: grants and whois (real Temporal dev server)', () => {
  let t: TestStack;
  const adminToken = 'test-admin-token-operator-view';
  const DAY = 86_400_000;
  const mac = {
    day: '00:1B:44:77:00:01', // alice, 1天, created by the grant
    month: '00:1B:44:77:00:02', // alice, 30天, an endpoint that existed before (RegisteredDevices)
    forever: '00:1B:44:77:00:03', // bob, 永久
    week: '00:1B:44:77:00:04', // alice on DingTalk (same user id string), 7天
    orphan: '00:1B:44:77:00:05', // a grant terminated by hand: its entry stays
    notOurs: '00:1B:44:77:00:10', // registered by the network team, never granted
    unknown: '00:1B:44:77:00:11', // tagged by a grant Temporal never saw
    absent: '00:1B:44:77:00:99',
  };
  const ids = {} as Record<'day' | 'month' | 'forever' | 'week' | 'orphan', string>;
  let priorOfMonth: Record<string, unknown>;

  const cli = (...args: string[]) =>
    // Asynchronously: the simulators it talks to run in this process.
    promisify(execFile)(process.execPath, [path.join(ROOT, 'bin', 'approval-plus.mjs'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...t.env },
    });
  const cliJson = async <T>(...args: string[]): Promise<T> => JSON.parse((await cli(...args, '--json')).stdout) as T;
  const api = (pathAndQuery: string) =>
    fetch(`${t.ingressUrl}${pathAndQuery}`, { headers: { authorization: `Bearer ${adminToken}` } });
  const apiJson = async <T>(pathAndQuery: string): Promise<T> => {
    const res = await api(pathAndQuery);
    assert.equal(res.status, 200, `${pathAndQuery}: ${await res.clone().text()}`);
    return (await res.json()) as T;
  };
  const idsOf = (rows: GrantRow[]) => rows.map((r) => r.workflowId).sort();
  const sorted = (...xs: string[]) => [...xs].sort();

  before(async () => {
    t = await startTestStack({ env: { ADMIN_TOKEN: adminToken } });
    t.nacSim!.store.seed({ mac: mac.month, group: 'RegisteredDevices', description: 'laptop, asset 4711' } as never);
    t.nacSim!.store.seed({ mac: mac.notOurs, group: 'RegisteredDevices', description: 'printer, asset 9001' } as never);
    const tag = {
      grantId: 'feishu-never-started',
      owner: 'x',
      approvalCode: APPROVAL_CODE,
      origin: 'created' as const,
    };
    t.nacSim!.store.seed({
      mac: mac.unknown,
      groupId: t.nacSim!.whitelistGroupId,
      staticGroupAssignment: true,
      description: tagDescription(tag),
    } as never);
    priorOfMonth = (await t.iseEndpoint(mac.month))!;

    ids.day = workflowIdFor('feishu', t.createApproval(mac.day, { duration: '1天', openId: 'ou_alice' }));
    ids.month = workflowIdFor('feishu', t.createApproval(mac.month, { duration: '30天', openId: 'ou_alice' }));
    ids.forever = workflowIdFor('feishu', t.createApproval(mac.forever, { duration: '永久', openId: 'ou_bob' }));
    ids.orphan = workflowIdFor('feishu', t.createApproval(mac.orphan, { duration: '1天', openId: 'ou_carol' }));
    const form: DingTalkFormInput[] = [
      { id: 'TextareaField-macs', name: 'MAC地址', componentType: 'TextareaField', value: mac.week },
      { id: 'DDSelectField-dur', name: '有效期', componentType: 'DDSelectField', value: '7天' },
    ];
    const ding = t.dingtalkSim!.createInstance({
      process_code: 'PROC-WIFI-ACCESS-SANDBOX',
      originator_user_id: 'ou_alice',
      form,
    });
    ids.week = workflowIdFor('dingtalk', ding.process_instance_id);
    await Promise.all(Object.values(ids).map((id) => t.waitForPhase(id, ['active'])));
    // Terminate skips every compensation: the orphan's whitelist entry stays behind with its tag.
    await t.client.workflow.getHandle(ids.orphan).terminate('simulating an operator mistake');
    // Visibility is eventually consistent: wait until the four live grants are listed with their attributes.
    await until('the live grants in visibility', async () => {
      const { grants } = await listGrants(t.client, {});
      return grants.length === 4 && grants.every((g) => g.requesterRef) ? true : undefined;
    });
  });
  after(async () => {
    await t?.close();
  });

  it('grants: every live grant with requester, devices, phase and expiry (CLI table, API)', async () => {
    const [table, json] = await Promise.all([
      cli('grants'),
      apiJson<{ grants: GrantRow[]; nextPageToken?: string }>('/api/grants'),
    ]);
    const all = sorted(ids.day, ids.month, ids.forever, ids.week);
    assert.deepEqual(idsOf(json.grants), all, 'the terminated grant is not live');
    assert.equal(json.nextPageToken, undefined);

    const row = (id: string) => json.grants.find((g) => g.workflowId === id)!;
    assert.deepEqual(row(ids.day).devices, [mac.day]);
    assert.equal(row(ids.day).phase, 'active');
    assert.equal(row(ids.day).platform, 'feishu');
    assert.equal(row(ids.day).instanceId, ids.day.slice('feishu-'.length));
    assert.equal(row(ids.day).requesterRef, requesterRef('feishu', 'ou_alice'));
    assert.ok(row(ids.day).grantedAt, 'grantedAt from the status query');
    assert.ok(Math.abs(Date.parse(row(ids.day).expiresAt!) - Date.now() - DAY) < 60_000, '1天');
    assert.equal(row(ids.forever).expiresAt, undefined, 'permanent');
    assert.equal(row(ids.week).platform, 'dingtalk');
    assert.equal(row(ids.week).requesterRef, requesterRef('dingtalk', 'ou_alice'));

    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0]!, /^WORKFLOW ID\s+REQUESTER\s+PHASE\s+EXPIRES\s+DEVICES$/);
    assert.equal(lines.length, 5);
    assert.match(
      table.stdout,
      new RegExp(`${ids.forever}\\s+${requesterRef('feishu', 'ou_bob')}\\s+active\\s+permanent\\s+${mac.forever}`)
    );
  });

  it('grants --expiring, --requester (all platforms, or one), --platform narrow the listing', async () => {
    const [expiring, aliceOnDingTalk, alice, aliceFeishu, dingtalk, bob, nobody, expiringFeishu] = await Promise.all([
      cliJson<{ grants: GrantRow[] }>('grants', '--expiring', '7d'),
      cliJson<{ grants: GrantRow[] }>('grants', '--requester', 'ou_alice', '--platform', 'dingtalk'),
      apiJson<{ grants: GrantRow[] }>('/api/grants?requester=ou_alice'),
      apiJson<{ grants: GrantRow[] }>('/api/grants?requester=ou_alice&platform=feishu'),
      apiJson<{ grants: GrantRow[] }>('/api/grants?platform=dingtalk'),
      apiJson<{ grants: GrantRow[] }>('/api/grants?requester=ou_bob&expiring=365d'),
      apiJson<{ grants: GrantRow[] }>('/api/grants?requester=ou_nobody'),
      apiJson<{ grants: GrantRow[] }>('/api/grants?expiring=7d&platform=feishu'),
    ]);
    assert.deepEqual(idsOf(expiring.grants), sorted(ids.day, ids.week), '1天 and 7天; not 30天, not permanent');
    assert.deepEqual(idsOf(aliceOnDingTalk.grants), [ids.week]);
    assert.deepEqual(idsOf(alice.grants), sorted(ids.day, ids.month, ids.week), 'her Feishu and DingTalk grants');
    assert.deepEqual(idsOf(aliceFeishu.grants), sorted(ids.day, ids.month));
    assert.deepEqual(idsOf(dingtalk.grants), [ids.week]);
    assert.deepEqual(idsOf(bob.grants), [], "bob's only grant is permanent: it never expires within a year");
    assert.deepEqual(nobody.grants, []);
    assert.deepEqual(idsOf(expiringFeishu.grants), [ids.day]);
  });

  it('grants pages: --limit 2 → a page token → the rest, each grant once (CLI and API)', async () => {
    // The table says how to get the next page, with the same filters; that command gives the rest.
    const table = await cli('grants', '--limit', '2');
    const onCli = table.stdout.split('\n').flatMap((l) => /^((?:feishu|dingtalk|wecom)-\S+)/.exec(l)?.[1] ?? []);
    assert.equal(onCli.length, 2, table.stdout);
    const more = /more: npx approval-plus grants --limit 2 --page-token ([A-Za-z0-9_-]+)/.exec(table.stdout);
    assert.ok(more, table.stdout);
    let token: string | undefined = more[1];
    const rest = await cliJson<{ grants: GrantRow[]; nextPageToken?: string }>(
      'grants',
      '--limit',
      '2',
      '--page-token',
      token!
    );
    onCli.push(...idsOf(rest.grants));
    assert.deepEqual(onCli.sort(), sorted(ids.day, ids.month, ids.forever, ids.week));

    // The API the same way, to the end: the last page has no token.
    const first = await apiJson<{ grants: GrantRow[]; nextPageToken?: string }>('/api/grants?limit=2');
    assert.equal(first.grants.length, 2);
    assert.ok(first.nextPageToken, 'a full page hands out the next page token');
    const seen = [...idsOf(first.grants)];
    token = first.nextPageToken;
    for (let pages = 0; token && pages < 3; pages++) {
      const next: { grants: GrantRow[]; nextPageToken?: string } = await apiJson(
        `/api/grants?limit=2&pageToken=${encodeURIComponent(token)}`
      );
      seen.push(...idsOf(next.grants));
      token = next.nextPageToken;
    }
    assert.equal(token, undefined, 'the last page has no token');
    assert.deepEqual(seen.sort(), sorted(ids.day, ids.month, ids.forever, ids.week));
  });

  it('whois: a device held by a live grant — since, until, what it replaced (CLI, CLI --json, API)', async () => {
    const [text, json, fromApi, existing] = await Promise.all([
      cli('whois', '001b.4477.0001'), // Cisco notation: any notation names the device
      cliJson<WhoisAnswer>('whois', '00-1b-44-77-00-01'),
      apiJson<WhoisAnswer>(`/api/whois/${encodeURIComponent('001B44770001')}`),
      apiJson<WhoisAnswer>(`/api/whois/${encodeURIComponent(mac.month)}`),
    ]);
    assert.equal(json.verdict, 'live');
    assert.equal(json.mac, '001b44770001');
    assert.equal(json.grant!.workflowId, ids.day);
    assert.equal(json.grant!.execution, 'RUNNING');
    assert.equal(json.grant!.phase, 'active');
    assert.equal(json.grant!.requesterRef, requesterRef('feishu', 'ou_alice'));
    assert.ok(json.grant!.grantedAt);
    assert.ok(json.grant!.expiresAt);
    assert.deepEqual(json.holding, { mac: '001b44770001', display: mac.day, prior: null });
    assert.deepEqual(fromApi, json);
    assert.match(text.stdout, new RegExp(`^${mac.day}: held by grant ${ids.day} \\(live, phase active\\)`));
    assert.match(text.stdout, /replaced: +nothing — the grant created this endpoint; undo deletes it/);
    assert.match(text.stdout, /until: +20\d\d-/);

    assert.equal(existing.verdict, 'live');
    assert.equal(existing.grant!.workflowId, ids.month);
    assert.equal(existing.holding!.prior!.group, priorOfMonth.groupId, 'the group it was in before');
    assert.equal(existing.holding!.prior!.tag, undefined);
    assert.equal(existing.endpoint!.group, t.nacSim!.whitelistGroupId, 'the whitelist group now');
  });

  it('whois: not on the NAC, on the NAC but not ours, an orphan, a grant Temporal does not know', async () => {
    const cases = [
      [mac.absent, 'not-on-nac', /not on the NAC \(sim\): no endpoint, so no grant holds it/],
      [mac.notOurs, 'not-ours', /on the NAC \(sim\) but not granted by ApprovalPlus — no ApprovalPlus tag/],
      [mac.orphan, 'orphan', /which is no longer running \(terminated[^)]*\): no live grant[\s\S]*reconcile --fix/],
      [mac.unknown, 'unknown-grant', /whitelisted by grant feishu-never-started, which Temporal does not know/],
    ] as const;
    await Promise.all(
      cases.map(async ([device, verdict, says]) => {
        const [text, fromApi] = await Promise.all([
          cli('whois', device),
          apiJson<WhoisAnswer>(`/api/whois/${encodeURIComponent(device)}`),
        ]);
        assert.match(text.stdout, says, device);
        assert.equal(fromApi.verdict, verdict, device);
      })
    );
    const orphan = await apiJson<WhoisAnswer>(`/api/whois/${encodeURIComponent(mac.orphan)}`);
    assert.equal(orphan.grant!.workflowId, ids.orphan);
    assert.equal(orphan.grant!.execution, 'TERMINATED');
    assert.match(orphan.advice!, /approval-plus reconcile --fix/);
  });

  it('a run whose status query fails is listed as unknown with a note, not a failed listing', async () => {
    // A grant run no worker polls for (its task queue has none): its status query cannot be answered.
    const id = 'wecom-no-worker-0001';
    const handle = await t.client.workflow.start('nacWhitelistWorkflow', {
      workflowId: id,
      taskQueue: `${TASK_QUEUE}-nobody-polls`,
      args: [{}],
      typedSearchAttributes: [{ key: ApprovalPlatformKey, value: 'wecom' }],
    });
    try {
      await until('the run in visibility', async () => {
        const r = await listGrantExecutions(t.client, { platform: 'wecom' });
        return r.executions?.length ? true : undefined;
      });
      const { stdout } = await cli('grants', '--platform', 'wecom');
      assert.match(stdout, new RegExp(`${id}\\s+\\?\\s+unknown\\s+permanent\\s+-`));
      assert.match(stdout, /↳ status query failed: /);
      const json = await apiJson<{ grants: GrantRow[] }>('/api/grants?platform=wecom');
      assert.equal(json.grants.length, 1);
      assert.equal(json.grants[0]!.phase, 'unknown');
      assert.deepEqual(json.grants[0]!.devices, []);
      assert.match(json.grants[0]!.note!, /status query failed/);
    } finally {
      await handle.terminate('test over');
    }
  });

  it('refuses bad input precisely: 400 naming the parameter, exit 2 from the CLI', async () => {
    const bad: [string, RegExp][] = [
      ['/api/grants?expiring=soon', /^expiring: invalid duration "soon"/],
      ['/api/grants?expiring=0', /^expiring: must be longer than 0/],
      ['/api/grants?platform=qq', /^platform: /],
      ['/api/grants?limit=0', /^limit: /],
      ['/api/grants?limit=abc', /^limit: /],
      ['/api/grants?pageToken=not%20a%20token', /^pageToken: not a page token/],
      ['/api/grants?platfrom=feishu', /platfrom/],
      ['/api/grants?platform=feishu&platform=wecom', /^platform: /],
    ];
    for (const [url, message] of bad) {
      const res = await api(url);
      assert.equal(res.status, 400, url);
      const body = (await res.json()) as { error: string; message: string };
      assert.equal(body.error, 'invalid_query', url);
      assert.match(body.message, message, url);
    }
    // A token cut short, or one used with other filters than the page it came from: refused before Temporal sees it.
    const { nextPageToken: token } = await listGrants(t.client, {}, { pageSize: 1 });
    for (const url of [
      `/api/grants?pageToken=${token!.slice(0, -2)}`,
      `/api/grants?platform=feishu&pageToken=${token}`,
    ]) {
      const res = await api(url);
      assert.equal(res.status, 400, url);
      const body = (await res.json()) as { error: string; message: string };
      assert.equal(body.error, 'invalid_page_token', url);
      assert.match(body.message, /^pageToken: not a page token of this listing/);
    }
    const badMac = await api('/api/whois/00:1B:44:77:00');
    assert.equal(badMac.status, 400);
    assert.equal(((await badMac.json()) as { error: string }).error, 'invalid_mac');
    assert.equal((await fetch(`${t.ingressUrl}/api/grants`)).status, 401, 'behind ADMIN_TOKEN');

    await assert.rejects(cli('grants', '--expiring', 'soon'), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /approval-plus: --expiring: invalid duration "soon"/);
      return true;
    });
    await assert.rejects(cli('whois', 'ff:ff:ff:ff:ff:ff'), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /approval-plus: "ff:ff:ff:ff:ff:ff" is not a MAC address: .*broadcast/);
      return true;
    });
  });
});
