// `sentinel trace`: the histogram printed as bpftrace's hist() prints it, the command's exit codes
// against a real daemon (no targets, unknown target: exit 4; no daemon: exit 2), and its place in the
// generated help, bash completion and man page.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { packageRoot } from '../../src/adapters/package-root.js';
import { bucketLabel, renderHistogram, renderTrace } from '../../src/cli/trace-command.js';
import { CLI, sentinel } from '../helpers/cli-harness.js';
import { cleanupDaemonFiles, startTestDaemon } from '../helpers/daemon-harness.js';
import { isRoot, needs } from '../helpers/env.js';

after(() => cleanupDaemonFiles());

describe('trace: rendering', () => {
  test('bucket labels as bpftrace prints a log2 histogram', () => {
    assert.deepEqual([0, 1, 2, 3, 10, 11, 21].map(bucketLabel), ['[0]', '[1]', '[2, 4)', '[4, 8)', '[512, 1K)', '[1K, 2K)', '[1M, 2M)']);
  });

  test('only the span from the first to the last non-empty bucket, bars scaled to the largest', () => {
    const hist = Array.from({ length: 32 }, () => 0);
    hist[3] = 100;
    hist[5] = 50;
    const lines = renderHistogram(hist);
    assert.equal(lines.length, 3);
    assert.match(lines[0] ?? '', /^\[4, 8\) +100 \|@{52}\|$/);
    assert.match(lines[1] ?? '', /^\[8, 16\) +0 \| {52}\|$/);
    assert.match(lines[2] ?? '', /^\[16, 32\) +50 \|@{26} {26}\|$/);
    assert.deepEqual(renderHistogram(Array.from({ length: 32 }, () => 0)), ['(no syscalls counted yet)']);
  });

  test('a target: header, histogram, slow syscalls with name and duration, stall line', () => {
    const histogram = Array.from({ length: 32 }, (_, i) => (i === 4 ? 7 : 0));
    const text = renderTrace([
      { target: 'backend', pid: 42, notTraced: null, slowMs: 50, histogram, syscalls: 7, slow: [{ syscall: 'clock_nanosleep', nr: 230, tid: 42, durationMs: 812.34, agoMs: 1500 }], slowTotal: 1, slowDropped: 0, stall: { thresholdMs: 500, action: 'restart', inWait: false, armed: true, busyMs: 812.3, maxBusyMs: 812.3, stalled: true, stalls: 1, lastStallMs: null, currentSyscall: null } },
      { target: 'other', pid: null, notTraced: 'neither "stall" nor "syscalls" is configured for it', slowMs: null, histogram: [], syscalls: 0, slow: [], slowTotal: 0, slowDropped: 0, stall: null },
    ]).join('\n');
    assert.match(text, /^backend {2}pid 42 {2}7 syscalls {2}1 slow \(>= 50 ms\)$/m);
    assert.match(text, /^\[8, 16\) +7 \|@+\|$/m);
    assert.match(text, /^ {2}clock_nanosleep +812\.3 ms {2}tid 42 {2}1\.5 s ago$/m);
    assert.match(text, /^stall: STALLED for 812\.3 ms, running \(in no syscall\); threshold 500 ms, action restart; 1 stall\(s\)/m);
    assert.match(text, /^other {2}pid - {2}not traced: neither/m);
  });
});

describe('trace: against the daemon', () => {
  test('a daemon without targets: nothing to show (exit 0); a target name is unknown: one line, exit 4, --json keeps stdout JSON', async (t) => {
    if (needs(t, isRoot(), 'root (the daemon seals its vault)')) return;
    const d = await startTestDaemon('trace-notargets');
    t.after(() => d.handle.stop('test done'));
    const r = await sentinel(['trace', '--socket', d.socket, '--once']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'this daemon has no targets\n');
    const unknown = await sentinel(['trace', 'backend', '--socket', d.socket, '--once']);
    assert.equal(unknown.code, 4);
    assert.equal(unknown.stderr.trim().split('\n').length, 1, 'one line');
    assert.match(unknown.stderr, /^sentinel: .*no target named "backend"/);
    const j = await sentinel(['trace', 'backend', '--socket', d.socket, '--json']);
    assert.equal(j.code, 4);
    const body = JSON.parse(j.stdout) as { ok: boolean; error: { code: string; message: string } };
    assert.equal(body.ok, false);
    assert.equal(body.error.code, 'not-found');
    assert.equal((body.error as { exitCode?: number }).exitCode, 4, 'the JSON names the exit code the command used');
  });

  test('no daemon on the socket: exit 2, one line', async () => {
    const r = await sentinel(['trace', '--socket', '/nonexistent/sentinel.sock', '--once']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});

describe('trace: help, completion and man page', () => {
  test('are generated with the command in them', () => {
    const help = spawnSync(process.execPath, [CLI, 'trace', '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Usage: sentinel trace \[options\] \[target\]/);
    assert.match(help.stdout, /--once/);
    assert.match(help.stdout, /4 no such target, 5 the daemon has no eBPF engine/);
    const completion = spawnSync(process.execPath, [CLI, 'completion', 'bash'], { encoding: 'utf8' }).stdout;
    assert.match(completion, /\['sentinel'\]='[^']*\btrace\b/);
    assert.match(completion, /\['sentinel trace'\]='[^']*--socket[^']*--once[^']*--json/);
    const man = readFileSync(join(packageRoot(), 'dist', 'share', 'man', 'man1', 'sentinel.1'), 'utf8');
    assert.match(man, /sentinel trace/);
    assert.match(man, /syscall-latency histogram/);
  });
});
