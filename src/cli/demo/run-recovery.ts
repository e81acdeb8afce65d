// Runs the recovery part of the demo alone, by hand: `node dist/src/cli/demo/run-recovery.js [PORT]`
// (root and the built eBPF engine for the kernel path; without them it shows the /proc polling fallback).
import { createLogger, type LogLevel } from '../../adapters/logger.js';
import { messageOf } from '../../core/errors.js';
import { demoBackendSteps } from './recovery.js';

const port = Number(process.argv[2] ?? '8000');
const level = (process.env.SENTINEL_LOG_LEVEL ?? 'error') as LogLevel;
demoBackendSteps({ log: createLogger(level), port }).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`demo failed: ${messageOf(e)}`);
    process.exit(1);
  },
);
