// The watchdog part of `sentinel demo`: the sample backend as a `command` target whose notify socket
// is the sentinel; /gil holds the GIL, its WATCHDOG=1 pings stop, and the sentinel does what systemd
// would: SIGABRT (every thread's stack), then a restart (docs/EBPF.md#notify-socket-of-command-targets).
import type { Logger } from 'pino';
import { SentinelError } from '../../core/errors.js';
import { httpProbe } from '../../adapters/http-probe.js';
import { TargetSupervisor, targetSchema } from '../../daemon/targets/index.js';
import { TargetEventRecorder } from './event-recorder.js';
import { sampleBackendCommand, waitForHealthy } from './sample-backend.js';

/** WatchdogSec= of the demo: long enough for a loaded machine, short enough to watch. */
const WATCHDOG_MS = 3000;

// Why: the backend's own watchdog works the same without systemd; the demo shows it on this machine.
export async function demoWatchdogSteps(opts: { log: Logger; port: number; print: (line: string) => void }): Promise<void> {
  const { port, print } = opts;
  const url = `http://127.0.0.1:${String(port)}/health`;
  // No health probe here: only the missing pings can catch the hang.
  const spec = targetSchema.parse({ name: 'demo-backend', command: sampleBackendCommand(port), port, watchdog: { timeoutMs: WATCHDOG_MS, signal: 'SIGABRT', abortTimeoutMs: 5000 } });
  const rec = new TargetEventRecorder();
  const sup = new TargetSupervisor([spec], { log: opts.log, audit: rec.record });
  try {
    const t0 = performance.now();
    await sup.start();
    const pid = sup.pids()[0];
    if (pid === undefined || sup.status()[0]?.state !== 'running') throw new SentinelError('unavailable', `backend not running after its start: ${sup.status()[0]?.failedReason ?? 'no reason'}`, { where: 'demo' });
    await waitForHealthy(url);
    print(`5. backend PID ${String(pid)} started with the sentinel as its NOTIFY_SOCKET (WATCHDOG_USEC=${String(WATCHDOG_MS * 1000)}): running after its READY=1, ${(performance.now() - t0).toFixed(0)} ms after the start`);
    const from = rec.events.length;
    void httpProbe(`http://127.0.0.1:${String(port)}/gil`, 300);
    const timeout = await rec.next((e) => e.event === 'watchdog-timeout', 20_000, 'the watchdog timeout', from);
    const dump = await rec.next((e) => e.event === 'stack-dump', 20_000, 'the stack dump', from);
    const recovered = await rec.next((e) => e.event === 'recovered', 60_000, 'the backend back after the watchdog', from);
    await waitForHealthy(url);
    const lines = (dump.evidence as string[] | undefined) ?? [];
    const frame = lines.find((l) => /in gil\b/.test(l))?.trim() ?? '(no gil frame in the dump)';
    if (!lines.some((l) => /in gil\b/.test(l))) throw new SentinelError('internal', 'the stack dump does not show the stuck /gil handler', { where: 'demo' });
    print(`6. /gil held the GIL: no WATCHDOG=1 for ${String(timeout.lastPingAgoMs)} ms → SIGABRT; ${String(lines.length)} lines of thread stacks kept for the audit log, among them "${frame}"; respawned as PID ${String(recovered.pid)}, healthy again`);
  } finally {
    await sup.stop();
  }
}
