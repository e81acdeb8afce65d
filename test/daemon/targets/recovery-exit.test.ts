// A new process that passes the start check (it was seen running) and then dies while its recovery still runs
// fails that recovery; the log line and the audit record of the failure say how it ended — its exit status, or
// the signal with its name — as the start-time case does ("main PID N exited at start (status 7)"), not only
// that it is gone. Real daemon, real children: one that dies before its health probe ever passes, and two that
// exit at once, whose exit lands after they were seen running (often, not always: every failure is checked, and
// the test waits until it has seen that case twice for each).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { isRoot, needs } from '../../helpers/env.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor } from '../../helpers/daemon-harness.js';

test.after(() => cleanupDaemonFiles());

// Why: a port nothing listens on, so the health probe of the target that dies never passes.
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const address = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

type Row = Record<string, unknown>;

test('a new process that dies while its recovery runs: the failed recovery says how it ended, in the log and the audit log', { timeout: 180_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (the daemon seals its vault)')) return;
  const backoff = { initialMs: 1, maxMs: 5 };
  const port = await closedPort();
  const d = await startTestDaemon('recovery-exit', {
    targets: [
      { name: 'unhealthy', command: ['sh', '-c', 'sleep 0.3; exit 7'], health: { url: `http://127.0.0.1:${String(port)}/health`, intervalMs: 50, timeoutMs: 200 }, startTimeoutMs: 20_000, budget: { burst: 3, intervalMs: 600_000 }, backoff },
      { name: 'exits', command: ['sh', '-c', 'exit 7'], budget: { burst: 1000, intervalMs: 600_000 }, backoff },
      { name: 'crashes', command: ['sh', '-c', 'kill -SEGV $$'], budget: { burst: 1000, intervalMs: 600_000 }, backoff },
    ],
  });
  try {
    const audit = (): Row[] => readFileSync(d.auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
    // A failed recovery whose new process was seen running first (not the start-time case, named "at start").
    const failedAfterStart = (rows: Row[], name: string): Row[] => rows.filter((r) => r.target === name && r.event === 'recovery-failed' && !/exited at start/.test(String(r.reason)));
    const logFailures = (name: string): Row[] => d.logLines.filter((l) => l.target === name && l.msg === 'recovery action failed; will retry within the budget' && !/exited at start/.test(String(l.reason)));
    await waitFor('failed recoveries of processes that died after they were seen running', 120_000, () => {
      const rows = audit();
      return failedAfterStart(rows, 'unhealthy').length >= 1 && failedAfterStart(rows, 'exits').length >= 2 && failedAfterStart(rows, 'crashes').length >= 2 ? true : null;
    });
    const rows = audit();
    for (const [name, how] of [['unhealthy', /\(status 7\)$/], ['exits', /\(status 7\)$/], ['crashes', /\(signal 11, SIGSEGV\)$/]] as const) {
      const records = failedAfterStart(rows, name);
      const lines = logFailures(name);
      const context = `${name}: audit:\n${records.map((r) => JSON.stringify(r)).join('\n')}\nlog:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`;
      assert.ok(records.length > 0 && lines.length > 0, context);
      for (const x of [...records, ...lines]) {
        assert.match(String(x.reason), /^main PID \d+ exited /, `names the PID that exited: ${context}`);
        assert.match(String(x.reason), how, `says how it ended: ${context}`);
      }
    }
  } finally {
    await d.handle.stop('test');
  }
});
