// Client of the daemon's control socket: one JSON line out, one JSON line back.
import { connect } from 'node:net';
import { SentinelError } from '../core/errors.js';
import { codeForErrno } from '../core/errno.js';

const CHECK = 'is the daemon running? systemctl status omnimind-sentinel';

// Why: the operator reads what is wrong with the socket in words, with what to check, not Node's `connect ENOENT /path`.
function connectFailure(errno: string | undefined): string {
  switch (errno) {
    case 'ENOENT':
      return `no daemon: the control socket does not exist (${CHECK}; or --socket names another path)`;
    case 'ECONNREFUSED':
      return `no daemon listens on the control socket (a socket file left by a daemon that stopped: ${CHECK})`;
    case 'EACCES':
    case 'EPERM':
      return 'not permitted to open the control socket: run as root, or as a member of its control.group';
    case 'ENOTSOCK':
      return 'the control socket path is not a socket (--socket names another file?)';
    default:
      return `cannot talk to the daemon (${errno ?? 'unknown error'})`;
  }
}

// Why: `sentinel status/deploy --socket` and tests talk to the daemon through this one function.
export async function sendRequest(socketPath: string, request: unknown, opts: { timeoutMs: number; maxReplyBytes?: number }): Promise<unknown> {
  const maxReply = opts.maxReplyBytes ?? 16 * 1024 * 1024;
  const line = `${JSON.stringify(request)}\n`;
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err: Error | null, value?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err !== null) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => {
      finish(new SentinelError('unavailable', `no reply from the daemon within ${String(opts.timeoutMs)} ms`, { where: socketPath }));
    }, opts.timeoutMs);
    socket.on('connect', () => {
      socket.end(line);
    });
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxReply) {
        finish(new SentinelError('too-large', `reply larger than ${String(maxReply)} bytes`, { where: socketPath }));
        return;
      }
      chunks.push(chunk);
      const text = Buffer.concat(chunks).toString('utf8');
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      try {
        finish(null, JSON.parse(text.slice(0, nl)));
      } catch (cause) {
        finish(new SentinelError('internal', 'daemon reply is not JSON', { where: socketPath, cause }));
      }
    });
    socket.on('error', (cause: NodeJS.ErrnoException) => {
      finish(new SentinelError(codeForErrno(cause.code, 'connect'), connectFailure(cause.code), { where: socketPath, cause }));
    });
    socket.on('close', () => {
      finish(new SentinelError('unavailable', 'daemon closed the connection without a reply', { where: socketPath }));
    });
  });
}
