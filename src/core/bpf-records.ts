// Decoding of what the sentinel's BPF object hands to user space: the 64-byte ring-buffer records
// and the per-target map values, laid out in bpf/sentinel.h (docs/EBPF.md#records). Pure: takes
// bytes, returns typed values; a record of an unknown kind is counted, never guessed at.

/** Bytes of every ring-buffer record. */
export const RECORD_BYTES = 64;
/** Latency histogram buckets: 0 = under 1 us, n = [2^(n-1), 2^n) us, the last one open-ended. */
export const HIST_BUCKETS = 32;
/** Per-target slots of the BPF arrays. */
export const MAX_SLOTS = 64;
/** Bytes of struct sentinel_slot_state. */
export const SLOT_STATE_BYTES = 88;
/** Counters of the `sn_stats` array, in order. */
export const STAT_NAMES = ['lost', 'exits', 'slow', 'stallEnds', 'retransmits', 'flags'] as const;
export type BpfStats = Record<(typeof STAT_NAMES)[number], number>;

/** sentinel_watch.flags */
export const WATCH_EXIT = 1;
export const WATCH_SYSCALLS = 2;

/** Kernel inode flags in the flags record (S_APPEND, S_IMMUTABLE). */
export const INODE_APPEND = 4;
export const INODE_IMMUTABLE = 8;

// Why: the kernel keeps exit codes in wait(2) status form; operators want "signal 9" or "status 3".
export function decodeExitCode(raw: number): { exitStatus: number | null; signal: number | null; coreDumped: boolean } {
  const sig = raw & 0x7f;
  if (sig === 0) return { exitStatus: (raw >> 8) & 0xff, signal: null, coreDumped: false };
  return { exitStatus: null, signal: sig, coreDumped: (raw & 0x80) !== 0 };
}

/** A watched process exited as a whole (its last thread; thread exits are filtered in the kernel). */
export interface ExitRecord {
  kind: 'exit';
  pid: number;
  ppid: number;
  /** The thread that exited last. */
  tid: number;
  slot: number;
  /** `task->exit_code` in wait(2) status form. */
  rawCode: number;
  exitStatus: number | null;
  signal: number | null;
  coreDumped: boolean;
  comm: string;
  /** CLOCK_MONOTONIC ns of the exit, the clock of `process.hrtime.bigint()`. */
  ns: bigint;
}

/** A syscall of a traced target took at least its slow threshold (rate-limited in the kernel). */
export interface SlowSyscallRecord {
  kind: 'slow';
  pid: number;
  tid: number;
  slot: number;
  nr: number;
  durationNs: bigint;
  ret: bigint;
  comm: string;
  /** When it returned. */
  ns: bigint;
}

/** A traced target's main thread came back to its wait syscall after a busy stretch of at least the stall threshold. */
export interface StallEndRecord {
  kind: 'stall-end';
  pid: number;
  slot: number;
  /** The wait syscall it entered. */
  nr: number;
  busyNs: bigint;
  comm: string;
  ns: bigint;
}

/** Retransmits on a watched local port: the kernel's running count, at most one record per gap. */
export interface RetransmitRecord {
  kind: 'retransmit';
  port: number;
  family: number;
  state: number;
  /** Retransmitted skbs from this port since it was watched. */
  count: number;
  /** The process on the CPU when the retransmit fired (often none of ours: timers run in softirq). */
  pid: number;
  comm: string;
  ns: bigint;
}

/** A completed FS_IOC_SETFLAGS / FS_IOC_FSSETXATTR on the vault's filesystem by another process. */
export interface FlagsRecord {
  kind: 'flags';
  pid: number;
  tid: number;
  uid: number;
  cmd: number;
  /** The ioctl's return value (0 = it changed the flags). */
  ret: number;
  ino: bigint;
  /** Kernel dev_t (major << 20 | minor). */
  dev: number;
  /** Inode flags (INODE_IMMUTABLE | INODE_APPEND) before and after. */
  before: number;
  after: number;
  /** +i was on before and is off after. */
  liftedImmutable: boolean;
  comm: string;
  ns: bigint;
}

export type BpfRecord = ExitRecord | SlowSyscallRecord | StallEndRecord | RetransmitRecord | FlagsRecord;

// The kernel's comm: up to 16 bytes, NUL-terminated when shorter; bytes kept as Latin-1 characters.
function commAt(bytes: Uint8Array, offset: number): string {
  const raw = bytes.subarray(offset, offset + 16);
  const end = raw.indexOf(0);
  return String.fromCharCode(...(end === -1 ? raw : raw.subarray(0, end)));
}

/** An exit record from its fields (the addon hands exits over decoded; decodeRecords for a raw one). */
export function exitRecord(pid: number, rawCode: number, ns: bigint, ppid: number, tid: number, slot: number, comm: string): ExitRecord {
  const c = decodeExitCode(rawCode);
  return { kind: 'exit', pid, ppid, tid, slot, rawCode, exitStatus: c.exitStatus, signal: c.signal, coreDumped: c.coreDumped, comm, ns };
}

function decodeOne(bytes: Uint8Array, at: number): BpfRecord | null {
  const v = new DataView(bytes.buffer, bytes.byteOffset + at, RECORD_BYTES);
  const kind = v.getUint32(0, true);
  const pid = v.getUint32(4, true);
  const ns = v.getBigUint64(8, true);
  const comm = commAt(bytes, at + 16);
  switch (kind) {
    case 1:
      return exitRecord(pid, v.getInt32(36, true), ns, v.getUint32(32, true), v.getUint32(44, true), v.getUint32(40, true), comm);
    case 2:
      return { kind: 'slow', pid, tid: v.getUint32(32, true), slot: v.getUint32(36, true), nr: v.getInt32(40, true), durationNs: v.getBigUint64(48, true), ret: v.getBigInt64(56, true), comm, ns };
    case 3:
      return { kind: 'stall-end', pid, slot: v.getUint32(32, true), nr: v.getInt32(36, true), busyNs: v.getBigUint64(40, true), comm, ns };
    case 4:
      return { kind: 'retransmit', port: v.getUint32(32, true), family: v.getUint32(36, true), count: Number(v.getBigUint64(40, true)), state: v.getUint32(48, true), pid, comm, ns };
    case 5: {
      const before = v.getUint16(60, true);
      const after = v.getUint16(62, true);
      return {
        kind: 'flags',
        pid,
        tid: v.getUint32(32, true),
        uid: v.getUint32(36, true),
        cmd: v.getUint32(40, true),
        ret: v.getInt32(44, true),
        ino: v.getBigUint64(48, true),
        dev: v.getUint32(56, true),
        before,
        after,
        liftedImmutable: (before & INODE_IMMUTABLE) !== 0 && (after & INODE_IMMUTABLE) === 0,
        comm,
        ns,
      };
    }
    default:
      return null;
  }
}

// Why: the loader hands over whole ring-buffer batches; one bad record must not hide the others.
export function decodeRecords(bytes: Uint8Array): { records: BpfRecord[]; unknown: number } {
  const records: BpfRecord[] = [];
  let unknown = 0;
  for (let at = 0; at + RECORD_BYTES <= bytes.length; at += RECORD_BYTES) {
    const r = decodeOne(bytes, at);
    if (r === null) unknown++;
    else records.push(r);
  }
  if (bytes.length % RECORD_BYTES !== 0) unknown++;
  return { records, unknown };
}

/** A traced target's main-thread loop state and counters (struct sentinel_slot_state). */
export interface LoopState {
  /** The main thread left its last wait syscall at (CLOCK_MONOTONIC ns). */
  busySinceNs: bigint;
  /** The main thread's current syscall began at, 0n when it is not in one. */
  sysEnterNs: bigint;
  maxBusyNs: bigint;
  waits: number;
  syscalls: number;
  slow: number;
  slowDropped: number;
  pid: number;
  inWait: boolean;
  /** Seen in a wait syscall at least once: before that, a busy main thread is starting up, not stalled. */
  armed: boolean;
  /** The main thread's current syscall, or null. */
  currentNr: number | null;
}

export function decodeLoopState(bytes: Uint8Array): LoopState {
  if (bytes.length < SLOT_STATE_BYTES) throw new RangeError(`slot state is ${SLOT_STATE_BYTES} bytes, got ${bytes.length}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, SLOT_STATE_BYTES);
  const u64 = (o: number): bigint => v.getBigUint64(o, true);
  const nr = v.getInt32(80, true);
  return {
    busySinceNs: u64(0),
    sysEnterNs: u64(8),
    maxBusyNs: u64(16),
    waits: Number(u64(24)),
    syscalls: Number(u64(32)),
    slow: Number(u64(40)),
    slowDropped: Number(u64(48)),
    pid: v.getUint32(68, true),
    inWait: v.getUint32(72, true) !== 0,
    armed: v.getUint32(76, true) !== 0,
    currentNr: nr < 0 ? null : nr,
  };
}

export function decodeHistogram(bytes: Uint8Array): number[] {
  if (bytes.length < HIST_BUCKETS * 8) throw new RangeError(`histogram is ${HIST_BUCKETS * 8} bytes, got ${bytes.length}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, HIST_BUCKETS * 8);
  return Array.from({ length: HIST_BUCKETS }, (_, i) => Number(v.getBigUint64(i * 8, true)));
}

export function decodeStats(bytes: Uint8Array): BpfStats {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = {} as BpfStats;
  STAT_NAMES.forEach((name, i) => {
    out[name] = i * 8 + 8 <= bytes.length ? Number(v.getBigUint64(i * 8, true)) : 0;
  });
  return out;
}

/** Lower bound of a histogram bucket in microseconds (bucket 0 is "under 1 us"). */
export function bucketLowUs(bucket: number): number {
  return bucket === 0 ? 0 : 2 ** (bucket - 1);
}
