// The README's teardown (after an uninstall or a purge) removes the audit log's directory whether or not the
// daemon ever wrote the log: the unit's LogsDirectory= makes the directory at the first start, even one that fails
// before the audit log is opened (found in a fresh-operator trial: `chattr -a …/audit.log && rm -rf …` stopped at
// chattr and left /var/log/omnimind-sentinel). Run in a private mount namespace over tmpfs /var/lib and /var/log,
// so the host's own directories are never touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readmeBlock } from '../helpers/readme.js';
import { isRoot, needs } from '../helpers/env.js';

function teardownIn(setup: string): { status: number | null; out: string } {
  const script = ['set -u', 'mount -t tmpfs tmpfs /var/lib', 'mount -t tmpfs tmpfs /var/log', setup, readmeBlock('teardown'), 'ls -A /var/log; ls -A /var/lib'].join('\n');
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test("README teardown leaves nothing, with the audit log sealed +a or never written", { timeout: 30_000 }, (t) => {
  if (needs(t, isRoot(), 'root (unshare -m, chattr)')) return;
  const vault = 'mkdir -p /var/lib/omnimind/phi-engine/x && chattr +i /var/lib/omnimind/phi-engine/x';
  for (const [what, setup] of [
    ['the audit log written and +a', `${vault}; mkdir -m 0700 /var/log/omnimind-sentinel && echo '{}' > /var/log/omnimind-sentinel/audit.log && chattr +a /var/log/omnimind-sentinel/audit.log`],
    ['no audit log (the daemon never got that far)', `${vault}; mkdir -m 0700 /var/log/omnimind-sentinel`],
  ] as const) {
    const r = teardownIn(setup);
    assert.equal(r.out.trim(), '', `${what}: nothing left under /var/log and /var/lib:\n${r.out}`);
    assert.equal(r.status, 0, `${what}: ${r.out}`);
  }
});
