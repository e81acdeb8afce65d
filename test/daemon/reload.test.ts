// `sentinel reload --socket` (the unit's ExecReload=) against a running daemon: the verdict, not just a
// signal. A refused configuration exits 3 with one stderr line, the running configuration stays, and
// `status` and STATUS= say why until a reload succeeds; no daemon is exit 2.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, startTestDaemon } from '../helpers/daemon-harness.js';

const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');

after(() => cleanupDaemonFiles());

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

// Asynchronous: the daemon answering runs in this very process.
function run(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

interface StatusView {
  daemon: { statusLine: string };
  reload: { ok: boolean; error: { code: string } | null; ignored: string[] } | null;
}

test('sentinel reload: 0 when in force, 3 with the reason in status and STATUS= when refused (old config kept), 2 without a daemon', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('reload-cli');
  try {
    const good = JSON.parse(readFileSync(d.configPath, 'utf8')) as Record<string, unknown>;
    const status = async (): Promise<StatusView> => (await d.handle.status()) as StatusView;
    assert.equal((await status()).reload, null, 'no reload yet');

    writeFileSync(d.configPath, JSON.stringify({ ...good, log: { level: 'info' } }));
    const ok = await run(['reload', '--socket', d.socket]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^configuration reloaded\n$/);
    assert.equal(d.handle.config.log.level, 'info', 'the new level is in force');

    writeFileSync(d.configPath, '{ "vault": ');
    const broken = await run(['reload', '--socket', d.socket]);
    assert.equal(broken.code, 3, broken.stderr);
    assert.equal(broken.stderr.trim().split('\n').length, 1, broken.stderr);
    assert.match(broken.stderr, /^sentinel: config: .*not valid JSON/);
    assert.equal(d.handle.config.log.level, 'info', 'the running configuration is kept');
    let s = await status();
    assert.equal(s.reload?.ok, false);
    assert.equal(s.reload?.error?.code, 'config');
    assert.match(s.daemon.statusLine, /reload rejected, running the previous configuration: config: /);

    // A key file the new configuration names but that is not there is refused the same way.
    writeFileSync(d.configPath, JSON.stringify({ ...good, log: { level: 'warn' }, vault: { ...(good.vault as object), trust: [join(d.dir, 'absent.pub')] } }));
    const noKey = await run(['reload', '--socket', d.socket, '--json']);
    assert.equal(noKey.code, 3, noKey.stderr);
    const reply = JSON.parse(noKey.stdout) as { ok: boolean; error: { code: string } };
    assert.equal(reply.ok, false);
    assert.equal(reply.error.code, 'not-found');
    assert.equal(d.handle.config.log.level, 'info', 'nothing of the refused file was applied');

    // Fixed: in force again, and STATUS= no longer names a rejection.
    writeFileSync(d.configPath, JSON.stringify({ ...good, log: { level: 'warn' }, limits: { maxQueuedDeploys: 7 } }));
    const fixed = await run(['reload', '--socket', d.socket, '--json']);
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.deepEqual((JSON.parse(fixed.stdout) as { ignored: string[] }).ignored, ['limits.maxQueuedDeploys']);
    assert.equal(d.handle.config.log.level, 'warn');
    s = await status();
    assert.equal(s.reload?.ok, true);
    assert.doesNotMatch(s.daemon.statusLine, /reload rejected/);
    assert.ok(readFileSync(d.auditPath, 'utf8').includes('"kind":"reload"'), 'an applied reload is audited');
  } finally {
    await d.handle.stop('test');
  }
  const none = await run(['reload', '--socket', d.socket]);
  assert.equal(none.code, 2, `no daemon: ${none.stderr}`);
  assert.equal(none.stderr.trim().split('\n').length, 1, none.stderr);
});
