// Several OmniMind services as targets of one real daemon: the sample FastAPI backend and the
// MCP-server-like worker (examples/mcp-worker), both in the protected slice with oom_score_adj
// -1000 (or the lowest the host allows, reported as refused), each killed in turn and recovered on its own while the other keeps running untouched.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sendRequest } from '../../../src/adapters/control-client.js';
import { cgroupPathIn, removeCgroup, v2PathOf } from '../../../src/adapters/cgroup.js';
import { detectCgroupLayout } from '../../../src/adapters/cgroup-layout.js';
import { readOomScoreAdj } from '../../../src/adapters/oom.js';
import { readProcState } from '../../../src/adapters/proc.js';
import { packageRoot } from '../../../src/adapters/package-root.js';
import { freePort, sampleBackendCommand } from '../../../src/cli/demo/sample-backend.js';
import { isRoot, needs } from '../../helpers/env.js';
import { uniqueName } from '../../helpers/protection.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor, type TestDaemon } from '../../helpers/daemon-harness.js';

after(() => cleanupDaemonFiles());

interface Target {
  name: string;
  state: string;
  pid: number | null;
  restarts: number;
}

async function targets(d: TestDaemon): Promise<Map<string, Target>> {
  const r = (await sendRequest(d.socket, { op: 'status' }, { timeoutMs: 10_000 })) as { result: { components: { targets: Target[] } } };
  return new Map(r.result.components.targets.map((t) => [t.name, t]));
}

/** Both running; resolves with their PIDs. */
async function bothRunning(d: TestDaemon, what: string, not: { backend?: number; mcp?: number } = {}): Promise<{ backend: number; mcp: number }> {
  return waitFor(what, 60_000, async () => {
    const ts = await targets(d);
    const b = ts.get('backend');
    const m = ts.get('mcp-worker');
    if (b?.state !== 'running' || m?.state !== 'running' || b.pid === null || m.pid === null) return null;
    if (b.pid === not.backend || m.pid === not.mcp) return null;
    return { backend: b.pid, mcp: m.pid };
  });
}

/** Protected: in the slice's cgroup and oom_score_adj -1000 (the daemon's scan puts a new PID there). */
async function protection(d: TestDaemon): Promise<{ effectiveOomScoreAdj: number; items: { oom: { state: string; code?: string } } }> {
  const r = (await sendRequest(d.socket, { op: 'status' }, { timeoutMs: 10_000 })) as { result: { components: { protection: { effectiveOomScoreAdj: number; items: { oom: { state: string; code?: string } } } } } };
  return r.result.components.protection;
}

/** Whether this host lets root lower a score below 0 (CAP_SYS_RESOURCE; a container may lack it). */
async function hostAllowsNegativeScores(): Promise<boolean> {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await writeFile(`/proc/${String(child.pid)}/oom_score_adj`, '-1000', { flag: 'r+' });
    return true;
  } catch {
    return false;
  } finally {
    child.kill('SIGKILL');
  }
}

/**
 * Protected: in the slice's cgroup and at -1000 (the daemon's scan puts a new PID there); on a host
 * without CAP_SYS_RESOURCE at the lowest score it allows, which the daemon reports as refused.
 */
async function protectedIn(d: TestDaemon, sliceRel: string, pid: number, what: string, negative: boolean): Promise<void> {
  const want = negative ? -1000 : 0;
  try {
    await waitFor(`${what} protected`, 10_000, async () => ((await v2PathOf(pid)) === sliceRel && (await readOomScoreAdj(pid)) === want ? true : null));
  } catch (e) {
    throw new Error(`${String(e)}: PID ${String(pid)} in ${String(await v2PathOf(pid))} (want ${sliceRel}), oom ${String(await readOomScoreAdj(pid))}; protection ${JSON.stringify(await protection(d))}`);
  }
  const p = await protection(d);
  assert.equal(p.effectiveOomScoreAdj, want);
  if (!negative) assert.deepEqual([p.items.oom.state, p.items.oom.code], ['refused', 'not-permitted'], 'the host\'s refusal is reported');
}

async function mcpCall(port: number, method: string, params: unknown = {}): Promise<Record<string, unknown>> {
  const r = await fetch(`http://127.0.0.1:${String(port)}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  return (await r.json()) as Record<string, unknown>;
}

test('backend and MCP worker in one sentinel: both protected in the slice, each recovered on its own', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i, cgroups, oom_score_adj -1000)')) return;
  const layout = await detectCgroupLayout();
  if (needs(t, layout.v2 !== null, 'cgroup v2')) return;
  const mount = layout.v2!.mount;
  const root = join(mount, uniqueName('sentinel-test-services'));
  await mkdir(root);
  const slice = 'omnimind-test.slice';
  const sliceRel = cgroupPathIn(mount, join(root, slice));
  const [bport, mport] = [await freePort(), await freePort()];
  let d: TestDaemon | null = null;
  const seen: number[] = [];
  try {
    // The shipped sample configuration, with this checkout, free ports and a test slice put in.
    const sample = readFileSync(join(packageRoot(), 'examples', 'sentinel-services.json'), 'utf8')
      .replaceAll('/opt/omnimind-sentinel', packageRoot())
      .replaceAll('/var/lib/omnimind/phi-engine/current/tree', join(packageRoot(), 'examples', 'phi-engine'))
      .replaceAll('8000', String(bport))
      .replaceAll('8100', String(mport));
    const config = JSON.parse(sample) as { targets: { name: string; command: string[]; health: { intervalMs: number } }[] };
    assert.deepEqual(config.targets.map((t) => t.name), ['backend', 'mcp-worker']);
    assert.deepEqual(config.targets[0]!.command.slice(1), sampleBackendCommand(bport).slice(1), 'the sample runs the sample backend');
    d = await startTestDaemon('services', { targets: config.targets, protection: { cgroupRoot: root, slice, scanIntervalMs: 200 } });
    const first = await bothRunning(d, 'both services running');
    seen.push(first.backend, first.mcp);
    const negative = await hostAllowsNegativeScores();
    await protectedIn(d, sliceRel, first.backend, 'backend', negative);
    await protectedIn(d, sliceRel, first.mcp, 'mcp worker', negative);
    const listed = await mcpCall(mport, 'tools/call', { name: 'phi_files' });
    assert.match(JSON.stringify(listed), /phi\/metrics\.py/, 'the worker answers MCP calls');

    // The worker dies: only the worker is restarted.
    process.kill(first.mcp, 'SIGKILL');
    const second = await bothRunning(d, 'the worker recovered', { mcp: first.mcp });
    seen.push(second.mcp);
    assert.equal(second.backend, first.backend, 'the backend was not touched');
    let ts = await targets(d);
    assert.equal(ts.get('backend')?.restarts, 0);
    assert.equal(ts.get('mcp-worker')?.restarts, 1);
    await protectedIn(d, sliceRel, second.mcp, 'the new worker', negative);
    assert.equal((await mcpCall(mport, 'ping')).result !== undefined, true, 'the new worker serves');

    // The backend dies: only the backend is restarted.
    process.kill(first.backend, 'SIGKILL');
    const third = await bothRunning(d, 'the backend recovered', { backend: first.backend });
    seen.push(third.backend);
    assert.equal(third.mcp, second.mcp, 'the worker was not touched');
    ts = await targets(d);
    assert.equal(ts.get('backend')?.restarts, 1);
    assert.equal(ts.get('mcp-worker')?.restarts, 1);
    await protectedIn(d, sliceRel, third.backend, 'the new backend', negative);
  } finally {
    await d?.handle.stop('test');
    for (const pid of seen) {
      if ((await readProcState(pid)).alive) {
        process.kill(pid, 'SIGKILL');
        assert.fail(`PID ${String(pid)} outlived the daemon`);
      }
    }
    await waitFor('the test slice to be removable', 10_000, async () => {
      try {
        await removeCgroup(join(root, slice));
        await removeCgroup(root);
        return true;
      } catch {
        return null;
      }
    });
  }
});
