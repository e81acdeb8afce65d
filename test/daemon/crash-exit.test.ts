// `sentinel daemon` that crashes once it is up (an error escaping every handler: an uncaught exception or an
// unhandled rejection) exits 2 with one log line saying so, whatever the error's code: 1 and 3 are the
// refusals at start, which the shipped unit does not restart (RestartPreventExitStatus=1 3), and a crash must
// be restarted. The crash is an error of the daemon's own SentinelError class with an integrity code
// (`tampered`), made by test/fixtures/crash-hook.ts, loaded with `node --import`, on SIGUSR2.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, prepareDaemonFiles } from '../helpers/daemon-harness.js';

after(() => cleanupDaemonFiles());
const root = packageRoot();
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const hook = join(root, 'dist', 'test', 'fixtures', 'crash-hook.js');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

// Why: the daemon as the unit runs it (the CLI, a configuration file), crashed once its `ready` line is out.
function crashAfterReady(configPath: string, kind: 'throw' | 'reject'): Promise<Run> {
  const child = spawn(process.execPath, ['--import', hook, cli, 'daemon', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CRASH_HOOK_KIND: kind } });
  let stdout = '';
  let stderr = '';
  let sent = false;
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString('utf8');
    if (!sent && stdout.includes('"event":"ready"')) {
      sent = true;
      child.kill('SIGUSR2');
    }
  });
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
}

for (const kind of ['throw', 'reject'] as const) {
  test(`a crash after start-up (${kind === 'throw' ? 'an uncaught exception' : 'an unhandled rejection'} with an integrity code) exits 2 with one log line`, { timeout: 90_000 }, async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const files = await prepareDaemonFiles(`crash-${kind}`);
    const run = await crashAfterReady(files.configPath, kind);
    const context = `stdout tail: ${run.stdout.slice(-1500)}\nstderr: ${run.stderr}`;
    assert.match(run.stdout, /"event":"ready"/, `the daemon came up first; ${context}`);
    assert.equal(run.signal, null, context);
    assert.equal(run.code, 2, `a crash is exit 2 (restarted by the unit), not the refusal's 1; ${context}`);
    const crashes = run.stdout.split('\n').filter((l) => l.includes('"event":"crash"'));
    assert.equal(crashes.length, 1, `one crash line; ${context}`);
    const line = JSON.parse(crashes[0]!) as { level: string; code: string; where: string; msg: string };
    assert.equal(line.level, 'fatal', crashes[0]);
    assert.equal(line.code, 'tampered', crashes[0]);
    assert.equal(line.where, 'crash-hook', crashes[0]);
    assert.match(line.msg, /injected by the crash hook after start-up/, crashes[0]);
    assert.match(line.msg, /exit 2/, crashes[0]);
    assert.equal(run.stderr, '', `nothing else on stderr (no refusal line for a crash); ${context}`);
  });
}
