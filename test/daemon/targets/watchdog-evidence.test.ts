// The sentinel's own record of a unit's watchdog timeout (watchdog-evidence.ts): the thread stacks a
// real Python process wrote through faulthandler when SIGABRT ended it (serve's install_stack_dump) are
// picked out of the run's journal lines, waited for while journald is still storing them, bounded, and
// recorded as "NAME hung: watchdog". The journal's lines are the real process's stderr, handed over in
// the order journald would return them (the unit path itself runs under a real systemd in
// test/systemd/backend-e2e.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../../src/adapters/package-root.js';
import { SERVICE_EVENT_LIMITS } from '../../../src/daemon/service-event.js';
import { collectEvidence, stackSection, watchdogRecord, type WatchdogExit } from '../../../src/daemon/targets/watchdog-evidence.js';
import type { JournalMatch } from '../../../src/adapters/journal.js';

const INVOCATION = 'c0ffee'.padEnd(32, '0');

/** stderr of a real Python process whose worker thread is blocked when SIGABRT ends it. */
function abortedPythonStderr(): { lines: string[]; signal: string | null } {
  const script = [
    'import os, signal, threading, time',
    'from omnimind_sentinel.graceful_restart import install_stack_dump',
    'install_stack_dump()',
    'print("serving", flush=True)',
    'def stuck_handler():',
    '    time.sleep(60)',
    't = threading.Thread(target=stuck_handler, daemon=True); t.start(); time.sleep(0.2)',
    'os.kill(os.getpid(), signal.SIGABRT)',
  ].join('\n');
  const r = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PYTHONPATH: join(packageRoot(), 'integrations', 'python') } });
  return { lines: r.stderr.split('\n').filter((l) => l !== ''), signal: r.signal };
}

const fakeClock = (): { now: () => number; sleep: (ms: number) => Promise<void> } => {
  let t = 0;
  return { now: () => t, sleep: (ms) => Promise.resolve(void (t += ms)) };
};

test('the thread stacks of a real faulthandler dump are picked out of the run\'s lines, the hung thread among them', () => {
  const dump = abortedPythonStderr();
  assert.equal(dump.signal, 'SIGABRT');
  const section = stackSection(['INFO: Started server process [42]', 'INFO: Application startup complete.', ...dump.lines]);
  assert.match(section[0] ?? '', /^Fatal Python error: Aborted/);
  assert.ok(section.some((l) => /^Current thread 0x[0-9a-f]+/.test(l)), section.join('\n'));
  assert.ok(section.some((l) => /line \d+ in stuck_handler/.test(l)), `the stuck thread's frame: ${section.join('\n')}`);
  assert.ok(!section.some((l) => l.startsWith('INFO:')), 'the lines before the dump are not evidence');
  assert.deepEqual(stackSection(['INFO: Started server process [42]', 'nothing else']), [], 'no dump, no evidence');
});

test('control characters in the process\'s output are not passed on: a terminal showing the evidence replays no escape', () => {
  const section = stackSection(['Fatal Python error: x\r\u001b[2J\u0000', '\tFile "a.py", line 1 in f\u007f']);
  assert.deepEqual(section, ['Fatal Python error: x\uFFFD\uFFFD[2J\uFFFD', '\tFile "a.py", line 1 in f\uFFFD']);
});

test('C1 controls (U+009B is a one-character CSI on many terminals) and bidirectional overrides are not passed on either', () => {
  const section = stackSection(['Fatal Python error: \u009b2J\u0085', '\tFile "\u202egnp.py", line 1 in \u2066f\u2069\u200f']);
  assert.deepEqual(section, ['Fatal Python error: \uFFFD2J\uFFFD', '\tFile "\uFFFDgnp.py", line 1 in \uFFFDf\uFFFD\uFFFD']);
});

test('a read cut at its size bound still yields the dump (the newest lines), and the record says it was cut', async () => {
  const exit: WatchdogExit = { unit: 'omnimind-backend.service', invocationId: INVOCATION, pid: 4242, signal: 6 };
  const lines = ['Fatal Python error: Aborted', 'Current thread 0x00007f (most recent call first):', '  File "a.py", line 3 in gil'];
  const found = await collectEvidence(exit, { read: () => Promise.resolve({ lines, truncated: true }), ...fakeClock() });
  assert.deepEqual(found.evidence, lines);
  assert.match(found.note ?? '', /read up to its newest \d+ characters/);
});

test('a dump larger than the audit record takes is cut at its bounds', () => {
  const L = SERVICE_EVENT_LIMITS;
  const long = ['Fatal Python error: Aborted', ...Array.from({ length: L.evidenceLines + 50 }, (_, i) => `  File "x.py", line ${String(i)} in f${'x'.repeat(L.lineChars + 10)}`)];
  const section = stackSection(long);
  assert.ok(section.length <= L.evidenceLines);
  assert.ok(section.every((l) => l.length <= L.lineChars));
  assert.ok(section.reduce((n, l) => n + l.length, 0) <= L.evidenceChars);
});

test('evidence is taken once journald has all of the dump (two reads agree), from the run the exit names', async () => {
  const dump = abortedPythonStderr().lines;
  const asked: JournalMatch[] = [];
  // journald stores the dump while the sentinel already reads: nothing, then half of it, then all of it.
  const views = [[], dump.slice(0, 3), dump, dump];
  const clock = fakeClock();
  const exit: WatchdogExit = { unit: 'omnimind-backend.service', invocationId: INVOCATION, pid: 4242, signal: 6 };
  const found = await collectEvidence(exit, { read: (m) => (asked.push(m), Promise.resolve({ lines: views[Math.min(asked.length - 1, views.length - 1)] ?? [], truncated: false })), ...clock });
  assert.equal(found.note, null);
  assert.deepEqual(found.evidence, stackSection(dump));
  assert.ok(found.evidence.length > 3, 'not the half-stored dump');
  assert.ok(asked.every((m) => m.invocationId === INVOCATION && m.pid === 4242 && m.unit === 'omnimind-backend.service'));

  const record = watchdogRecord('backend', exit, found);
  assert.equal(record.event, 'service-event');
  assert.equal(record.message, 'backend hung: watchdog');
  assert.deepEqual({ source: record.source, result: record.result, target: record.target, exitCode: record.exitCode, exitStatus: record.exitStatus, invocationId: record.invocationId }, { source: 'sentinel', result: 'watchdog', target: 'backend', exitCode: 'killed', exitStatus: 'ABRT', invocationId: INVOCATION });
  assert.equal(record.evidenceNote, undefined);
});

/** stderr of a real Python process with 100 threads, each 30 frames deep, when SIGABRT ends it: a dump longer than one journal read. */
function bigPythonDump(): string[] {
  const script = [
    'import os, signal, threading, time',
    'from omnimind_sentinel.graceful_restart import install_stack_dump',
    'install_stack_dump()',
    'def deep(n, ev):',
    '    if n == 0:',
    '        ev.set(); time.sleep(60); return',
    '    deep(n - 1, ev)',
    'evs = [threading.Event() for _ in range(99)]',
    'for ev in evs: threading.Thread(target=deep, args=(30, ev), daemon=True).start()',
    'for ev in evs: ev.wait()',
    'os.kill(os.getpid(), signal.SIGABRT)',
  ].join('\n');
  const r = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PYTHONPATH: join(packageRoot(), 'integrations', 'python') } });
  assert.equal(r.signal, 'SIGABRT', r.stderr.slice(0, 2000));
  return r.stderr.split('\n');
}

test('a dump longer than one read, still being stored: evidence is taken only once two reads yield the same text, not the same number of lines', async () => {
  const dump = bigPythonDump();
  const clock = fakeClock();
  const exit: WatchdogExit = { unit: 'omnimind-backend.service', invocationId: INVOCATION, pid: 4242, signal: 6 };
  // journald has stored more of the dump at each read; each read returns the newest maxLines lines (journalctl -r -n).
  const stored = [dump.length - 1100, dump.length - 700, dump.length, dump.length];
  let reads = 0;
  const read = (_m: JournalMatch, maxLines: number): Promise<{ lines: string[]; truncated: boolean }> => {
    const upTo = stored[Math.min(reads++, stored.length - 1)] ?? dump.length;
    return Promise.resolve({ lines: dump.slice(Math.max(0, upTo - maxLines), upTo), truncated: false });
  };
  const found = await collectEvidence(exit, { read, ...clock });
  const whole = await read(exit, 2_000); // the view once journald has all of it
  assert.ok(dump.length > 2_000 + 1_100, `the dump is longer than a read (${String(dump.length)} lines)`);
  assert.equal(stackSection(whole.lines).length, SERVICE_EVENT_LIMITS.evidenceLines, 'each read\'s section is cut at the same number of lines');
  assert.deepEqual(found.evidence, stackSection(whole.lines), 'the section of the completely stored dump, not of a read taken while it was being stored');
  assert.ok(reads >= 4, `read until two reads agreed (${String(reads)} reads)`);
  assert.match(found.note ?? '', /read up to its newest 2000 lines/, 'the record says the dump\'s first lines were not read');
});

test('no dump within the wait, or an unreadable journal: the record is still written, saying why it has no stacks', async () => {
  const exit: WatchdogExit = { unit: 'omnimind-backend.service', invocationId: null, pid: 4242, signal: 6 };
  const none = await collectEvidence(exit, { read: () => Promise.resolve({ lines: ['INFO: Application startup complete.'], truncated: false }), ...fakeClock() });
  assert.deepEqual(none.evidence, []);
  assert.match(none.note ?? '', /no thread stacks in the journal of PID 4242/);
  const broken = await collectEvidence(exit, { read: () => Promise.reject(new Error('journalctl _SYSTEMD_UNIT=omnimind-backend.service _PID=4242 failed: No journal files were found.')), ...fakeClock() });
  assert.match(broken.note ?? '', /No journal files were found/);
  const record = watchdogRecord('backend', exit, broken);
  assert.equal(record.message, 'backend hung: watchdog');
  assert.equal(record.invocationId, undefined);
  assert.match(String(record.evidenceNote), /No journal files/);
});
