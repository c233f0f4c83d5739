import { z } from 'zod';

/**
 * The value types environment variables share, for every `*EnvShape` (config/config.ts, nac/config.ts, the
 * platforms' config.ts): an empty string counts as unset, URLs lose a trailing slash, booleans take the usual words.
 */
export const optionalNonEmpty = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));
export const url = z.url().transform((u) => u.replace(/\/+$/, ''));
export const port = z.coerce.number().int().min(1).max(65535);
export const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
