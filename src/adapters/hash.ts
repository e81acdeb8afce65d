// SHA-256 of many files on all cores (vault verify at openssl speed). A pool of
// worker_threads claims files from a shared counter; see hash-worker.ts for the reading side.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import type * as WorkerThreads from 'node:worker_threads';
import { SentinelError } from '../core/errors.js';
import { codeForErrno, errnoOf } from '../core/errno.js';
import { packageRoot } from './package-root.js';
import { HASH_WORKER_ARG, HASH_WORKER_ROLE, hashFileSync } from './hash-worker.js';
import type { HashJobMessage, HashWorkerReply } from './hash-worker.js';

// What verify compares with a manifest entry.
export interface HashResult {
  path: string;
  size: number;
  sha256: string;
}

// 1 MiB reads: big enough that syscalls vanish next to hashing, small enough to stay in L2/L3.
export const HASH_BUFFER_BYTES = 1024 * 1024;

function hashError(errno: string, path: string, cause?: unknown): SentinelError {
  const what =
    errno === 'ELOOP' ? 'is a symlink, not a regular file' : errno === 'ENOTREG' ? 'is not a regular file' : `could not be read (${errno})`;
  // The errno stays readable as errnoOf(err.cause), for callers that report it per file.
  const withErrno = errnoOf(cause) === errno ? cause : Object.assign(new Error(`${errno}: file to hash ${what}`), { code: errno, cause });
  return new SentinelError(codeForErrno(errno, 'tree-entry'), `file to hash ${what}`, { where: path, cause: withErrno });
}

// The compiled worker next to this module (dist/src/adapters), or dist's copy when running from src.
function workerUrl(): URL {
  const here = new URL('./hash-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = join(packageRoot(), 'dist', 'src', 'adapters', 'hash-worker.js');
  if (existsSync(built)) return new URL(`file://${built}`);
  throw new SentinelError('internal', 'hash worker not found; run the build (npm run build)', { where: fileURLToPath(here) });
}

interface RunningJob {
  jobId: number;
  paths: string[];
  results: (HashResult | undefined)[];
  doneBytes: number;
  doneFiles: number;
  workersLeft: number;
  failure: SentinelError | undefined;
  onProgress: ((doneBytes: number, doneFiles: number) => void) | undefined;
  resolve(results: HashResult[]): void;
  reject(e: unknown): void;
}

// A pool of hashing workers, reused across calls (one verify, or the daemon's whole lifetime).
// Workers boot on first use and idle workers are unref'd, so a forgotten close() does not keep
// the process alive.
export class HashPool {
  readonly size: number;
  private workers: Worker[] = [];
  private online: Promise<void>[] = [];
  private onlineCount = 0;
  private mainBuffer: Buffer | undefined;
  private job: RunningJob | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private nextJobId = 1;
  private closed = false;

  readonly bufferBytes: number;

  constructor(workers: number = availableParallelism(), options: { bufferBytes?: number } = {}) {
    if (!Number.isInteger(workers) || workers < 1) {
      throw new SentinelError('usage', `hash workers must be a positive integer, got ${workers}`, { where: 'workers' });
    }
    const bufferBytes = options.bufferBytes ?? HASH_BUFFER_BYTES;
    if (!Number.isInteger(bufferBytes) || bufferBytes < 4096 || bufferBytes > 64 * 1024 * 1024) {
      throw new SentinelError('usage', `hash buffer must be 4 KiB to 64 MiB, got ${bufferBytes}`, { where: 'bufferBytes' });
    }
    this.size = workers;
    this.bufferBytes = bufferBytes;
    // Workers boot on the first hashFiles (or warmUp), not here: `vault verify` hashes natively and
    // a pool that is never used must not cost two thread start-ups on a 2-core machine. The first
    // job does not wait for them: this thread hashes until they are up (hashWhileWorkersStart).
  }

  // Starts the workers now rather than on the first call (benchmarks, daemon start-up).
  async warmUp(): Promise<void> {
    this.spawn();
    this.setRef(true);
    try {
      await Promise.all(this.online);
    } finally {
      if (this.job === undefined) this.setRef(false);
    }
  }

  // Hashes every path (regular files only; a symlink or special file is refused) and returns the
  // results in input order. Calls are serialised; onProgress gets cumulative bytes and files.
  // `options.sizes` (e.g. from the manifest), one per path, makes the workers take the largest
  // files first, so no core is left alone with a big file at the end.
  hashFiles(
    paths: string[],
    onProgress?: (doneBytes: number, doneFiles: number) => void,
    options: { sizes?: readonly number[] } = {},
  ): Promise<HashResult[]> {
    const sizes = options.sizes;
    if (sizes !== undefined && sizes.length !== paths.length) {
      return Promise.reject(new SentinelError('internal', `hashFiles: ${sizes.length} sizes for ${paths.length} paths`));
    }
    if (sizes === undefined) return this.enqueue(paths, onProgress);
    const order = paths.map((_, i) => i).sort((a, b) => (sizes[b] ?? 0) - (sizes[a] ?? 0));
    return this.enqueue(order.map((i) => paths[i] ?? ''), onProgress).then((sorted) => {
      const out = new Array<HashResult>(sorted.length);
      sorted.forEach((r, k) => (out[order[k] ?? 0] = r));
      return out;
    });
  }

  private enqueue(paths: string[], onProgress?: (doneBytes: number, doneFiles: number) => void): Promise<HashResult[]> {
    const run = this.queue.then(() => this.runJob(paths, onProgress));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    const ws = this.workers;
    this.workers = [];
    this.online = [];
    this.onlineCount = 0;
    await Promise.all(ws.map((w) => w.terminate()));
  }

  private spawn(): void {
    const url = workerUrl();
    // Loaded when the first worker starts: `vault status` and verify with the addon never do.
    const { Worker } = createRequire(import.meta.url)('node:worker_threads') as typeof WorkerThreads;
    while (this.workers.length < this.size) {
      const w = new Worker(url, { name: 'sentinel-hash', workerData: { role: HASH_WORKER_ROLE }, argv: [HASH_WORKER_ARG] });
      this.online.push(new Promise<void>((res) => w.once('online', () => {
        this.onlineCount += 1;
        res();
      })));
      w.on('message', (m: HashWorkerReply) => this.onMessage(m));
      w.on('error', (e) => this.onWorkerLost(w, e));
      w.on('exit', (code) => this.onWorkerLost(w, new Error(`hash worker exited with code ${code}`)));
      w.unref();
      this.workers.push(w);
    }
  }

  private onWorkerLost(w: Worker, e: unknown): void {
    const i = this.workers.indexOf(w);
    if (i < 0) return;
    this.workers.splice(i, 1);
    const job = this.job;
    if (job !== undefined) {
      this.job = undefined;
      this.setRef(false);
      job.reject(new SentinelError('internal', 'a hash worker died', { cause: e }));
    }
  }

  private setRef(on: boolean): void {
    for (const w of this.workers) {
      if (on) w.ref();
      else w.unref();
    }
  }

  private runJob(paths: string[], onProgress?: (doneBytes: number, doneFiles: number) => void): Promise<HashResult[]> {
    if (this.closed) return Promise.reject(new SentinelError('internal', 'hash pool is closed'));
    if (paths.length === 0) return Promise.resolve([]);
    this.spawn();
    return new Promise<HashResult[]>((resolve, reject) => {
      const jobId = this.nextJobId++;
      this.job = {
        jobId, paths, results: new Array<HashResult | undefined>(paths.length), doneBytes: 0, doneFiles: 0,
        workersLeft: this.workers.length, failure: undefined, onProgress, resolve, reject,
      };
      const counter = new SharedArrayBuffer(8);
      this.setRef(true);
      const msg: HashJobMessage = { type: 'job', jobId, paths, counter, bufferBytes: this.bufferBytes };
      for (const w of this.workers) w.postMessage(msg);
      if (this.onlineCount < this.workers.length) this.hashWhileWorkersStart(new Int32Array(counter));
    });
  }

  // A cold pool's workers need tens of milliseconds to boot: this thread claims files from the
  // same counter until every worker has picked up the job, instead of waiting idle (a one-shot
  // `vault verify` of small files gains about that much).
  private hashWhileWorkersStart(next: Int32Array): void {
    const job = this.job;
    if (job === undefined) return;
    this.mainBuffer ??= Buffer.allocUnsafe(this.bufferBytes);
    const total = job.paths.length;
    let did = 0;
    while (Atomics.load(next, 1) < this.workers.length) {
      const i = Atomics.add(next, 0, 1);
      if (i >= total) break;
      const path = job.paths[i] ?? '';
      try {
        const r = hashFileSync(path, this.mainBuffer);
        job.results[i] = { path, size: r.size, sha256: r.digest };
        job.doneBytes += r.size;
        job.doneFiles += 1;
        did += 1;
      } catch (e) {
        Atomics.store(next, 0, total);
        job.failure ??= hashError(errnoOf(e) ?? 'EIO', path, e);
        break;
      }
    }
    if (did > 0 && job.onProgress !== undefined && job.failure === undefined) job.onProgress(job.doneBytes, job.doneFiles);
  }

  private onMessage(m: HashWorkerReply): void {
    const job = this.job;
    if (job === undefined || m.jobId !== job.jobId) return;
    if (m.type === 'batch') {
      for (let k = 0; k < m.indexes.length; k++) {
        const i = m.indexes[k] ?? 0;
        job.results[i] = { path: job.paths[i] ?? '', size: m.sizes[k] ?? 0, sha256: m.digests[k] ?? '' };
      }
      job.doneBytes += m.bytes;
      job.doneFiles += m.indexes.length;
      if (job.onProgress !== undefined && job.failure === undefined) job.onProgress(job.doneBytes, job.doneFiles);
      return;
    }
    if (m.type === 'fail') {
      job.failure ??= hashError(m.errno, job.paths[m.index] ?? '', new Error(m.message));
      return;
    }
    job.workersLeft -= 1;
    if (job.workersLeft > 0) return;
    this.job = undefined;
    this.setRef(false);
    if (job.failure !== undefined) {
      job.reject(job.failure);
      return;
    }
    const out: HashResult[] = [];
    for (const r of job.results) {
      if (r === undefined) {
        job.reject(new SentinelError('internal', 'a file was never hashed'));
        return;
      }
      out.push(r);
    }
    job.resolve(out);
  }
}

// One file without a pool: streams through a reused buffer, never reads it whole into memory.
export async function sha256File(path: string): Promise<HashResult> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    throw hashError(errnoOf(e) ?? 'EIO', path, e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw hashError('ENOTREG', path);
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(Math.min(HASH_BUFFER_BYTES, Math.max(st.size, 64 * 1024)));
    let size = 0;
    for (;;) {
      let n;
      try {
        ({ bytesRead: n } = await fh.read(buf, 0, buf.length, null));
      } catch (e) {
        throw hashError(errnoOf(e) ?? 'EIO', path, e);
      }
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      size += n;
    }
    return { path, size, sha256: hash.digest('hex') };
  } finally {
    await fh.close();
  }
}
