import { createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { decodeTypedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import type { temporal } from '@temporalio/proto';
import pLimit from 'p-limit';
import { z } from 'zod';
import { parseDurationMs } from '../domain/duration';
import { PLATFORM_NAMES, type PlatformName } from '../domain/types';
import { requesterRef } from '../platforms/requester-ref';
import { queryRun } from '../temporal/query';
import {
  ApprovalPlatformKey,
  GrantExpiresAtKey,
  GrantPhaseKey,
  RequesterRefKey,
  statusQuery,
  type GrantPhase,
  type GrantStatus,
} from '../workflows/definitions';

/**
 * The live grants, for operators (`approval-plus grants`, `GET /api/grants`): one visibility page of running
 * `nacWhitelistWorkflow` runs, filtered by search attributes, each completed by its run's `status` query.
 * Cost per call: one ListWorkflowExecutions plus one query per row (at most QUERY_CONCURRENCY at a time), whatever
 * the number of live grants — the caller pages on with `nextPageToken`.
 */

export const DEFAULT_PAGE_SIZE = 50;
/** The dev server's and the SQL visibility stores' own cap on one page. */
export const MAX_PAGE_SIZE = 1000;
const WORKFLOW_TYPE = 'nacWhitelistWorkflow';
/** Queries in flight at once: each one is a workflow task on some worker, so a page must not flood the workers. */
const QUERY_CONCURRENCY = 16;

export interface GrantFilter {
  expiringWithinMs?: number;
  requesterId?: string;
  platform?: PlatformName;
}

export interface GrantRow {
  workflowId: string;
  platform: PlatformName;
  instanceId: string;
  requesterRef?: string;
  phase: GrantPhase | 'unknown';
  devices: string[];
  expiresAt?: string;
  grantedAt?: string;
  startTime: string;
  /** Why phase/devices are unknown: the run's status query failed (no worker, a time-out). */
  note?: string;
}

/**
 * The listing's parameters as text, from a URL query (`GET /api/grants`) or the CLI's flags: one schema, so both
 * refuse the same things with the same words. Unknown keys are refused, not ignored (a typo must not widen a listing).
 */
export const grantListParams = z.strictObject({
  expiring: z
    .string()
    .transform((text, ctx) => {
      try {
        const ms = parseDurationMs(text);
        if (ms > 0) return ms;
        ctx.addIssue({ code: 'custom', message: 'must be longer than 0' });
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
      return z.NEVER;
    })
    .optional(),
  requester: z.string().min(1).max(200).optional(),
  platform: z.enum(PLATFORM_NAMES).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional(),
  pageToken: z
    .string()
    .max(8192)
    .regex(/^[A-Za-z0-9_-]+$/, 'not a page token from an earlier answer')
    .optional(),
});
export type GrantListParams = z.input<typeof grantListParams>;

/** Parsed parameters → listGrants' arguments. */
export function toListArgs(params: z.output<typeof grantListParams>): {
  filter: GrantFilter;
  page: { pageSize?: number; nextPageToken?: string };
} {
  return {
    filter: {
      ...(params.expiring !== undefined ? { expiringWithinMs: params.expiring } : {}),
      ...(params.requester !== undefined ? { requesterId: params.requester } : {}),
      ...(params.platform ? { platform: params.platform } : {}),
    },
    page: {
      ...(params.limit !== undefined ? { pageSize: params.limit } : {}),
      ...(params.pageToken ? { nextPageToken: params.pageToken } : {}),
    },
  };
}

/** Visibility query text for `filter`: running grants only, narrowed by the grant search attributes. */
export function grantsQuery(filter: GrantFilter, nowMs: number): string {
  const clauses = [`ExecutionStatus = 'Running'`, `WorkflowType = '${WORKFLOW_TYPE}'`];
  if (filter.platform) clauses.push(`${ApprovalPlatformKey.name} = '${filter.platform}'`);
  if (filter.requesterId !== undefined) {
    // The search attribute holds a hash of (platform, id): without a platform the id may be any platform's.
    const refs = (filter.platform ? [filter.platform] : PLATFORM_NAMES).map((p) =>
      requesterRef(p, filter.requesterId!)
    );
    clauses.push(
      refs.length === 1
        ? `${RequesterRefKey.name} = '${refs[0]}'`
        : `${RequesterRefKey.name} IN (${refs.map((r) => `'${r}'`).join(', ')})`
    );
  }
  if (filter.expiringWithinMs !== undefined) {
    // Permanent grants have no GrantExpiresAt, so no comparison matches them; overdue ones (still revoking) do.
    clauses.push(`${GrantExpiresAtKey.name} <= '${new Date(nowMs + filter.expiringWithinMs).toISOString()}'`);
  }
  return clauses.join(' AND ');
}

/** A page token that this listing did not hand out (mistyped, cut short, or from other filters). */
export class InvalidPageTokenError extends Error {
  override readonly name = 'InvalidPageTokenError';
}

/**
 * Page tokens are Temporal's opaque bytes plus a 4-byte check bound to the filter, as base64url text. Temporal answers
 * a token it cannot parse with UNKNOWN, which the client retries for ~20 s before failing: the check refuses a bad
 * one at once instead. (A check, not a signature: a token only says where the next page starts.)
 */
export function encodePageToken(token: Uint8Array | null | undefined, filter: GrantFilter): string | undefined {
  if (!token || token.length === 0) return undefined;
  return Buffer.concat([token, pageTokenCheck(token, filter)]).toString('base64url');
}

export function decodePageToken(text: string, filter: GrantFilter): Uint8Array {
  const bytes = /^[A-Za-z0-9_-]+$/.test(text) ? Buffer.from(text, 'base64url') : Buffer.alloc(0);
  const token = bytes.subarray(0, -4);
  if (token.length === 0 || !pageTokenCheck(token, filter).equals(bytes.subarray(-4)))
    throw new InvalidPageTokenError('not a page token of this listing (the filters must be the same as for page 1)');
  return token;
}

function pageTokenCheck(token: Uint8Array, filter: GrantFilter): Buffer {
  const key = JSON.stringify([filter.platform ?? '', filter.requesterId ?? '', filter.expiringWithinMs ?? '']);
  return createHash('sha256').update(key).update(token).digest().subarray(0, 4);
}

export async function listGrants(
  client: Client,
  filter: GrantFilter,
  page: { pageSize?: number; nextPageToken?: string; nowMs?: number } = {}
): Promise<{ grants: GrantRow[]; nextPageToken?: string }> {
  const res = await listGrantExecutions(client, filter, page);
  const limit = pLimit(QUERY_CONCURRENCY);
  const grants = await Promise.all(
    (res.executions ?? []).map((raw) => {
      const workflowId = raw.execution?.workflowId ?? '';
      const attrs = decodeTypedSearchAttributes(raw.searchAttributes?.indexedFields);
      const visible = {
        platform: attrs.get(ApprovalPlatformKey),
        requesterRef: attrs.get(RequesterRefKey),
        phase: attrs.get(GrantPhaseKey),
        expiresAt: attrs.get(GrantExpiresAtKey),
      };
      const { platform, instanceId } = splitWorkflowId(workflowId, visible.platform);
      const base = {
        workflowId,
        platform,
        instanceId,
        ...(visible.requesterRef ? { requesterRef: visible.requesterRef } : {}),
        startTime: (optionalTsToDate(raw.startTime) ?? new Date(0)).toISOString(),
      };
      return limit(async (): Promise<GrantRow> => {
        try {
          const status = await queryStatus(client, workflowId);
          return {
            ...base,
            phase: status.phase,
            // An 'invalid' entry is text from the form that is not a MAC: no device.
            devices: status.macs.filter((m) => m.state !== 'invalid').map((m) => m.mac),
            ...(status.expiresAt ? { expiresAt: status.expiresAt } : {}),
            ...(status.grantedAt ? { grantedAt: status.grantedAt } : {}),
          };
        } catch (err) {
          return {
            ...base,
            phase: 'unknown',
            devices: [],
            // Visibility still knows the expiry (and the last phase the run published): better than nothing.
            ...(visible.expiresAt ? { expiresAt: visible.expiresAt.toISOString() } : {}),
            note: `status query failed: ${firstLine(err)}${visible.phase ? ` (last published phase: ${visible.phase})` : ''}`,
          };
        }
      });
    })
  );
  const nextPageToken = encodePageToken(res.nextPageToken, filter);
  return { grants, ...(nextPageToken ? { nextPageToken } : {}) };
}

/** One visibility page of live grant runs, without asking the runs anything. */
export function listGrantExecutions(
  client: Client,
  filter: GrantFilter,
  page: { pageSize?: number; nextPageToken?: string; nowMs?: number } = {}
): Promise<temporal.api.workflowservice.v1.IListWorkflowExecutionsResponse> {
  // The SDK's list() iterator pages internally and never hands out its token: call the service for one page.
  return client.workflowService.listWorkflowExecutions({
    namespace: client.options.namespace,
    query: grantsQuery(filter, page.nowMs ?? Date.now()),
    pageSize: Math.min(page.pageSize ?? DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
    nextPageToken: page.nextPageToken ? decodePageToken(page.nextPageToken, filter) : undefined,
  });
}

/** The run's `status` query, answered within QUERY_TIMEOUT_MS (temporal/query.ts). */
export function queryStatus(client: Client, workflowId: string): Promise<GrantStatus> {
  return queryRun(client, workflowId, statusQuery);
}

/** `<platform>-<instance id>`; the ApprovalPlatform attribute, when present, says where the prefix ends. */
export function splitWorkflowId(
  workflowId: string,
  platformAttr?: string
): { platform: PlatformName; instanceId: string } {
  const platform =
    PLATFORM_NAMES.find((p) => p === platformAttr) ??
    PLATFORM_NAMES.find((p) => workflowId.startsWith(`${p}-`)) ??
    'feishu';
  const prefix = `${platform}-`;
  return { platform, instanceId: workflowId.startsWith(prefix) ? workflowId.slice(prefix.length) : workflowId };
}

export function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0]!;
}
