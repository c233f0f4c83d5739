import { timingFor } from '../ingress/event-processor';
import { parseDurationMs } from '../domain/duration';
import { createNacAdapter } from '../nac';
import { createPlatforms } from '../platforms';
import { reconcileMissedApprovals, reconcileWhitelist } from '../reconcile/reconciler';
import { RECONCILE_SCHEDULE_ID } from '../reconcile/schedule';
import { configOrExit, connectClient } from './common';

/**
 * `approval-plus reconcile [--since 24h] [--fix] [--trigger]`: approved instances of routed codes with no workflow
 * are started (the REJECT_DUPLICATE id policy makes a second reconcile start nothing); whitelist entries tagged by
 * ApprovalPlus whose grant is not live are reported, and with --fix restored to the state their grant recorded.
 * --trigger runs the `approval-plus-reconcile` Schedule now instead (on the workers, visible in the Temporal UI).
 */
export async function runReconcile(opts: { since: string; fix?: boolean; trigger?: boolean }): Promise<void> {
  const config = configOrExit();
  let sinceMs: number;
  try {
    sinceMs = parseDurationMs(opts.since);
  } catch (err) {
    throw new Error(`--since: ${(err as Error).message}`);
  }
  const { client, close } = await connectClient(config);
  try {
    if (opts.trigger) {
      await client.schedule.getHandle(RECONCILE_SCHEDULE_ID).trigger();
      console.log(`triggered the ${RECONCILE_SCHEDULE_ID} schedule; its run appears in the Temporal UI.`);
      return;
    }
    const nac = createNacAdapter(config.nac);
    const deps = {
      client,
      routes: config.routes,
      platforms: createPlatforms(config),
      nac,
      timing: timingFor(config),
      approvalMaxAgeMs: parseDurationMs(config.reconcile.approvalMaxAge),
      progress: (line: string) => process.stderr.write(`… ${line}\n`),
    };
    const now = Date.now();
    const missed = await reconcileMissedApprovals(deps, { fromMs: now - sinceMs, toMs: now });
    for (const id of missed.started) console.log(`started  ${id}  (approved, no workflow)`);
    for (const r of missed.unlisted) console.log(`skipped  ${r}  (this platform cannot list instances)`);
    const whitelist = await reconcileWhitelist(deps, { fix: !!opts.fix });
    for (const o of whitelist.orphans) {
      const why = `grant ${o.grantId} is ${o.grant === 'NOT_FOUND' ? 'unknown to Temporal' : o.grant.toLowerCase()}`;
      if (o.action === 'reported') console.log(`orphan   ${o.mac}  (${why}; --fix restores it)`);
      else if (o.action === 'needs-review') console.log(`review   ${o.mac}  (${why}; prior state: ${o.prior})`);
      else console.log(`${o.action.padEnd(8)} ${o.mac}  (${why}; prior state: ${o.prior})`);
    }
    console.log(
      `reconcile: ${missed.checked} instance(s) checked, ${missed.started.length} started; ` +
        `${whitelist.checked} whitelist entr${whitelist.checked === 1 ? 'y' : 'ies'} checked, ` +
        `${whitelist.orphans.length} without a live grant${opts.fix ? ' fixed' : ''}.`
    );
    await nac.close?.();
  } finally {
    await close();
  }
}
