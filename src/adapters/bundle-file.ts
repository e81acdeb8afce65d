// Bundle file I/O (docs/FORMAT.md): open a bundle and read only its head
// within the size limits, and stream its payload into a staging tree, hash-checking every file as
// it is written. Nothing here decides trust; the caller verifies the head before staging.
import { createHash } from 'node:crypto';
import { constants, open } from 'node:fs/promises';
import { closeSync, fchmodSync, openSync, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { SentinelError } from '../core/errors.js';
import { ioError } from '../core/errno.js';
import { syncFsNative } from './native.js';
import { typeName } from './small-file.js';
import { O_PATH, openSameFile, procFdAvailable } from './proc-fd.js';
import { parseBundleHead } from '../core/bundle.js';
import type { BundleLimits } from '../core/limits.js';
import { DEFAULT_LIMITS } from '../core/limits.js';
import type { FileEntry } from '../core/manifest.js';

const CHUNK = 4 * 1024 * 1024;
const FIRST_READ = 64 * 1024;

/** An opened bundle whose head (manifest and signature bytes) has been read; the payload not yet. */
export interface OpenedBundle {
  readonly path: string;
  readonly size: number;
  readonly manifestBytes: Uint8Array;
  readonly signatureBytes: Uint8Array;
  readonly payloadOffset: number;
  close(): Promise<void>;
  /** @internal the open handle, used by stagePayload. */
  readonly handle: FileHandle;
}

// Why: opening a file is itself an action for a device (a hardware watchdog arms on open, a tape rewinds)
// or a fifo (its blocked writer is released), and the daemon opens a path a control-group member names,
// as root. So the path is first taken with O_PATH, which opens nothing, and only a regular file is then
// opened for reading, through that descriptor (/proc/self/fd/N: the same file, whatever the path holds now).
// `kept`: the vault's own stored bundle (bundles/<id>.bundle), never followed: a symlink there is `tampered`.
export async function openRegular(path: string, noFollow: boolean, kept = false): Promise<FileHandle> {
  let named: FileHandle;
  try {
    named = await open(path, O_PATH | (noFollow || kept ? constants.O_NOFOLLOW : 0));
  } catch (e) {
    throw ioError(e, 'cannot open bundle', path);
  }
  try {
    const st = await named.stat();
    // With O_PATH|O_NOFOLLOW a symlink is named itself rather than refused with ELOOP.
    if (st.isSymbolicLink() && kept) throw new SentinelError('tampered', 'stored bundle is a symlink (not followed)', { where: path });
    if (st.isSymbolicLink()) throw new SentinelError('bad-path', 'bundle is a symlink: it is not followed; drop the bundle file itself', { where: path });
    // The vault's own stored bundle that is not a file is a tamper (exit 1); a bundle the operator named, their mistake (exit 2).
    if (!st.isFile() && kept) throw new SentinelError('tampered', `stored bundle is ${typeName(st.mode, 'of another type')}, not a regular file`, { where: path });
    if (!st.isFile()) throw new SentinelError('usage', 'bundle is not a regular file', { where: path });
    // Without /proc: by path, and only the very file just checked (docs/SECURITY.md#without-proc).
    return procFdAvailable() ? await open(`/proc/self/fd/${String(named.fd)}`, constants.O_RDONLY) : await openSameFile(path, st, noFollow || kept ? constants.O_NOFOLLOW : 0);
  } catch (e) {
    throw ioError(e, 'cannot open bundle', path);
  } finally {
    await named.close().catch(() => undefined);
  }
}

// Why: invariant 2 (docs/VAULT.md#invariants) — only the head is read (bounded by the limits) before the signature is checked.
// `noFollow`: the last component must not be a symlink (a file dropped in the inbox by someone else is never followed by root).
// `kept`: the vault's stored bundle, which is never followed either (a symlink there is `tampered`).
export async function openBundle(path: string, limits: BundleLimits = DEFAULT_LIMITS, opts: { noFollow?: boolean; kept?: boolean } = {}): Promise<OpenedBundle> {
  const fh = await openRegular(path, opts.noFollow === true, opts.kept === true);
  try {
    const size = (await fh.stat()).size;
    const maxHead = 64 + limits.maxManifestBytes + limits.maxSignatureBlockBytes;
    let want = Math.min(FIRST_READ, size);
    for (;;) {
      const prefix = Buffer.alloc(want);
      const { bytesRead } = await fh.read(prefix, 0, want, 0);
      const head = parseBundleHead(new Uint8Array(prefix.buffer, prefix.byteOffset, bytesRead), limits);
      if (head.ok) {
        return {
          path,
          size,
          manifestBytes: head.manifestBytes,
          signatureBytes: head.signatureBytes,
          payloadOffset: head.payloadOffset,
          handle: fh,
          close: () => fh.close(),
        };
      }
      const need = head.need > bytesRead ? head.need : bytesRead + head.need;
      if (need > size || bytesRead < want) throw new SentinelError('truncated', `bundle ends inside its head (${size} bytes, head needs ${need})`, { where: path });
      if (need > maxHead) throw new SentinelError('too-large', `bundle head exceeds ${maxHead} bytes`, { where: path });
      want = need;
    }
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw ioError(e, 'cannot read bundle head', path);
  }
}

/** Sequential reader over a byte range of a file with one chunk read ahead. */
class RangeReader {
  private pos: number;
  private readonly end: number;
  private current: Buffer = Buffer.alloc(0);
  private currentFull: Buffer | null = null;
  private cursor = 0;
  private next: Promise<{ full: Buffer; view: Buffer }> | null = null;
  private spare: Buffer[] = [];

  constructor(private readonly fh: FileHandle, start: number, end: number, private readonly where: string) {
    this.pos = start;
    this.end = end;
  }

  private fetch(): Promise<{ full: Buffer; view: Buffer }> | null {
    if (this.pos >= this.end) return null;
    const len = Math.min(CHUNK, this.end - this.pos);
    const buf = this.spare.pop() ?? Buffer.allocUnsafe(CHUNK);
    const at = this.pos;
    this.pos += len;
    return this.fh.read(buf, 0, len, at).then(({ bytesRead }) => {
      if (bytesRead < len) throw new SentinelError('truncated', `bundle payload ends early at byte ${at + bytesRead}`, { where: this.where });
      return { full: buf, view: buf.subarray(0, len) };
    });
  }

  /** Up to `max` bytes of the range, or an empty buffer at its end. The slice is valid until the next call. */
  async take(max: number): Promise<Buffer> {
    if (this.cursor >= this.current.length) {
      if (this.currentFull !== null) this.spare.push(this.currentFull);
      this.next ??= this.fetch();
      if (this.next === null) return Buffer.alloc(0);
      const got = await this.next;
      this.current = got.view;
      this.currentFull = got.full;
      this.cursor = 0;
      this.next = this.fetch();
    }
    const n = Math.min(max, this.current.length - this.cursor);
    const slice = this.current.subarray(this.cursor, this.cursor + n);
    this.cursor += n;
    return slice;
  }

  async drain(): Promise<void> {
    if (this.next !== null) await this.next.catch(() => undefined);
  }
}

async function writeAll(out: FileHandle, bytes: Buffer): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    const { bytesWritten } = await out.write(bytes, off, bytes.length - off);
    off += bytesWritten;
  }
}

export interface StagedFile {
  entry: FileEntry;
  dest: string;
}

/** Files up to this size are staged with synchronous calls (one libuv round trip per call costs more than the I/O). */
const SMALL_FILE = 1024 * 1024;
/** Longest stretch of synchronous work before yielding to the event loop (the daemon's watchdog runs there). */
const YIELD_MS = 20;

function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function writeAllSync(fd: number, bytes: Buffer): void {
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
}

// Why: invariant 2 (docs/VAULT.md#invariants) — every payload file is hash- and size-checked while it is written into staging;
// a bundle shorter or longer than its manifest says is rejected before any payload byte is written.
export async function stagePayload(
  bundle: OpenedBundle,
  files: StagedFile[],
  totalBytes: number,
  onProgress?: (doneBytes: number) => void,
  /** Creates a file (O_CREAT|O_EXCL) and returns its fd, e.g. beneath a held directory; default: open(dest, 'wx'). */
  create?: (f: StagedFile) => number,
): Promise<void> {
  const expectedEnd = bundle.payloadOffset + totalBytes;
  if (bundle.size < expectedEnd) {
    throw new SentinelError('truncated', `bundle has ${bundle.size} bytes, its manifest needs ${expectedEnd}`, { where: bundle.path });
  }
  if (bundle.size > expectedEnd) {
    throw new SentinelError('trailing-data', `bundle has ${bundle.size - expectedEnd} bytes after the last payload file`, { where: bundle.path });
  }
  const reader = new RangeReader(bundle.handle, bundle.payloadOffset, expectedEnd, bundle.path);
  let done = 0;
  let since = performance.now();
  try {
    for (const { entry, dest } of files) {
      const hash = createHash('sha256');
      if (entry.size <= SMALL_FILE) {
        let fd: number;
        try {
          fd = create === undefined ? openSync(dest, 'wx', 0o600) : create({ entry, dest });
        } catch (e) {
          throw ioError(e, 'cannot create staged file', dest);
        }
        try {
          let left = entry.size;
          while (left > 0) {
            const slice = await reader.take(left);
            if (slice.length === 0) throw new SentinelError('truncated', 'bundle payload ends early', { where: entry.path });
            hash.update(slice);
            writeAllSync(fd, slice);
            left -= slice.length;
            done += slice.length;
          }
          fchmodSync(fd, entry.mode);
        } catch (e) {
          throw ioError(e, 'cannot write staged file', dest);
        } finally {
          closeSync(fd);
        }
      } else {
        let out: FileHandle;
        try {
          if (create === undefined) out = await open(dest, 'wx', 0o600);
          else {
            // The created file reopened through its own descriptor (the same inode) for the async writes.
            const fd = create({ entry, dest });
            try {
              out = await open(`/proc/self/fd/${fd}`, 'r+');
            } finally {
              closeSync(fd);
            }
          }
        } catch (e) {
          throw ioError(e, 'cannot create staged file', dest);
        }
        try {
          let left = entry.size;
          while (left > 0) {
            const slice = await reader.take(left);
            if (slice.length === 0) throw new SentinelError('truncated', 'bundle payload ends early', { where: entry.path });
            // The write runs on libuv's pool while this thread hashes the same (read-only) bytes.
            const written = writeAll(out, slice);
            hash.update(slice);
            await written;
            left -= slice.length;
            done += slice.length;
          }
          await out.chmod(entry.mode);
        } catch (e) {
          throw ioError(e, 'cannot write staged file', dest);
        } finally {
          await out.close();
        }
      }
      const got = hash.digest('hex');
      if (got !== entry.sha256) {
        throw new SentinelError('hash-mismatch', `payload SHA-256 ${got} differs from the manifest's ${entry.sha256}`, { where: entry.path });
      }
      onProgress?.(done);
      if (performance.now() - since > YIELD_MS) {
        await yieldToLoop();
        since = performance.now();
      }
    }
  } finally {
    await reader.drain();
  }
}

// Why: one syncfs(2) before sealing flushes a whole staged release; an fsync per file of thousands
// of files would dominate the deploy, and the kernel's first +i is slow on dirty inodes. Through the
// addon when it is built (no process), else `sync -f`, bounded generously (10 min): a disk that
// cannot take a release in that time fails the deploy, not hangs it.
export async function syncFilesystem(path: string): Promise<void> {
  try {
    if (await syncFsNative(path)) return;
  } catch (e) {
    throw ioError(e, 'syncfs failed', path);
  }
  // The process adapter (execa) only when a deploy gets here (docs/ARCHITECTURE.md#start-up).
  const { runCommand } = await import('./process.js');
  const r = await runCommand(['sync', '-f', path], { timeoutMs: 600_000 });
  if (!r.ok) throw new SentinelError('io', `sync -f failed: ${r.timedOut ? 'timed out after 600000 ms' : r.stderr.trim() || r.message}`, { where: path, cause: r });
}

// Why: a rename is only durable once its directory is fsync'ed (crash consistency, docs/VAULT.md#invariants 3).
export async function fsyncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
