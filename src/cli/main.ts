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
// A reader that went away (`sentinel ... | head`) is not the command's failure: its output is
// dropped and the command ends with its own exit status, as it would have with the reader there.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') lastResort(e);
});

process.exitCode = await runCli(process.argv);
