/**
 * APPROVAL_PLUS_TIMEZONE: the IANA zone in which requesters and the audit trail read times (messages and comments on
 * every platform). Checked once at start-up; formatting itself is `formatInstant` in workflows/messages.ts.
 */

/** The host's zone (TZ, or the system's), 'UTC' where the runtime reports none. */
export function hostTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** The zone's canonical IANA name, or undefined when Intl does not know it ("Asia/Shanghai", "UTC", "Etc/GMT-8"). */
export function canonicalTimeZone(name: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}
