// Writing a bundle file in one pass over its source (docs/SECURITY.md#signing-a-source-tree): the head's
// length is known before any file is read (a manifest's length does not depend on its SHA-256 values,
// which are fixed-width hex), so the payload is written first, after room for the head, each file
// hashed as it is copied from the one open file; the head goes in last. The bytes hashed are the
// bytes in the bundle. Large bundles never sit in memory (4 MiB buffer, small files batched).
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { mkdir, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { ioError } from '../core/errno.js';

const CHUNK = 4 * 1024 * 1024;
/** Longest stretch of synchronous work before yielding to the event loop. */
const YIELD_MS = 20;

function writeAllAt(fd: number, bytes: Uint8Array, position: number): void {
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off, position + off);
}

const yieldToLoop = () => new Promise((r) => setImmediate(r));

// Why: the one way `sentinel sign` writes a bundle: a temporary file, the payload, then the head, fsync, rename.
export class BundleWriter {
  private readonly buf = Buffer.allocUnsafe(CHUNK);
  private fill = 0;
  /** File offset of buf[0]. */
  private at: number;
  private since = performance.now();
  private closed = false;

  private constructor(
    readonly out: string,
    private readonly tmp: string,
    private readonly fd: number,
    private readonly headBytes: number,
  ) {
    this.at = headBytes;
  }

  // Creates `out`'s temporary file; the payload starts at `headBytes`.
  static async create(out: string, headBytes: number): Promise<BundleWriter> {
    await mkdir(dirname(out), { recursive: true }).catch(() => undefined);
    const tmp = `${out}.tmp-${process.pid}`;
    let fd: number;
    try {
      fd = openSync(tmp, 'wx', 0o644);
    } catch (e) {
      throw ioError(e, 'cannot create bundle', tmp);
    }
    return new BundleWriter(out, tmp, fd, headBytes);
  }

  private flush(): void {
    writeAllAt(this.fd, this.buf.subarray(0, this.fill), this.at);
    this.at += this.fill;
    this.fill = 0;
  }

  // Copies exactly `size` bytes of an open source file and returns their SHA-256; a file that is
  // shorter or longer than `size` (changed while signing) is an error naming `where`.
  async copyFile(src: number, size: number, where: string): Promise<string> {
    const hash = createHash('sha256');
    let copied = 0;
    for (;;) {
      if (this.fill === this.buf.length) this.flush();
      // One byte past the expected end is asked for too: a file that grew is caught here.
      const want = Math.min(this.buf.length - this.fill, size - copied + 1);
      let n: number;
      try {
        n = readSync(src, this.buf, this.fill, want, copied);
      } catch (e) {
        throw ioError(e, 'cannot read source file', where, 'source-tree');
      }
      if (n === 0) break;
      if (copied + n > size) throw new SentinelError('io', `the source tree changed while signing: the file grew beyond ${size} bytes`, { where });
      hash.update(this.buf.subarray(this.fill, this.fill + n));
      this.fill += n;
      copied += n;
      if (performance.now() - this.since > YIELD_MS) {
        await yieldToLoop();
        this.since = performance.now();
      }
    }
    if (copied !== size) throw new SentinelError('io', `the source tree changed while signing: the file has ${copied} bytes, ${size} were listed`, { where });
    return hash.digest('hex');
  }

  // Writes the head (exactly the length announced) at the start, makes the file durable and moves it to `out`.
  async finish(head: Uint8Array): Promise<{ bytes: number }> {
    if (head.length !== this.headBytes) throw new SentinelError('internal', `bundle head is ${head.length} bytes, ${this.headBytes} were reserved`, { where: this.out });
    try {
      this.flush();
      writeAllAt(this.fd, head, 0);
      fsyncSync(this.fd);
    } catch (e) {
      await this.abort();
      throw ioError(e, 'cannot write bundle', this.out);
    }
    this.closed = true;
    closeSync(this.fd);
    await rename(this.tmp, this.out);
    return { bytes: this.at };
  }

  // Removes the temporary file (any failure before finish).
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
    await unlink(this.tmp).catch(() => undefined);
  }
}
