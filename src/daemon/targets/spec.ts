// Config schema of one protected target (docs/CONFIG.md, docs/EBPF.md).
import { z } from 'zod';
import { SentinelError } from '../../core/errors.js';

const ms = (min: number, max: number) => z.number().int().min(min).max(max);

// Back-off between restarts inside the budget window: the first restart runs at once.
const backoffSchema = z
  .object({
    initialMs: ms(0, 600_000).default(250),
    maxMs: ms(0, 3_600_000).default(30_000),
    factor: z.number().min(1).max(10).default(2),
  })
  .strict();

// Like systemd's StartLimitBurst / StartLimitIntervalSec: a crash loop stops restarting.
const budgetSchema = z
  .object({
    burst: z.number().int().min(1).max(1000).default(5),
    intervalMs: ms(1, 86_400_000).default(60_000),
  })
  .strict();

// Retransmits from the target's port above `threshold` within `windowMs`; clears at `clearBelow`.
const retransmitSchema = z
  .object({
    threshold: z.number().int().min(1).max(1_000_000).default(50),
    windowMs: ms(100, 3_600_000).default(10_000),
    clearBelow: z.number().int().min(0).max(1_000_000).optional(),
    action: z.enum(['alert', 'restart']).default('alert'),
  })
  .strict();

// The main thread away from its wait syscall (epoll_wait, poll, select …) this long is a stall
// (docs/EBPF.md#stalls); waiting in it, however long, never is.
const stallSchema = z
  .object({
    thresholdMs: ms(50, 600_000).default(2_000),
    action: z.enum(['alert', 'restart']).default('alert'),
  })
  .strict();

// Syscall tracing of the target (histogram, slow syscalls) for `sentinel trace`; on with `stall` too.
const syscallsSchema = z
  .object({
    /** A syscall at least this long is reported as slow (monitor_mcp_bpf.bt used 50 ms). */
    slowMs: ms(1, 60_000).default(50),
    /** At most this many slow-syscall records a second reach user space (counted beyond that). */
    slowPerSec: z.number().int().min(1).max(1000).default(10),
  })
  .strict();

const healthSchema = z
  .object({
    url: z.string().url(),
    intervalMs: ms(50, 3_600_000).default(1000),
    timeoutMs: ms(10, 600_000).default(1000),
    failures: z.number().int().min(1).max(100).default(3),
  })
  .strict();

// A `command` target's own watchdog, as systemd's Type=notify + WatchdogSec= would run it: the
// sentinel is the child's NOTIFY_SOCKET (docs/EBPF.md#notify-socket-of-command-targets).
const watchdogSchema = z
  .object({
    /** WatchdogSec=: no WATCHDOG=1 for this long → `signal`, then SIGKILL after `abortTimeoutMs`. */
    timeoutMs: ms(200, 3_600_000),
    /** WatchdogSignal=: SIGABRT makes faulthandler dump every thread's stack. */
    signal: z.enum(['SIGABRT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGKILL']).default('SIGABRT'),
    /** TimeoutAbortSec=. */
    abortTimeoutMs: ms(0, 600_000).default(10_000),
  })
  .strict();

// Why: the one schema of a target; key names are a user-facing contract (docs/EBPF.md#configuration-targets).
export const targetSchema = z
  .object({
    name: z.string().min(1).regex(/^[A-Za-z0-9_.@-]+$/, 'letters, digits, "_", ".", "@", "-" only'),
    unit: z.string().min(1).optional(),
    command: z.array(z.string().min(1)).min(1).optional(),
    pidFile: z.string().min(1).optional(),
    restart: z.array(z.string().min(1)).min(1).optional(),
    port: z.number().int().min(1).max(65535).default(8000),
    health: healthSchema.optional(),
    backoff: backoffSchema.prefault({}),
    budget: budgetSchema.prefault({}),
    retransmit: retransmitSchema.optional(),
    /** Event-loop stall detector on the main thread (eBPF engine only). */
    stall: stallSchema.optional(),
    /** Syscall latency tracing (eBPF engine only); on with defaults when `stall` is set. */
    syscalls: syscallsSchema.optional(),
    /** unit, pidFile: bound of one recovery action (`systemctl restart` or the `restart` command). */
    restartTimeoutMs: ms(100, 3_600_000).default(60_000),
    /** pidFile: how long to wait after `restart` for the pid file to name a live process. */
    pidFileWaitMs: ms(0, 600_000).default(5_000),
    /** How long a started or restarted process has to be up (a unit active, i.e. READY=1 for Type=notify) and healthy (its health probe passing). */
    startTimeoutMs: ms(100, 3_600_000).default(60_000),
    /** command: the sentinel is its notify socket; "running" after READY=1, killed on missed WATCHDOG=1. */
    watchdog: watchdogSchema.optional(),
    /** command: at daemon stop, time between SIGTERM and SIGKILL for the supervised process. */
    stopGraceMs: ms(0, 600_000).default(2_000),
  })
  .strict()
  .superRefine((t, ctx) => {
    const ways = (['unit', 'command', 'pidFile'] as const).filter((k) => t[k] !== undefined);
    if (ways.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ways.length === 0 ? [] : [ways[1] ?? 'unit'],
        message: ways.length === 0 ? 'a target needs exactly one of "unit", "command" or "pidFile"' : `a target takes exactly one of "unit", "command" or "pidFile", not ${ways.map((w) => `"${w}"`).join(' and ')}`,
      });
    }
    if (t.pidFile !== undefined && t.restart === undefined) {
      ctx.addIssue({ code: 'custom', path: ['restart'], message: 'a "pidFile" target needs a "restart" command (the sentinel cannot start it itself)' });
    }
    if (t.watchdog !== undefined && t.command === undefined) {
      ctx.addIssue({ code: 'custom', path: ['watchdog'], message: '"watchdog" is for "command" targets; a unit has its own WatchdogSec=' });
    }
    if (t.backoff.maxMs < t.backoff.initialMs) {
      ctx.addIssue({ code: 'custom', path: ['backoff', 'maxMs'], message: '"maxMs" must be at least "initialMs"' });
    }
    if (t.retransmit?.clearBelow !== undefined && t.retransmit.clearBelow >= t.retransmit.threshold) {
      ctx.addIssue({ code: 'custom', path: ['retransmit', 'clearBelow'], message: '"clearBelow" must be below "threshold" (hysteresis)' });
    }
    if (t.health !== undefined && t.health.timeoutMs > t.health.intervalMs * 10) {
      ctx.addIssue({ code: 'custom', path: ['health', 'timeoutMs'], message: '"timeoutMs" must be at most 10 × "intervalMs"' });
    }
  });

/** The syscall tracing a target gets: its `syscalls` settings, or their defaults when only `stall` asks for it; null for none. */
export function syscallTracingOf(t: Pick<TargetSpec, 'stall' | 'syscalls'>): { slowMs: number; slowPerSec: number } | null {
  if (t.syscalls !== undefined) return t.syscalls;
  return t.stall !== undefined ? syscallsSchema.parse({}) : null;
}

/** A validated target, defaults filled in. */
export type TargetSpec = z.infer<typeof targetSchema>;
/** What a config file may say (defaults not yet applied). */
export type TargetSpecInput = z.input<typeof targetSchema>;

// Why: every bad field of every target named in one error, for `sentinel daemon --config`.
export function parseTargets(value: unknown, where = 'targets'): TargetSpec[] {
  const r = z.array(targetSchema).safeParse(value);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${[where, ...i.path.map(String)].join('.')}: ${i.message}`);
    throw new SentinelError('config', lines.join('; '), { where });
  }
  const names = new Set<string>();
  for (const t of r.data) {
    if (names.has(t.name)) throw new SentinelError('config', `duplicate target name "${t.name}"`, { where });
    names.add(t.name);
  }
  return r.data;
}
