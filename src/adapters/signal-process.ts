// A signal to a process named by its identity (PID and start time), never to a process that took the
// PID since the caller decided: through the native addon, the start time is checked and the signal
// sent through one pidfd (native/src/pidfd-signal.c), which leaves no window; without the addon (or on
// a kernel before 5.3, or for a thread id before 6.9: no pidfd for it) the start time is read from /proc right before kill(2),
// which leaves the microseconds between the two.
import { constants } from 'node:os';
import { ioError } from '../core/errno.js';
import { loadNative } from './native.js';
import { readProcState, type ProcIdentity } from './proc.js';
import { killPid } from './process.js';

/** What became of the signal: sent, no process with that PID, or the PID names another process (nothing sent). */
export type SignalOutcome = 'sent' | 'gone' | 'other';

/** Linux's errnos for "no pidfd for this": ENOSYS, a kernel without pidfd_open (before 5.3); EINVAL and
 * ENOENT, a thread id on a kernel without thread pidfds (before 6.9). */
const NO_PIDFD = new Set([-38, -22, -2]);

// Why: the fallback, and what the tests hold the native path to: the identity read, then the signal.
export async function signalIdentifiedByProc(id: ProcIdentity, signal: NodeJS.Signals): Promise<SignalOutcome> {
  const s = await readProcState(id.pid);
  if (!s.alive) return 'gone';
  if (s.identity.startTicks !== id.startTicks) return 'other';
  return killPid(id.pid, signal) ? 'sent' : 'gone';
}

// Why: the sentinel's kill of a target's process happens after a decision (hung, given up) about a PID
// it saw earlier; by then the process may be gone and its PID another process's.
export async function signalIdentified(id: ProcIdentity, signal: NodeJS.Signals): Promise<SignalOutcome> {
  const addon = loadNative();
  if (addon?.signalIdentified !== undefined) {
    try {
      return addon.signalIdentified(id.pid, id.startTicks, constants.signals[signal]);
    } catch (e) {
      // As killPid: the errno map names the code (EPERM: not-permitted); only "no pidfd for it" falls back.
      if (!NO_PIDFD.has((e as { errno?: unknown }).errno as number)) throw ioError(e, `cannot send ${signal} to process ${String(id.pid)}`, `pid ${String(id.pid)}`, 'kernel-interface');
    }
  }
  return signalIdentifiedByProc(id, signal);
}
