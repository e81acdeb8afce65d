// `kill -9` of the daemon never leaves its `command` targets serving unsupervised: the command's own process dies
// with the daemon, and whatever it started itself (its process group) is killed by the next daemon before the
// target starts again on the same port (docs/EBPF.md#command-targets-and-the-daemons-death).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../../src/adapters/control-client.js';
import { packageRoot } from '../../../src/adapters/package-root.js';
import { readProcState } from '../../../src/adapters/proc.js';
import { freePort, sampleBackendCommand, waitForHealthy } from '../../../src/cli/demo/sample-backend.js';
import { cleanupDaemonFiles, prepareDaemonFiles, waitFor } from '../../helpers/daemon-harness.js';
import { makeTestCgroup, removeTestCgroup } from '../../helpers/test-cgroup.js';

after(() => cleanupDaemonFiles());
const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');

interface TargetStatus {
  name: string;
  pid: number | null;
  state: string;
  restarts: number;
}

async function alive(pid: number): Promise<boolean> {
  return (await readProcState(pid)).alive;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const task of readdirSync(`/proc/${String(pid)}/task`)) {
    for (const c of readFileSync(`/proc/${String(pid)}/task/${task}/children`, 'utf8').trim().split(/\s+/)) if (c !== '') out.push(Number(c));
  }
  return out;
}

test('kill -9 of the daemon: command targets die with it; the restarted daemon kills what they left and serves on the same ports', { timeout: 120_000 }, async (t) => {
  const cgroupRoot = makeTestCgroup(t, 'orphans');
  if (cgroupRoot === null) return;
  const portA = await freePort();
  const portB = await freePort();
  const quoted = sampleBackendCommand(portB)
    .map((a) => `'${a}'`)
    .join(' ');
  const files = await prepareDaemonFiles('orphans', {
    targets: [
      { name: 'direct', command: sampleBackendCommand(portA), port: portA },
      // The shell's child is not the daemon's: it lives in the target's process group.
      { name: 'shell', command: ['sh', '-c', `${quoted} & wait`], port: portB },
    ],
    protection: { cgroupRoot, oomScoreAdj: 0 },
    log: { level: 'warn' },
  });
  const daemons: ChildProcess[] = [];
  const start = (): ChildProcess => {
    const c = spawn(process.execPath, [cli, 'daemon', '--config', files.configPath], { stdio: 'ignore' });
    daemons.push(c);
    return c;
  };
  const running = (what: string, not: number[] = []): Promise<TargetStatus[]> =>
    waitFor(what, 30_000, async () => {
      try {
        const r = (await sendRequest(files.socket, { op: 'status' }, { timeoutMs: 5_000 })) as { result: { components: { targets: TargetStatus[] } } };
        const ts = r.result.components.targets;
        return ts.length === 2 && ts.every((x) => x.state === 'running' && x.pid !== null && !not.includes(x.pid)) ? ts : null;
      } catch {
        return null;
      }
    });
  const leftovers: number[] = [];
  try {
    let daemon = start();
    const first = await running('both targets running');
    await waitForHealthy(`http://127.0.0.1:${String(portA)}/health`);
    await waitForHealthy(`http://127.0.0.1:${String(portB)}/health`);
    const direct = first.find((x) => x.name === 'direct')!.pid!;
    const shell = first.find((x) => x.name === 'shell')!.pid!;
    const grandchild = childrenOf(shell)[0];
    assert.ok(grandchild !== undefined, 'the shell target has started its backend');
    leftovers.push(direct, shell, grandchild);

    const gone = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGKILL');
    await gone;
    await waitFor('the direct target to die with the daemon', 5_000, async () => ((await alive(direct)) ? null : true));
    await waitFor('the shell target to die with the daemon', 5_000, async () => ((await alive(shell)) ? null : true));

    daemon = start();
    const again = await running('both targets running again under the new daemon', [direct, shell]);
    assert.equal(await alive(grandchild), false, 'what the old target left in its process group is gone');
    for (const x of again) {
      assert.equal(x.restarts, 0, `${x.name} started once, not crash-looping on a taken port`);
    }
    await waitForHealthy(`http://127.0.0.1:${String(portA)}/health`);
    await waitForHealthy(`http://127.0.0.1:${String(portB)}/health`);
    for (const x of again) leftovers.push(x.pid!, ...childrenOf(x.pid!));
    const stopped = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    await stopped;
    for (const pid of leftovers) assert.equal(await alive(pid), false, `process ${String(pid)} stopped with the daemon`);
  } finally {
    for (const d of daemons) if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
    for (const pid of leftovers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await removeTestCgroup(cgroupRoot);
  }
});
