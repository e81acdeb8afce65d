// Parsing of bpftrace NDJSON lines (src/core/bpf-events.ts) with lines captured from bpftrace 0.17.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeExitCode, parseTracerLine } from '../../src/core/bpf-events.js';

test('attached_probes line becomes an attached event', () => {
  assert.deepEqual(parseTracerLine('{"type": "attached_probes", "data": {"probes": 1}}'), { ok: true, event: { kind: 'attached', probes: 1 } });
});

test('the BEGIN ready marker says the output buffers are live', () => {
  assert.deepEqual(parseTracerLine('{"type": "printf", "data": "ready\\n"}'), { ok: true, event: { kind: 'ready' } });
});

test('blank lines are skipped, not errors', () => {
  assert.equal(parseTracerLine(''), null);
  assert.equal(parseTracerLine('   '), null);
});

test('exit printf carries pid, parent, signal and kernel time', () => {
  const r = parseTracerLine('{"type": "printf", "data": "exit pid=6367 ppid=6363 code=9 ns=421393680629 comm=python3 -m x\\n"}');
  assert.ok(r?.ok);
  assert.deepEqual(r.event, { kind: 'exit', pid: 6367, ppid: 6363, rawCode: 9, exitStatus: null, signal: 9, coreDumped: false, comm: 'python3 -m x', ns: 421393680629n });
});

test('exit status is decoded from the wait(2) form', () => {
  assert.deepEqual(decodeExitCode(7 << 8), { exitStatus: 7, signal: null, coreDumped: false });
  assert.deepEqual(decodeExitCode(0x80 | 11), { exitStatus: null, signal: 11, coreDumped: true });
  assert.deepEqual(decodeExitCode(0), { exitStatus: 0, signal: null, coreDumped: false });
});

test('retransmit printf carries ports, family and time', () => {
  const r = parseTracerLine('{"type": "printf", "data": "retransmit sport=8000 dport=41234 family=2 state=1 ns=99\\n"}');
  assert.ok(r?.ok);
  assert.deepEqual(r.event, { kind: 'retransmit', sport: 8000, dport: 41234, family: 2, state: 1, ns: 99n });
});

test('lost events and other bpftrace output are recognised', () => {
  assert.deepEqual(parseTracerLine('{"type": "lost_events", "data": {"events": 12}}'), { ok: true, event: { kind: 'lost', count: 12 } });
  assert.deepEqual(parseTracerLine('{"type": "map", "data": {"@": {"1": 1}}}'), { ok: true, event: { kind: 'other', type: 'map' } });
});

test('bad lines give a reason, never an exception', () => {
  for (const line of ['not json', '{"type": 3}', '[1,2]', '{"type": "printf", "data": 5}', '{"type": "printf", "data": "exit pid=x"}', '{"type": "attached_probes", "data": {}}', 'null']) {
    const r = parseTracerLine(line);
    assert.ok(r !== null && !r.ok, `expected a failure for ${line}`);
    assert.ok(r.reason.length > 0);
  }
});

test('arbitrary input never throws', () => {
  fc.assert(
    fc.property(fc.string(), (s) => {
      const r = parseTracerLine(s);
      assert.ok(r === null || typeof r.ok === 'boolean');
    }),
  );
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      const r = parseTracerLine(JSON.stringify(v));
      assert.ok(r === null || typeof r.ok === 'boolean');
    }),
  );
});
