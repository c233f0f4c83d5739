import { timingSafeEqual, createHash } from 'node:crypto';
import type { Context, Next } from 'koa';
import { HttpError } from '../http-error';

/** `Authorization: Bearer $ADMIN_TOKEN`, compared in constant time. No token configured → the operator API is off. */
export function adminAuth(token: string | undefined) {
  const expected = token ? createHash('sha256').update(token).digest() : undefined;
  return async function adminAuthMiddleware(ctx: Context, next: Next) {
    if (!expected) throw new HttpError(404, 'admin_api_off', 'the operator API is off (ADMIN_TOKEN is not set)');
    const match = /^Bearer (.+)$/.exec(ctx.get('authorization'));
    if (!match) throw new HttpError(401, 'missing_token', 'Authorization: Bearer <ADMIN_TOKEN> required');
    const given = createHash('sha256').update(match[1]!).digest();
    if (!timingSafeEqual(given, expected)) throw new HttpError(403, 'bad_token', 'wrong admin token');
    await next();
  };
}
