// Decoding of the BPF object's records and map values (src/core/bpf-records.ts) from hand-built
// byte vectors laid out as bpf/sentinel.h says, and the stall verdict (src/core/stall-policy.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RECORD_BYTES, SLOT_STATE_BYTES, bucketLowUs, decodeExitCode, decodeHistogram, decodeLoopState, decodeRecords, decodeStats, type LoopState } from '../../src/core/bpf-records.js';
import { judgeLoop } from '../../src/core/stall-policy.js';

function record(kind: number, pid: number, ns: bigint, comm: string, fill: (v: DataView) => void): Uint8Array {
  const b = new Uint8Array(RECORD_BYTES);
  const v = new DataView(b.buffer);
  v.setUint32(0, kind, true);
  v.setUint32(4, pid, true);
  v.setBigUint64(8, ns, true);
  b.set(Buffer.from(comm, 'latin1').subarray(0, 16), 16);
  fill(v);
  return b;
}

test('exit, slow, stall-end, retransmit and flags records decode field by field', () => {
  const exit = record(1, 4242, 123n, 'python3', (v) => {
    v.setUint32(32, 1, true); // ppid
    v.setInt32(36, 9, true); // SIGKILL
    v.setUint32(40, 3, true); // slot
    v.setUint32(44, 4250, true); // last thread
  });
  const slow = record(2, 4242, 456n, 'python3', (v) => {
    v.setUint32(32, 4243, true);
    v.setUint32(36, 3, true);
    v.setInt32(40, 230, true);
    v.setBigUint64(48, 1_500_000_000n, true);
    v.setBigInt64(56, -4n, true);
  });
  const stall = record(3, 4242, 789n, 'python3', (v) => {
    v.setUint32(32, 3, true);
    v.setInt32(36, 232, true);
    v.setBigUint64(40, 2_000_000_000n, true);
  });
  const rt = record(4, 0, 1000n, 'swapper/1', (v) => {
    v.setUint32(32, 8000, true);
    v.setUint32(36, 2, true);
    v.setBigUint64(40, 77n, true);
    v.setUint32(48, 1, true);
  });
  const flags = record(5, 999, 2000n, 'chattr', (v) => {
    v.setUint32(32, 999, true);
    v.setUint32(36, 1000, true);
    v.setUint32(40, 0x40086602, true);
    v.setInt32(44, 0, true);
    v.setBigUint64(48, 131073n, true);
    v.setUint32(56, (8 << 20) | 1, true);
    v.setUint16(60, 8, true);
    v.setUint16(62, 0, true);
  });
  const { records, unknown } = decodeRecords(Buffer.concat([exit, slow, stall, rt, flags]));
  assert.equal(unknown, 0);
  assert.deepEqual(records[0], { kind: 'exit', pid: 4242, ppid: 1, tid: 4250, slot: 3, rawCode: 9, exitStatus: null, signal: 9, coreDumped: false, comm: 'python3', ns: 123n });
  assert.deepEqual(records[1], { kind: 'slow', pid: 4242, tid: 4243, slot: 3, nr: 230, durationNs: 1_500_000_000n, ret: -4n, comm: 'python3', ns: 456n });
  assert.deepEqual(records[2], { kind: 'stall-end', pid: 4242, slot: 3, nr: 232, busyNs: 2_000_000_000n, comm: 'python3', ns: 789n });
  assert.deepEqual(records[3], { kind: 'retransmit', port: 8000, family: 2, count: 77, state: 1, pid: 0, comm: 'swapper/1', ns: 1000n });
  assert.deepEqual(records[4], { kind: 'flags', pid: 999, tid: 999, uid: 1000, cmd: 0x40086602, ret: 0, ino: 131073n, dev: (8 << 20) | 1, before: 8, after: 0, liftedImmutable: true, comm: 'chattr', ns: 2000n });
});

test('a 16-byte comm without a NUL, an unknown kind and a torn tail are handled, not guessed', () => {
  const full = record(1, 1, 1n, 'abcdefghijklmnopXYZ', () => undefined);
  const unknownKind = record(99, 1, 1n, 'x', () => undefined);
  const { records, unknown } = decodeRecords(Buffer.concat([full, unknownKind, new Uint8Array(10)]));
  assert.equal(records.length, 1);
  assert.equal(records[0]?.comm, 'abcdefghijklmnop');
  assert.equal(unknown, 2);
});

test('exit codes: wait(2) status form', () => {
  assert.deepEqual(decodeExitCode(9), { exitStatus: null, signal: 9, coreDumped: false });
  assert.deepEqual(decodeExitCode(0x86), { exitStatus: null, signal: 6, coreDumped: true });
  assert.deepEqual(decodeExitCode(3 << 8), { exitStatus: 3, signal: null, coreDumped: false });
});

test('slot state, histogram and stats decode; short buffers are refused', () => {
  const b = new Uint8Array(SLOT_STATE_BYTES);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, 10n, true);
  v.setBigUint64(8, 0n, true);
  v.setBigUint64(16, 5n, true);
  v.setBigUint64(24, 7n, true);
  v.setBigUint64(32, 100n, true);
  v.setBigUint64(40, 2n, true);
  v.setBigUint64(48, 1n, true);
  v.setUint32(68, 4242, true);
  v.setUint32(72, 1, true);
  v.setUint32(76, 1, true);
  v.setInt32(80, -1, true);
  assert.deepEqual(decodeLoopState(b), { busySinceNs: 10n, sysEnterNs: 0n, maxBusyNs: 5n, waits: 7, syscalls: 100, slow: 2, slowDropped: 1, pid: 4242, inWait: true, armed: true, currentNr: null });
  assert.throws(() => decodeLoopState(b.subarray(0, 40)), RangeError);
  const h = new Uint8Array(256);
  new DataView(h.buffer).setBigUint64(21 * 8, 3n, true);
  const hist = decodeHistogram(h);
  assert.equal(hist.length, 32);
  assert.equal(hist[21], 3);
  assert.equal(bucketLowUs(0), 0);
  assert.equal(bucketLowUs(21), 2 ** 20);
  const s = new Uint8Array(64);
  new DataView(s.buffer).setBigUint64(8, 4n, true);
  assert.deepEqual(decodeStats(s), { lost: 0, exits: 4, slow: 0, stallEnds: 0, retransmits: 0, flags: 0 });
});

test('judgeLoop: waiting or not yet armed is never a stall; busy past the threshold is; the next look is when it could first be', () => {
  const base: LoopState = { busySinceNs: 1_000n, sysEnterNs: 0n, maxBusyNs: 0n, waits: 1, syscalls: 0, slow: 0, slowDropped: 0, pid: 1, inWait: false, armed: true, currentNr: null };
  const t = 500n;
  assert.deepEqual(judgeLoop({ ...base, armed: false }, 10_000n, t), { stalled: false, busyNs: 0n, nextCheckNs: 10_500n });
  assert.deepEqual(judgeLoop({ ...base, inWait: true }, 10_000n, t), { stalled: false, busyNs: 0n, nextCheckNs: 10_500n });
  assert.deepEqual(judgeLoop(base, 1_200n, t), { stalled: false, busyNs: 200n, nextCheckNs: 1_500n });
  assert.deepEqual(judgeLoop(base, 1_500n, t), { stalled: true, busyNs: 500n, nextCheckNs: 2_000n });
  assert.deepEqual(judgeLoop(base, 900n, t), { stalled: false, busyNs: 0n, nextCheckNs: 1_500n }, 'a timestamp after now (read race) counts as not busy yet');
});
