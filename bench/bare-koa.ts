import http from 'node:http';
import Koa from 'koa';

/**
 * The ceiling for B1: a bare Koa app whose only handler does nothing but answer 200 with a small JSON body, in its own
 * process, behind the same node:http server settings as the ingress. Port from argv[2] (0 = free); prints the port.
 */
const app = new Koa();
app.use((ctx) => {
  ctx.body = { msg: 'success' };
});
const server = http.createServer(app.callback());
server.keepAliveTimeout = 5000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const addr = server.address() as { port: number };
  process.stdout.write(`listening ${addr.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
