import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { findRoute, type AppConfig, type Route } from '../config/config';
import { findForwardRoutes, type ForwardingConfig } from '../forwarding/config';
import { forwardInputs, startForward } from '../forwarding/start';
import { parseDurationMs } from '../domain/duration';
import { REVOKING_STATUSES, type PlatformName } from '../domain/types';
import { requesterRef } from '../platforms/requester-ref';
import {
  ApprovalCodeKey,
  ApprovalPlatformKey,
  cancelSignal,
  GrantPhaseKey,
  RequesterRefKey,
  TASK_QUEUE,
  workflowIdFor,
} from '../workflows/definitions';
import type { NacWhitelistInput } from '../workflows/nac-whitelist.workflow';
import type { Logger } from '../app/logger';
import type { EventResult, InboundEvent } from './events';
import { TemporalUnavailableError } from './http-error';

/**
 * How long each platform waits for the answer to a push before it counts the push as failed and pushes again:
 * - Feishu 3 s, over HTTP and the long connection alike ("需要在 3 秒内…以 HTTP 200 状态码响应", 飞书 事件概述, doc copy
 *   wxkingstar/doc-hub-mcp feishu/003-服务端API/事件与回调/事件订阅/事件概述.md);
 * - DingTalk 1.5 s ("在1500ms内返回包含success的加密字符串", the 事件订阅 doc as quoted on developer.aliyun.com/ask/662484
 *   and republished on support.huaweicloud.com; the current doc says 2500 ms for check_url, so the stricter is kept);
 * - WeCom 5 s ("企业微信服务器在五秒内收不到响应会断掉连接，并且重新发起请求", 回调配置 90930).
 */
export const ANSWER_DEADLINE_MS: Record<PlatformName, number> = { feishu: 3000, dingtalk: 1500, wecom: 5000 };

/**
 * The Temporal budget of one event: its platform's deadline less a fifth for the rest of the answer (decryption,
 * the reply's encryption, the network back to the platform) (I).
 */
export function answerBudgetMs(platform: PlatformName): number {
  return Math.floor(ANSWER_DEADLINE_MS[platform] * 0.8);
}

/**
 * Turns a normalised platform event into durable Temporal state, within the platform's answer deadline:
 * APPROVED starts `<platform>-<instance>` (never twice, even after the first run closed); REVERTED / CANCELED /
 * DELETED signal `cancel` to the live grant; a leaver's live grants are each signalled. Anything Temporal does not
 * confirm within the budget raises TemporalUnavailableError (→ 503, the platform redelivers).
 */
export interface EventProcessorDeps {
  client: Client;
  routes: Route[];
  reminderLeadMs: number;
  nacStepTimeoutMs?: number;
  logger: Logger;
  /**
   * Total budget for the Temporal calls of one event: by default each platform's (`answerBudgetMs`); a number
   * applies to every platform (tests).
   */
  budgetMs?: number;
  /** `automation: forward` routes: each matching event starts one forwardEventWorkflow per subscriber. */
  forwarding?: ForwardingConfig;
}

export function startOptionsFor(
  route: Route,
  platform: PlatformName,
  instanceId: string,
  timing: { reminderLeadMs: number; nacStepTimeoutMs?: number },
  trigger: NacWhitelistInput['trigger']
) {
  const workflowId = workflowIdFor(platform, instanceId);
  const args: [NacWhitelistInput] = [
    {
      platform,
      instanceId,
      approvalCode: route.approvalCode,
      macFields: route.macFields,
      durationField: route.durationField,
      reminderLeadMs: timing.reminderLeadMs,
      nacStepTimeoutMs: timing.nacStepTimeoutMs,
      trigger,
    },
  ];
  return {
    workflowId,
    taskQueue: TASK_QUEUE,
    args,
    // One run per approval instance, ever: a running or closed run with this id makes the start throw
    // WorkflowExecutionAlreadyStartedError, so a redelivery hours later never grants again after a revocation.
    workflowIdReusePolicy: 'REJECT_DUPLICATE' as const,
    workflowIdConflictPolicy: 'FAIL' as const,
    staticSummary: `Wi‑Fi access · ${platform} approval ${route.approvalCode} · instance ${instanceId}`.slice(0, 200),
    staticDetails: [
      `**Automation:** nac-whitelist`,
      `**Platform:** ${platform}`,
      `**Approval code:** ${route.approvalCode}`,
      `**Instance:** ${instanceId}`,
      `**Started by:** ${trigger?.source ?? 'unknown'}${trigger?.eventId ? ` (event ${trigger.eventId})` : ''}`,
    ].join('\n\n'),
    typedSearchAttributes: [
      { key: ApprovalCodeKey, value: route.approvalCode },
      { key: ApprovalPlatformKey, value: platform },
      { key: GrantPhaseKey, value: 'fetching' },
    ],
  };
}

export class EventProcessor {
  /** Recently accepted event ids: a cheap first line of dedupe (the workflow id is the real one). */
  private readonly seen = new Map<string, EventResult>();
  /** Temporal calls still running, including those whose budget ran out (the client retries until the deadline). */
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly deps: EventProcessorDeps) {}

  async process(event: InboundEvent): Promise<EventResult> {
    const key = `${event.platform}:${event.eventId}`;
    const earlier = this.seen.get(key);
    if (earlier) return { ...earlier, outcome: earlier.outcome === 'started' ? 'duplicate' : earlier.outcome };
    const result = await this.withBudget(this.deps.budgetMs ?? answerBudgetMs(event.platform), () =>
      this.dispatch(event)
    );
    this.seen.set(key, result);
    if (this.seen.size > 10_000) this.seen.delete(this.seen.keys().next().value!);
    return result;
  }

  private async dispatch(event: InboundEvent): Promise<EventResult> {
    switch (event.kind) {
      case 'other':
        return { outcome: 'ignored-type' };
      case 'user-left':
        return this.revokeLeaver(event.platform, event.userId, event.eventId);
      case 'approval-status': {
        const route = findRoute(this.deps.routes, event.platform, event.approvalCode);
        const forwards = findForwardRoutes(this.deps.forwarding?.routes ?? [], event.platform, event.approvalCode);
        if (forwards.length === 0) return route ? this.automate(route, event) : { outcome: 'unrouted' };
        // Every matching route's workflow is started before the answer; on a 503 the platform redelivers and the
        // runs already started are found by id (REJECT_DUPLICATE), so each still runs once.
        const receivedAt = new Date();
        const inputs = forwardInputs(forwards, event, this.deps.forwarding!.retry, receivedAt);
        const [automated, forwarded] = await Promise.all([
          route ? this.automate(route, event) : undefined,
          Promise.all(inputs.map((input) => startForward(this.deps.client, input))),
        ]);
        const forwardIds = forwarded.map((f) => f.workflowId);
        if (automated) return { ...automated, workflowIds: [...(automated.workflowIds ?? []), ...forwardIds] };
        return {
          outcome: forwarded.some((f) => f.outcome === 'started') ? 'started' : 'duplicate',
          workflowIds: forwardIds,
        };
      }
    }
  }

  /** The nac-whitelist route: APPROVED starts the grant, a withdrawing status revokes it. */
  private async automate(
    route: Route,
    event: Extract<InboundEvent, { kind: 'approval-status' }>
  ): Promise<EventResult> {
    if (event.status === 'APPROVED') return this.startGrant(route, event.platform, event.instanceId, event.eventId);
    if ((REVOKING_STATUSES as readonly string[]).includes(event.status)) {
      return this.signalCancel(workflowIdFor(event.platform, event.instanceId), {
        reason: `the approval was ${event.status.toLowerCase()} on ${event.platform}`,
        by: `${event.platform}:${event.eventType}`,
      });
    }
    return { outcome: 'ignored-status' };
  }

  private async startGrant(
    route: Route,
    platform: PlatformName,
    instanceId: string,
    eventId: string
  ): Promise<EventResult> {
    const opts = startOptionsFor(route, platform, instanceId, this.deps, { source: 'webhook', eventId });
    try {
      await this.deps.client.workflow.start('nacWhitelistWorkflow', opts);
      return { outcome: 'started', workflowIds: [opts.workflowId] };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError)
        return { outcome: 'duplicate', workflowIds: [opts.workflowId] };
      throw err;
    }
  }

  async signalCancel(workflowId: string, input: { reason: string; by?: string }): Promise<EventResult> {
    try {
      await this.deps.client.workflow.getHandle(workflowId).signal(cancelSignal, input);
      return { outcome: 'signalled', workflowIds: [workflowId] };
    } catch (err) {
      // Never started, or already closed: nothing is granted, so there is nothing to revoke.
      if (err instanceof WorkflowNotFoundError) return { outcome: 'no-live-grant', workflowIds: [workflowId] };
      throw err;
    }
  }

  private async revokeLeaver(platform: PlatformName, userId: string, eventId: string): Promise<EventResult> {
    const ref = requesterRef(platform, userId);
    const ids: string[] = [];
    for await (const wf of this.deps.client.workflow.list({
      query: `${RequesterRefKey.name} = '${ref}' AND ExecutionStatus = 'Running'`,
    })) {
      ids.push(wf.workflowId);
    }
    for (const id of ids) {
      await this.signalCancel(id, {
        reason: 'the requester left the company',
        by: `${platform}:contact.user.deleted_v3:${eventId}`,
      });
    }
    return { outcome: ids.length ? 'signalled' : 'no-live-grant', workflowIds: ids };
  }

  /**
   * Resolves once no Temporal call of this processor is running any more. A call whose budget ran out goes on
   * retrying inside the client until its deadline (a retry timer can fire up to ~6 s later), so close the
   * connection only after this, or that timer throws "Channel has been shut down".
   */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Run Temporal calls under a hard deadline; any transport failure or time-out becomes a 503. */
  private async withBudget<T>(budgetMs: number, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + budgetMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TemporalUnavailableError(`no answer within ${budgetMs} ms`)), budgetMs);
    });
    const call = this.deps.client.connection.withDeadline(deadline, fn);
    this.running.add(call);
    void call.then(
      () => this.running.delete(call),
      () => this.running.delete(call)
    );
    try {
      return await Promise.race([call, timeout]);
    } catch (err) {
      if (err instanceof TemporalUnavailableError) throw err;
      if (isTransportError(err)) throw new TemporalUnavailableError((err as Error).message.split('\n')[0]!);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** gRPC UNAVAILABLE (14) / DEADLINE_EXCEEDED (4) / connection errors, however the client wraps them. */
function isTransportError(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (code === 14 || code === 4 || code === 'ECONNREFUSED') return true;
    if (
      e instanceof Error &&
      /UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED|Connection dropped|No connection/i.test(e.message)
    )
      return true;
    if ((e as { name?: string }).name === 'ServiceError') return true;
  }
  return false;
}

/** Workflow timing derived from configuration: reminder lead, and the NAC step bound (3 requests + slack). */
export function timingFor(config: Pick<AppConfig, 'reminderLead' | 'nac'>): {
  reminderLeadMs: number;
  nacStepTimeoutMs: number;
} {
  return { reminderLeadMs: parseDurationMs(config.reminderLead), nacStepTimeoutMs: config.nac.timeoutMs * 3 + 5000 };
}
