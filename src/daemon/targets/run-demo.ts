// Runs the recovery demo by hand: `node dist/src/daemon/targets/run-demo.js [PORT]` (root, bpftrace).
import { createLogger, type LogLevel } from '../../adapters/logger.js';
import { demoBackendSteps } from './demo.js';
import { messageOf } from '../../core/errors.js';

const port = Number(process.argv[2] ?? '8000');
const level = (process.env.SENTINEL_LOG_LEVEL ?? 'error') as LogLevel;
demoBackendSteps({ log: createLogger(level), port }).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`demo failed: ${messageOf(e)}`);
    process.exit(1);
  },
);
