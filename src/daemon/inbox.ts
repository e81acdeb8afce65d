// The inbox: a bundle file dropped in (scp, rsync, config management) is deployed, then moved to done/ or rejected/.
import { mkdir, rename, writeFile, lstat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { watchInbox, type InboxWatch } from '../adapters/watcher.js';
import type { Logger } from '../adapters/logger.js';
import { SentinelError } from '../core/errors.js';
import type { Sentinel } from './sentinel.js';

async function freeName(dir: string, name: string): Promise<string> {
  for (let i = 0; ; i++) {
    const candidate = join(dir, i === 0 ? name : `${name}.${String(i)}`);
    try {
      await lstat(candidate);
    } catch {
      return candidate;
    }
  }
}

// Why: writers write `name.tmp` (or a dot-file) and rename it to `*.bundle`; only complete files are picked up.
export class Inbox {
  private watch: InboxWatch | null = null;
  private readonly seen = new Set<string>();
  processed = 0;

  constructor(
    private readonly dir: string,
    private readonly sentinel: Sentinel,
    private readonly log: Logger,
    private readonly stableMs: number,
  ) {}

  async start(): Promise<void> {
    await mkdir(join(this.dir, 'done'), { recursive: true, mode: 0o700 });
    await mkdir(join(this.dir, 'rejected'), { recursive: true, mode: 0o700 });
    this.watch = watchInbox(this.dir, {
      stableMs: this.stableMs,
      onBundle: (path) => {
        if (this.seen.has(path)) return;
        this.seen.add(path);
        void this.take(path).finally(() => this.seen.delete(path));
      },
      onError: (err) => this.log.warn({ event: 'inbox-error', err: err.message }, 'inbox watch error'),
    });
    await this.watch.ready;
  }

  private async take(path: string): Promise<void> {
    const name = basename(path);
    try {
      const result = await this.sentinel.deploy(path, 'inbox');
      await rename(path, await freeName(join(this.dir, 'done'), name));
      this.log.info({ event: 'inbox', bundle: name, outcome: 'done', version: result.version, releaseId: result.releaseId }, 'inbox bundle deployed');
    } catch (e) {
      const err = e instanceof SentinelError ? e : new SentinelError('internal', String(e));
      try {
        const target = await freeName(join(this.dir, 'rejected'), name);
        await rename(path, target);
        // The reason appears whole or not at all: readers never see a half-written file.
        const tmp = join(dirname(target), `.${basename(target)}.reason.tmp`);
        await writeFile(tmp, `${JSON.stringify({ code: err.code, message: err.message, where: err.where })}\n`, { mode: 0o600 });
        await rename(tmp, `${target}.reason`);
      } catch (moveErr) {
        this.log.error({ event: 'inbox', bundle: name, err: (moveErr as Error).message }, 'cannot move a rejected inbox bundle');
      }
      this.log.warn({ event: 'inbox', bundle: name, outcome: 'rejected', code: err.code }, err.message);
    } finally {
      this.processed++;
    }
  }

  async close(): Promise<void> {
    await this.watch?.close();
    this.watch = null;
  }
}
