import type { Context, Next } from 'koa';
import type { Logger } from '../../app/logger';
import { HttpError } from '../http-error';

/** The one error handler, at the top of the chain: known errors get their status and id, others a bare 500. */
export function errorHandler(logger: Logger) {
  return async function errorHandlerMiddleware(ctx: Context, next: Next) {
    try {
      await next();
    } catch (err) {
      if (err instanceof HttpError) {
        ctx.status = err.status;
        ctx.body = { error: err.id, message: err.message };
        logger.warn({ path: ctx.path, status: err.status, error: err.id }, err.message);
        return;
      }
      const status = (err as { status?: number }).status;
      if (status && status >= 400 && status < 500) {
        ctx.status = status;
        ctx.body = { error: 'bad_request', message: (err as Error).message };
        return;
      }
      ctx.status = 500;
      ctx.body = { error: 'internal', message: 'internal error' };
      logger.error({ err, path: ctx.path }, 'unhandled error');
    }
  };
}
