// ProtectionManager against the real kernel where it gets no slice (a cgroupRoot outside cgroup v2,
// a read-only cgroupfs): the OOM scores alone, applied or refused and reported, and their full
// re-check on the injected clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeCgroup } from '../../../src/adapters/cgroup.js';
import { detectCgroupLayout } from '../../../src/adapters/cgroup-layout.js';
import { readOomScoreAdj } from '../../../src/adapters/oom.js';
import { ProtectionManager, protectionSchema } from '../../../src/daemon/protection/index.js';
import { isRoot, needs } from '../../helpers/env.js';
import { uniqueName, killAndReap, recordingLog, v2Ready, waitFor } from '../../helpers/protection.js';

test('a cgroupRoot outside cgroup v2 refuses the slice but keeps OOM scores working', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const target = spawn('sleep', ['300'], { stdio: 'ignore' });
  const { log } = recordingLog();
  const spec = protectionSchema.parse({ cgroupRoot: '/tmp/not-a-cgroup', oomScoreAdj: 0, scanIntervalMs: 10_000 });
  const manager = new ProtectionManager(spec, { pids: () => [target.pid!], log });
  try {
    await writeFile(`/proc/${target.pid}/oom_score_adj`, '200', { flag: 'r+' });
    await manager.start();
    const { slice, oom } = manager.status().items;
    assert.equal(slice.state, 'refused');
    assert.equal(slice.code, 'config');
    assert.equal(oom.state, 'applied');
    assert.equal(await readOomScoreAdj(target.pid!), 0);
    assert.match(manager.statusLine(), /^protection: slice refused \(cgroupRoot not on cgroup v2\), oom 0 ok$/);
  } finally {
    await manager.stop();
    await killAndReap([target]);
  }
});

// The container case without a container: a private mount namespace where the cgroup2 mount is read-only.
test('read-only cgroupfs (as in a container): slice refused with EROFS named, scores still applied', async (t) => {
  if (!(await v2Ready(t))) return;
  const hasUnshare = await promisify(execFile)('unshare', ['--version']).then(() => true, () => false);
  if (needs(t, hasUnshare, 'unshare (util-linux)')) return;
  const mount = (await detectCgroupLayout()).v2!.mount;
  const index = fileURLToPath(new URL('../../../src/daemon/protection/index.js', import.meta.url));
  const target = spawn('sleep', ['300'], { stdio: 'ignore' });
  await writeFile(`/proc/${target.pid}/oom_score_adj`, '200', { flag: 'r+' });
  const slice = `${uniqueName('sentinel-test-ro')}.slice`;
  const probe = `const { ProtectionManager, protectionSchema } = await import(${JSON.stringify(index)});
const m = new ProtectionManager(protectionSchema.parse({ slice: ${JSON.stringify(slice)}, cgroupRoot: ${JSON.stringify(mount)}, oomScoreAdj: 0 }),
  { pids: () => [${target.pid}], log: { info() {}, warn() {}, error() {} } });
await m.start(); await m.stop();
console.log(JSON.stringify({ items: m.status().items, line: m.statusLine() }));`;
  try {
    const { stdout } = await promisify(execFile)('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `mount -o remount,bind,ro ${mount} && exec "$0" --input-type=module -e "$1"`, process.execPath, probe], { timeout: 30_000 });
    const r = JSON.parse(stdout) as { items: ReturnType<ProtectionManager['status']>['items']; line: string };
    assert.equal(r.items.slice.state, 'refused');
    assert.equal(r.items.slice.code, 'not-permitted');
    assert.match(r.items.slice.reason ?? '', /read-only here \(EROFS/);
    assert.equal(r.items.oom.state, 'applied', 'the rest keeps working');
    assert.equal(await readOomScoreAdj(target.pid!), 0);
    assert.match(r.line, /^protection: slice refused \(read-only cgroupfs\), oom 0 ok$/);
  } finally {
    await killAndReap([target]);
    await removeCgroup(join(mount, slice));
  }
});

test('a score that cannot be written (no CAP_DAC_OVERRIDE, process of another user) is reported refused, not applied', async (t) => {
  const setpriv = await promisify(execFile)('setpriv', ['--version']).then(() => true, () => false);
  if (needs(t, isRoot() && setpriv, 'root and setpriv (util-linux)')) return;
  // A service of another user that raised its own score to 200; the manager wants 0.
  const target = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', 'echo 200 > /proc/self/oom_score_adj && exec sleep 300'], { stdio: 'ignore' });
  try {
    await waitFor('the target raised its own score to 200', 5_000, async () => ((await readOomScoreAdj(target.pid!)) === 200 ? true : undefined));
    const manager = fileURLToPath(new URL('../../../src/daemon/protection/index.js', import.meta.url));
    const script = `
      const { ProtectionManager, protectionSchema } = await import(${JSON.stringify(manager)});
      const quiet = { info() {}, warn() {}, error() {} };
      const m = new ProtectionManager(protectionSchema.parse({ cgroupRoot: '/tmp/not-a-cgroup', oomScoreAdj: 0, scanIntervalMs: 10000 }), { pids: () => [${String(target.pid)}], log: quiet });
      await m.start();
      console.log(JSON.stringify({ oom: m.status().items.oom, line: m.statusLine() }));
      await m.stop();`;
    // Root without CAP_DAC_OVERRIDE, as under the shipped unit: /proc/PID/oom_score_adj of another user is 0644 theirs.
    const r = await promisify(execFile)('setpriv', ['--bounding-set=-dac_override', process.execPath, '--input-type=module', '-e', script], { timeout: 30_000 });
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { oom: { state: string; reason?: string }; line: string };
    assert.equal(await readOomScoreAdj(target.pid!), 200, 'the write really failed');
    assert.notEqual(out.oom.state, 'applied', `reported applied although nothing was scored: ${JSON.stringify(out)}`);
    assert.match(out.oom.reason ?? '', /EACCES|refused/, JSON.stringify(out));
    assert.doesNotMatch(out.line, /oom 0 ok/);
  } finally {
    await killAndReap([target]);
  }
});

test('the full re-check follows the injected clock: none before checkIntervalMs has passed on it, one after', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const token = `${String(300 + (process.pid % 500))}.${String(Date.now() % 100_000)}`;
  const expendable = spawn('sleep', [token], { stdio: 'ignore' });
  const target = spawn('sleep', ['300'], { stdio: 'ignore' });
  let clockMs = Date.parse('2030-01-01T00:00:00Z');
  const spec = protectionSchema.parse({
    cgroupRoot: '/tmp/not-a-cgroup',
    oomScoreAdj: 0,
    scanIntervalMs: 50,
    checkIntervalMs: 100,
    expendable: [{ cmdline: `^sleep ${token.replace('.', '\\.')}$`, oomScoreAdj: 700 }],
  });
  const manager = new ProtectionManager(spec, { pids: () => [target.pid!], log: recordingLog().log, now: () => new Date(clockMs) });
  try {
    await manager.start();
    assert.equal(await readOomScoreAdj(expendable.pid!), 700, 'the first (full) pass scored the expendable');
    await new Promise((r) => setTimeout(r, 250)); // more than checkIntervalMs on the wall clock, none on the injected one
    await writeFile(`/proc/${expendable.pid}/oom_score_adj`, '100', { flag: 'r+' });
    for (let round = 0; round < 2; round++) {
      await writeFile(`/proc/${target.pid}/oom_score_adj`, '300', { flag: 'r+' });
      await waitFor(`scan ${round + 1} repairs the protected score`, 3_000, async () => ((await readOomScoreAdj(target.pid!)) === 0 ? true : undefined));
    }
    assert.equal(await readOomScoreAdj(expendable.pid!), 100, 'scans ran, but no full re-check: the injected clock has not moved');
    clockMs += 100;
    await waitFor('the full re-check once the injected clock passed checkIntervalMs', 3_000, async () => ((await readOomScoreAdj(expendable.pid!)) === 700 ? true : undefined));
  } finally {
    await manager.stop();
    await killAndReap([expendable, target]);
  }
});
