// The evidence of a unit's watchdog timeout, recorded by the sentinel itself: the thread stacks
// faulthandler wrote to the journal when systemd's WatchdogSignal= ended the hung process, as one
// audit record "NAME hung: watchdog" (docs/BACKEND.md#graceful-restart). Collected after the exit
// was handled (systemd restarts a watchdog kill), so nothing of it is on a restart's path; the unit
// needs no ExecStopPost= hook, which would run on every stop.
import { constants } from 'node:os';
import { JOURNAL_MAX_CHARS, type JournalLines, type JournalMatch } from '../../adapters/journal.js';
import { SERVICE_EVENT_LIMITS } from '../service-event.js';
import type { TargetAuditEvent } from './types.js';

/** faulthandler's first line, and the header of each thread's stack. */
const FATAL = 'Fatal Python error';
const THREAD_HEADERS = ['Thread 0x', 'Current thread 0x'];
/** How long journald is given to have the dump, ms, and how often it is asked meanwhile. */
export const EVIDENCE_WAIT_MS = 3_000;
const EVIDENCE_POLL_MS = 200;
/** Lines read from the invocation's journal (its last ones: the dump is what it wrote last). */
const JOURNAL_LINES = 2_000;

/** What the hung run was: the unit, its invocation (from `systemctl show` at the exit), its main PID and signal. */
export interface WatchdogExit extends JournalMatch {
  signal: number | null;
}

export interface EvidenceDeps {
  read(match: JournalMatch, maxLines: number): Promise<JournalLines>;
  sleep(ms: number): Promise<void>;
  now(): number;
}

/**
 * Control characters but TAB, C1 controls (U+009B is a one-character CSI on many terminals) and the
 * bidirectional marks, embeddings, overrides and isolates: the evidence is shown to people (a
 * terminal would replay escapes; a bidi override makes a line read differently from its bytes).
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

// Why: the faulthandler output among the run's lines: from the last "Fatal Python error" (or the first
// thread header) on, bounded as the control socket bounds a reported event, each control character (which
// the socket refuses in a reported event) shown as U+FFFD. The lines are the hung process's own output.
export function stackSection(lines: readonly string[]): string[] {
  let start = -1;
  lines.forEach((l, i) => {
    if (l.startsWith(FATAL)) start = i;
  });
  if (start < 0) start = lines.findIndex((l) => THREAD_HEADERS.some((h) => l.startsWith(h)));
  if (start < 0) return [];
  const L = SERVICE_EVENT_LIMITS;
  const picked: string[] = [];
  let total = 0;
  for (const raw of lines.slice(start, start + L.evidenceLines)) {
    const line = raw.slice(0, L.lineChars).replace(CONTROL, '\uFFFD');
    if (total + line.length > L.evidenceChars) break;
    picked.push(line);
    total += line.length;
  }
  return picked;
}

// Why: journald may still be storing the dump when the exit is seen; the section is taken once two reads
// yield the same text (the process is gone, so nothing is added after that), within EVIDENCE_WAIT_MS.
// The text, not the number of lines: a dump longer than one read is seen through a window of its newest
// lines that moves while it is stored, and each window's section is cut at the same bound.
export async function collectEvidence(exit: WatchdogExit, deps: EvidenceDeps, waitMs = EVIDENCE_WAIT_MS): Promise<{ evidence: string[]; note: string | null }> {
  const deadline = deps.now() + waitMs;
  let last: string[] = [];
  let note = `no thread stacks in the journal of ${exit.invocationId !== null ? `invocation ${exit.invocationId}` : `PID ${String(exit.pid)}`}`;
  let cut: string | null = null;
  for (;;) {
    try {
      const read = await deps.read(exit, JOURNAL_LINES);
      // A read of JOURNAL_LINES lines may have left older ones out: a long dump's first lines then are not in it.
      cut = read.truncated ? `the run's journal was read up to its newest ${String(JOURNAL_MAX_CHARS)} characters` : read.lines.length >= JOURNAL_LINES ? `the run's journal was read up to its newest ${String(JOURNAL_LINES)} lines` : null;
      const section = stackSection(read.lines);
      if (section.length > 0 && sameLines(section, last)) return { evidence: section, note: cut };
      last = section;
    } catch (e) {
      note = e instanceof Error ? e.message : String(e);
    }
    if (deps.now() >= deadline) return last.length > 0 ? { evidence: last, note: cut } : { evidence: [], note: cut === null ? note : `${note}; ${cut}` };
    await deps.sleep(EVIDENCE_POLL_MS);
  }
}

function sameLines(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((l, i) => l === b[i]);
}

function signalName(signal: number | null): string | null {
  if (signal === null) return null;
  const name = Object.entries(constants.signals).find(([, n]) => n === signal)?.[0];
  return name === undefined ? String(signal) : name.replace(/^SIG/, '');
}

// Why: the same record the unit's stop hook used to send ("service-event", docs/DAEMON.md#control-socket),
// so readers of the audit log see one shape; `source` says the sentinel took it from the journal.
export function watchdogRecord(target: string, exit: WatchdogExit, found: { evidence: string[]; note: string | null }): TargetAuditEvent {
  const status = signalName(exit.signal);
  return {
    event: 'service-event',
    source: 'sentinel',
    target,
    unit: exit.unit,
    result: 'watchdog',
    message: `${target} hung: watchdog`,
    evidence: found.evidence,
    pid: exit.pid,
    ...(status === null ? {} : { exitCode: 'killed', exitStatus: status }),
    ...(exit.invocationId === null ? {} : { invocationId: exit.invocationId }),
    ...(found.note === null ? {} : { evidenceNote: found.note }),
  };
}
