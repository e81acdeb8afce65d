// The one place a child process is started, signalled or stopped: supervised children, commands
// run to completion, and the SIGTERM → grace → SIGKILL escalation (docs/ARCHITECTURE.md#processes).
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { execa, type ResultPromise } from 'execa';
import { SentinelError } from '../core/errors.js';
import { codeForErrno, errnoOf, ioError } from '../core/errno.js';

/** How a child ended: an exit status, or the signal that killed it. */
export interface ChildExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

/** The first signal of a stop; SIGKILL follows after the grace period unless it was SIGKILL already. */
export type StopSignal = 'SIGTERM' | 'SIGINT' | 'SIGKILL';

/** How a supervised child is started: where its output goes, and what names it in an error. */
export interface SpawnOptions {
  /** 'pipe' gives `stdout`/`stderr` streams (read them, or the child blocks); default 'ignore'. */
  stdio?: 'ignore' | 'inherit' | 'pipe';
  /** Names the configuration or file behind the command in a start failure. */
  where?: string;
  /**
   * The child gets SIGKILL the moment this process dies, even by `kill -9` (PR_SET_PDEATHSIG, set by
   * setpriv(1) before it execs the command; the PID stays the command's). Without setpriv: not set.
   */
  dieWithParent?: boolean;
  /** The child leads a process group of its own: stopping it stops everything it started too. */
  ownGroup?: boolean;
  /** Set in the child's environment (over the inherited one); a `null` value removes the variable. */
  env?: Record<string, string | null>;
}

/** setpriv(1) from util-linux, which sets PR_SET_PDEATHSIG before exec; null when it is not installed. */
let setprivPath: string | null | undefined;
function setpriv(): string | null {
  setprivPath ??= ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv'].find((p) => existsSync(p)) ?? null;
  return setprivPath;
}

// Why: whether children of this process can be made to die with it (status and docs say so when not).
export function canTieChildrenToParent(): boolean {
  return setpriv() !== null;
}

// Why: a process group outlives its leader; what is left of it is killed by group, once (ESRCH: none left).
export function killGroup(pgid: number, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (e) {
    if (errnoOf(e) === 'ESRCH') return false;
    throw ioError(e, `cannot send ${signal} to process group ${pgid}`, `pgid ${pgid}`, 'kernel-interface');
  }
}

// Why: the inherited environment with `changes` applied; null removes (the daemon's own NOTIFY_SOCKET
// must never reach a child, which would then speak to systemd for the sentinel's unit).
function childEnv(changes: Record<string, string | null>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) delete env[k];
    else env[k] = v;
  }
  return env;
}

// Why: a supervised child is watched and stopped only through this handle, so the exit is never
// missed (recorded from the first moment) and a stop always ends in a dead, reaped process.
export class SupervisedChild {
  readonly pid: number;
  /** Resolves once the child has exited and its output streams are closed. */
  readonly exited: Promise<ChildExit>;
  private exit: ChildExit | null = null;
  private readonly listeners: ((exit: ChildExit) => void)[] = [];

  /** Made by `spawnSupervised` only. */
  constructor(
    private readonly proc: ResultPromise,
    pid: number,
    /** The child leads its own process group: signals go to the whole group. */
    readonly group = false,
  ) {
    this.pid = pid;
    proc.once('exit', (code, signal) => {
      this.exit = { exitCode: code, signal };
      for (const fn of this.listeners.splice(0)) fn(this.exit);
    });
    this.exited = proc.then((r) => ({ exitCode: r.exitCode ?? null, signal: r.signal ?? null }));
  }

  get running(): boolean {
    return this.exit === null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get stdout(): Readable | null {
    return this.proc.stdout;
  }

  get stderr(): Readable | null {
    return this.proc.stderr;
  }

  // Why: the child's own exit event is a detector of its own; a late subscriber still hears it.
  onExit(fn: (exit: ChildExit) => void): void {
    if (this.exit !== null) {
      const exit = this.exit;
      queueMicrotask(() => fn(exit));
      return;
    }
    this.listeners.push(fn);
  }

  // The leader alone, or its whole process group.
  private signal(signal: NodeJS.Signals): void {
    if (this.group) {
      try {
        killGroup(this.pid, signal);
        return;
      } catch {
        // fall back to the leader
      }
    }
    this.proc.kill(signal);
  }

  // Why: the one SIGTERM → SIGKILL escalation: ask first, make sure after `graceMs`; resolves once the
  // process is dead (its exit event), not when some grandchild lets go of a shared pipe.
  async terminate(opts: { signal?: StopSignal; graceMs: number }): Promise<ChildExit> {
    const signal = opts.signal ?? 'SIGTERM';
    const gone = new Promise<ChildExit>((resolve) => this.onExit(resolve));
    let timer: NodeJS.Timeout | null = null;
    if (this.running) {
      this.signal(signal);
      if (signal !== 'SIGKILL') timer = setTimeout(() => this.signal('SIGKILL'), opts.graceMs);
    }
    try {
      return await gone;
    } finally {
      if (timer !== null) clearTimeout(timer);
      // The leader is gone; whatever it started and left behind in its group goes with it.
      if (this.group) killGroup(this.pid, 'SIGKILL');
    }
  }
}

// Why: through setpriv a missing program is setpriv's exit status 127, not a start failure; it is looked up first
// (as execvp would), so a bad command is still `not-found` / `not-permitted` naming it.
function findProgram(file: string, where: string): void {
  const dirs = file.includes('/') ? [''] : (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter((d) => d !== '');
  let denied = false;
  for (const dir of dirs) {
    const path = dir === '' ? file : `${dir}/${file}`;
    try {
      accessSync(path, constants.X_OK);
      if (statSync(path).isFile()) return;
    } catch (e) {
      if (errnoOf(e) === 'EACCES') denied = true;
    }
  }
  throw new SentinelError(denied ? 'not-permitted' : 'not-found', `cannot start ${file}: ${denied ? 'not executable (EACCES)' : 'no such program (ENOENT)'}`, { where });
}

// Why: supervised commands and tracer processes start here; a program that cannot be started is a
// coded error (not-found, not-permitted) instead of a child that never was.
export async function spawnSupervised(argv: readonly string[], opts: SpawnOptions = {}): Promise<SupervisedChild> {
  const [file, ...args] = argv;
  if (file === undefined) throw new SentinelError('config', 'empty command', { where: opts.where });
  const stdio = opts.stdio ?? 'ignore';
  const wrapper = opts.dieWithParent === true ? setpriv() : null;
  if (wrapper !== null) findProgram(file, opts.where ?? file);
  const [bin, ...rest] = wrapper === null ? [file, ...args] : [wrapper, '--pdeathsig', 'KILL', '--', file, ...args];
  const group = opts.ownGroup === true;
  const env = opts.env === undefined ? {} : { env: childEnv(opts.env), extendEnv: false };
  const proc = execa(bin ?? file, rest, { reject: false, stdin: 'ignore', stdout: stdio, stderr: stdio, buffer: false, cleanup: true, forceKillAfterDelay: false, detached: group, ...env });
  if (proc.pid === undefined) {
    const r = await proc;
    throw new SentinelError(codeForErrno(r.code), r.originalMessage ?? r.shortMessage ?? `cannot start ${file}`, { where: opts.where ?? file });
  }
  return new SupervisedChild(proc, proc.pid, group);
}

/** A command run to completion: its output, and why it failed when it did. */
export interface CommandResult {
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** errno of a start failure (ENOENT: no such program), else null. */
  startError: string | null;
  /** Wall time, ms. */
  ms: number;
  /** A one-line summary when it failed. */
  message: string;
  /** stdout reached `maxBuffer`: the command was ended and stdout holds its first `maxBuffer` characters. */
  truncated: boolean;
}

/** Bounds of a command run to completion. */
export interface RunOptions {
  timeoutMs: number;
  /** Added to the inherited environment. */
  env?: Record<string, string>;
  stripFinalNewline?: boolean;
  /** Most characters of stdout (and of stderr) kept; the command is ended past it (default execa's 100,000,000). */
  maxBuffer?: number;
}

// Why: every short-lived helper program (systemctl, mount, lsattr) runs bounded by a
// timeout, with output captured and no exception for a non-zero exit: callers decide what failed means.
export async function runCommand(argv: readonly string[], opts: RunOptions): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new SentinelError('config', 'empty command');
  const t0 = performance.now();
  const r = await execa(file, args, { reject: false, stdin: 'ignore', timeout: opts.timeoutMs, env: opts.env, stripFinalNewline: opts.stripFinalNewline ?? true, ...(opts.maxBuffer === undefined ? {} : { maxBuffer: opts.maxBuffer }) });
  const startError = r.exitCode === undefined && r.signal === undefined && !r.timedOut ? (r.code ?? 'spawn failed') : null;
  return {
    ok: !r.failed && r.exitCode === 0,
    exitCode: r.exitCode ?? null,
    signal: r.signal ?? null,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    timedOut: r.timedOut,
    startError,
    ms: performance.now() - t0,
    message: r.shortMessage ?? '',
    truncated: r.isMaxBuffer,
  };
}

// Why: an operator's recovery command (a target's `restart`) must fail visibly, naming the command and
// its last stderr line; a missing program is `not-found`, anything else `unavailable`.
export async function runRecoveryCommand(argv: readonly string[], timeoutMs = 60_000, where?: string): Promise<{ ms: number }> {
  if (argv[0] === undefined) throw new SentinelError('config', 'empty recovery command', { where });
  const r = await runCommand(argv, { timeoutMs });
  if (!r.ok) {
    const code = r.startError === 'ENOENT' ? 'not-found' : 'unavailable';
    const detail = r.timedOut ? `timed out after ${timeoutMs} ms` : (r.stderr.trim().split('\n').pop() ?? '') || r.message;
    throw new SentinelError(code, `recovery command ${argv.join(' ')} failed: ${detail}`, { where: where ?? argv[0] });
  }
  return { ms: r.ms };
}

// Why: a process that is not our child (a pid-file target) is killed by PID; one already gone is not an error.
export function killPid(pid: number, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (e) {
    if (errnoOf(e) === 'ESRCH') return false;
    throw ioError(e, `cannot send ${signal} to process ${pid}`, `pid ${pid}`, 'kernel-interface');
  }
}

/** How a command handed one of our descriptors ended. */
export interface FdCommandResult {
  exitCode: number | null;
  stderr: string;
  /** errno of a start failure (ENOENT: no such program), else null. */
  startError: string | null;
}

// Why: flock(1) must lock our own open file description, which it gets as its fd 3 (execa passes no
// such descriptor); bounded like every helper, killed when the bound is passed.
export async function runWithFd(argv: readonly string[], fd: number, timeoutMs: number): Promise<FdCommandResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new SentinelError('config', 'empty command');
  const { spawn } = await import('node:child_process');
  const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe', fd] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ exitCode: null, stderr, startError: errnoOf(e) ?? 'spawn failed' });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, stderr, startError: null });
    });
  });
}
