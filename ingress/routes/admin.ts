import type Router from '@koa/router';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { parseExtendUntil } from '../../domain/extension';
import { isIntegrationError } from '../../domain/errors';
import type { NacAdapter } from '../../nac/adapter';
import { grantListParams, InvalidPageTokenError, listGrants, toListArgs } from '../../operator/grants';
import { InvalidMacError, whois } from '../../operator/whois';
import { extendUpdate, statusQuery } from '../../workflows/definitions';
import type { EventProcessor } from '../event-processor';
import { HttpError } from '../http-error';
import { adminAuth } from '../middleware/admin-auth';
import { rawJsonBody } from '../middleware/raw-json-body';

/** `feishu-ABC` stays as is; a bare instance code is taken as a Feishu one. */
export function toWorkflowId(id: string): string {
  return /^(feishu|dingtalk|wecom)-/.test(id) ? id : `feishu-${id}`;
}

const cancelBody = z.object({ reason: z.string().min(1).max(500), by: z.string().max(200).optional() });
const extendBody = z.object({
  until: z.string().min(1).max(100),
  reason: z.string().max(500).optional(),
  by: z.string().max(200).optional(),
});

/** The request's JSON body, checked against `schema`; 400 naming the first bad field otherwise. */
function parseBody<T>(schema: z.ZodType<T>, raw: Buffer | undefined): T {
  let body: unknown;
  try {
    body = JSON.parse(raw!.toString('utf8'));
  } catch {
    throw new HttpError(400, 'malformed_json', 'body is not valid JSON');
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new HttpError(400, 'invalid_body', `${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * The operator API, behind ADMIN_TOKEN: `GET /api/approvals/:id`, `POST /api/approvals/:id/cancel`,
 * `POST /api/approvals/:id/extend` (`{ until: "2026-12-31" | "30d" | "permanent", reason?, by? }`),
 * `GET /api/grants?expiring=7d&requester=…&platform=…&limit=…&pageToken=…` (the live grants, one page),
 * `GET /api/whois/:mac` (which grant holds a device). `nac` is called only by whois, on its first request.
 */
export function mountAdminApi(
  router: Router,
  deps: { client: Client; processor: EventProcessor; adminToken?: string; nac?: () => NacAdapter }
): void {
  const auth = adminAuth(deps.adminToken);
  router.get('/api/grants', auth, async function listLiveGrants(ctx) {
    const parsed = grantListParams.safeParse(ctx.query);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : 'query');
      throw new HttpError(400, 'invalid_query', `${where}: ${issue.message}`);
    }
    const { filter, page } = toListArgs(parsed.data);
    try {
      ctx.body = await listGrants(deps.client, filter, page);
    } catch (err) {
      if (err instanceof InvalidPageTokenError)
        throw new HttpError(400, 'invalid_page_token', `pageToken: ${err.message}`);
      throw err;
    }
  });
  router.get('/api/whois/:mac', auth, async function whoisDevice(ctx) {
    if (!deps.nac) throw new HttpError(503, 'nac_unavailable', 'this ingress has no NAC adapter configured');
    try {
      ctx.body = await whois({ client: deps.client, nac: deps.nac() }, ctx.params.mac!);
    } catch (err) {
      if (err instanceof InvalidMacError) throw new HttpError(400, 'invalid_mac', err.message);
      if (isIntegrationError(err)) throw new HttpError(502, 'nac_error', `the NAC lookup failed: ${err.message}`);
      throw err;
    }
  });
  router.get('/api/approvals/:id', auth, async function getApproval(ctx) {
    const workflowId = toWorkflowId(ctx.params.id!);
    const handle = deps.client.workflow.getHandle(workflowId);
    try {
      const desc = await handle.describe();
      const status = desc.status.name === 'RUNNING' ? await handle.query(statusQuery) : undefined;
      const result = desc.status.name === 'COMPLETED' ? await handle.result() : undefined;
      ctx.body = {
        workflowId,
        runId: desc.runId,
        execution: desc.status.name,
        startTime: desc.startTime,
        closeTime: desc.closeTime,
        summary: await desc.staticSummary(),
        status,
        result,
      };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new HttpError(404, 'not_found', `no grant ${workflowId}`);
      throw err;
    }
  });
  router.post(
    '/api/approvals/:id/cancel',
    auth,
    rawJsonBody({ limitBytes: 16 * 1024 }),
    async function cancelApproval(ctx) {
      const body = parseBody(cancelBody, ctx.request.rawBody);
      const workflowId = toWorkflowId(ctx.params.id!);
      const result = await deps.processor.signalCancel(workflowId, {
        reason: body.reason,
        by: body.by ?? 'operator-api',
      });
      if (result.outcome === 'no-live-grant') throw new HttpError(404, 'no_live_grant', `no live grant ${workflowId}`);
      ctx.status = 202;
      ctx.body = { workflowId, outcome: result.outcome };
    }
  );
  router.post(
    '/api/approvals/:id/extend',
    auth,
    rawJsonBody({ limitBytes: 16 * 1024 }),
    async function extendApproval(ctx) {
      const body = parseBody(extendBody, ctx.request.rawBody);
      let expiresAt: string | null;
      try {
        ({ expiresAt } = parseExtendUntil(body.until, Date.now()));
      } catch (err) {
        throw new HttpError(400, 'invalid_until', (err as Error).message);
      }
      const workflowId = toWorkflowId(ctx.params.id!);
      try {
        const status = await deps.client.workflow.getHandle(workflowId).executeUpdate(extendUpdate, {
          args: [{ expiresAt, reason: body.reason, by: body.by ?? 'operator-api' }],
        });
        ctx.body = { workflowId, status };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError)
          throw new HttpError(404, 'no_live_grant', `no live grant ${workflowId}`);
        // The workflow's validator refused it (not active, not later than the current expiry…): a client error.
        if (err instanceof WorkflowUpdateFailedError)
          throw new HttpError(409, 'extension_refused', (err.cause as Error | undefined)?.message ?? err.message);
        throw err;
      }
    }
  );
}
