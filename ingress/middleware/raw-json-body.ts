import type { Context, Next } from 'koa';
import getRawBody from 'raw-body';
import { HttpError } from '../http-error';

declare module 'koa' {
  interface Request {
    rawBody?: Buffer;
  }
}

/**
 * Reads the body as raw bytes (signatures are computed over them, not over re-serialised JSON), after checking the
 * content type and within a size limit.
 */
/**
 * The 413 for a body over the limit. The rest of the body is read and discarded (bounded by the server's request
 * time-out): a socket closed with unread request bytes is reset (TCP RST), and the client would lose the 413.
 */
export function bodyTooLarge(ctx: Context, limitBytes: number): HttpError {
  ctx.req.resume();
  return new HttpError(413, 'body_too_large', `body larger than ${limitBytes} bytes`);
}

export function rawJsonBody(opts: { limitBytes: number }) {
  return async function rawJsonBodyMiddleware(ctx: Context, next: Next) {
    if (!ctx.is('application/json')) {
      throw new HttpError(415, 'unsupported_media_type', 'Content-Type must be application/json');
    }
    const declared = Number(ctx.get('content-length'));
    if (Number.isFinite(declared) && declared > opts.limitBytes) throw bodyTooLarge(ctx, opts.limitBytes);
    try {
      ctx.request.rawBody = await getRawBody(ctx.req, { limit: opts.limitBytes });
    } catch (err) {
      if ((err as { type?: string }).type === 'entity.too.large') throw bodyTooLarge(ctx, opts.limitBytes);
      throw new HttpError(400, 'unreadable_body', 'request body could not be read');
    }
    await next();
  };
}
