// cgroupfs adapter: hierarchy detection (fixtures and this host), /proc/PID/cgroup, and real moves
// of real processes into a real cgroup v2 cgroup, read back from /proc/PID/cgroup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  cgroupPathIn,
  ensureCgroup,
  moveProcess,
  parseProcCgroup,
  readCgroupProcs,
  removeCgroup,
  v1PathOf,
  v2PathOf,
} from '../../src/adapters/cgroup.js';
import { detectCgroupLayout, layoutFromMounts, parseMountInfo, systemdSliceCgroupPath } from '../../src/adapters/cgroup-layout.js';
import { isSentinelError } from '../../src/core/errors.js';
import { needs, isRoot } from '../helpers/env.js';
import { uniqueName, killAndReap } from '../helpers/protection.js';

const UNIFIED = `31 23 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw`;
const HYBRID = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`;
const LEGACY = `35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/my\\040dir rw,relatime - cgroup cgroup rw,name=systemd`;
const FILESYSTEMS = 'nodev\tcgroup\nnodev\tcgroup2\n';

test('layout: unified, hybrid and legacy mount tables are told apart', () => {
  const unified = layoutFromMounts(parseMountInfo(UNIFIED), FILESYSTEMS);
  assert.equal(unified.kind, 'unified');
  assert.deepEqual(unified.v2, { mount: '/sys/fs/cgroup', options: ['rw', 'nsdelegate', 'memory_recursiveprot'], recursiveProt: true });
  const hybrid = layoutFromMounts(parseMountInfo(HYBRID), FILESYSTEMS);
  assert.equal(hybrid.kind, 'hybrid');
  assert.equal(hybrid.v2?.mount, '/sys/fs/cgroup/unified');
  assert.equal(hybrid.v2?.recursiveProt, false);
  assert.equal(hybrid.v1.memory, '/sys/fs/cgroup/memory');
  assert.equal(hybrid.v1.cpuacct, '/sys/fs/cgroup/cpu,cpuacct');
  assert.equal(hybrid.v1['name=systemd'], '/sys/fs/cgroup/systemd');
  const legacy = layoutFromMounts(parseMountInfo(LEGACY), 'nodev\tcgroup\n');
  assert.equal(legacy.kind, 'legacy');
  assert.equal(legacy.v2, null);
  assert.equal(legacy.kernelHasCgroup2, false);
  assert.equal(legacy.v1['name=systemd'], '/sys/fs/cgroup/my dir');
  assert.equal(layoutFromMounts([], '').kind, 'none');
});

test('/proc/PID/cgroup lines are parsed, cgroup2 as id 0 with no controllers', () => {
  const entries = parseProcCgroup('4:memory:/process_api/x\n2:cpu,cpuacct:/\n0::/omnimind.slice\n');
  assert.deepEqual(entries, [
    { hierarchyId: 4, controllers: ['memory'], path: '/process_api/x' },
    { hierarchyId: 2, controllers: ['cpu', 'cpuacct'], path: '/' },
    { hierarchyId: 0, controllers: [], path: '/omnimind.slice' },
  ]);
  assert.equal(cgroupPathIn('/sys/fs/cgroup', '/sys/fs/cgroup/a/b'), '/a/b');
  assert.equal(cgroupPathIn('/sys/fs/cgroup', '/sys/fs/cgroup'), '/');
  assert.throws(() => cgroupPathIn('/sys/fs/cgroup/unified', '/tmp/x'), (e) => isSentinelError(e, 'usage'));
});

test('systemd slice names map to nested cgroup directories', () => {
  assert.equal(systemdSliceCgroupPath('omnimind.slice'), 'omnimind.slice');
  assert.equal(systemdSliceCgroupPath('omnimind-ai-phi.slice'), 'omnimind.slice/omnimind-ai.slice/omnimind-ai-phi.slice');
  assert.equal(systemdSliceCgroupPath('-.slice'), '');
});

test('this host: detected layout agrees with /proc/self/cgroup', async () => {
  const layout = await detectCgroupLayout();
  const mine = parseProcCgroup(await readFile('/proc/self/cgroup', 'utf8'));
  const hasV2Line = mine.some((e) => e.hierarchyId === 0);
  const hasV1Lines = mine.some((e) => e.hierarchyId !== 0 && e.controllers.some((c) => !c.startsWith('name=')));
  assert.equal(layout.v2 !== null, hasV2Line, 'a cgroup2 mount exists exactly when /proc/self/cgroup has a 0:: line');
  const expected = hasV2Line ? (hasV1Lines ? 'hybrid' : 'unified') : hasV1Lines ? 'legacy' : 'none';
  assert.equal(layout.kind, expected);
  if (layout.v1.memory !== undefined) assert.notEqual(await v1PathOf(process.pid, 'memory'), null);
});

test('real cgroup v2: processes are moved into a new cgroup and read back from /proc/PID/cgroup', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const layout = await detectCgroupLayout();
  if (needs(t, layout.v2 !== null, 'a cgroup2 mount')) return;
  const mount = layout.v2!.mount;
  const dir = join(mount, uniqueName('sentinel-test-cg'));
  const children: ChildProcess[] = [];
  try {
    assert.deepEqual(await ensureCgroup(dir), { created: true });
    assert.deepEqual(await ensureCgroup(dir), { created: false }, 'an existing cgroup is adopted');
    for (let i = 0; i < 2; i++) children.push(spawn('sleep', ['300'], { stdio: 'ignore' }));
    const pids = children.map((c) => c.pid!);
    for (const pid of pids) await moveProcess(dir, pid);
    const rel = cgroupPathIn(mount, dir);
    for (const pid of pids) {
      assert.equal(await v2PathOf(pid), rel);
      assert.match(await readFile(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`^0::${rel}$`, 'm'));
    }
    assert.deepEqual((await readCgroupProcs(dir)).sort(), [...pids].sort());
    await assert.rejects(moveProcess(dir, 0x3fffffff), (e) => isSentinelError(e) && e.where === join(dir, 'cgroup.procs'), 'moving a nonexistent pid names the file');
    await assert.rejects(ensureCgroup(join(dir, 'no', 'such', 'parent')), (e) => isSentinelError(e, 'not-found'));
  } finally {
    await killAndReap(children);
    await removeCgroup(dir);
  }
  assert.equal((await readdir(mount)).includes(dir.split('/').pop()!), false, 'the test cgroup is removed');
});
