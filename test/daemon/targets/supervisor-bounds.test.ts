// TargetSupervisor against real processes: a unit target that cannot be restarted, a health URL's
// password kept out of the audit, and the bounds of stop and of a recovery action.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createLogger } from '../../../src/adapters/logger.js';
import { readProcState } from '../../../src/adapters/proc.js';
import { httpProbe } from '../../../src/adapters/http-probe.js';
import { TargetSupervisor } from '../../../src/daemon/targets/index.js';
import { targetSchema } from '../../../src/daemon/targets/spec.js';
import { TargetEventRecorder } from '../../../src/cli/demo/event-recorder.js';
import { freePort, sampleBackendCommand } from '../../../src/cli/demo/sample-backend.js';
import { isRoot, needs } from '../../helpers/env.js';
import { waitFor } from '../../helpers/wait.js';
import { alive, log, pidFileBackend, supervise } from '../../helpers/supervise.js';

test('a unit target that systemd cannot restart ends failed with systemctl\'s reason, within the budget', async (t) => {
  const unit = `sentinel-missing-${process.pid}.service`;
  const { sup, rec } = await supervise(t, [{ name: 'svc', unit, budget: { burst: 2, intervalMs: 60_000 }, backoff: { initialMs: 10, maxMs: 20 } }], {});
  const ex = await rec.next((e) => e.event === 'budget-exhausted', 30_000, 'budget exhausted', 0);
  assert.match(String(ex.reason), /restart budget exhausted/);
  const failures = rec.events.filter((e) => e.event === 'recovery-failed');
  assert.equal(failures.length, 2);
  assert.ok(failures.every((e) => /systemctl/.test(String(e.reason))), String(failures[0]?.reason));
  assert.equal(sup.status()[0]?.state, 'failed');
  assert.deepEqual(sup.pids(), []);
});

test('a health URL with credentials: the audit event and the log name the URL without its password', async (t) => {
  const port = await freePort();
  const lines: string[] = [];
  const captured = createLogger('info', { write: (s: string) => void lines.push(s) });
  const url = `http://monitor:s3cret-token@127.0.0.1:${port}/health`;
  const { sup, rec } = await supervise(t, [{ name: 'creds', command: sampleBackendCommand(port), port, health: { url, intervalMs: 50, timeoutMs: 200, failures: 1 } }], { log: captured });
  await waitFor('the backend counted running (healthy)', 30_000, () => (sup.status()[0]?.state === 'running' ? true : null));
  void httpProbe(`http://127.0.0.1:${port}/hang`, 300); // running and healthy, then hung: the probe fails
  const failed = await rec.next((e) => e.event === 'health-failed', 20_000, 'health failure (the backend hangs)');
  assert.match(String(failed.url), new RegExp(`^http://\\*\\*\\*@127\\.0\\.0\\.1:${port}/health$`));
  assert.ok(!JSON.stringify(rec.events).includes('s3cret-token'), 'no audit event carries the password');
  assert.ok(!lines.join('').includes('s3cret-token'), 'no log line carries the password');
});

test('stopGraceMs: stop() ends a supervised command that ignores SIGTERM with SIGKILL after the grace period', async (t) => {
  const rec = new TargetEventRecorder();
  const sup = new TargetSupervisor([targetSchema.parse({ name: 'stubborn', command: ['sh', '-c', "trap '' TERM; exec sleep 300"], stopGraceMs: 200 })], { log, audit: rec.record });
  t.after(() => sup.stop());
  await sup.start();
  const pid = sup.pids()[0]!;
  assert.equal(alive(pid), true);
  await sup.stop();
  assert.equal((await readProcState(pid)).alive, false, 'the command is gone once stop() returns');
  assert.equal(sup.status()[0]?.state, 'stopped');
});

test('restartTimeoutMs and pidFileWaitMs bound a recovery action; the failure names the bound', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const b = await pidFileBackend();
  const hang = join(b.dir, 'hang.sh');
  await writeFile(hang, '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
  const { sup, rec } = await supervise(
    t,
    [{ name: 'legacy', pidFile: b.pidFile, restart: [hang], port: b.port, restartTimeoutMs: 300, budget: { burst: 1, intervalMs: 60_000 } }],
    {},
    b.cleanup,
  );
  process.kill(sup.pids()[0]!, 'SIGKILL');
  const failed = await rec.next((e) => e.event === 'recovery-failed', 10_000, 'restart command timed out', 0);
  assert.match(String(failed.reason), /timed out after 300 ms/);
  await rec.next((e) => e.event === 'budget-exhausted', 10_000, 'budget exhausted', 0);

  const dir = await mkdtemp(join(tmpdir(), 'sentinel-pidwait-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'x.pid');
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  await writeFile(pidFile, `${child.pid}\n`);
  const quiet = join(dir, 'quiet.sh');
  await writeFile(quiet, `#!/bin/sh\nrm -f '${pidFile}'\n`, { mode: 0o755 });
  const second = await supervise(t, [{ name: 'silent', pidFile, restart: [quiet], pidFileWaitMs: 200, budget: { burst: 1, intervalMs: 60_000 } }], {});
  child.kill('SIGKILL');
  const noPid = await second.rec.next((e) => e.event === 'recovery-failed', 10_000, 'pid file never written', 0);
  assert.match(String(noPid.reason), /pid file cannot be read/);
});

test('stop() while a hung command is being respawned leaves no process of it behind', async (t) => {
  const port = await freePort();
  const command = sampleBackendCommand(port);
  const ours = async (): Promise<number[]> => {
    const found: number[] = [];
    for (const name of await readdir('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const cmd = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
      if (cmd === `${command.join('\0')}\0`) found.push(Number(name));
    }
    return found;
  };
  const rec = new TargetEventRecorder();
  const sup = new TargetSupervisor([targetSchema.parse({ name: 'slow', command, port, health: { url: `http://127.0.0.1:${port}/health`, intervalMs: 50, timeoutMs: 200, failures: 1 } })], { log, audit: rec.record });
  t.after(async () => {
    await sup.stop();
    for (const pid of await ours()) process.kill(pid, 'SIGKILL');
  });
  await sup.start();
  await waitFor('the backend counted running (healthy)', 30_000, () => (sup.status()[0]?.state === 'running' ? true : null));
  void httpProbe(`http://127.0.0.1:${port}/hang`, 300); // hung: the probe fails and the backend is respawned
  // stop() lands while the hung process is being killed and its replacement spawned
  await rec.next((e) => e.event === 'health-failed', 20_000, 'health failure (the backend hangs)');
  await sup.stop();
  await waitFor('no process of the target left', 5_000, async () => ((await ours()).length === 0 ? true : null));
});
