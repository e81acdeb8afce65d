// The survival half of `sentinel demo`: the sample backend on port 8000 under the
// sentinel's supervisor, SIGKILLed (seen by bpftrace, respawned at once) and hung (health probe).
import { createServer } from 'node:net';
import { createLogger } from '../adapters/logger.js';
import { demoBackendSteps, freePort } from '../daemon/targets/demo.js';
import type { DemoStep } from './demo.js';

// Why: port 8000 is the mission's port, but a busy one on the user's machine must not fail the demo.
async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export const recoveryDemoSteps: DemoStep[] = [
  {
    title: 'keep the backend alive: SIGKILL seen by eBPF and respawned at once; a hang caught by the health probe',
    async run(ctx) {
      const port = (await portIsFree(8000)) ? 8000 : await freePort();
      if (port !== 8000) ctx.say(`port 8000 is busy on this machine; using ${port}`);
      await demoBackendSteps({ log: createLogger('silent'), port, print: (line) => ctx.say(line) });
    },
  },
];
