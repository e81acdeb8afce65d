// The commands that ask the daemon (status, reload, trace, target reset, deploy --socket) when no daemon is there:
// one line saying so in words — no socket file, or a socket nobody listens on — and what to check, not Node's
// `connect ENOENT /path`; exit 2 as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertFails, sentinel } from '../helpers/cli-harness.js';

test('status, reload, trace, target reset with no socket file, and with a socket nobody listens on: one plain line, exit 2', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-no-daemon-'));
  try {
    const missing = join(dir, 'none.sock');
    // A socket file nobody listens on (a killed daemon leaves one): bound by Python, which never unlinks it.
    const stale = join(dir, 'stale.sock');
    assert.equal(spawnSync('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(stale)})`]).status, 0);
    for (const [socket, what] of [[missing, /no daemon: the control socket does not exist/], [stale, /no daemon listens on the control socket/]] as const) {
      for (const args of [['status'], ['reload'], ['trace', '--once'], ['target', 'reset', 'backend']]) {
        const r = await sentinel([...args, '--socket', socket]);
        const line = r.errLines[0] ?? '';
        assert.equal(assertFails(r, 'unavailable'), 'unavailable');
        assert.doesNotMatch(line, /connect E[A-Z]+/, `not Node's raw text: ${line}`);
        assert.match(line, what, `${args.join(' ')}: ${line}`);
        assert.match(line, /systemctl status omnimind-sentinel/, `says what to check: ${line}`);
        assert.ok(line.endsWith(`(${socket})`), `names the socket: ${line}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
