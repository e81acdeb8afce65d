// Which `command` targets the daemon has running, kept in the state directory (PID, start time, process group,
// boot), so the next daemon can kill what a killed one left behind before it starts them again
// (docs/EBPF.md#command-targets-and-the-daemons-death).
import { readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { messageOf } from '../../core/errors.js';
import { processTable, readProcState } from '../../adapters/proc.js';
import { killGroup, killPid } from '../../adapters/process.js';

/** The file in the state directory that holds the records. */
export const CHILD_RECORDS_FILE = 'children.json';

/** One running command target as the daemon started it. */
export interface ChildRecord {
  pid: number;
  startTicks: number;
  /** The process group it leads (its PID): what it started itself is in there too. */
  pgid: number;
  /** The kernel's boot id: after a reboot every record is void. */
  bootId: string;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

const KILL_WAIT_MS = 2_000;

// Why: a `kill -9` of the daemon leaves no chance to stop its children; the record lets the next start find them
// (PID + start time against /proc, so a reused PID is never mistaken for ours).
export class ChildRecords {
  private records: Record<string, ChildRecord> | null = null;
  private writes: Promise<void> = Promise.resolve();
  readonly bootId = bootId();
  /** The last failure to write the file (a full disk), or null. */
  lastError: string | null = null;

  constructor(readonly file: string) {}

  private async load(): Promise<Record<string, ChildRecord>> {
    if (this.records !== null) return this.records;
    let parsed: unknown = {};
    try {
      parsed = JSON.parse(await readFile(this.file, 'utf8'));
    } catch {
      parsed = {};
    }
    const out: Record<string, ChildRecord> = {};
    if (typeof parsed === 'object' && parsed !== null) {
      for (const [name, v] of Object.entries(parsed as Record<string, unknown>)) {
        const r = v as Partial<ChildRecord> | null;
        if (r !== null && typeof r === 'object' && Number.isSafeInteger(r.pid) && Number.isSafeInteger(r.startTicks) && Number.isSafeInteger(r.pgid) && typeof r.bootId === 'string') out[name] = r as ChildRecord;
      }
    }
    this.records = out;
    return out;
  }

  private save(): Promise<void> {
    const snapshot = JSON.stringify(this.records ?? {});
    this.writes = this.writes.then(async () => {
      const tmp = join(dirname(this.file), `.${basename(this.file)}.tmp`);
      try {
        await writeFile(tmp, `${snapshot}\n`, { mode: 0o600 });
        await rename(tmp, this.file);
        this.lastError = null;
      } catch (e) {
        this.lastError = messageOf(e);
      }
    });
    return this.writes;
  }

  async remember(name: string, r: Omit<ChildRecord, 'bootId'>): Promise<void> {
    (await this.load())[name] = { ...r, bootId: this.bootId };
    await this.save();
  }

  async forget(name: string): Promise<void> {
    const records = await this.load();
    if (records[name] === undefined) return;
    delete records[name];
    await this.save();
  }

  // Why: before a target starts, whatever its previous run left is killed: the recorded process if it is still
  // that process, and every member of its process group started since. A group whose leader's PID now belongs
  // to another process (a new group after PID reuse) is not ours and is left alone.
  async sweep(name: string): Promise<number[]> {
    const r = (await this.load())[name];
    if (r === undefined || r.bootId !== this.bootId) {
      await this.forget(name);
      return [];
    }
    const table = await processTable({ cmdline: false });
    const leader = table.get(r.pgid);
    if (leader !== undefined && leader.startTicks !== r.startTicks) {
      await this.forget(name);
      return [];
    }
    const victims = [...table.values()].filter((p) => p.pid !== process.pid && ((p.pid === r.pid && p.startTicks === r.startTicks) || (p.pgrp === r.pgid && p.startTicks >= r.startTicks))).map((p) => p.pid);
    if (victims.length > 0) {
      killGroup(r.pgid, 'SIGKILL');
      for (const pid of victims) killPid(pid, 'SIGKILL');
      const deadline = Date.now() + KILL_WAIT_MS;
      for (const pid of victims) {
        while ((await readProcState(pid)).alive && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
      }
    }
    await this.forget(name);
    return victims;
  }
}
