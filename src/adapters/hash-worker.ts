// Worker thread of HashPool: claims files from a shared counter (no round trip per file, so the
// two cores stay busy to the last file) and hashes each with synchronous reads into one reused
// buffer: constant memory for big files, no async overhead for small ones.
import * as nodeCrypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as WorkerThreads from 'node:worker_threads';

/** A job for one worker: the whole path list, the shared claim counter, the buffer size. */
export interface HashJobMessage {
  type: 'job';
  jobId: number;
  paths: string[];
  /** Int32Array over a SharedArrayBuffer: [0] = next index to claim, [1] = workers that started. */
  counter: SharedArrayBuffer;
  bufferBytes: number;
}

/** Results so far: parallel arrays of input index, size and hex digest. */
export interface HashBatchMessage {
  type: 'batch';
  jobId: number;
  indexes: number[];
  sizes: number[];
  digests: string[];
  bytes: number;
}

/** The worker ran out of files (or was stopped by a failure elsewhere). */
export interface HashDoneMessage {
  type: 'done';
  jobId: number;
}

/** One file could not be hashed; the pool stops the job and reports it with the path. */
export interface HashFailMessage {
  type: 'fail';
  jobId: number;
  index: number;
  errno: string;
  message: string;
}

/** Everything a worker posts back. */
export type HashWorkerReply = HashBatchMessage | HashDoneMessage | HashFailMessage;

// Flush results at least this often so onProgress moves on big files too.
const FLUSH_FILES = 512;
const FLUSH_BYTES = 64 * 1024 * 1024;
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** workerData marking a thread as a HashPool worker (so importing this module elsewhere is inert). */
export const HASH_WORKER_ROLE = 'sentinel-hash';
/**
 * The argument HashPool starts its threads with: only there is node:worker_threads loaded by this
 * module, so a process that imports it without hashing (`vault status`, verify with the addon) does
 * not load it (docs/ARCHITECTURE.md#start-up).
 */
export const HASH_WORKER_ARG = '--sentinel-hash-worker';

let buffer = Buffer.allocUnsafe(0);
// crypto.hash() exists from Node 20.12; older 20.x falls back to createHash. Looked up at the first
// file, not when this module is evaluated: in the plain runners' bundle node:crypto is required on
// its first use (scripts/bundle-cli.mjs), and `vault status` imports this module without hashing.
let oneShot: typeof nodeCrypto.hash | undefined | null = null;
const oneShotHash = (): typeof nodeCrypto.hash | undefined => (oneShot === null ? (oneShot = typeof nodeCrypto.hash === 'function' ? nodeCrypto.hash : undefined) : oneShot);

// SHA-256 and size of one regular file through `buffer` (never follows a symlink, never blocks on
// a FIFO, refuses anything but a regular file with code ENOTREG). Also used by the pool's own thread.
export function hashFileSync(path: string, buffer: Buffer): { size: number; digest: string } {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      const err = new Error(`not a regular file: ${path}`) as Error & { code: string };
      err.code = 'ENOTREG';
      throw err;
    }
    const first = readSync(fd, buffer, 0, buffer.length, null);
    // A whole small file in one read: the one-shot digest skips the Hash object.
    const hashOnce = first < buffer.length && first >= st.size ? oneShotHash() : undefined;
    if (hashOnce !== undefined) {
      return { size: first, digest: hashOnce('sha256', buffer.subarray(0, first), 'hex') };
    }
    const hash = createHash('sha256');
    hash.update(first === buffer.length ? buffer : buffer.subarray(0, first));
    let size = first;
    if (first < buffer.length && size >= st.size) return { size, digest: hash.digest('hex') };
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
      size += n;
      // A short read of a regular file is its end: saves the extra read() per small file.
      if (n < buffer.length && size >= st.size) break;
    }
    return { size, digest: hash.digest('hex') };
  } finally {
    closeSync(fd);
  }
}

function runJob(port: WorkerThreads.MessagePort, job: HashJobMessage): void {
  if (buffer.length !== job.bufferBytes) buffer = Buffer.allocUnsafe(job.bufferBytes);
  const next = new Int32Array(job.counter);
  Atomics.add(next, 1, 1);
  const total = job.paths.length;
  let batch: HashBatchMessage = { type: 'batch', jobId: job.jobId, indexes: [], sizes: [], digests: [], bytes: 0 };
  const flush = (): void => {
    if (batch.indexes.length === 0) return;
    port.postMessage(batch);
    batch = { type: 'batch', jobId: job.jobId, indexes: [], sizes: [], digests: [], bytes: 0 };
  };
  for (;;) {
    const i = Atomics.add(next, 0, 1);
    if (i >= total) break;
    const path = job.paths[i] ?? '';
    let r;
    try {
      r = hashFileSync(path, buffer);
    } catch (e) {
      flush();
      const err = e as Partial<NodeJS.ErrnoException>;
      // Tell the other workers to stop claiming.
      Atomics.store(next, 0, total);
      port.postMessage({ type: 'fail', jobId: job.jobId, index: i, errno: err.code ?? 'EIO', message: err.message ?? String(e) } satisfies HashFailMessage);
      break;
    }
    batch.indexes.push(i);
    batch.sizes.push(r.size);
    batch.digests.push(r.digest);
    batch.bytes += r.size;
    if (batch.indexes.length >= FLUSH_FILES || batch.bytes >= FLUSH_BYTES) flush();
  }
  flush();
  port.postMessage({ type: 'done', jobId: job.jobId } satisfies HashDoneMessage);
}

if (process.argv.includes(HASH_WORKER_ARG)) {
  const threads = createRequire(import.meta.url)('node:worker_threads') as typeof WorkerThreads;
  const port = threads.parentPort;
  if (port !== null && (threads.workerData as { role?: unknown } | null)?.role === HASH_WORKER_ROLE) {
    port.on('message', (m: HashJobMessage) => {
      if (m.type === 'job') runJob(port, m);
    });
  }
}
