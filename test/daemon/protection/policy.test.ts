// The pure protection policy (src/daemon/protection/policy.ts): what is protected, which score is
// written, when an item may say "applied", and the report lines; values in, values out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compileExpendables,
  descendantsOf,
  effectivenessItem,
  expendableItem,
  expendableRuleFor,
  memoryHolds,
  oomItem,
  protectedPids,
  repairLine,
  scoreToWrite,
  statusLine,
  wholePages,
} from '../../../src/daemon/protection/policy.js';

const p = (pid: number, ppid: number, comm = 'x', cmdline = 'x') => [pid, { pid, ppid, comm, cmdline }] as const;

test('process trees: descendants of the roots, nothing else', () => {
  const table = new Map([p(1, 0), p(10, 1), p(11, 10), p(12, 11), p(20, 1), p(21, 20)]);
  assert.deepEqual(descendantsOf([10], table), [10, 11, 12]);
  assert.deepEqual(descendantsOf([99], table), []);
});

test('protected: the roots\' trees plus live slice members; bad roots and dead members ignored', () => {
  const table = new Map([p(1, 0), p(10, 1), p(11, 10), p(30, 1)]);
  assert.deepEqual(protectedPids([10, 0, -5, 1.5], table, [30, 77]), [10, 11, 30]);
});

test('score to write: the target; once -1000 was refused, the fallback 0, and nothing below it is touched', () => {
  assert.equal(scoreToWrite(300, -1000, false), -1000);
  assert.equal(scoreToWrite(-1000, -1000, false), null);
  assert.equal(scoreToWrite(300, -1000, true), 0);
  assert.equal(scoreToWrite(0, -1000, true), null);
  assert.equal(scoreToWrite(-500, -1000, true), null);
  assert.equal(scoreToWrite(200, 100, true), 100, 'a non-negative target is its own fallback');
});

test('the oom item says applied only when every protected process holds the score', () => {
  const base = { target: -1000, refusal: null, unscored: [], atTarget: 0, atFallback: 0, protectedCount: 0 };
  assert.deepEqual(oomItem(base), { effective: null, item: { state: 'pending', short: 'no protected process yet', reason: 'no target process is running' } });
  assert.deepEqual(oomItem({ ...base, atTarget: 2, protectedCount: 2 }).item, { state: 'applied', reason: 'oom_score_adj=-1000 on 2 process(es), read back' });
  const refused = oomItem({ ...base, refusal: { reason: 'oom_score_adj=-1000 for process 7 refused: no CAP_SYS_RESOURCE (EACCES)', code: 'not-permitted' }, atFallback: 2, protectedCount: 2 });
  assert.equal(refused.effective, 0);
  assert.equal(refused.item.state, 'refused');
  assert.equal(refused.item.short, 'no CAP_SYS_RESOURCE; kept at 0');
  const unscored = oomItem({ ...base, target: 0, unscored: [{ reason: 'EACCES', code: 'not-permitted' }], atTarget: 1, protectedCount: 2 });
  assert.equal(unscored.item.state, 'refused');
  assert.equal(unscored.item.code, 'not-permitted');
  assert.equal(unscored.effective, null);
});

test('expendables: a rule matches outside the protected set, never the sentinel or a kernel thread', () => {
  const rules = compileExpendables([{ comm: '^chrome$', oomScoreAdj: 800 }, { comm: '^py', cmdline: 'batch\\.py', oomScoreAdj: 500 }]);
  const own = 4242;
  const facts = (pid: number, comm: string, cmdline: string) => ({ pid, ppid: 1, comm, cmdline });
  assert.equal(expendableRuleFor(facts(5, 'chrome', 'chrome --x'), rules, new Set(), own)?.score, 800);
  assert.equal(expendableRuleFor(facts(6, 'python3', 'python3 batch.py'), rules, new Set(), own)?.score, 500);
  assert.equal(expendableRuleFor(facts(7, 'python3', 'python3 web.py'), rules, new Set(), own), undefined, 'both expressions must match');
  assert.equal(expendableRuleFor(facts(5, 'chrome', 'chrome'), rules, new Set([5]), own), undefined, 'protected wins');
  assert.equal(expendableRuleFor(facts(own, 'chrome', 'chrome'), rules, new Set(), own), undefined);
  assert.equal(expendableRuleFor(facts(8, 'chrome', ''), rules, new Set(), own), undefined);
  assert.equal(expendableItem([], 1, ['denied']).state, 'refused');
  assert.deepEqual(expendableItem([{ pid: 5, comm: 'chrome', oomScoreAdj: 800 }], 0, []), { state: 'applied', reason: '1 expendable process(es) scored' });
});

test('memory settings hold as written or as whole pages of the given size', () => {
  assert.equal(wholePages(5000, 4096), 4096);
  assert.equal(memoryHolds(4096, 5000, 4096), true);
  assert.equal(memoryHolds(5000, 5000, 4096), true);
  assert.equal(memoryHolds(0, 5000, 4096), false);
  assert.equal(memoryHolds(8192, 10_000, 8192), true, 'the page size is a parameter, not 4096');
  assert.equal(effectivenessItem('memory.low', 1, true, [{ rel: '/a', value: '0' }]).state, 'applied');
  const capped = effectivenessItem('memory.low', 1, false, [{ rel: '/a', value: '0' }]);
  assert.equal(capped.state, 'ineffective');
  assert.equal(capped.short, 'ancestor /a has memory.low=0');
});

test('report lines: a repair, and STATUS= leaving out what is off', () => {
  assert.equal(repairLine({ pid: 1234, what: 'oom_score_adj', from: '300', to: '0', kind: 'drift' }), 'protection: oom_score_adj of process 1234 drifted: 300 -> 0');
  assert.equal(repairLine({ what: 'cgroup', from: 'missing', to: '/x', kind: 'drift' }), 'protection: cgroup drifted: missing -> /x');
  const items = { slice: { state: 'applied' as const }, memoryLow: { state: 'unsupported' as const, short: 'no v2 memory controller' }, memoryMin: { state: 'off' as const }, oom: { state: 'refused' as const, short: 'no CAP_SYS_RESOURCE; kept at 0' }, expendable: { state: 'applied' as const } };
  assert.equal(statusLine(items, -1000), 'protection: slice ok, oom -1000 refused (no CAP_SYS_RESOURCE; kept at 0), memory.low unsupported (no v2 memory controller), expendable ok');
});
