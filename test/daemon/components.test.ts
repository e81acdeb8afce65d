// The composition root wires the eBPF/recovery supervisor and the protection manager: a supervised command target
// shows in `status` with its PID and in STATUS=, is respawned when killed, and protection reports on it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { sendRequest } from '../../src/adapters/control-client.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor } from '../helpers/daemon-harness.js';
import { makeTestCgroup, removeTestCgroup } from '../helpers/test-cgroup.js';

after(() => cleanupDaemonFiles());

interface TargetStatus {
  name: string;
  pid: number | null;
  state: string;
  restarts: number;
}

test('targets and protection run inside the daemon: PID in status, respawn after kill, one STATUS line', { timeout: 60_000 }, async (t) => {
  const cgroupRoot = makeTestCgroup(t, 'daemon');
  if (cgroupRoot === null) return;
  const d = await startTestDaemon('components', {
    targets: [{ name: 'worker', command: ['sleep', '300'], port: 8000 }],
    protection: { cgroupRoot, oomScoreAdj: 0 },
  });
  try {
    const status = async (): Promise<{ components: { targets: TargetStatus[]; protection: { slice: string } }; daemon: { statusLine: string } }> =>
      ((await sendRequest(d.socket, { op: 'status' }, { timeoutMs: 10_000 })) as { result: { components: { targets: TargetStatus[]; protection: { slice: string } }; daemon: { statusLine: string } } }).result;
    const first = await waitFor('worker running with a PID', 15_000, async () => {
      const s = await status();
      const w = s.components.targets[0];
      return w !== undefined && w.pid !== null && w.state === 'running' ? s : null;
    });
    const pid = first.components.targets[0]!.pid!;
    assert.equal(first.components.protection.slice, 'omnimind.slice');
    assert.match(first.daemon.statusLine, /vault v1 .*intact.*protection:/);
    process.kill(pid, 'SIGKILL');
    const after = await waitFor('worker respawned', 15_000, async () => {
      const w = (await status()).components.targets[0];
      return w !== undefined && w.pid !== null && w.pid !== pid && w.state === 'running' ? w : null;
    });
    assert.ok(after.restarts >= 1);
  } finally {
    await d.handle.stop('test');
    await removeTestCgroup(cgroupRoot);
  }
});
