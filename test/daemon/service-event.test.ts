// The `service-event` control request of a real in-process daemon: the unit stop hook of the Python
// integration (omnimind_sentinel.graceful_restart, run for real) records "backend hung: watchdog"
// in the audit log with its evidence; every bad field is refused by name and the daemon keeps serving.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { verifyAuditFile } from '../../src/adapters/audit-log.js';
import { packageRoot } from '../../src/adapters/package-root.js';
import { SERVICE_EVENT_LIMITS } from '../../src/daemon/service-event.js';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, startTestDaemon, type TestDaemon } from '../helpers/daemon-harness.js';

after(() => cleanupDaemonFiles());

interface Reply {
  ok: boolean;
  result?: { recorded: boolean; target: string | null; evidenceLines: number };
  error?: { code: string; message: string };
}

const request = (d: TestDaemon, req: unknown): Promise<Reply> => sendRequest(d.socket, req, { timeoutMs: 30_000 }) as Promise<Reply>;

function auditLines(d: TestDaemon): Record<string, unknown>[] {
  return readFileSync(d.auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The hook run asynchronously: the daemon answering it lives in this very process. */
function runHook(args: string[], env: Record<string, string>): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('/usr/bin/python3', ['-m', 'omnimind_sentinel.graceful_restart', ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PYTHONPATH: join(packageRoot(), 'integrations', 'python'), ...env } }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

const STACKS = ['Fatal Python error: Aborted', '', 'Current thread 0x00007f0000000002 (most recent call first):', '  File "/opt/x/sample_backend.py", line 97 in gil'];

test('service-event: the graceful-restart hook records "backend hung: watchdog" in the audit log', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('svc-event', { targets: [] });
  try {
    // The hook exactly as the unit runs it, with the environment systemd gives ExecStopPost=.
    const hook = await runHook(['--unit', 'omnimind-backend.service', '--socket', d.socket, '--wait', '0'], { SERVICE_RESULT: 'watchdog', EXIT_CODE: 'dumped', EXIT_STATUS: 'ABRT' });
    assert.equal(hook.status, 0, hook.stderr);
    assert.match(hook.stdout, /recorded 'backend hung: watchdog'/);
    // With evidence, as the hook sends it when the journal has the stacks.
    const r = await request(d, { op: 'service-event', unit: 'omnimind-backend.service', result: 'watchdog', message: 'backend hung: watchdog', evidence: STACKS, invocationId: 'a'.repeat(32) });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.deepEqual(r.result, { recorded: true, target: null, evidenceLines: STACKS.length });
    const events = auditLines(d).filter((l) => l.event === 'service-event');
    assert.equal(events.length, 2);
    assert.equal(events[0]!.kind, 'recovery');
    assert.equal(events[0]!.message, 'backend hung: watchdog');
    assert.equal(events[0]!.exitStatus, 'ABRT');
    assert.match(String(events[0]!.evidenceNote), /not run by systemd/);
    assert.deepEqual(events[1]!.evidence, STACKS);
    assert.equal((await verifyAuditFile(d.auditPath)).lines, auditLines(d).length, 'the chain holds');
    // Other results are not the hook's business: nothing sent, nothing recorded.
    const quiet = await runHook(['--unit', 'omnimind-backend.service', '--socket', d.socket], { SERVICE_RESULT: 'signal' });
    assert.equal(quiet.status, 0);
    assert.equal(auditLines(d).filter((l) => l.event === 'service-event').length, 2);
  } finally {
    await d.handle.stop('test');
  }
});

test('service-event: every bad field is named, nothing is recorded, the daemon keeps serving', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('svc-event-bad', { targets: [] });
  try {
    const good = { op: 'service-event', unit: 'omnimind-backend.service', result: 'watchdog', message: 'backend hung: watchdog', evidence: [] as string[] };
    const L = SERVICE_EVENT_LIMITS;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...good, unit: '../etc/passwd' }, /unit/],
      [{ ...good, unit: undefined }, /unit/],
      [{ ...good, result: 'Watchdog; rm -rf' }, /result/],
      [{ ...good, message: 'two\nlines' }, /message/],
      [{ ...good, message: 'x'.repeat(L.messageChars + 1) }, /message/],
      [{ ...good, evidence: 'not a list' }, /evidence/],
      [{ ...good, evidence: Array.from({ length: L.evidenceLines + 1 }, () => 'x') }, /evidence/],
      [{ ...good, evidence: ['x'.repeat(L.lineChars + 1)] }, /evidence/],
      [{ ...good, evidence: Array.from({ length: 100 }, () => 'y'.repeat(L.lineChars)) }, /characters in all/],
      [{ ...good, evidence: ['a\nb'] }, /evidence/],
      [{ ...good, invocationId: 'not-hex' }, /invocationId/],
      [{ ...good, exitCode: 42 }, /exitCode/],
      [{ ...good, extra: true }, /extra \(unknown field\)/],
    ];
    const before = auditLines(d).length;
    for (const [req, field] of cases) {
      const r = await request(d, req);
      assert.equal(r.ok, false, JSON.stringify(req).slice(0, 200));
      assert.equal(r.error?.code, 'usage');
      assert.match(r.error?.message ?? '', field);
    }
    assert.equal(auditLines(d).length, before, 'nothing recorded');
    assert.equal((await request(d, { op: 'status' })).ok, true, 'still serving');
  } finally {
    await d.handle.stop('test');
  }
});
