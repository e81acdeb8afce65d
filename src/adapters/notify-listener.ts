// The receiving end of sd_notify for the sentinel's own `command` targets: a datagram socket the
// child gets as NOTIFY_SOCKET; each message arrives with its sender's PID (SO_PASSCRED), so only the
// main process speaks for the target (docs/EBPF.md#notify-socket-of-command-targets).
import { unlink } from 'node:fs/promises';
import { SentinelError } from '../core/errors.js';
import { ioError } from '../core/errno.js';
import { loadNative } from './native.js';

/** One notification: its sender and its NAME=value assignments (later ones win). */
export interface NotifyMessage {
  pid: number;
  fields: Map<string, string>;
}

// Why: sd_notify(3)'s format: newline-separated assignments; a line without '=' is ignored.
export function parseNotifyMessage(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return fields;
}

/** An open notify socket; `close()` stops reading and removes the socket file. */
export interface NotifySocket {
  readonly path: string;
  close(): Promise<void>;
}

// Why: Node has no AF_UNIX datagram sockets; the native addon binds and reads one on the event loop.
export async function listenNotify(path: string, onMessage: (m: NotifyMessage) => void): Promise<NotifySocket> {
  const addon = loadNative();
  if (addon?.NotifyListener === undefined) throw new SentinelError('unavailable', 'a notify socket needs the native addon (npm ci builds it)', { where: path });
  await unlink(path).catch(() => undefined); // a socket file left by a killed daemon
  let listener: { close(): void; ref(on: boolean): void };
  try {
    listener = new addon.NotifyListener(path, (pid, text) => onMessage({ pid, fields: parseNotifyMessage(text) }));
  } catch (e) {
    throw ioError(e, 'cannot bind the notify socket', path);
  }
  listener.ref(false);
  let closed = false;
  return {
    path,
    async close() {
      if (closed) return;
      closed = true;
      listener.close();
      await unlink(path).catch(() => undefined);
    },
  };
}
