import pino, { type Logger } from 'pino';

/**
 * One pino logger for the process. Secrets never reach it: config is logged only through `redactedConfig`, and these
 * paths are redacted as a second line of defence wherever an object carrying them is logged by accident.
 */
export function createLogger(level: string, name = 'approval-plus'): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: [
        '*.appSecret',
        '*.app_secret',
        '*.encryptKey',
        '*.password',
        '*.clientSecret',
        '*.client_secret',
        '*.authorization',
        '*.Authorization',
        'headers.authorization',
        '*.tenant_access_token',
        '*.access_token',
      ],
      censor: '[redacted]',
    },
  });
}
export type { Logger };
