// The Prometheus listener (`metrics.listen`): HTTP, `GET /metrics` only, bounded so that slow or idle clients
// cannot hold it (docs/DAEMON.md#metrics). Binds exactly the configured TCP address or Unix socket path.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SentinelError, messageOf } from '../core/errors.js';
import { codeForErrno, errnoOf } from '../core/errno.js';
import type { MetricsListen } from '../core/metrics-listen.js';
import type { Logger } from '../adapters/logger.js';
import { groupId, probeLive } from './control-server.js';
import { assertSafeSocketDir } from './socket-dir.js';

/** Bounds of the listener; a scrape is one small request, answered at once. */
export interface MetricsServerLimits {
  /** Connections open at once; more are closed as they arrive. */
  maxConnections: number;
  /** Time a client has to send its request headers. */
  headersTimeoutMs: number;
  /** Time a client has to send its whole request. */
  requestTimeoutMs: number;
  /** An open connection silent this long is closed (keep-alive included). */
  idleTimeoutMs: number;
}

export const METRICS_SERVER_LIMITS: MetricsServerLimits = { maxConnections: 16, headersTimeoutMs: 5_000, requestTimeoutMs: 10_000, idleTimeoutMs: 10_000 };

export interface MetricsServerOptions {
  listen: MetricsListen;
  /** For a Unix socket: group allowed to connect (mode 0660); without it 0600 (root only). */
  group?: string;
  log: Logger;
  contentType: string;
  render(): Promise<string>;
  limits?: Partial<MetricsServerLimits>;
}

const WHERE = 'metrics.listen';

// Why: a socket file left by a killed daemon is removed; a live one, or a file that is not a socket, is not ours.
async function clearStaleSocket(path: string): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (st === null) return;
  if (!st.isSocket()) throw new SentinelError('exists', 'the metrics socket path exists and is not a socket', { where: `${WHERE} (${path})` });
  if (await probeLive(path)) throw new SentinelError('busy', 'another process is serving the metrics socket', { where: `${WHERE} (${path})` });
  await unlink(path);
}

// Why: Prometheus scrapes one path; everything else is answered at once and never held.
export class MetricsServer {
  private server: Server | null = null;
  scrapes = 0;

  constructor(private readonly opts: MetricsServerOptions) {}

  /** Where it listens, e.g. `127.0.0.1:9464` (the port actually bound) or the socket path. */
  get address(): string {
    const a = this.server?.address();
    if (a === null || a === undefined) return '';
    if (typeof a === 'string') return a;
    return a.family === 'IPv6' ? `[${a.address}]:${String(a.port)}` : `${a.address}:${String(a.port)}`;
  }

  async listen(): Promise<void> {
    const { listen } = this.opts;
    const limits = { ...METRICS_SERVER_LIMITS, ...this.opts.limits };
    const server = createServer({ headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, keepAliveTimeout: Math.min(5_000, limits.idleTimeoutMs), connectionsCheckingInterval: 500, maxHeaderSize: 8192 }, (req, res) => void this.serve(req, res));
    server.maxConnections = limits.maxConnections;
    server.maxHeadersCount = 64;
    // No 'timeout' listener: an idle socket is destroyed.
    server.setTimeout(limits.idleTimeoutMs);
    const where = listen.kind === 'unix' ? `${WHERE} (${listen.path})` : `${WHERE} (${listen.host}:${String(listen.port)})`;
    let gid: number | null = null;
    if (listen.kind === 'unix') {
      gid = this.opts.group === undefined ? null : await groupId(this.opts.group, 'metrics.group');
      // Nobody but root may write where the socket is bound: its chown/chmod below go by path.
      assertSafeSocketDir(listen.path, 'metrics socket');
      await mkdir(dirname(listen.path), { recursive: true, mode: 0o750 });
      assertSafeSocketDir(listen.path, 'metrics socket');
      await clearStaleSocket(listen.path);
    }
    const oldMask = listen.kind === 'unix' ? process.umask(0o177) : null;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        const done = (): void => {
          server.off('error', reject);
          resolve();
        };
        if (listen.kind === 'unix') server.listen(listen.path, done);
        else server.listen({ host: listen.host, port: listen.port, ipv6Only: listen.host.includes(':') }, done);
      });
    } catch (cause) {
      throw new SentinelError(codeForErrno(errnoOf(cause)) === 'not-permitted' ? 'not-permitted' : 'io', `cannot listen for metrics: ${messageOf(cause)}`, { where, cause });
    } finally {
      if (oldMask !== null) process.umask(oldMask);
    }
    if (listen.kind === 'unix') {
      try {
        if (gid !== null) await chown(listen.path, 0, gid);
        await chmod(listen.path, gid !== null ? 0o660 : 0o600);
      } catch (cause) {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await unlink(listen.path).catch(() => undefined);
        throw new SentinelError(codeForErrno(errnoOf(cause)) === 'not-permitted' ? 'not-permitted' : 'io', `cannot set the metrics socket owner and mode: ${messageOf(cause)}`, { where, cause });
      }
    }
    server.on('error', (err) => this.opts.log.error({ event: 'metrics-error', err: err.message }, 'metrics listener error'));
    server.on('clientError', (_err, socket) => socket.destroy());
    this.server = server;
    this.opts.log.info({ event: 'metrics', listen: this.address }, 'serving Prometheus metrics');
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD', connection: 'close' }).end('only GET /metrics\n');
      return;
    }
    try {
      const body = await this.opts.render();
      this.scrapes++;
      res.writeHead(200, { 'content-type': this.opts.contentType, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (e) {
      this.opts.log.error({ event: 'metrics-error', err: messageOf(e) }, 'metrics could not be collected');
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end('metrics could not be collected\n');
    }
  }

  // Why: SIGTERM closes the listener, drops open connections and removes a socket file.
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    if (this.opts.listen.kind === 'unix') await unlink(this.opts.listen.path).catch(() => undefined);
  }
}
