// The stall detector and `sentinel trace` in the running daemon, on the sample FastAPI backend
// (examples/backend/serve.py, a `command` target): idle for three thresholds and more, nothing;
// /hang blocks its event loop past the threshold → one stall (alert: the same process keeps
// running; restart: recovered through the budget on a new PID). `sentinel trace` shows the
// histogram after some requests; unknown target exit 4; without the engine exit 5 with why.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { packageRoot } from '../../src/adapters/package-root.js';
import { sentinel } from '../helpers/cli-harness.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor, type TestDaemon } from '../helpers/daemon-harness.js';
import { needsEngine, python } from '../helpers/bpf.js';
import { freePort } from '../helpers/metrics.js';
import type { TraceView } from '../../src/core/trace-view.js';

after(() => cleanupDaemonFiles());

interface TargetStatus { name: string; pid: number | null; state: string; stalled: boolean; degraded: string | null; restarts: number }
const targetNow = async (d: TestDaemon): Promise<TargetStatus> => {
  const r = (await sendRequest(d.socket, { op: 'status' }, { timeoutMs: 30_000 })) as { result: { components: { targets: TargetStatus[] } } };
  const t = r.result.components.targets[0];
  assert.ok(t !== undefined);
  return t;
};

async function get(port: number, path: string, timeoutMs = 5000): Promise<number | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    await r.text();
    return r.status;
  } catch {
    return null;
  }
}

async function backendDaemon(t: TestContext, label: string, stall: { thresholdMs: number; action: 'alert' | 'restart' }): Promise<{ d: TestDaemon; port: number }> {
  const port = await freePort();
  const serve = join(packageRoot(), 'examples', 'backend', 'serve.py');
  const target = { name: 'backend', command: [python(), serve, '--port', String(port)], port, stall, syscalls: { slowMs: 200 }, backoff: { initialMs: 0, maxMs: 0 } };
  const d = await startTestDaemon(label, { targets: [target] });
  t.after(() => d.handle.stop('test'));
  await waitFor('the backend answering /health', 30_000, async () => ((await get(port, '/health', 1000)) === 200 ? true : null), 100);
  return { d, port };
}

const stallLines = (d: TestDaemon): Record<string, unknown>[] => d.logLines.filter((l) => l.msg === 'main thread stalled: away from its wait syscall longer than the threshold');

test('alert: idle 3x the threshold is no stall; /hang past it is one stall and the same process runs on; trace shows the histogram', async (t) => {
  if (needsEngine(t)) return;
  const thresholdMs = 400;
  const { d, port } = await backendDaemon(t, 'stall-alert', { thresholdMs, action: 'alert' });
  for (let i = 0; i < 20; i++) assert.equal(await get(port, '/health'), 200);
  await new Promise((r) => setTimeout(r, 3 * thresholdMs + 300));
  assert.deepEqual(stallLines(d).length, 0, 'an idle loop in epoll_wait is not a stall');
  const before = await targetNow(d);
  assert.equal(before.degraded, null);

  const json = await sentinel(['trace', '--socket', d.socket, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const view = (JSON.parse(json.stdout) as { targets: TraceView[] }).targets[0];
  assert.equal(view?.pid, before.pid);
  assert.ok((view?.histogram.reduce((a, b) => a + b, 0) ?? 0) >= 20, `the histogram counted the requests' syscalls: ${JSON.stringify(view?.histogram)}`);
  assert.equal(view?.stall?.armed, true);
  assert.equal(view?.stall?.stalled, false);

  void get(port, '/hang?seconds=2.5', 10_000);
  const stall = await waitFor('the stall in the log', 10_000, () => stallLines(d)[0]);
  assert.equal(stall.pid, before.pid);
  assert.ok((stall.busyMs as number) >= thresholdMs, `busy ${String(stall.busyMs)} ms, threshold ${String(thresholdMs)} ms`);
  assert.equal((await targetNow(d)).stalled, true, 'status says stalled while it lasts');
  const st = await sentinel(['status', '--socket', d.socket]);
  assert.match(st.stdout, /^target: +backend .*STALLED: main thread away from its wait syscall/m, 'the human status says so too');
  await waitFor('the stall ended', 10_000, () => d.logLines.find((l) => l.msg === 'main thread back in its wait syscall after a stall'));
  assert.equal(stallLines(d).length, 1, 'one stall, reported once');
  const after = await targetNow(d);
  assert.equal(after.pid, before.pid, 'alert: the process is not restarted');
  assert.equal(after.stalled, false);

  const human = await sentinel(['trace', 'backend', '--socket', d.socket, '--once']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^backend {2}pid \d+ {2}\d+ syscalls/m);
  assert.match(human.stdout, /^@usecs:\n\[/m);
  assert.match(human.stdout, /^ {2}clock_nanosleep +2[45]\d\d\.\d ms/m, 'the /hang sleep is a slow syscall with its duration');
  assert.match(human.stdout, /^stall: .*1 stall\(s\), last one \d+\.\d ms/m);
  const unknown = await sentinel(['trace', 'nope', '--socket', d.socket, '--once']);
  assert.equal(unknown.code, 4);
  assert.match(unknown.stderr, /^sentinel: .*no target named "nope"/);
  assert.equal(unknown.stderr.trim().split('\n').length, 1);
});

test('restart: /hang for good → stall → recovered on a new PID through the budget; the new process idles without a stall', async (t) => {
  if (needsEngine(t)) return;
  const thresholdMs = 400;
  const { d, port } = await backendDaemon(t, 'stall-restart', { thresholdMs, action: 'restart' });
  const before = await targetNow(d);
  void get(port, '/hang', 60_000);
  await waitFor('the stall in the log', 10_000, () => stallLines(d)[0]);
  const started = await waitFor('recovery started for the stall', 10_000, () => d.logLines.find((l) => typeof l.reason === 'string' && l.reason.startsWith('main thread stalled')));
  assert.match(started.reason as string, /threshold 400 ms/);
  const back = await waitFor('running on a new PID', 30_000, async () => {
    const s = await targetNow(d);
    return s.state === 'running' && s.pid !== null && s.pid !== before.pid ? s : null;
  });
  assert.equal(back.restarts, 1);
  await waitFor('the new backend answering', 30_000, async () => ((await get(port, '/health', 1000)) === 200 ? true : null), 100);
  await new Promise((r) => setTimeout(r, 3 * thresholdMs + 300));
  assert.equal(stallLines(d).length, 1, 'the restarted, idle backend is not stalled');
});

test('a daemon whose engine cannot load: trace exits 5 and says why', async (t) => {
  if (needsEngine(t)) return;
  const d = await startTestDaemon('stall-noengine', { targets: [{ name: 'sleeper', command: ['sleep', '600'], stall: {} }] }, {}, { bpfObject: '/nonexistent/sentinel.bpf.o' });
  t.after(() => d.handle.stop('test'));
  const r = await sentinel(['trace', '--socket', d.socket, '--once']);
  assert.equal(r.code, 5, r.stderr);
  assert.match(r.stderr, /^sentinel: .*no eBPF engine: .*the BPF object is not built/);
  assert.match((await targetNow(d)).degraded ?? '', /stall detection and syscall tracing unavailable: .*BPF object is not built/);
});
