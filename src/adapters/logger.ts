// pino JSON logs to stdout, one event per line, stable field names, no secret ever logged. When stdout
// is the journal (systemd's JOURNAL_STREAM names it), each line starts with its syslog priority
// (`<3>` for error, ...), which journald strips and stores as PRIORITY (docs/DAEMON.md#logs).
import { fstatSync } from 'node:fs';
import { pino, type Logger, type DestinationStream } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type { Logger };

// Why: fields that could carry key material are censored even if a caller passes them by mistake.
const REDACT = ['secretKey', 'secret', 'key', 'privateKey', 'seed', 'bundleBase64', '*.secretKey', '*.secret', '*.privateKey', '*.seed', '*.bundleBase64'];

// Why: `journalctl -p warning` filters on syslog priorities; pino's numeric levels map onto them (sd-daemon(3)).
export function syslogPriority(level: number): number {
  if (level >= 60) return 2; // fatal → crit
  if (level >= 50) return 3; // error → err
  if (level >= 40) return 4; // warn → warning
  if (level >= 30) return 6; // info → info
  return 7; // debug, trace → debug
}

// Why: the prefix is only for journald; a terminal or a pipe gets plain JSON lines. JOURNAL_STREAM is
// "device:inode" of the stream systemd connected, and counts only while fd 1 is still that stream.
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 1): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (m === null) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1] ?? '') && st.ino === BigInt(m[2] ?? '');
  } catch {
    return false;
  }
}

/** A pino destination that is told each line's level (pino sets `lastLevel` when it asks for metadata). */
type LevelAwareStream = DestinationStream & { lastLevel: number; [key: symbol]: unknown };

// Why: the `<N>` prefix journald reads from a stream (SyslogLevelPrefix=, on by default).
export function journalPrefixStream(inner: DestinationStream): DestinationStream {
  const stream: LevelAwareStream = {
    lastLevel: 30,
    [pino.symbols.needsMetadataGsym]: true,
    write(line: string) {
      inner.write(`<${String(syslogPriority(stream.lastLevel))}>${line}`);
    },
  };
  return stream;
}

// Why: one logger per daemon; the destination is injectable so tests can read the lines.
export function createLogger(level: LogLevel, destination?: DestinationStream, env: NodeJS.ProcessEnv = process.env): Logger {
  const stdout = (): DestinationStream => {
    const sink = pino.destination({ dest: 1, sync: true });
    return stdoutIsJournal(env) ? journalPrefixStream(sink) : sink;
  };
  return pino(
    {
      level,
      base: { pid: process.pid },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
    },
    destination ?? stdout(),
  );
}
