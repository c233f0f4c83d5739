import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { ReadinessReport } from './readiness';

/**
 * The worker process's HTTP endpoint (WORKER_HTTP_PORT on HOST; compose: 3001, not published):
 *   GET /healthz  200 while the process lives
 *   GET /readyz   200 when the workers poll and the start-up checks passed, else 503; JSON {status, checks}
 *   GET /metrics  Prometheus text: the worker's own metrics (worker/metrics.ts)
 * Nothing else; no request body is read.
 */
export interface WorkerHttp {
  url: string;
  close(): Promise<void>;
}

export interface WorkerHttpOptions {
  port: number;
  host: string;
  registry: Registry;
  readiness(): Promise<ReadinessReport>;
}

export async function startWorkerHttp(opts: WorkerHttpOptions): Promise<WorkerHttp> {
  const server = http.createServer((req, res) => {
    void handle(opts, req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${(err as Error).message}\n`);
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(
              `port ${opts.port} on ${opts.host} is taken: the worker's HTTP endpoint cannot start. Stop whatever uses it, or set WORKER_HTTP_PORT to another port (0 = off).`
            )
          : err
      )
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(opts: WorkerHttpOptions, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method not allowed' });
  switch (path) {
    case '/healthz':
      return send(res, 200, { status: 'ok' });
    case '/readyz': {
      const r = await opts.readiness();
      return send(res, r.ready ? 200 : 503, { status: r.status, checks: r.checks });
    }
    case '/metrics': {
      await opts.readiness(); // refreshes approval_plus_worker_ready and the per-check series
      const body = await opts.registry.metrics();
      res.writeHead(200, { 'content-type': opts.registry.contentType });
      res.end(body);
      return;
    }
    default:
      return send(res, 404, { error: 'not found' });
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}
