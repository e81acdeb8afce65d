// The eBPF engine against the real kernel: process exits (whole processes only, watched PIDs only,
// PIDs added after load), syscall tracing and the loop state behind the stall detector, and the
// attribution of inode flag changes. Retransmits are in bpf-retransmit.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpfEngine, type BpfGroup } from '../../src/adapters/bpf-engine.js';
import { bpfBuild, chooseBtf, syscallName } from '../../src/adapters/bpf-build.js';
import { loadNative } from '../../src/adapters/native.js';
import { judgeLoop } from '../../src/core/stall-policy.js';
import { isSentinelError } from '../../src/core/errors.js';
import { waitFor } from '../helpers/wait.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';
import { RecordLog, kill, needsEngine, startLoopTarget } from '../helpers/bpf.js';

test.after(() => removeTempDirs());

function openEngine(t: { after(fn: () => void): void }, groups: BpfGroup[], log: RecordLog, btf: 'auto' | 'kernel' = 'auto'): BpfEngine {
  const engine = BpfEngine.open({ groups, onRecord: log.push, btf });
  t.after(() => engine.close());
  return engine;
}

test('exit of a watched process: SIGKILL arrives as signal 9, exit(3) as status 3, and the kernel forgets the PID', async (t) => {
  if (needsEngine(t)) return;
  const log = new RecordLog();
  const engine = openEngine(t, ['exit'], log);
  const victim = spawn('sleep', ['30'], { stdio: 'ignore' });
  const quitter = spawn('sh', ['-c', 'read line; exit 3'], { stdio: ['pipe', 'ignore', 'ignore'] });
  t.after(() => {
    kill(victim);
    kill(quitter);
  });
  const slot = engine.allocateSlot();
  engine.watch(victim.pid!, { slot, exit: true });
  engine.watch(quitter.pid!, { slot, exit: true });
  assert.equal(engine.isWatched(victim.pid!), true);
  const before = process.hrtime.bigint();
  victim.kill('SIGKILL');
  const killed = await log.next('exit', (r) => r.pid === victim.pid, 5_000, 'the SIGKILLed process');
  assert.equal(killed.signal, 9);
  assert.equal(killed.exitStatus, null);
  assert.equal(killed.comm, 'sleep');
  assert.equal(killed.ppid, process.pid);
  assert.equal(killed.tid, victim.pid, 'its last thread: the only one');
  assert.equal(killed.slot, slot);
  assert.ok(killed.ns > before && killed.ns <= process.hrtime.bigint(), 'the kernel timestamp is on the clock of process.hrtime');
  assert.equal(engine.isWatched(victim.pid!), false, 'an exited PID is dropped from the map in the kernel');

  quitter.stdin.end('go\n');
  const quit = await log.next('exit', (r) => r.pid === quitter.pid, 5_000, 'the process that exited 3');
  assert.equal(quit.exitStatus, 3);
  assert.equal(quit.signal, null);
  assert.equal(engine.stats().exits, 2);
});

test('thread exits inside a watched process and exits of unwatched processes never reach user space', async (t) => {
  if (needsEngine(t)) return;
  const log = new RecordLog();
  const engine = openEngine(t, ['exit'], log);
  const target = await startLoopTarget(1);
  const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => {
    kill(target.child);
    kill(stranger);
  });
  engine.watch(target.pid, { slot: engine.allocateSlot(), exit: true });
  target.child.kill('SIGHUP');
  assert.equal(await target.line(), 'threads-done', '20 threads started and exited inside the watched process');
  stranger.kill('SIGKILL');
  await new Promise((resolve) => stranger.once('exit', resolve));
  // The ring buffer is in order: once the watched process's own exit arrives, anything before it would have too.
  target.child.kill('SIGKILL');
  await log.next('exit', (r) => r.pid === target.pid, 5_000, 'the watched process');
  assert.deepEqual(
    log.records.map((r) => [r.kind, r.pid]),
    [['exit', target.pid]],
    'one record: the whole-process exit, no thread exit and not the unwatched process',
  );
});

test('records keep the ring order when an exit is handed over on its own: the slow syscalls of a process before its exit', async (t) => {
  if (needsEngine(t)) return;
  const log = new RecordLog();
  const engine = openEngine(t, ['exit', 'syscalls'], log);
  // sh waits for each sleep (wait4, slow), then exits; all of it while this event loop is blocked,
  // so the slow records and the exit come out of the ring in one wake-up
  const sh = spawn('sh', ['-c', 'sleep 0.1; sleep 0.05; sleep 0.05; exit 4'], { stdio: 'ignore' });
  t.after(() => kill(sh));
  engine.watch(sh.pid!, { slot: engine.allocateSlot(), exit: true, syscalls: { slowNs: 20e6, stallNs: 0, slowPerSec: 100 } });
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 800);
  const exit = await log.next('exit', (r) => r.pid === sh.pid, 5_000, 'the exit of sh');
  assert.equal(exit.exitStatus, 4);
  const mine = log.records.filter((r) => r.pid === sh.pid).map((r) => r.kind);
  assert.ok(mine.filter((k) => k === 'slow').length >= 2, `slow syscalls of sh: ${mine.join(', ')}`);
  assert.equal(mine.indexOf('exit'), mine.length - 1, `its exit after every slow syscall: ${mine.join(', ')}`);
});

test('a PID watched after the object is loaded is seen on its first kill, twenty times in a row', async (t) => {
  if (needsEngine(t)) return;
  const log = new RecordLog();
  const engine = openEngine(t, ['exit'], log);
  const slot = engine.allocateSlot();
  for (let i = 0; i < 20; i++) {
    const p = spawn('sleep', ['30'], { stdio: 'ignore' });
    engine.watch(p.pid!, { slot, exit: true });
    p.kill('SIGKILL');
    const r = await log.next('exit', (x) => x.pid === p.pid, 5_000, `kill ${String(i + 1)}`);
    assert.equal(r.signal, 9);
  }
  assert.equal(log.records.length, 20);
});

test('syscall tracing: histogram, a slow syscall, and the loop state of an idle, a woken and a blocked loop', async (t) => {
  if (needsEngine(t)) return;
  const log = new RecordLog();
  const engine = openEngine(t, ['exit', 'syscalls'], log);
  const target = await startLoopTarget(1.2);
  t.after(() => kill(target.child));
  const slot = engine.allocateSlot();
  const thresholdNs = 300_000_000n;
  engine.watch(target.pid, { slot, exit: true, syscalls: { slowNs: 100e6, stallNs: Number(thresholdNs), slowPerSec: 10 } });

  // Added while it already waits in epoll_wait: not armed, so never a stall however long it idles.
  const idle = engine.loopState(slot);
  assert.equal(idle.pid, target.pid);
  assert.equal(idle.armed, false);
  assert.equal(judgeLoop(idle, process.hrtime.bigint() + 10n * thresholdNs, thresholdNs).stalled, false);

  target.child.kill('SIGWINCH');
  assert.equal(await target.line(), 'woke');
  const waiting = await waitFor('the loop back in epoll_wait, armed', 5_000, () => {
    const s = engine.loopState(slot);
    return s.armed && s.inWait ? s : null;
  });
  // Idle in its wait for ten thresholds: still not a stall.
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const stillIdle = engine.loopState(slot);
  assert.equal(stillIdle.inWait, true);
  assert.equal(judgeLoop(stillIdle, process.hrtime.bigint(), thresholdNs).stalled, false, 'waiting in epoll_wait is not a stall');
  assert.ok(stillIdle.waits >= waiting.waits, `waits ${String(stillIdle.waits)} after idling, ${String(waiting.waits)} before`);

  // A pure-Python hot loop: no syscalls at all, the main thread never comes back to epoll_wait.
  const from = log.records.length;
  target.child.kill('SIGUSR1');
  const stalled = await waitFor('the busy loop judged stalled', 5_000, () => {
    const v = judgeLoop(engine.loopState(slot), process.hrtime.bigint(), thresholdNs);
    return v.stalled ? v : null;
  });
  assert.ok(stalled.busyNs >= thresholdNs, `judged stalled after ${String(stalled.busyNs)} ns busy, threshold ${String(thresholdNs)} ns`);
  const ended = await log.next('stall-end', (r) => r.pid === target.pid, 5_000, 'the stall-end record', from);
  assert.ok(ended.busyNs >= 1_100_000_000n, `busy about 1.2 s (${String(ended.busyNs)} ns)`);
  assert.equal(syscallName(ended.nr), 'epoll_wait');
  assert.ok(engine.loopState(slot).maxBusyNs >= ended.busyNs, `maxBusyNs ${String(engine.loopState(slot).maxBusyNs)} ns, the ended stretch ${String(ended.busyNs)} ns`);

  // A blocking sleep on the loop: a slow syscall, and the main thread is seen inside it.
  target.child.kill('SIGUSR2');
  const inSleep = await waitFor('the main thread inside clock_nanosleep', 5_000, () => {
    const s = engine.loopState(slot);
    return s.currentNr !== null && syscallName(s.currentNr) === 'clock_nanosleep' ? s : null;
  });
  assert.equal(inSleep.inWait, false);
  const slow = await log.next('slow', (r) => r.pid === target.pid, 5_000, 'the slow clock_nanosleep', from);
  assert.equal(syscallName(slow.nr), 'clock_nanosleep');
  assert.equal(slow.tid, target.pid, 'on the main thread');
  assert.ok(slow.durationNs >= 1_100_000_000n, String(slow.durationNs));
  await log.next('stall-end', (r) => r.pid === target.pid && r.ns > slow.ns, 5_000, 'the second stall-end', from);

  const s = engine.loopState(slot);
  const hist = engine.histogram(slot);
  const total = hist.reduce((a, b) => a + b, 0);
  assert.ok(total > 0 && total === s.syscalls, `histogram counts every non-wait syscall (${String(total)} vs ${String(s.syscalls)})`);
  assert.ok((hist[21] ?? 0) >= 1, 'the 1.2 s sleep is in the [2^20, 2^21) us bucket');
  assert.equal(s.slow, 1);
  assert.ok(engine.stats().stallEnds >= 2, `stall ends counted: ${String(engine.stats().stallEnds)}`);
});

test('flag-lift attribution: chattr -i on the watched filesystem names chattr, its PID and uid; our own ioctls are not reported', async (t) => {
  if (needsEngine(t)) return;
  const native = loadNative();
  if (native === null) assert.fail('the native addon is needed for the engine and is not built');
  const log = new RecordLog();
  const engine = openEngine(t, ['flags'], log);
  const dir = makeTempDir('bpf-flags');
  const file = join(dir, 'sealed.txt');
  writeFileSync(file, 'x');
  const st = statSync(file);
  engine.watchFlags(st.dev);
  native.setFlag(file, 0x10, true); // our own +i: not reported
  const chattr = spawn('chattr', ['-i', file], { stdio: 'ignore' });
  const code = await new Promise((resolve) => chattr.once('exit', resolve));
  assert.equal(code, 0);
  const r = await log.next('flags', (x) => x.pid === chattr.pid, 5_000, 'the chattr -i record');
  assert.equal(r.comm, 'chattr');
  assert.equal(r.uid, 0);
  assert.equal(r.ret, 0);
  assert.equal(r.ino, BigInt(st.ino));
  assert.equal(r.liftedImmutable, true);
  assert.equal(log.records.filter((x) => x.pid === process.pid).length, 0, 'the loader own +i was not reported');

  // Another filesystem is not watched: /dev/shm (tmpfs) when the file is on another one.
  const shm = makeTempDir('bpf-flags-shm', '/dev/shm');
  const other = join(shm, 'f');
  writeFileSync(other, 'y');
  if (statSync(other).dev !== st.dev) {
    assert.equal(spawnSync('chattr', ['+i', other]).status, 0);
    assert.equal(spawnSync('chattr', ['-i', other]).status, 0);
    const marker = spawn('chattr', ['+i', file], { stdio: 'ignore' });
    await log.next('flags', (x) => x.pid === marker.pid, 5_000, 'a later change on the watched filesystem');
    assert.equal(log.records.filter((x) => x.kind === 'flags' && x.dev !== r.dev).length, 0, 'nothing from the other filesystem');
  }
  engine.watchFlags(null);
});

test('engine errors are coded: a missing object, an unknown group, a closed engine', (t) => {
  if (needsEngine(t)) return;
  assert.throws(() => BpfEngine.open({ groups: ['exit'], onRecord: () => undefined, objectPath: '/nonexistent/sentinel.bpf.o' }), (e: unknown) => isSentinelError(e, 'unavailable') && /not built/.test(e.message));
  assert.throws(() => BpfEngine.open({ groups: ['nope' as BpfGroup], onRecord: () => undefined }), /group must be one of/);
  const engine = BpfEngine.open({ groups: ['exit'], onRecord: () => undefined });
  assert.throws(() => engine.watch(1, { slot: 64, exit: true }), /slot out of range/);
  engine.close();
  engine.close();
  assert.throws(() => engine.watch(1, { slot: 0, exit: true }), /closed/);
});

test('the minimal BTF is used on the kernel it was cut from, and the kernel BTF works as well', async (t) => {
  if (needsEngine(t)) return;
  const chosen = chooseBtf(bpfBuild());
  assert.notEqual(chosen.path, null, `the build on this machine cut a matching minimal BTF: ${chosen.why}`);
  for (const btf of ['auto', 'kernel'] as const) {
    const log = new RecordLog();
    const engine = openEngine(t, ['exit'], log, btf);
    const p = spawn('sleep', ['30'], { stdio: 'ignore' });
    engine.watch(p.pid!, { slot: 0, exit: true });
    p.kill('SIGKILL');
    assert.equal((await log.next('exit', (r) => r.pid === p.pid, 5_000, `exit with ${btf} BTF`)).signal, 9);
    engine.close();
  }
});

// The engine's number arguments are read as what they are or refused, as the addon's other integer
// arguments are: NaN, an infinity, a fraction, a negative or a value past the range never reaches a map.
test('engine number arguments: NaN, ±Infinity, a fraction, a negative or a value out of range is a RangeError naming it, a non-number a TypeError, and no map is changed', (t) => {
  if (needsEngine(t)) return;
  const engine = openEngine(t, ['exit'], new RecordLog());
  const native = (engine as unknown as { native: Record<string, (...a: unknown[]) => unknown> }).native;
  const call = (name: string, ...a: unknown[]): unknown => native[name]!.apply(native, a);
  const u32 = (what: string): { name: string; code: string; message: string } => ({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: `${what} must be an integer from 0 to 2^32-1` });
  const u64 = (what: string): { name: string; code: string; message: string } => ({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: `${what} must be an integer from 0 to 2^53-1` });
  const port = 40_000 + (process.pid % 20_000);
  for (const v of [Number.NaN, Infinity, -Infinity, 1.5, -1, -0.5, 2 ** 32, 2 ** 32 + 1, 2 ** 64]) {
    assert.throws(() => call('isWatched', v), u32('tgid'), String(v));
    assert.throws(() => call('unwatch', v), u32('tgid'), String(v));
    assert.throws(() => call('readSlot', v), u32('slot'), String(v));
    assert.throws(() => call('watch', v, 0, 1, 0, 0, 0), u32('tgid'), String(v));
    assert.throws(() => call('watch', process.pid, 0, 1, 0, 0, v), u32('slowPerSec'), String(v));
    assert.throws(() => call('watchPort', v, 0), u32('port'), String(v));
  }
  for (const v of [Number.NaN, Infinity, -Infinity, 0.5, -1, 2 ** 53, 2 ** 64, 2 ** 64 + 2 ** 12]) {
    assert.throws(() => call('watchPort', port, v), u64('gapNs'), String(v));
    assert.throws(() => call('watch', process.pid, 0, 1, v, 0, 0), u64('slowNs'), String(v));
    assert.throws(() => call('setFlagDevice', v, true), u64('stDev'), String(v));
  }
  assert.throws(() => call('isWatched', String(process.pid)), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'tgid must be a number' });
  assert.throws(() => call('watchPort', port, '5'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'gapNs must be a number' });
  assert.equal(call('readPort', port), -1, 'no refused watchPort reached the map');
  assert.equal(call('isWatched', process.pid), false, 'no refused watch reached the map');
  // the largest values in range pass
  assert.equal(call('isWatched', 2 ** 32 - 1), false);
  call('watchPort', port, 2 ** 53 - 1);
  assert.equal(call('readPort', port), 0);
  call('unwatchPort', port);
});
