// `sentinel target reset NAME --socket PATH` against a real daemon: a command target that crash-loops
// until its fault is fixed ends failed with its budget spent; the reset gives it a fresh budget, the
// daemon recovers it and the CLI returns once it runs. Errors are one line with their exit code.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { readProcState } from '../../src/adapters/proc.js';
import { isRoot, needs } from '../helpers/env.js';
import { assertFails, assertOk, sentinel } from '../helpers/cli-harness.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor, type TestDaemon } from '../helpers/daemon-harness.js';

after(() => cleanupDaemonFiles());

interface Target {
  name: string;
  state: string;
  pid: number | null;
  restarts: number;
  failedReason: string | null;
}

async function target(d: TestDaemon, name: string): Promise<Target> {
  const r = (await sendRequest(d.socket, { op: 'status' }, { timeoutMs: 10_000 })) as { result: { components: { targets: Target[] } } };
  const t = r.result.components.targets.find((x) => x.name === name);
  assert.ok(t !== undefined, `target ${name} in status`);
  return t;
}

function auditEvents(d: TestDaemon, event: string): Record<string, unknown>[] {
  return readFileSync(d.auditPath, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.event === event);
}

test('target reset: a failed target gets a fresh budget, is recovered, and the command returns once it runs', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  // The fault: the service exits 3 until its file exists (a missing config, say).
  const files = { dir: '' };
  const d = await startTestDaemon('target-reset', {
    targets: [
      { name: 'flaky', command: ['sh', '-c', 'test -e "$0" || exit 3; exec sleep 600', '/nonexistent'], budget: { burst: 2, intervalMs: 600_000 }, backoff: { initialMs: 10, maxMs: 20 } },
    ],
  });
  files.dir = d.dir;
  try {
    await waitFor('budget spent', 15_000, async () => ((await target(d, 'flaky')).state === 'failed' ? true : null));
    const failed = await target(d, 'flaky');
    assert.match(failed.failedReason ?? '', /restart budget exhausted/);
    // Still broken: the reset's recovery fails again and the command says so (exit 2), naming why.
    const again = await sentinel(['target', 'reset', 'flaky', '--socket', d.socket, '--timeout', '20000']);
    assertFails(again, 'unavailable');
    assert.match(again.stderr, /failed again after the reset/);
    assert.equal((await target(d, 'flaky')).state, 'failed');
  } finally {
    await d.handle.stop('test');
  }
  // A daemon whose target can come back: the fault is fixed before the reset.
  const okFile = join(files.dir, 'fixed');
  const d2 = await startTestDaemon('target-reset-2', {
    targets: [{ name: 'flaky', command: ['sh', '-c', 'test -e "$0" || exit 3; exec sleep 600', okFile], budget: { burst: 2, intervalMs: 600_000 }, backoff: { initialMs: 10, maxMs: 20 } }],
  });
  let pid: number | null = null;
  try {
    await waitFor('budget spent', 15_000, async () => ((await target(d2, 'flaky')).state === 'failed' ? true : null));
    writeFileSync(okFile, '');
    const r = await sentinel(['target', 'reset', 'flaky', '--socket', d2.socket]);
    assertOk(r);
    assert.match(r.stdout, /^flaky: restart budget reset; failed → running, pid \d+\n$/);
    const now = await target(d2, 'flaky');
    assert.equal(now.state, 'running');
    assert.equal(now.failedReason, null);
    pid = now.pid;
    assert.ok(pid !== null && (await readProcState(pid)).alive, 'the recovered process runs');
    const resets = auditEvents(d2, 'reset');
    assert.equal(resets.length, 1);
    assert.equal(resets[0]!.target, 'flaky');
    assert.equal(resets[0]!.previousState, 'failed');
    assert.equal(resets[0]!.action, 'recovering');
    assert.ok(auditEvents(d2, 'recovered').length >= 1, 'recovered is audited');
    // On a running target: only the budget, nothing is restarted.
    const json = await sentinel(['target', 'reset', 'flaky', '--socket', d2.socket, '--json']);
    assertOk(json);
    const out = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.deepEqual(out, { ok: true, target: 'flaky', previousState: 'running', action: 'budget reset', state: 'running' });
    assert.equal((await target(d2, 'flaky')).pid, pid, 'same process');
  } finally {
    await d2.handle.stop('test');
  }
  assert.ok(pid !== null && !(await readProcState(pid)).alive, 'the daemon stop ended the target');
});

// An unknown target is exit 4, as for `sentinel trace`: a script tells it from "no daemon" or "failed again" (2).
function assertUnknownTarget(r: Awaited<ReturnType<typeof sentinel>>): void {
  assert.equal(r.errLines.length, 1, `one stderr line: ${r.stderr}`);
  assert.match(r.errLines[0]!, /^sentinel: not-found: no target named /, r.stderr);
  assert.equal(r.code, 4, `exit 4 for an unknown target: ${r.stderr}`);
}

test('target reset: unknown target or no targets exit 4; bad name, no daemon exit 2; one line each', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('target-reset-bad', { targets: [{ name: 'svc', command: ['sleep', '600'] }] });
  try {
    const unknown = await sentinel(['target', 'reset', 'nope', '--socket', d.socket]);
    assertUnknownTarget(unknown);
    assert.match(unknown.stderr, /no target named "nope" \(targets: svc\)/);
    const j = await sentinel(['target', 'reset', 'nope', '--socket', d.socket, '--json']);
    assert.equal(j.code, 4, j.stderr);
    const body = JSON.parse(j.stdout) as { ok: boolean; error: { code: string; exitCode: number } };
    assert.deepEqual([body.ok, body.error.code, body.error.exitCode], [false, 'not-found', 4], 'the JSON names the exit code the command used');
    assertFails(await sentinel(['target', 'reset', 'a/b', '--socket', d.socket]), 'usage');
    // Without --socket the unit's socket is asked (no daemon there in a test): unavailable, naming it.
    const unitSocket = await sentinel(['target', 'reset', 'svc']);
    if (!existsSync('/run/omnimind-sentinel/sentinel.sock')) {
      assertFails(unitSocket, 'unavailable');
      assert.match(unitSocket.stderr, /\/run\/omnimind-sentinel\/sentinel\.sock/);
    }
    assertFails(await sentinel(['target', 'reset', 'svc', '--socket', d.socket, '--timeout', '0']), 'usage');
    const missing = join(d.dir, 'no-such.sock');
    assert.equal(existsSync(missing), false);
    assertFails(await sentinel(['target', 'reset', 'svc', '--socket', missing]), 'unavailable');
    // The request itself, as any client sends it: a field it does not take is named.
    const r = (await sendRequest(d.socket, { op: 'target-reset', name: 'svc', extra: 1 }, { timeoutMs: 10_000 })) as { ok: boolean; error?: { code: string; message: string } };
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'usage');
    assert.match(r.error?.message ?? '', /extra \(unknown field\)/);
    assert.equal((await target(d, 'svc')).state, 'running', 'the daemon keeps serving');
  } finally {
    await d.handle.stop('test');
  }
  const none = await startTestDaemon('target-reset-none', { targets: [] });
  try {
    const r = await sentinel(['target', 'reset', 'svc', '--socket', none.socket]);
    assertUnknownTarget(r);
    assert.match(r.stderr, /has no targets/);
  } finally {
    await none.handle.stop('test');
  }
});
