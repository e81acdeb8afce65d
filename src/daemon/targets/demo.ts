// The README demo's survival part (sample backend killed and hung, recovered by the sentinel) and the
// small pieces it shares with the tests and benches: the backend command, waits, an event recorder.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import type { Logger } from 'pino';
import { SentinelError } from '../../core/errors.js';
import { httpProbe } from '../../adapters/http-probe.js';
import { packageRoot } from '../../adapters/package-root.js';
import { TargetSupervisor, type TargetAuditEvent } from './index.js';
import { targetSchema } from './spec.js';

// Why: the pyenv shim adds ~100 ms and a shell to every start; the system python execs directly.
export function pythonBinary(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** argv that starts examples/backend/server.py on `port`. */
export function sampleBackendCommand(port: number, extra: string[] = []): string[] {
  return [pythonBinary(), join(packageRoot(), 'examples', 'backend', 'server.py'), '--port', String(port), ...extra];
}

// Why: tests and demos need a port nobody else on the machine is using right now.
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// Why: a freshly started backend has no "ready" event we can see; a bounded wait with a clear error.
export async function waitForHealthy(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  while (performance.now() < deadline) {
    const r = await httpProbe(url, 500);
    if (r.ok) return;
    last = r.error;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new SentinelError('unavailable', `no healthy answer within ${timeoutMs} ms (last: ${last})`, { where: url });
}

/** Collects the supervisor's audit events and lets a caller wait for the next matching one. */
export class AuditRecorder {
  readonly events: TargetAuditEvent[] = [];
  private readonly waiters: { match: (e: TargetAuditEvent) => boolean; resolve: (e: TargetAuditEvent) => void }[] = [];

  readonly record = (e: TargetAuditEvent): void => {
    this.events.push(e);
    for (const w of [...this.waiters]) {
      if (!w.match(e)) continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(e);
    }
  };

  // Why: tests wait for events, not for sleeps; a missing event fails with what was expected.
  next(match: (e: TargetAuditEvent) => boolean, timeoutMs: number, what: string, fromIndex = this.events.length): Promise<TargetAuditEvent> {
    const seen = this.events.slice(fromIndex).find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; events: ${this.events.map((e) => e.event).join(', ')}`));
      }, timeoutMs);
      const waiter = {
        match,
        resolve: (e: TargetAuditEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      this.waiters.push(waiter);
    });
  }
}

// Why: the README demo — start the sample backend under the supervisor, SIGKILL it and see it back
// with the measured latency, then make it hang and see the health probe recover it.
export async function demoBackendSteps(opts: { log: Logger; port?: number; print?: (line: string) => void }): Promise<void> {
  const print = opts.print ?? ((l: string) => console.log(l));
  const port = opts.port ?? 8000;
  const url = `http://127.0.0.1:${port}/health`;
  const spec = targetSchema.parse({ name: 'demo-backend', command: sampleBackendCommand(port), port, health: { url, intervalMs: 200, timeoutMs: 300, failures: 3 } });
  const rec = new AuditRecorder();
  const sup = new TargetSupervisor([spec], { log: opts.log, audit: rec.record });
  try {
    await sup.start();
    await waitForHealthy(url);
    const before = sup.pids()[0];
    print(`1. backend on port ${port} running as PID ${before} (${sup.status()[0]?.mode})`);
    if (before === undefined) throw new SentinelError('internal', 'backend has no PID', { where: 'demo' });
    const from = rec.events.length;
    const killNs = process.hrtime.bigint();
    process.kill(before, 'SIGKILL');
    const exit = await rec.next((e) => e.event === 'exit' && e.pid === before, 10_000, 'exit of the backend', from);
    const started = await rec.next((e) => e.event === 'recovery-started', 10_000, 'recovery action', from);
    await rec.next((e) => e.event === 'recovered', 10_000, 'backend back', from);
    const actionMs = Number(BigInt(String(started.startedNs)) - killNs) / 1e6;
    print(`2. SIGKILL → exit seen via ${String(exit.via)} (signal ${String(exit.signal)}), respawn started ${actionMs.toFixed(2)} ms after the kill; new PID ${sup.pids()[0]}`);
    await waitForHealthy(url);
    const hungPid = sup.pids()[0];
    const fromHang = rec.events.length;
    await httpProbe(`http://127.0.0.1:${port}/hang`, 1000);
    print(`3. backend PID ${hungPid} told to hang (accepts, never answers)`);
    const failed = await rec.next((e) => e.event === 'health-failed', 20_000, 'health probe failure', fromHang);
    await rec.next((e) => e.event === 'recovered' && e.pid !== hungPid, 20_000, 'backend back after hang', fromHang);
    await waitForHealthy(url);
    print(`4. health probe failed ${String(failed.failures)} times (${String(failed.error)}) → killed and respawned as PID ${sup.pids()[0]}; healthy again`);
    print(`   ${sup.statusLine()}`);
  } finally {
    await sup.stop();
  }
}
