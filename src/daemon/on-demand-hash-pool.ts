// A HashPool whose worker threads exist only while hashing: an idle daemon should not hold N V8 isolates (idle RSS, docs/DAEMON.md).
import { HashPool, type HashResult } from '../adapters/hash.js';

// Why: verify and heal need all cores for seconds, then nothing for minutes; idle workers cost ~10 MB RSS each.
export class OnDemandHashPool extends HashPool {
  private inner: HashPool | null = null;
  private busy = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> = Promise.resolve();

  constructor(
    private readonly idleMs: number,
    private readonly workerCount?: number,
  ) {
    super(1);
  }

  override hashFiles(paths: string[], onProgress?: (doneBytes: number, doneFiles: number) => void): Promise<HashResult[]> {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.busy++;
    const run = async (): Promise<HashResult[]> => {
      await this.closing;
      this.inner ??= new HashPool(this.workerCount);
      return this.inner.hashFiles(paths, onProgress);
    };
    return run().finally(() => {
      this.busy--;
      if (this.busy === 0) {
        this.idleTimer = setTimeout(() => this.release(), this.idleMs);
        this.idleTimer.unref();
      }
    });
  }

  private release(): void {
    this.idleTimer = null;
    if (this.busy > 0 || this.inner === null) return;
    const pool = this.inner;
    this.inner = null;
    this.closing = pool.close();
  }

  override async close(): Promise<void> {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const pool = this.inner;
    this.inner = null;
    await this.closing;
    if (pool !== null) await pool.close();
    await super.close();
  }

  /** Whether worker threads exist right now (for `status` and tests). */
  get active(): boolean {
    return this.inner !== null;
  }
}
