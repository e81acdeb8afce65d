// The restart budget, as an operator reads it: a command that dies before it can be seen running still counts
// each restart; a hung target is not left running once the budget is spent (docs/EBPF.md#recovery).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../../src/adapters/logger.js';
import { httpProbe } from '../../../src/adapters/http-probe.js';
import { readProcState } from '../../../src/adapters/proc.js';
import { TargetSupervisor } from '../../../src/daemon/targets/index.js';
import { targetSchema, type TargetSpecInput } from '../../../src/daemon/targets/spec.js';
import { TargetEventRecorder } from '../../../src/cli/demo/event-recorder.js';
import { freePort, sampleBackendCommand } from '../../../src/cli/demo/sample-backend.js';
import { waitFor } from '../../helpers/wait.js';

const log = createLogger('silent');

async function supervise(t: TestContext, specs: TargetSpecInput[]): Promise<{ sup: TargetSupervisor; rec: TargetEventRecorder }> {
  const rec = new TargetEventRecorder();
  const sup = new TargetSupervisor(
    specs.map((s) => targetSchema.parse(s)),
    { log, audit: rec.record },
  );
  t.after(() => sup.stop());
  await sup.start();
  return { sup, rec };
}

test('a command that dies at once: every restart is counted, though none was seen running', async (t) => {
  const { sup, rec } = await supervise(t, [{ name: 'dies', command: ['false'], budget: { burst: 4, intervalMs: 60_000 }, backoff: { initialMs: 10, maxMs: 40 } }]);
  await rec.next((e) => e.event === 'budget-exhausted', 15_000, 'budget exhausted', 0);
  const [st] = sup.status();
  assert.equal(st?.state, 'failed');
  const started = rec.events.filter((e) => e.event === 'recovery-started').length;
  assert.equal(started, 4);
  assert.equal(st?.restarts, started, `status says restarts ${String(st?.restarts)} after ${String(started)} restarts`);
});

test('a hung target is killed when the budget is spent, not left running unsupervised', async (t) => {
  const port = await freePort();
  const url = `http://127.0.0.1:${String(port)}/health`;
  const { sup, rec } = await supervise(t, [{ name: 'hung', command: sampleBackendCommand(port), port, health: { url, intervalMs: 300, timeoutMs: 200, failures: 2 }, budget: { burst: 1, intervalMs: 60_000 } }]);
  const running = (what: string): Promise<true> => waitFor(what, 30_000, () => (sup.status()[0]?.state === 'running' ? true : null));
  await running('the backend counted running (its first probe passed)');
  const first = sup.pids()[0]!;
  void httpProbe(`http://127.0.0.1:${String(port)}/hang`, 300); // never answers: it blocks the event loop
  await rec.next((e) => e.event === 'recovered', 15_000, 'the one restart of the budget');
  await running('the respawned backend counted running');
  const second = sup.pids()[0]!;
  assert.notEqual(second, first);
  void httpProbe(`http://127.0.0.1:${String(port)}/hang`, 300); // never answers: it blocks the event loop
  const ex = await rec.next((e) => e.event === 'budget-exhausted', 15_000, 'budget exhausted');
  assert.equal(ex.killedPid, second);
  assert.equal(sup.status()[0]?.state, 'failed');
  assert.equal(sup.status()[0]?.pid, null);
  assert.equal((await readProcState(second)).alive, false, 'the hung process was killed, not left holding the port');
});
