// A `command` target that dies at start (a bad flag, a missing file, a crash): the journal line and the audit
// record say how it ended — its exit status or the signal, as for an exit seen later — not only that its PID is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isRoot, needs } from '../../helpers/env.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor } from '../../helpers/daemon-harness.js';

test.after(() => cleanupDaemonFiles());

test('a command target that dies at start: its exit status or signal is in the log line and the audit record', async (t) => {
  if (needs(t, isRoot(), 'root (the daemon seals its vault)')) return;
  const budget = { burst: 2, intervalMs: 600_000 };
  const backoff = { initialMs: 10, maxMs: 20 };
  const d = await startTestDaemon('start-exit', {
    targets: [
      { name: 'exits', command: ['sh', '-c', 'echo bad flag >&2; exit 7'], budget, backoff },
      { name: 'crashes', command: ['sh', '-c', 'kill -SEGV $$'], budget, backoff },
    ],
  });
  try {
    const audit = (): Record<string, unknown>[] => readFileSync(d.auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    await waitFor('both targets failed (budget spent)', 20_000, () => {
      const spent = audit().filter((r) => r.event === 'budget-exhausted').map((r) => r.target);
      return spent.includes('exits') && spent.includes('crashes') ? true : null;
    });
    for (const [name, how] of [['exits', /\bstatus 7\b/], ['crashes', /\bsignal 11\b/]] as const) {
      const lines = d.logLines.filter((l) => l.target === name && typeof l.reason === 'string');
      const records = audit().filter((r) => r.target === name && typeof r.reason === 'string');
      const context = `log:\n${lines.map((l) => JSON.stringify(l)).join('\n')}\naudit:\n${records.map((r) => JSON.stringify(r)).join('\n')}`;
      assert.ok(lines.length > 0 && records.length > 0, context);
      for (const x of [...lines, ...records]) {
        assert.doesNotMatch(String(x.reason), /is not running/, `says how it ended, not only that it is gone: ${context}`);
      }
      assert.ok(lines.some((l) => how.test(String(l.reason))), `a log line says ${String(how)}: ${context}`);
      assert.ok(records.some((r) => how.test(String(r.reason))), `an audit record says ${String(how)}: ${context}`);
    }
  } finally {
    await d.handle.stop('test');
  }
});
