// pino JSON logs to stdout (journald): one event per line, stable field names, no secret ever logged.
import { pino, type Logger, type DestinationStream } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type { Logger };

// Why: fields that could carry key material are censored even if a caller passes them by mistake.
const REDACT = ['secretKey', 'secret', 'key', 'privateKey', 'seed', 'bundleBase64', '*.secretKey', '*.secret', '*.privateKey', '*.seed', '*.bundleBase64'];

// Why: one logger per daemon; the destination is injectable so tests can read the lines.
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
