import type { Logger } from '../app/logger';
import { isIntegrationError } from '../domain/errors';

/**
 * Readiness of the worker process (GET /readyz on WORKER_HTTP_PORT). Two kinds of checks:
 *  - start-up checks (NAC verify, Feishu subscriptions, routed forms, search attributes): run in the background until
 *    they pass, with back-off, while the workers already run — a NAC or platform outage at start must not stop
 *    reminders, messages and forwards (NAC activities retry through Temporal meanwhile). Once passed, they stay passed.
 *  - live checks (the workers run, Temporal answers): asked on every report.
 * Ready = every check says ok. The contract's JSON: `{ status, checks: { name: "ok" | reason } }`.
 */
export interface ReadinessReport {
  ready: boolean;
  status: 'ready' | 'not ready';
  checks: Record<string, string>;
}

export interface StartupCheck {
  name: string;
  /** Resolves with warnings (logged once, not failures) when the check passes; throws (with the reason) when not. */
  run(): Promise<string[] | void>;
}

export interface LiveCheck {
  name: string;
  /** undefined = ok, else why not. Must answer within about 2 s. */
  check(): Promise<string | undefined>;
}

export interface BackoffOptions {
  initialMs: number;
  /** Cap for failures that may pass by themselves (network, 5xx, time-out, rate limit, missing attributes). */
  maxMs: number;
  /**
   * Cap for failures a person must fix (credentials, permissions, a missing group): slower, so that a wrong password
   * does not lock the appliance's account with failed logins.
   */
  maxMsPermanent: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 30_000, maxMsPermanent: 300_000 };

const PENDING = 'checking';

export class WorkerReadiness {
  private readonly state = new Map<string, string>();
  private readonly live: LiveCheck[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopping = false;

  constructor(
    private readonly logger: Logger,
    private readonly backoff: BackoffOptions = DEFAULT_BACKOFF,
    private readonly onReport?: (report: ReadinessReport) => void
  ) {}

  /** Start a start-up check now (not awaited): it retries until it passes or the worker stops. */
  startCheck(check: StartupCheck): void {
    this.state.set(check.name, PENDING);
    let attempt = 0;
    const tryOnce = async () => {
      if (this.stopping) return;
      attempt++;
      try {
        const warnings = (await check.run()) ?? [];
        for (const w of warnings) this.logger.warn({ check: check.name }, w);
        this.state.set(check.name, 'ok');
        if (attempt > 1) this.logger.info({ check: check.name, attempt }, `${check.name}: check passed`);
      } catch (err) {
        const why = oneLine(err);
        this.state.set(check.name, why);
        const cap = isPermanent(err) ? this.backoff.maxMsPermanent : this.backoff.maxMs;
        const delay = Math.min(cap, this.backoff.initialMs * 2 ** Math.min(attempt - 1, 20));
        if (this.stopping) return;
        this.logger.warn(
          { check: check.name, attempt, retryInMs: delay },
          `not ready: ${check.name}: ${why} (checking again in ${formatDelay(delay)}; the workers run meanwhile)`
        );
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          void tryOnce();
        }, delay);
        this.timers.add(timer);
      }
    };
    void tryOnce();
  }

  addLiveCheck(check: LiveCheck): void {
    this.live.push(check);
  }

  /** The /readyz answer. While stopping, not ready (the workers drain and poll no more). */
  async report(): Promise<ReadinessReport> {
    const checks: Record<string, string> = {};
    const live = await Promise.all(
      this.live.map(async (c) => [c.name, (await c.check().catch((err: unknown) => oneLine(err))) ?? 'ok'] as const)
    );
    for (const [name, state] of live) checks[name] = state;
    for (const [name, state] of this.state) checks[name] = state;
    if (this.stopping) checks.worker = 'stopping: running activities finish, no new tasks are taken';
    const ready = Object.values(checks).every((s) => s === 'ok');
    const report: ReadinessReport = { ready, status: ready ? 'ready' : 'not ready', checks };
    this.onReport?.(report);
    return report;
  }

  /** The worker is shutting down: report not ready and stop retrying. */
  stop(): void {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!.trim() || 'failed';
}

function isPermanent(err: unknown): boolean {
  return isIntegrationError(err) && (err.kind === 'auth' || err.kind === 'invalid' || err.kind === 'not-found');
}

function formatDelay(ms: number): string {
  return ms < 60_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
}
