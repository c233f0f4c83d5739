import { parseDurationMs, parseInstant } from './duration';

/**
 * What an operator types to extend a grant: a date or date-time ("2026-12-31", "2026-12-31T18:00:00+08:00"; China
 * time without a zone, end of day without a time), a duration from now ("30d", "7天"), or "permanent" / "永久".
 * Answers the absolute expiry the `extend` update carries (null = permanent), or throws a RangeError saying why.
 */
export function parseExtendUntil(text: string, nowMs: number): { expiresAt: string | null } {
  const t = text.trim();
  if (/^(permanent|never|forever|永久)$/i.test(t)) return { expiresAt: null };
  const instant = parseInstant(t);
  if (instant !== undefined) return { expiresAt: new Date(instant).toISOString() };
  let ms: number;
  try {
    ms = parseDurationMs(t.replace(/天/g, 'd').replace(/小时/g, 'h').replace(/分钟/g, 'm'));
  } catch {
    throw new RangeError(`"${text}" is neither a date (2026-12-31), a duration from now (30d) nor "permanent"`);
  }
  if (ms <= 0) throw new RangeError(`"${text}" must be a positive duration`);
  return { expiresAt: new Date(nowMs + ms).toISOString() };
}
