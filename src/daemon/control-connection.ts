// One control-socket client: its request line read as it arrives (an inline bundle streamed to a file), bounded in
// size, in silence and in total time, answered once, then let go (docs/DAEMON.md#control-socket).
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { SentinelError } from '../core/errors.js';
import { commandOf, errorReply, type ControlCommand, type ControlReply } from './control-protocol.js';
import { RequestReader } from './request-reader.js';
import type { ByteBudget } from './byte-budget.js';
import type { Upload, UploadFile, Uploads } from './uploads.js';

/** A client that has sent no more than this is never held back by a full budget (status always gets through). */
export const SMALL_REQUEST_BYTES = 4096;

export interface ConnectionOptions {
  /** Largest request line for this client: maxRequestBytes, or SMALL_REQUEST_BYTES on a reserve slot. */
  maxLineBytes: number;
  requestTimeoutMs: number;
  clientIdleMs: number;
  budget: ByteBudget;
  uploads?: Uploads;
  handle(command: ControlCommand): Promise<unknown>;
  onReply(): void;
  onClose(): void;
  /** A request answered with an error before it reached `handle` (too large, malformed, its upload failed). */
  onRefused?(refusal: { deploy: boolean; error: SentinelError }): void;
}

type State = 'reading' | 'handling' | 'replying' | 'closed';

// Why: every way a client can stall, flood or vanish ends in one reply (or none, if it is gone) and a closed socket,
// with its upload file removed and its bytes given back to the budget.
export class ControlConnection {
  state: State = 'reading';
  /** performance.now() of the last byte read (or of the connect). */
  lastActivity = performance.now();
  private readonly reader = new RequestReader('bundleBase64');
  private received = 0;
  private heldAccounted = 0;
  private upload: UploadFile | null = null;
  private fields: Record<string, unknown> = {};
  private readonly wholeTimer: NodeJS.Timeout;
  private idleTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private busy: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: Socket,
    private readonly opts: ConnectionOptions,
    readonly reserve: boolean,
  ) {
    socket.on('error', () => undefined);
    this.wholeTimer = setTimeout(() => void this.fail(new SentinelError('usage', `no complete request line within ${String(opts.requestTimeoutMs)} ms`, { where: 'request' })), opts.requestTimeoutMs);
    this.armIdle();
    socket.on('data', (chunk: Buffer) => {
      socket.pause();
      this.busy = this.busy.then(() => this.read(chunk));
    });
    socket.on('end', () => {
      this.busy = this.busy.then(() => this.ended());
    });
    socket.on('close', () => this.closed());
  }

  private armIdle(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => void this.fail(new SentinelError('usage', `nothing received for ${String(this.opts.clientIdleMs)} ms`, { where: 'request' })), this.opts.clientIdleMs);
  }

  private disarmIdle(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** Milliseconds since the last byte arrived. */
  get idleMs(): number {
    return performance.now() - this.lastActivity;
  }

  // Why: the server needs this slot for a new client; an idle reader gives it up with a `busy` reply.
  evict(): void {
    void this.fail(new SentinelError('busy', 'disconnected while idle: the control socket is full', { where: 'control socket' }));
  }

  private async read(chunk: Buffer): Promise<void> {
    if (this.state !== 'reading') return;
    this.lastActivity = performance.now();
    this.armIdle();
    const budget = this.opts.budget;
    budget.take(chunk.length);
    let complete = false;
    try {
      const nl = chunk.indexOf(0x0a);
      const lineBytes = nl >= 0 ? nl : chunk.length;
      if (this.received + lineBytes > this.opts.maxLineBytes) throw new SentinelError('too-large', `request larger than ${String(this.opts.maxLineBytes)} bytes`, { where: 'request' });
      this.received += lineBytes;
      const r = this.reader.feed(chunk);
      for (const piece of r.streamed) await (await this.uploadFile()).write(piece);
      if (r.complete !== null) {
        if (r.complete.streamedField) await this.uploadFile();
        this.fields = r.complete.fields;
        complete = true;
      }
      this.account();
    } catch (e) {
      budget.release(chunk.length);
      await this.fail(e);
      return;
    }
    budget.release(chunk.length);
    if (this.state !== 'reading') {
      await this.upload?.discard();
      return;
    }
    if (complete) {
      await this.handleLine();
      return;
    }
    if (this.state !== 'reading') return;
    // A full budget holds this reader back (others' uploads drain it); a small request always gets through.
    if (this.received > SMALL_REQUEST_BYTES && !budget.hasRoom) {
      this.disarmIdle();
      await budget.waitRoom();
      if (this.state !== 'reading') return;
      this.lastActivity = performance.now();
      this.armIdle();
    }
    this.socket.resume();
  }

  private async uploadFile(): Promise<UploadFile> {
    if (this.upload !== null) return this.upload;
    if (this.opts.uploads === undefined) throw new SentinelError('usage', 'bundleBase64 is not accepted on this socket', { where: 'request' });
    const upload = await this.opts.uploads.create();
    this.upload = upload;
    // The client may have gone while the file was being made: then it goes at once.
    if (this.state === 'closed') await upload.discard();
    return upload;
  }

  // The reader's own holdings (fields so far, a partial base64 quad) count against the budget too.
  private account(): void {
    const held = this.state === 'reading' ? this.reader.held : 0;
    if (held > this.heldAccounted) this.opts.budget.take(held - this.heldAccounted);
    else this.opts.budget.release(this.heldAccounted - held);
    this.heldAccounted = held;
  }

  // A client that closes its side sends an implicit newline: a complete object is handled, anything else refused.
  private async ended(): Promise<void> {
    if (this.state !== 'reading') return;
    if (this.received === 0) {
      await this.fail(new SentinelError('usage', 'empty request', { where: 'request' }));
      return;
    }
    await this.read(Buffer.from('\n'));
  }

  private async handleLine(): Promise<void> {
    this.state = 'handling';
    clearTimeout(this.wholeTimer);
    this.disarmIdle();
    this.account();
    // The request arrived in time; handling it (a queued deploy, a long verify) is not bounded by the timeouts.
    this.socket.removeAllListeners('data');
    this.socket.resume();
    const id = typeof this.fields.id === 'string' ? this.fields.id : undefined;
    let command: ControlCommand;
    try {
      const upload: Upload | null = this.upload === null ? null : await this.upload.finish();
      command = commandOf(this.fields, upload);
    } catch (e) {
      await this.refuse(e);
      return;
    }
    let answer: ControlReply;
    try {
      answer = { ok: true, op: command.op, ...(id !== undefined ? { id } : {}), result: await this.opts.handle(command) };
    } catch (e) {
      answer = errorReply(e, command.op, id);
    }
    await this.reply(answer);
  }

  private async fail(e: unknown): Promise<void> {
    if (this.state !== 'reading') return;
    await this.refuse(e);
  }

  // Why: a deploy refused on its way in (its upload hit a full disk) is a reject like any other.
  private async refuse(e: unknown): Promise<void> {
    const op = typeof this.fields.op === 'string' ? this.fields.op : undefined;
    const reply = errorReply(e, op, typeof this.fields.id === 'string' ? this.fields.id : undefined);
    if (!reply.ok && this.opts.onRefused !== undefined) {
      const error = e instanceof SentinelError ? e : new SentinelError(reply.error.code, reply.error.message);
      this.opts.onRefused({ deploy: this.fields.op === 'deploy' || this.upload !== null, error });
    }
    await this.reply(reply);
  }

  // Why: the upload goes before the reply does (a client that reads the reply finds nothing left behind); the
  // socket is closed as soon as the reply is handed to the kernel, or after clientIdleMs if the client does not read.
  private async reply(r: ControlReply): Promise<void> {
    const first = this.state !== 'replying' && this.state !== 'closed';
    if (this.state === 'reading' || this.state === 'handling') this.state = 'replying';
    clearTimeout(this.wholeTimer);
    this.disarmIdle();
    this.account();
    await this.upload?.discard();
    if (!first) return;
    this.opts.onReply();
    if (this.socket.destroyed) return;
    this.socket.removeAllListeners('data');
    this.socket.resume();
    this.socket.end(`${JSON.stringify(r)}\n`, () => this.socket.destroy());
    this.lingerTimer = setTimeout(() => this.socket.destroy(), this.opts.clientIdleMs);
  }

  // Why: daemon stop: a client still connected after the grace period is cut off (its upload removed by `closed`).
  destroy(): void {
    this.socket.destroy();
  }

  private closed(): void {
    if (this.state === 'closed') return;
    const wasReading = this.state === 'reading';
    this.state = 'closed';
    clearTimeout(this.wholeTimer);
    this.disarmIdle();
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.account();
    // A client gone mid-upload leaves nothing behind.
    if (wasReading) void this.upload?.discard();
    this.opts.onClose();
  }
}
