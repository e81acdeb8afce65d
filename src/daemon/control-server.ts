// The control socket: a Unix stream server, one JSON request line and one JSON reply line per connection.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { chmod, chown, lstat, mkdir, readFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { codeForErrno, errnoOf } from '../core/errno.js';
import { errorReply, type ControlCommand } from './control-protocol.js';
import { ControlConnection, SMALL_REQUEST_BYTES } from './control-connection.js';
import { ByteBudget } from './byte-budget.js';
import { assertSafeSocketDir } from './socket-dir.js';
import type { Uploads } from './uploads.js';
import type { Logger } from '../adapters/logger.js';

export interface ControlServerOptions {
  socketPath: string;
  /** Group allowed to connect (mode 0660); without it the socket is 0600 (root only). */
  group?: string;
  maxRequestBytes: number;
  /** How long a client has to send its whole request line. */
  requestTimeoutMs: number;
  /** How long a client may stay silent while sending its request (or not read its reply) before it is dropped. */
  clientIdleMs: number;
  /** Connections served at once; when all are taken an idle one is let go, else a small reserve takes short requests. */
  maxClients: number;
  /** Request bytes held in memory across all clients at once; a full budget pauses the readers of large requests. */
  maxBufferedBytes: number;
  /** Where inline (base64) bundles are streamed; without it they are refused. */
  uploads?: Uploads;
  log: Logger;
  handle(command: ControlCommand): Promise<unknown>;
  /** A request answered with an error before it reached `handle`. */
  onRefused?(refusal: { deploy: boolean; error: SentinelError }): void;
}

/** Connections beyond maxClients that take a short request (status, verify, heal, a deploy by path) when none is idle. */
export const RESERVED_CLIENTS = 4;

/** A reading client must have been silent this long before a new client may take its slot. */
const EVICT_IDLE_MS = 250;

/** A refused client gets this long to read its `busy` reply. */
const REFUSED_LINGER_MS = 1_000;

export async function groupId(name: string, where = 'control.group'): Promise<number> {
  if (/^[0-9]+$/.test(name)) return Number(name);
  const text = await readFile('/etc/group', 'utf8');
  for (const line of text.split('\n')) {
    const [gname, , gid] = line.split(':');
    if (gname === name && gid !== undefined) return Number(gid);
  }
  throw new SentinelError('config', `no such group: ${name}`, { where });
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

// Why: the daemon keeps serving whatever a client sends: oversized, malformed, unknown op, non-bundle bytes each get an
// error reply; idle or half-open clients cannot keep the operator out (docs/DAEMON.md#control-socket).
export class ControlServer {
  private server: Server | null = null;
  private readonly clients = new Set<ControlConnection>();
  private readonly budget: ByteBudget;
  served = 0;
  /** Clients let go to make room for a new one, and clients refused `busy`. */
  evicted = 0;
  refused = 0;

  constructor(private readonly opts: ControlServerOptions) {
    this.budget = new ByteBudget(opts.maxBufferedBytes);
  }

  /** Connections open right now. */
  get connections(): number {
    return this.clients.size;
  }

  /** The most request bytes ever held in memory at once, across all clients. */
  get peakBufferedBytes(): number {
    return this.budget.peak;
  }

  get bufferedBytes(): number {
    return this.budget.used;
  }

  async listen(): Promise<void> {
    const { socketPath } = this.opts;
    // Nobody but root may write where the socket is bound: its chown/chmod below go by path.
    assertSafeSocketDir(socketPath, 'control socket');
    await mkdir(dirname(socketPath), { recursive: true, mode: 0o750 });
    assertSafeSocketDir(socketPath, 'control socket');
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

  // Why: a new client always finds a slot unless every slot is doing real work: the longest-idle reader is let go
  // for it, or a reserve slot takes a short request; only then is it refused `busy`.
  private serve(socket: Socket): void {
    let reserve = false;
    const regular = [...this.clients].filter((c) => !c.reserve && c.state !== 'closed').length;
    if (regular >= this.opts.maxClients) {
      const victim = this.idlestReader();
      if (victim !== null) {
        this.evicted++;
        reserve = victim.reserve;
        victim.evict();
      } else if ([...this.clients].filter((c) => c.reserve && c.state !== 'closed').length < RESERVED_CLIENTS) reserve = true;
      else {
        this.refuse(socket);
        return;
      }
    }
    const client: ControlConnection = new ControlConnection(
      socket,
      {
        maxLineBytes: reserve ? Math.min(SMALL_REQUEST_BYTES, this.opts.maxRequestBytes) : this.opts.maxRequestBytes,
        requestTimeoutMs: this.opts.requestTimeoutMs,
        clientIdleMs: this.opts.clientIdleMs,
        budget: this.budget,
        ...(this.opts.uploads !== undefined ? { uploads: this.opts.uploads } : {}),
        handle: (c) => this.opts.handle(c),
        onReply: () => this.served++,
        onClose: () => this.clients.delete(client),
        onRefused: (refusal) => this.opts.onRefused?.(refusal),
      },
      reserve,
    );
    this.clients.add(client);
  }

  private idlestReader(): ControlConnection | null {
    let best: ControlConnection | null = null;
    for (const c of this.clients) {
      if (c.state !== 'reading' || c.idleMs < EVICT_IDLE_MS) continue;
      if (best === null || c.lastActivity < best.lastActivity) best = c;
    }
    return best;
  }

  private refuse(socket: Socket): void {
    this.refused++;
    socket.on('error', () => undefined);
    socket.resume();
    const busy = errorReply(new SentinelError('busy', `too many control clients at once (${String(this.opts.maxClients)} and ${String(RESERVED_CLIENTS)} reserved, all in use)`, { where: 'control socket' }));
    socket.end(`${JSON.stringify(busy)}\n`, () => socket.destroy());
    setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
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
        for (const c of this.clients) c.destroy();
        resolve();
      }, 200).unref();
    });
    await unlink(this.opts.socketPath).catch(() => undefined);
  }
}
