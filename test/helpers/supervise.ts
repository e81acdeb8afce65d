// What the TargetSupervisor tests share: a supervisor torn down in the right order, the daemon's
// eBPF engine for it where it loads, and a pid-file backend started outside it.
import type { TestContext } from 'node:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { bpfEngineUnavailable } from '../../src/adapters/bpf-engine.js';
import { EbpfHost } from '../../src/daemon/ebpf-host.js';
import { createLogger, type LogLevel } from '../../src/adapters/logger.js';
import { readPidFile } from '../../src/adapters/proc.js';
import { TargetSupervisor, type TargetSupervisorDeps } from '../../src/daemon/targets/index.js';
import { targetSchema, type TargetSpecInput } from '../../src/daemon/targets/spec.js';
import { TargetEventRecorder } from '../../src/cli/demo/event-recorder.js';
import { freePort, sampleBackendCommand, waitForHealthy } from '../../src/cli/demo/sample-backend.js';
import { isRoot } from './env.js';

// Silent unless SENTINEL_TEST_LOG names a level.
export const log = createLogger((process.env.SENTINEL_TEST_LOG ?? 'silent') as LogLevel);
// Whether the daemon's eBPF engine can load here (root and a built engine).
export const ebpfReady = isRoot() && bpfEngineUnavailable() === null;

/** The daemon's engine for one supervisor (closed after it stops), or none where it cannot load. */
export async function engine(opts: { objectPath?: string } = {}): Promise<{ ebpf?: EbpfHost }> {
  if (!ebpfReady && opts.objectPath === undefined) return {};
  const host = new EbpfHost({ log, ...opts });
  await host.start();
  return { ebpf: host };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts a supervisor; on teardown it is stopped first, then `thenCleanup` runs (so nothing is respawned). */
export async function supervise(t: TestContext, specs: TargetSpecInput[], deps: Partial<TargetSupervisorDeps> = {}, thenCleanup?: () => Promise<void>): Promise<{ sup: TargetSupervisor; rec: TargetEventRecorder }> {
  const rec = new TargetEventRecorder();
  const sup = new TargetSupervisor(
    specs.map((s) => targetSchema.parse(s)),
    { log, audit: rec.record, ...deps },
  );
  t.after(async () => {
    await sup.stop();
    await deps.ebpf?.close();
    await thenCleanup?.();
  });
  await sup.start();
  return { sup, rec };
}

/** A pid-file backend started outside the supervisor, and the restart command that starts another. */
export async function pidFileBackend(): Promise<{ dir: string; pidFile: string; port: number; restart: string[]; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-recovery-'));
  const port = await freePort();
  const pidFile = join(dir, 'backend.pid');
  const quoted = sampleBackendCommand(port, ['--pid-file', pidFile]).map((a) => `'${a}'`).join(' ');
  const script = join(dir, 'restart.sh');
  await writeFile(script, `#!/bin/sh\nrm -f '${pidFile}'\n${quoted} </dev/null >/dev/null 2>&1 &\n`, { mode: 0o755 });
  const cleanup = async (): Promise<void> => {
    if (existsSync(pidFile)) {
      const pid = await readPidFile(pidFile).catch(() => 0);
      if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    execFileSync(script);
    await waitForHealthy(`http://127.0.0.1:${port}/health`);
  } catch (e) {
    await cleanup();
    throw e;
  }
  return { dir, pidFile, port, restart: [script], cleanup };
}
