// The sample FastAPI backend (examples/backend, run through omnimind_sentinel.serve) as the recovery demo, the tests and the benches start
// it: its command line, a free port to run it on, and a bounded wait for its first healthy answer.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { SentinelError } from '../../core/errors.js';
import { httpProbe } from '../../adapters/http-probe.js';
import { packageRoot } from '../../adapters/package-root.js';

// Why: the pyenv shim adds ~100 ms and a shell to every start; the system python execs directly.
export function pythonBinary(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

// Why: one argv for the sample backend on `port`, so the demo, tests and benches run the same program.
export function sampleBackendCommand(port: number, extra: string[] = []): string[] {
  return [pythonBinary(), join(packageRoot(), 'examples', 'backend', 'serve.py'), '--port', String(port), '--no-access-log', ...extra];
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
