// Protection config: defaults, memory size units, and every bad field named; the host support probe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ProtectionManager, parseMemorySize, probeProtectionSupport, protectionSchema, type ProtectionLog } from '../../../src/daemon/protection/index.js';
import type { DaemonComponent } from '../../../src/daemon/components.js';
import { createLogger } from '../../../src/adapters/logger.js';
import { detectCgroupLayout } from '../../../src/adapters/cgroup-layout.js';

test('defaults: omnimind.slice, -1000, check at least every 10 s, no memory floor, no expendables', () => {
  assert.deepEqual(protectionSchema.parse({}), {
    slice: 'omnimind.slice',
    oomScoreAdj: -1000,
    expendable: [],
    checkIntervalMs: 10_000,
    scanIntervalMs: 1_000,
  });
});

test('memory sizes: bytes or K/M/G/T with base 1024, like systemd MemoryLow=', () => {
  assert.equal(parseMemorySize(4096), 4096);
  assert.equal(parseMemorySize('512M'), 512 * 1024 ** 2);
  assert.equal(parseMemorySize('1G'), 1024 ** 3);
  assert.equal(parseMemorySize('1.5G'), 1.5 * 1024 ** 3);
  assert.equal(parseMemorySize('64k'), 64 * 1024);
  assert.equal(parseMemorySize('2GiB'), 2 * 1024 ** 3);
  assert.equal(parseMemorySize('100'), 100);
  for (const bad of ['', 'lots', '-1M', '1P', '1e3']) assert.throws(() => parseMemorySize(bad), RangeError, bad);
  assert.throws(() => parseMemorySize(-1), RangeError);
  assert.throws(() => parseMemorySize(1.5), RangeError);
  const spec = protectionSchema.parse({ memoryLow: '512M', memoryMin: 1048576 });
  assert.equal(spec.memoryLow, 512 * 1024 ** 2);
  assert.equal(spec.memoryMin, 1048576);
});

test('bad fields are each named', () => {
  const r = protectionSchema.safeParse({
    slice: 'omnimind',
    memoryLow: 'much',
    oomScoreAdj: -1001,
    checkIntervalMs: 60_000,
    expendable: [{ oomScoreAdj: 500 }, { cmdline: '(' }],
    cgroupRoot: 'relative/path',
    extra: true,
  });
  assert.equal(r.success, false);
  const paths = r.error.issues.map((i) => i.path.join('.')).sort();
  for (const field of ['slice', 'memoryLow', 'oomScoreAdj', 'checkIntervalMs', 'expendable.0', 'expendable.1.cmdline', 'cgroupRoot']) {
    assert.ok(paths.includes(field), `${field} is named (got ${paths.join(', ')})`);
  }
  assert.ok(r.error.issues.some((i) => i.code === 'unrecognized_keys'), 'unknown keys are rejected');
  const ok = protectionSchema.parse({ expendable: [{ comm: '^chrome$' }, { cmdline: 'batch-job', oomScoreAdj: 900 }] });
  assert.deepEqual(ok.expendable, [
    { comm: '^chrome$', oomScoreAdj: 500 },
    { cmdline: 'batch-job', oomScoreAdj: 900 },
  ]);
});

test('support probe agrees with this host (no changes made)', async () => {
  const support = await probeProtectionSupport();
  const layout = await detectCgroupLayout();
  assert.equal(support.hierarchy, layout.kind);
  assert.equal(support.cgroup2Mount, layout.v2?.mount ?? null);
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(await readFile('/proc/self/status', 'utf8'))![1]!;
  assert.equal(support.capSysResource, ((BigInt(`0x${capEff}`) >> 24n) & 1n) === 1n);
  assert.equal(support.limits.some((l) => l.startsWith('oom_score_adj=-1000')), !support.capSysResource);
  if (layout.v2 !== null) {
    const controllers = (await readFile(`${layout.v2.mount}/cgroup.controllers`, 'utf8')).trim().split(/\s+/);
    assert.equal(support.v2MemoryController, controllers.includes('memory'));
    assert.equal(support.limits.some((l) => l.startsWith('memory.low')), !support.v2MemoryController || !layout.v2.recursiveProt);
  }
});

test('the daemon\'s pino logger fits the manager\'s log interface', () => {
  const lines: string[] = [];
  const log: ProtectionLog = createLogger('info', { write: (l: string) => void lines.push(l) });
  log.warn({ pid: 1 }, 'protection: drifted');
  assert.match(lines[0] ?? '', /"level":"warn".*"msg":"protection: drifted"/);
});

test('ProtectionManager fits the daemon\'s component seam', () => {
  const log: ProtectionLog = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const component: DaemonComponent = new ProtectionManager(protectionSchema.parse({}), { pids: () => [], log });
  assert.equal(component.name, 'protection');
  assert.equal(component.statusLine(), 'protection: slice pending, oom -1000 pending', 'before start(): nothing claimed yet');
});
