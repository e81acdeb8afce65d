// The last record the daemon wrote to its audit log (seq and hash), kept in the state directory, so a log lost
// or replaced while the daemon was stopped is noticed and the next chain continues it (docs/DAEMON.md#audit-log).
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { messageOf } from '../core/errors.js';

export interface AuditHead {
  /** The audit log this head belongs to (a state directory shared by two logs keeps only one). */
  path: string;
  seq: number;
  hash: string;
  time: string;
}

// Why: the head is untrusted input when read back; anything malformed counts as no head at all.
export async function readAuditHead(file: string, auditPath: string): Promise<AuditHead | null> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (v.path !== auditPath || typeof v.seq !== 'number' || !Number.isSafeInteger(v.seq) || v.seq < 1) return null;
  if (typeof v.hash !== 'string' || !/^[0-9a-f]{64}$/.test(v.hash) || typeof v.time !== 'string') return null;
  return { path: v.path, seq: v.seq, hash: v.hash, time: v.time };
}

// Why: written after every append, but never more than one write at a time: the newest head wins.
export class AuditHeadWriter {
  private next: AuditHead | null = null;
  private running: Promise<void> | null = null;
  /** The last failure to write the head (a full disk), or null. */
  lastError: string | null = null;

  constructor(private readonly file: string) {}

  update(head: AuditHead): void {
    this.next = head;
    this.running ??= this.loop();
  }

  private async loop(): Promise<void> {
    while (this.next !== null) {
      const head = this.next;
      this.next = null;
      const tmp = join(dirname(this.file), `.${basename(this.file)}.tmp`);
      try {
        await writeFile(tmp, `${JSON.stringify(head)}\n`, { mode: 0o600 });
        await rename(tmp, this.file);
        this.lastError = null;
      } catch (e) {
        this.lastError = messageOf(e);
      }
    }
    this.running = null;
  }

  async flush(): Promise<void> {
    while (this.running !== null) await this.running;
  }
}
