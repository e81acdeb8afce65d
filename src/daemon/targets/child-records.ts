// Which `command` targets the daemon has running, kept in the state directory (PID, start time, process group,
// boot), so the next daemon can kill what a killed one left behind before it starts them again
// (docs/EBPF.md#command-targets-and-the-daemons-death).
import { readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { messageOf } from '../../core/errors.js';
import { processTable, readProcState, type ProcessEntry } from '../../adapters/proc.js';
import { signalIdentified } from '../../adapters/signal-process.js';

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
/** The largest PID Linux hands out (PID_MAX_LIMIT on 64-bit). */
const PID_LIMIT = 4_194_304;
const BOOT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Why: a record is acted on as root, so only a shape the daemon itself writes is kept: a group leader of its own
// (pid = pgid), never PID 0 or 1 (kill(-1) and kill(0) would reach every process or the daemon's own group).
function validRecord(v: unknown): v is ChildRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<ChildRecord>;
  return Number.isSafeInteger(r.pid) && r.pid === r.pgid && (r.pid ?? 0) >= 2 && (r.pid ?? 0) <= PID_LIMIT && Number.isSafeInteger(r.startTicks) && (r.startTicks ?? -1) >= 0 && typeof r.bootId === 'string' && BOOT_ID.test(r.bootId);
}

// Why: a `kill -9` of the daemon leaves no chance to stop its children; the record lets the next start find them
// (PID + start time against /proc, so a reused PID is never mistaken for ours).
export class ChildRecords {
  private records: Map<string, ChildRecord> | null = null;
  private writes: Promise<void> = Promise.resolve();
  readonly bootId = bootId();
  /** The last failure to write the file (a full disk), or null. */
  lastError: string | null = null;

  /** `snapshot` reads the process table (the tests give one taken before a PID was reused). */
  constructor(
    readonly file: string,
    private readonly snapshot: () => Promise<Map<number, ProcessEntry>> = () => processTable({ cmdline: false }),
  ) {}

  private async load(): Promise<Map<string, ChildRecord>> {
    if (this.records !== null) return this.records;
    let parsed: unknown = {};
    try {
      parsed = JSON.parse(await readFile(this.file, 'utf8'));
    } catch {
      parsed = {};
    }
    const out = new Map<string, ChildRecord>();
    if (typeof parsed === 'object' && parsed !== null) {
      for (const [name, v] of Object.entries(parsed as Record<string, unknown>)) if (validRecord(v)) out.set(name, { pid: v.pid, startTicks: v.startTicks, pgid: v.pgid, bootId: v.bootId });
    }
    this.records = out;
    return out;
  }

  private save(): Promise<void> {
    const snapshot = JSON.stringify(Object.fromEntries(this.records ?? []));
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
    (await this.load()).set(name, { ...r, bootId: this.bootId });
    await this.save();
  }

  async forget(name: string): Promise<void> {
    if (!(await this.load()).delete(name)) return;
    await this.save();
  }

  // Why: before a target starts, whatever its previous run left is killed: the recorded process if it is still
  // that process, and every member of its process group and session started since. A group whose leader's PID
  // now belongs to another process (a new group after PID reuse), members of another session, or a boot that
  // cannot be told apart are not provably ours and are left alone. Each is signalled by its identity from the
  // snapshot (PID and start time, through one pidfd: signalIdentified), never by PID or by group, so a PID
  // reused since the snapshot is never signalled; the snapshot is taken again until it shows nothing new of
  // the group (a member forked meanwhile), within KILL_WAIT_MS.
  async sweep(name: string): Promise<number[]> {
    const r = (await this.load()).get(name);
    if (r === undefined || r.bootId !== this.bootId || !BOOT_ID.test(this.bootId)) {
      await this.forget(name);
      return [];
    }
    const killed = new Map<number, number>();
    const deadline = Date.now() + KILL_WAIT_MS;
    while (Date.now() < deadline) {
      const table = await this.snapshot();
      const leader = table.get(r.pgid);
      if (leader !== undefined && leader.startTicks !== r.startTicks) break;
      const victims = [...table.values()].filter((p) => p.pid !== process.pid && killed.get(p.pid) !== p.startTicks && ((p.pid === r.pid && p.startTicks === r.startTicks) || (p.pgrp === r.pgid && p.session === r.pgid && p.startTicks >= r.startTicks)));
      const sent: ProcessEntry[] = [];
      for (const p of victims) {
        if ((await signalIdentified(p, 'SIGKILL')) !== 'sent') continue;
        killed.set(p.pid, p.startTicks);
        sent.push(p);
      }
      if (sent.length === 0) break;
      for (const p of sent) {
        while (await isStill(p) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
      }
    }
    await this.forget(name);
    return [...killed.keys()];
  }
}

// Why: a zombie, a process gone or a PID reused is no longer the one signalled.
async function isStill(p: ProcessEntry): Promise<boolean> {
  const s = await readProcState(p.pid);
  return s.alive && s.identity.startTicks === p.startTicks;
}
