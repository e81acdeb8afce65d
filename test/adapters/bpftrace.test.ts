// The bpftrace adapter against the real tool; a stand-in script is used only
// to inject what real bpftrace cannot be made to print (garbage lines).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { createLogger, type LogLevel } from '../../src/adapters/logger.js';
import { BpftraceTracer, bpfProgramPath, checkEbpfSupport } from '../../src/adapters/bpftrace.js';
import { readProcState } from '../../src/adapters/proc.js';
import type { ExitEvent, TracerEvent } from '../../src/core/bpf-events.js';
import { isSentinelError } from '../../src/core/errors.js';
import { pythonBinary } from '../../src/cli/demo/sample-backend.js';
import { isRoot, needs } from '../helpers/env.js';

const log = createLogger((process.env.SENTINEL_TEST_LOG ?? 'silent') as LogLevel);
const hasBpftrace = ((): boolean => {
  try {
    execFileSync('bpftrace', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function nextEvent(events: TracerEvent[], match: (e: TracerEvent) => boolean, timeoutMs: number, what: string): Promise<TracerEvent> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const check = (): void => {
      const e = events.find(match);
      if (e !== undefined) return resolve(e);
      if (performance.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(check, 5);
    };
    check();
  });
}

test('bpf/exit.bt reports a SIGKILLed watched process with its PID and signal, not its threads', async (t) => {
  if (needs(t, isRoot() && hasBpftrace, 'root and bpftrace')) return;
  const victim = spawn(pythonBinary(), ['-c', 'import threading,sys\nfor _ in range(5):\n  th=threading.Thread(target=lambda: None); th.start(); th.join()\nprint("threads done", flush=True)\nimport time; time.sleep(60)'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => victim.kill('SIGKILL'));
  const events: TracerEvent[] = [];
  const tracer = new BpftraceTracer({ name: 'exit', program: bpfProgramPath('exit.bt'), args: ['0', String(victim.pid), '0', '0', '0', '0', '0', '0', '0'], log, onEvent: (e) => events.push(e) });
  t.after(() => tracer.stop());
  await tracer.start();
  assert.equal(tracer.attached, true);
  const threadsDone = new Promise((resolve) => victim.stdout.once('data', resolve));
  await threadsDone;
  victim.kill('SIGKILL');
  const e = (await nextEvent(events, (x) => x.kind === 'exit', 5000, 'exit event')) as ExitEvent;
  assert.equal(e.pid, victim.pid);
  assert.equal(e.signal, 9);
  assert.equal(e.exitStatus, null);
  assert.equal(e.ppid, process.pid);
  assert.equal(events.filter((x) => x.kind === 'exit').length, 1, 'five thread exits before the kill were not reported');
  const pidBefore = tracer.pid;
  await tracer.stop();
  assert.equal(tracer.attached, false);
  assert.ok(pidBefore !== undefined && !(await readProcState(pidBefore)).alive, 'bpftrace is gone after stop()');
});

test('unparseable tracer lines are counted and logged, never fatal', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-tracer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const fake = join(dir, 'fake-bpftrace');
  await writeFile(
    fake,
    [
      '#!/bin/sh',
      'p() { printf "%s\\n" "$1"; }',
      'p \'{"type": "attached_probes", "data": {"probes": 1}}\'',
      'p \'{"type": "printf", "data": "ready\\n"}\'',
      'p "garbage"',
      'p \'{"type": "printf", "data": "exit pid=oops"}\'',
      'p ""',
      'p \'{"type": "printf", "data": "exit pid=42 ppid=1 code=768 ns=5 comm=x\\n"}\'',
      'exec sleep 60',
    ].join('\n'),
    { mode: 0o755 },
  );
  const events: TracerEvent[] = [];
  const tracer = new BpftraceTracer({ name: 'exit', program: '/dev/null', args: [], log, binary: fake, onEvent: (e) => events.push(e) });
  t.after(() => tracer.stop());
  await tracer.start();
  const e = (await nextEvent(events, (x) => x.kind === 'exit', 5000, 'exit event after garbage')) as ExitEvent;
  assert.equal(e.pid, 42);
  assert.equal(e.exitStatus, 3);
  assert.equal(tracer.stats.unparsed, 2);
  assert.equal(tracer.attached, true);
});

test('a missing bpftrace binary is an "unavailable" error naming why', async () => {
  const tracer = new BpftraceTracer({ name: 'exit', program: bpfProgramPath('exit.bt'), args: [], log, binary: '/nonexistent/bpftrace', onEvent: () => undefined });
  await assert.rejects(tracer.start(), (e: unknown) => isSentinelError(e, 'unavailable') && /ENOENT/.test(e.message));
  assert.equal(tracer.attached, false);
});

test('checkEbpfSupport: ready here with bpftrace as root, a clear reason without the binary', async (t) => {
  const missing = await checkEbpfSupport('/nonexistent/bpftrace');
  assert.equal(missing.ok, false);
  assert.match(missing.reason ?? '', /bpftrace not runnable/);
  if (needs(t, isRoot() && hasBpftrace, 'root and bpftrace')) return;
  const here = await checkEbpfSupport();
  assert.equal(here.ok, true, here.reason);
  assert.match(here.version ?? '', /bpftrace v\d/);
});
