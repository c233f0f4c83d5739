import { readFileSync } from 'node:fs';
import { Pool, type PoolClient, type PoolConfig } from 'pg';
import { IntegrationError, type IntegrationErrorKind } from '../../domain/errors';
import type { NacHttpObserver, NacRequestOutcome } from '../http';
import { TokenBucket } from '../rate-limiter';

/**
 * The SQL edge of the FreeRADIUS adapter, what nac/http.ts is to the HTTP ones: one pool to FreeRADIUS's database
 * (`pg`), every unit of work a transaction after a rate-limiter slot (`NAC_MAX_RPS` counts transactions, so a
 * grant's load on the database is bounded the same way as on an appliance), a time-out on connecting and on every
 * statement, and PostgreSQL's errors classified once into IntegrationErrors by SQLSTATE. The connection string
 * never reaches a message (it may hold the password).
 */

export const SYSTEM = 'freeradius';

export interface FreeRadiusSqlOptions {
  databaseUrl: string;
  timeoutMs: number;
  maxRps: number;
  /** Connections to keep at most (FreeRADIUS's own pool shares the server's max_connections). */
  poolSize?: number;
  /** Extra CA (PEM) for a TLS connection (`?sslmode=require` in the URL), and verification off for a lab. */
  caFile?: string;
  tlsInsecure?: boolean;
  observer?: NacHttpObserver;
  cancellation?: () => AbortSignal | undefined;
}

export type Sql = Pick<PoolClient, 'query'>;

export class FreeRadiusSql {
  private readonly pool: Pool;
  private readonly limiter: TokenBucket;
  private readonly observer?: NacHttpObserver;
  private readonly cancellation?: () => AbortSignal | undefined;

  constructor(opts: FreeRadiusSqlOptions) {
    const config: PoolConfig = {
      connectionString: opts.databaseUrl,
      max: opts.poolSize ?? 4,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: opts.timeoutMs,
      // The server ends a statement that runs too long; the client stops waiting at the same time.
      statement_timeout: opts.timeoutMs,
      query_timeout: opts.timeoutMs,
      application_name: 'approval-plus',
    };
    if (opts.caFile || opts.tlsInsecure) {
      config.ssl = {
        ...(opts.caFile ? { ca: readFileSync(opts.caFile, 'utf8') } : {}),
        rejectUnauthorized: !opts.tlsInsecure,
      };
    }
    this.pool = new Pool(config);
    // An idle connection the server closed (a restart, a failover) is an event, not a crash: the next checkout opens
    // a new one. Without a listener, pg's 'error' would end the worker.
    this.pool.on('error', () => undefined);
    this.limiter = new TokenBucket(opts.maxRps);
    this.observer = opts.observer;
    this.cancellation = opts.cancellation;
  }

  /**
   * Run `work` in one transaction (READ COMMITTED for writes; REPEATABLE READ READ ONLY for `readOnly`, one snapshot
   * over every table read). Any error rolls back and is thrown classified; `what` names the step in messages.
   */
  async transaction<T>(what: string, work: (sql: Sql) => Promise<T>, o: { readOnly?: boolean } = {}): Promise<T> {
    await this.limiter.acquire();
    this.cancellation?.()?.throwIfAborted();
    const started = performance.now();
    let outcome: NacRequestOutcome = 'error';
    let client: PoolClient | undefined;
    try {
      client = await this.pool.connect();
      await client.query(o.readOnly ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      outcome = 'ok';
      return result;
    } catch (err) {
      if (client) {
        // A broken connection cannot roll back; it is thrown away below instead of going back to the pool.
        await client.query('ROLLBACK').catch(() => undefined);
      }
      const classified = err instanceof IntegrationError ? err : classifyPgError(what, err);
      outcome = outcomeOf(classified);
      if (classified.kind === 'transient' && client) {
        client.release(true);
        client = undefined;
      }
      throw classified;
    } finally {
      client?.release();
      this.observer?.request({
        system: SYSTEM,
        area: 'sql',
        method: 'SQL',
        outcome,
        seconds: (performance.now() - started) / 1000,
      });
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * PostgreSQL's errors, by SQLSTATE class (PostgreSQL manual, Appendix A), and the driver's own (no SQLSTATE):
 * connection lost or refused, a time-out, the server shutting down or not ready, a serialisation failure or
 * deadlock are worth retrying; bad credentials and missing privileges are configuration; a missing database, table
 * or column is a schema that is not FreeRADIUS's.
 */
export function classifyPgError(what: string, err: unknown): IntegrationError {
  const e = err as { code?: unknown; message?: unknown; severity?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : String(err);
  const sqlState = code && /^[0-9A-Z]{5}$/.test(code) && e.severity !== undefined ? code : undefined;
  const kind = sqlState ? kindOfSqlState(sqlState) : 'transient';
  const detail = sqlState ? `${message} (SQLSTATE ${sqlState})` : code ? `${message} (${code})` : message;
  const fix =
    kind === 'auth'
      ? ': check the user and password in NAC_DATABASE_URL and its grants on the FreeRADIUS tables'
      : sqlState === '3D000'
        ? ': NAC_DATABASE_URL names a database that does not exist'
        : sqlState === '42P01' || sqlState === '42703'
          ? ": the database does not hold FreeRADIUS's standard schema (mods-config/sql/main/postgresql/schema.sql)"
          : '';
  return new IntegrationError(`${SYSTEM} ${what}: ${detail}${fix}`, kind, { system: SYSTEM, code: sqlState ?? code });
}

function kindOfSqlState(state: string): IntegrationErrorKind {
  const cls = state.slice(0, 2);
  if (cls === '28' || state === '42501') return 'auth'; // invalid authorization; insufficient privilege
  if (cls === '08' || cls === '53' || cls === '57' || cls === '58') return 'transient'; // connection, resources, operator
  if (state === '40001' || state === '40P01' || state === '55P03') return 'transient'; // serialisation, deadlock, lock
  if (cls === 'XX') return 'transient'; // internal error
  return 'invalid'; // 22 data, 23 integrity, 3D no database, 42 syntax / undefined object: retrying will not help
}

function outcomeOf(err: IntegrationError): NacRequestOutcome {
  if (/timeout|timed out/i.test(err.message)) return 'timeout';
  if (err.kind === 'transient' && !err.details.code?.toString().match(/^[0-9A-Z]{5}$/)) return 'network';
  return 'error';
}
