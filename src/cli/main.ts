#!/usr/bin/env node
// The `sentinel` executable: builds the command tree and turns every outcome into an exit code;
// even an error escaping every handler ends as one stderr line, not a stack trace.
import { reportFailure } from './failure.js';

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

// `vault verify VAULT`: the live tree's hashing starts before the rest of the program is loaded.
if (process.argv[2] === 'vault' && process.argv[3] === 'verify') (await import('./early-verify.js')).startEarlyVerify(process.argv.slice(4));
const { runCli } = await import('./program.js');
process.exitCode = await runCli(process.argv);
