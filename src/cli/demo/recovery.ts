// The survival half of `sentinel demo`: the sample backend on port 8000 under the sentinel's
// supervisor, SIGKILLed (seen by eBPF, respawned at once) and hung (caught by the health probe).
import { createServer } from 'node:net';
import type { Logger } from 'pino';
import { SentinelError } from '../../core/errors.js';
import { createLogger } from '../../adapters/logger.js';
import { httpProbe } from '../../adapters/http-probe.js';
import { killPid } from '../../adapters/process.js';
import { TargetSupervisor, targetSchema } from '../../daemon/targets/index.js';
import { EbpfHost } from '../../daemon/ebpf-host.js';
import type { DemoStep } from '../demo.js';
import { TargetEventRecorder } from './event-recorder.js';
import { freePort, sampleBackendCommand, waitForHealthy } from './sample-backend.js';
import { demoWatchdogSteps } from './watchdog.js';

// Why: port 8000 is the mission's port, but a busy one on the user's machine must not fail the demo.
async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

// Each step acts only once the supervisor itself counts the backend running (its own probe passed):
// a backend hung or killed while still 'starting' is handled by the start timeout, not the step shown.
async function untilRunning(sup: TargetSupervisor, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (sup.status()[0]?.state !== 'running') {
    if (Date.now() > deadline) throw new SentinelError('unavailable', `the backend was not counted running within ${timeoutMs} ms (state ${String(sup.status()[0]?.state)})`, { where: 'demo' });
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Why: the README demo — start the sample backend under the supervisor, SIGKILL it and see it back
// with the measured latency, then make it hang and see the health probe recover it.
export async function demoBackendSteps(opts: { log: Logger; port?: number; print?: (line: string) => void }): Promise<void> {
  const print = opts.print ?? ((l: string) => console.log(l));
  const port = opts.port ?? 8000;
  const url = `http://127.0.0.1:${port}/health`;
  const spec = targetSchema.parse({ name: 'demo-backend', command: sampleBackendCommand(port), port, health: { url, intervalMs: 200, timeoutMs: 300, failures: 3 } });
  const rec = new TargetEventRecorder();
  // The daemon's eBPF engine; without root or the built object the demo shows the fallback instead.
  const ebpf = new EbpfHost({ log: opts.log });
  await ebpf.start();
  const sup = new TargetSupervisor([spec], { log: opts.log, audit: rec.record, ebpf });
  try {
    await sup.start();
    await waitForHealthy(url);
    await untilRunning(sup);
    const before = sup.pids()[0];
    print(`1. backend on port ${port} running as PID ${before} (${sup.status()[0]?.mode})`);
    if (before === undefined) throw new SentinelError('internal', 'backend has no PID', { where: 'demo' });
    const from = rec.events.length;
    const killNs = process.hrtime.bigint();
    killPid(before, 'SIGKILL');
    const exit = await rec.next((e) => e.event === 'exit' && e.pid === before, 10_000, 'exit of the backend', from);
    const started = await rec.next((e) => e.event === 'recovery-started', 10_000, 'recovery action', from);
    await rec.next((e) => e.event === 'recovered', 10_000, 'backend back', from);
    const actionMs = Number(BigInt(String(started.startedNs)) - killNs) / 1e6;
    print(`2. SIGKILL → exit seen via ${String(exit.via)} (signal ${String(exit.signal)}), respawn started ${actionMs.toFixed(2)} ms after the kill; new PID ${sup.pids()[0]}`);
    await waitForHealthy(url);
    await untilRunning(sup);
    const hungPid = sup.pids()[0];
    const fromHang = rec.events.length;
    await httpProbe(`http://127.0.0.1:${port}/hang`, 300);
    print(`3. backend PID ${hungPid} told to hang (/hang blocks its event loop: connections are accepted, never answered)`);
    const failed = await rec.next((e) => e.event === 'health-failed', 20_000, 'health probe failure', fromHang);
    await rec.next((e) => e.event === 'recovered' && e.pid !== hungPid, 20_000, 'backend back after hang', fromHang);
    await waitForHealthy(url);
    print(`4. health probe failed ${String(failed.failures)} times (${String(failed.error)}) → killed and respawned as PID ${sup.pids()[0]}; healthy again`);
    print(`   ${sup.statusLine()}`);
  } finally {
    await sup.stop();
    await ebpf.close();
  }
}

// Why: `sentinel demo` runs these after the vault steps (skipped with --no-recovery).
export const recoveryDemoSteps: DemoStep[] = [
  {
    title: 'keep the backend alive: SIGKILL seen by eBPF and respawned at once; a hang caught by the health probe',
    async run(ctx) {
      const port = (await portIsFree(8000)) ? 8000 : await freePort();
      if (port !== 8000) ctx.say(`port 8000 is busy on this machine; using ${port}`);
      await demoBackendSteps({ log: createLogger('silent'), port, print: (line) => ctx.say(line) });
    },
  },
  {
    title: 'the backend\'s own watchdog without systemd: /gil stops its pings, the sentinel aborts it (thread stacks) and restarts it',
    async run(ctx) {
      const port = (await portIsFree(8000)) ? 8000 : await freePort();
      await demoWatchdogSteps({ log: createLogger('silent'), port, print: (line) => ctx.say(line) });
    },
  },
];
