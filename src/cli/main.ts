#!/usr/bin/env node
// The `sentinel` executable: builds the command tree and turns every outcome into an exit code;
// even an error escaping every handler ends as one stderr line, not a stack trace.
import { reportFailure } from './failure.js';
import { runCli } from './program.js';

const lastResort = (e: unknown): void => {
  process.exit(reportFailure(e));
};
process.on('uncaughtException', lastResort);
process.on('unhandledRejection', lastResort);

process.exitCode = await runCli(process.argv);
