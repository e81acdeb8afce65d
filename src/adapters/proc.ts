// /proc as the fallback exit detector: pidfd is not available to Node, so without
// bpftrace a short poll of /proc/PID/stat finds dead main PIDs; also pid files and MainPID.
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { SentinelError } from '../core/errors.js';

/** Identity of a process that survives PID reuse: the PID plus its start time in clock ticks. */
export interface ProcIdentity {
  pid: number;
  startTicks: number;
}

export type ProcState = { alive: true; identity: ProcIdentity; state: string } | { alive: false };

// Why: a zombie still answers kill(0) but is dead for us; a reused PID has another start time.
export async function readProcState(pid: number): Promise<ProcState> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return { alive: false };
  }
  // comm is in parentheses and may hold spaces or parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0] ?? '?';
  const startTicks = Number(fields[19]);
  if (state === 'Z' || state === 'X' || state === 'x') return { alive: false };
  return { alive: true, state, identity: { pid, startTicks } };
}

// Why: "the same process is still there" must compare start times, not just the PID.
export async function isSameProcessAlive(id: ProcIdentity): Promise<boolean> {
  const s = await readProcState(id.pid);
  return s.alive && s.identity.startTicks === id.startTicks;
}

export async function procIdentity(pid: number): Promise<ProcIdentity | null> {
  const s = await readProcState(pid);
  return s.alive ? s.identity : null;
}

// Why: pid files are written by other programs; anything but one positive integer is refused.
export async function readPidFile(path: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new SentinelError('not-found', 'pid file cannot be read', { where: path, cause: e });
  }
  const t = text.trim();
  if (!/^\d{1,10}$/.test(t) || Number(t) < 1 || Number(t) > 4_194_304) {
    throw new SentinelError('config', `pid file does not hold one PID: ${JSON.stringify(t.slice(0, 40))}`, { where: path });
  }
  return Number(t);
}

// Why: a unit target's process is systemd's MainPID; 0 means the unit has no running main process.
export async function mainPidOfUnit(unit: string): Promise<number> {
  const r = await execa('systemctl', ['show', '-p', 'MainPID', '--value', '--', unit], { reject: false, timeout: 10_000 });
  if (r.exitCode !== 0) {
    throw new SentinelError('unavailable', `systemctl show failed: ${(r.stderr || r.shortMessage || '').trim()}`, { where: unit });
  }
  const n = Number(String(r.stdout).trim());
  if (!Number.isInteger(n) || n < 0) throw new SentinelError('internal', `systemctl printed no MainPID: ${JSON.stringify(String(r.stdout).slice(0, 40))}`, { where: unit });
  return n;
}

/** Called with the PID and the monotonic time (ns) of the poll that found it gone. */
export type PollExitHandler = (pid: number, detectedNs: bigint) => void;

/** Polls a changing set of processes and reports each one that is gone, once. */
export class ProcPoller {
  private readonly watched = new Map<number, ProcIdentity>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(
    private readonly intervalMs: number,
    private readonly onExit: PollExitHandler,
  ) {}

  get size(): number {
    return this.watched.size;
  }

  watch(id: ProcIdentity): void {
    this.watched.set(id.pid, id);
    this.ensureTimer();
  }

  unwatch(pid: number): void {
    this.watched.delete(pid);
    if (this.watched.size === 0) this.stop();
  }

  has(pid: number): boolean {
    return this.watched.has(pid);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private ensureTimer(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
  }

  // Why: one pass reads each watched /proc/PID/stat; overlapping passes are skipped, not queued.
  private async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const id of [...this.watched.values()]) {
        if (await isSameProcessAlive(id)) continue;
        if (this.watched.get(id.pid) !== id) continue;
        this.watched.delete(id.pid);
        this.onExit(id.pid, process.hrtime.bigint());
      }
      if (this.watched.size === 0) this.stop();
    } finally {
      this.busy = false;
    }
  }
}
