// The daemon's one eBPF engine: a target's exits seen in the kernel with no tracer process under the
// daemon, and, when the engine cannot load, the /proc fallback said with its reason (status, STATUS=, log).
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { isAliveSync } from '../../src/adapters/proc.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor, type TestDaemon } from '../helpers/daemon-harness.js';
import { tempDir } from '../helpers/vault-factory.js';
import { needsEngine } from '../helpers/bpf.js';
import { isRoot, needs } from '../helpers/env.js';
import { sentinel } from '../helpers/cli-harness.js';

after(() => cleanupDaemonFiles());

interface Status {
  result: { daemon: { statusLine: string }; components: { ebpf?: { mode: string; reason: string | null; exitWatched: number }; targets: { mode: string; pid: number | null; degraded: string | null; state: string }[] } };
}
const status = async (d: TestDaemon): Promise<Status['result']> => ((await sendRequest(d.socket, { op: 'status' }, { timeoutMs: 30_000 })) as Status).result;

/** Every sleeper list this file's targets wrote: none of their sleeps may outlive the tests. */
const sleeperLists: string[] = [];
// (A sleep counts as gone once it is a zombie: it is an orphan waiting for init to reap it; isAliveSync says so.)

/**
 * A pid-file target: a `sleep` started by a restart script. After the test, the daemon given to
 * `stopFirst` is stopped (so nothing restarts the target any more), then every sleep it started is killed.
 */
function sleeperTarget(t: TestContext): { target: Record<string, unknown>; pidFile: string; stopFirst: (stop: () => Promise<unknown>) => void } {
  const dir = tempDir('ebpf-sleeper');
  const pidFile = join(dir, 'sleeper.pid');
  sleeperLists.push(`${pidFile}.all`);
  const script = join(dir, 'restart.sh');
  writeFileSync(script, `#!/bin/sh\nsleep 600 </dev/null >/dev/null 2>&1 &\necho $! >> '${pidFile}.all'\necho $! > '${pidFile}'\n`, { mode: 0o755 });
  let stopDaemon: (() => Promise<unknown>) | null = null;
  t.after(async () => {
    if (stopDaemon !== null) await stopDaemon();
    let all = '';
    try {
      all = readFileSync(`${pidFile}.all`, 'utf8');
    } catch {
      return;
    }
    for (const pid of all.split('\n').filter((l) => l !== '')) spawnSync('kill', ['-9', pid]);
  });
  const r = spawnSync(script);
  assert.equal(r.status, 0, 'the sleeper started');
  return {
    target: { name: 'sleeper', pidFile, restart: [script], backoff: { initialMs: 0, maxMs: 0 } },
    pidFile,
    stopFirst: (stop) => {
      stopDaemon = stop;
    },
  };
}

function exitLine(d: TestDaemon, pid: number): Record<string, unknown> | null {
  return d.logLines.find((l) => l.msg === 'main process of target exited' && l.pid === pid) ?? null;
}

test('daemon with a target: one in-process engine, no bpftrace process, a SIGKILL seen in the kernel and recovered', async (t) => {
  if (needsEngine(t)) return;
  const { target, stopFirst } = sleeperTarget(t);
  const d = await startTestDaemon('ebpf-on', { targets: [target] });
  stopFirst(() => d.handle.stop('test'));
  const s = await status(d);
  assert.equal(s.components.ebpf?.mode, 'ebpf', `engine on (${String(s.components.ebpf?.reason)})`);
  assert.equal(s.components.targets[0]?.mode, 'ebpf');
  assert.equal(s.components.targets[0]?.degraded, null);
  assert.match(s.daemon.statusLine, /ebpf: on \(exit, syscalls, retransmit, flags/);
  assert.equal(spawnSync('pgrep', ['-x', 'bpftrace']).status, 1, 'no bpftrace process runs while the daemon does');
  const pid = s.components.targets[0]?.pid ?? 0;
  assert.ok(pid > 0);
  process.kill(pid, 'SIGKILL');
  const exit = await waitFor('the exit in the log', 5000, () => exitLine(d, pid));
  assert.equal(exit.via, 'ebpf');
  assert.equal(exit.signal, 9);
  const back = await waitFor('the target running again on a new PID', 10_000, async () => {
    const st = (await status(d)).components.targets[0];
    return st?.state === 'running' && st.pid !== pid && st.pid !== null ? st : null;
  });
  assert.equal(back.mode, 'ebpf', 'the new PID is watched in the kernel at once');
  const newPid = back.pid!;
  process.kill(newPid, 'SIGKILL');
  const second = await waitFor('the second exit in the log', 5000, () => exitLine(d, newPid));
  assert.equal(second.via, 'ebpf', 'the restarted target\'s first kill is seen in the kernel');
});

test('engine cannot load (no BPF object): the daemon polls /proc and says why in status, STATUS= and the log', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const { target, stopFirst } = sleeperTarget(t);
  const d = await startTestDaemon('ebpf-off', { targets: [target] }, {}, { bpfObject: '/nonexistent/sentinel.bpf.o' });
  stopFirst(() => d.handle.stop('test'));
  const s = await status(d);
  assert.equal(s.components.ebpf?.mode, 'off');
  assert.match(s.components.ebpf?.reason ?? '', /the BPF object is not built \(\/nonexistent\/sentinel\.bpf\.o/);
  assert.match(s.daemon.statusLine, /ebpf: off, polling \/proc \(the BPF object is not built/);
  assert.equal(s.components.targets[0]?.mode, 'poll');
  assert.match(s.components.targets[0]?.degraded ?? '', /BPF object is not built.*polling \/proc/);
  const logged = d.logLines.find((l) => l.event === 'ebpf');
  assert.equal(logged?.ok, false);
  assert.match(String(logged?.reason), /BPF object is not built/);
  const pid = s.components.targets[0]?.pid ?? 0;
  process.kill(pid, 'SIGKILL');
  const exit = await waitFor('the polled exit in the log', 5000, () => exitLine(d, pid));
  assert.equal(exit.via, 'poll');
});

test('engine cannot load: sentinel status says why once, in the ebpf line; --json keeps each part\'s own field', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const { target, stopFirst } = sleeperTarget(t);
  const d = await startTestDaemon('ebpf-off-text', { targets: [{ ...target, stall: {} }] }, {}, { bpfObject: '/nonexistent/sentinel.bpf.o' });
  stopFirst(() => d.handle.stop('test'));
  const human = await sentinel(['status', '--socket', d.socket], { env: { NO_COLOR: '1' } });
  assert.equal(human.code, 0, human.stderr);
  const reason = /BPF object is not built/g;
  assert.equal(human.stdout.match(reason)?.length, 1, `the reason once:\n${human.stdout}`);
  assert.match(human.stdout, /^ebpf: +off, exits polled from \/proc \(the BPF object is not built \(\/nonexistent\/sentinel\.bpf\.o/m, human.stdout);
  assert.match(human.stdout, /^target: +sleeper running, pid \d+, detection poll \(degraded: no eBPF engine, see ebpf; stall detection and syscall tracing unavailable\), restarts 0$/m, human.stdout);
  assert.match(human.stdout, /^STATUS: .*; ebpf: off, polling \/proc; targets: sleeper running pid \d+ poll \(degraded\)/m, human.stdout);
  const json = await sentinel(['status', '--socket', d.socket, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as Status['result'];
  assert.match(parsed.components.ebpf?.reason ?? '', /BPF object is not built/);
  assert.match(parsed.components.targets[0]?.degraded ?? '', /BPF object is not built/, 'JSON: the target still carries its own reason');
  assert.match(parsed.daemon.statusLine, /ebpf: off, polling \/proc \(the BPF object is not built/, 'STATUS= (one line for systemctl status) still says why');
});

test('no sleeper outlives the tests: the daemon is stopped before its target is killed, so nothing restarts it', async () => {
  await new Promise((r) => setTimeout(r, 300));
  const left = sleeperLists.flatMap((f) => readFileSync(f, 'utf8').split('\n').filter((l) => l !== '').map(Number)).filter(isAliveSync);
  for (const pid of left) process.kill(pid, 'SIGKILL');
  assert.deepEqual(left, [], 'sleeps started by the targets\' restart scripts still run after their tests');
});
