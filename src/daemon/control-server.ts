// The control socket: a Unix stream server, one JSON request line and one JSON reply line per connection.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { chmod, chown, lstat, mkdir, readFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { codeForErrno, errnoOf } from '../core/errno.js';
import { assertControlRequest, errorReply, type ControlReply, type ControlRequest } from './control-protocol.js';
import type { Logger } from '../adapters/logger.js';

export interface ControlServerOptions {
  socketPath: string;
  /** Group allowed to connect (mode 0660); without it the socket is 0600 (root only). */
  group?: string;
  maxRequestBytes: number;
  /** How long a client has to send its request line, and afterwards to read the reply and close. */
  requestTimeoutMs: number;
  /** Connections served at once; one more is answered `busy` (each may buffer up to maxRequestBytes). */
  maxClients: number;
  log: Logger;
  handle(request: ControlRequest): Promise<unknown>;
}

async function groupId(name: string): Promise<number> {
  if (/^[0-9]+$/.test(name)) return Number(name);
  const text = await readFile('/etc/group', 'utf8');
  for (const line of text.split('\n')) {
    const [gname, , gid] = line.split(':');
    if (gname === name && gid !== undefined) return Number(gid);
  }
  throw new SentinelError('config', `no such group: ${name}`, { where: 'control.group' });
}

// Why: a live socket means another daemon guards this vault; checked before anything of ours is written.
export function probeLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

// Why: a socket file left by a killed daemon is removed; one still answered by a live daemon is never stolen.
async function clearStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new SentinelError('exists', 'control socket path exists and is not a socket', { where: path });
  if (await probeLive(path)) throw new SentinelError('busy', 'another daemon is serving this control socket', { where: path });
  await unlink(path);
}

// Why: the daemon keeps serving whatever a client sends: oversized, malformed, unknown op, non-bundle bytes each get an error reply.
export class ControlServer {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  served = 0;

  constructor(private readonly opts: ControlServerOptions) {}

  /** Connections open right now. */
  get connections(): number {
    return this.sockets.size;
  }

  async listen(): Promise<void> {
    const { socketPath } = this.opts;
    await mkdir(dirname(socketPath), { recursive: true, mode: 0o750 });
    const gid = this.opts.group === undefined ? null : await groupId(this.opts.group);
    await clearStaleSocket(socketPath);
    const server = createServer({ allowHalfOpen: true }, (socket) => this.serve(socket));
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (cause) {
      throw new SentinelError('io', 'cannot listen on the control socket', { where: socketPath, cause });
    } finally {
      process.umask(oldMask);
    }
    try {
      if (gid !== null) {
        await chown(socketPath, 0, gid);
        await chmod(socketPath, 0o660);
      } else {
        await chmod(socketPath, 0o600);
      }
    } catch (cause) {
      // Bound but not usable as configured: do not leave a listening socket (nor its file) behind.
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await unlink(socketPath).catch(() => undefined);
      const denied = codeForErrno(errnoOf(cause)) === 'not-permitted';
      const message =
        denied && gid !== null
          ? `cannot give the control socket to group ${String(this.opts.group)}: chown to a group root is not in needs CAP_CHOWN (add it to CapabilityBoundingSet= in a drop-in)`
          : 'cannot set the control socket owner and mode';
      throw new SentinelError(denied ? 'not-permitted' : 'io', message, { where: socketPath, cause });
    }
    server.on('error', (err) => this.opts.log.error({ event: 'control-error', err: err.message }, 'control socket error'));
    this.server = server;
  }

  private serve(socket: Socket): void {
    socket.on('error', () => undefined);
    if (this.sockets.size >= this.opts.maxClients) {
      socket.resume();
      socket.end(`${JSON.stringify(errorReply(new SentinelError('busy', `too many control clients at once (${String(this.opts.maxClients)})`, { where: 'control socket' })))}\n`);
      setTimeout(() => socket.destroy(), this.opts.requestTimeoutMs).unref();
      return;
    }
    this.sockets.add(socket);
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    let handled = false;
    let timer = setTimeout(() => {
      reply(errorReply(new SentinelError('usage', `no complete request line within ${String(this.opts.requestTimeoutMs)} ms`, { where: 'request' })));
    }, this.opts.requestTimeoutMs);
    const reply = (r: ControlReply): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.served++;
      socket.removeAllListeners('data');
      socket.resume();
      if (socket.destroyed) return;
      socket.end(`${JSON.stringify(r)}\n`);
      // A client that neither reads nor closes (half-open) must not hold the connection for ever.
      timer = setTimeout(() => socket.destroy(), this.opts.requestTimeoutMs);
    };
    socket.on('close', () => {
      clearTimeout(timer);
      this.sockets.delete(socket);
    });
    const handleLine = (line: Buffer): void => {
      if (handled) return;
      handled = true;
      // The request arrived in time; handling it (a queued deploy, a long verify) is not bounded by requestTimeoutMs.
      clearTimeout(timer);
      let value: unknown;
      try {
        value = JSON.parse(line.toString('utf8'));
      } catch {
        reply(errorReply(new SentinelError('usage', 'request is not valid JSON', { where: 'request' })));
        return;
      }
      const op = typeof value === 'object' && value !== null && typeof (value as { op?: unknown }).op === 'string' ? (value as { op: string }).op : undefined;
      const id = typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string' ? (value as { id: string }).id : undefined;
      try {
        assertControlRequest(value);
      } catch (e) {
        reply(errorReply(e, op, id));
        return;
      }
      const request = value;
      this.opts
        .handle(request)
        .then((result) => reply({ ok: true, op: request.op, ...(id !== undefined ? { id } : {}), result }))
        .catch((e: unknown) => reply(errorReply(e, request.op, id)));
    };
    socket.on('data', (chunk: Buffer) => {
      if (done) return;
      const nl = chunk.indexOf(0x0a);
      const take = nl >= 0 ? chunk.subarray(0, nl) : chunk;
      size += take.length;
      if (size > this.opts.maxRequestBytes) {
        reply(errorReply(new SentinelError('too-large', `request larger than ${String(this.opts.maxRequestBytes)} bytes`, { where: 'request' })));
        return;
      }
      chunks.push(take);
      if (nl >= 0) {
        socket.removeAllListeners('data');
        socket.resume();
        handleLine(Buffer.concat(chunks));
      }
    });
    socket.on('end', () => {
      if (done || handled) return;
      if (size === 0) {
        reply(errorReply(new SentinelError('usage', 'empty request', { where: 'request' })));
        return;
      }
      socket.removeAllListeners('data');
      handleLine(Buffer.concat(chunks));
    });
  }

  // Why: on SIGTERM no new connection is taken while the running request still gets its reply.
  stopAccepting(): void {
    this.server?.close();
  }

  // Why: SIGTERM closes the socket and removes its file, so the next start finds no stale socket.
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    await new Promise<void>((resolve) => {
      if (!server.listening) resolve();
      else server.close(() => resolve());
      setTimeout(() => {
        for (const s of this.sockets) s.destroy();
        resolve();
      }, 200).unref();
    });
    await unlink(this.opts.socketPath).catch(() => undefined);
  }
}
