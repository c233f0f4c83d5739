import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/**
 * One pino logger for the process. Secrets never reach it: config is logged only through `redactedConfig`, and these
 * paths are redacted as a second line of defence wherever an object carrying them is logged by accident.
 *
 * `format`: `pretty` (colourised lines for a person, via pino-pretty), `json` (one JSON object per line, for log
 * collectors), or `auto` (LOG_FORMAT's default): pretty when stdout is a terminal, JSON otherwise — so `npm start`
 * reads well and a container's logs stay machine-readable.
 */
export type LogFormat = 'auto' | 'pretty' | 'json';

export function createLogger(level: string, name = 'approval-plus', format: LogFormat = 'auto'): Logger {
  const human = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  const options: pino.LoggerOptions = {
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
    hooks: {
      // The Temporal SDK reports the workflow bundler's webpack statistics at info: a screenful of module lists on
      // every worker start. They are for whoever debugs the bundle, so they go out at debug.
      logMethod(args, method, levelValue) {
        const message = args.find((a) => typeof a === 'string');
        if (levelValue === 30 && typeof message === 'string' && isBundlerChatter(message)) {
          if (this.isLevelEnabled('debug')) this.debug(...(args as [object, string]));
          return;
        }
        method.apply(this, args);
      },
    },
  };
  // Synchronous: lines are written before the process exits (a worker thread would lose the last ones).
  return human
    ? pino(options, pretty({ sync: true, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }))
    : pino(options);
}

function isBundlerChatter(message: string): boolean {
  return /^asset workflow-bundle-|webpack [\d.]+ compiled/.test(message);
}

export type { Logger };
