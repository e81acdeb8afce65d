#!/usr/bin/env node
// The `sentinel` executable: builds the command tree and turns every outcome into an exit code;
// even an error escaping every handler ends as one stderr line, not a stack trace.
import { reportFailure, setJsonMode } from './failure.js';
import { loadStatusRunner } from './status-loader.js';

// The status runner's bundle brings its own copy of the failure path (see below).
let report: (e: unknown) => number = reportFailure;
const lastResort = (e: unknown): void => {
  process.exit(report(e));
};
process.on('uncaughtException', lastResort);
process.on('unhandledRejection', lastResort);
// A reader that went away (`sentinel ... | head`) is not the command's failure: its output is
// dropped and the command ends with its own exit status, as it would have with the reader there.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') lastResort(e);
});

// `vault verify VAULT`: the live tree's hashing starts before the rest of the program is loaded;
// its plain forms then run without the command tree (src/cli/plain-verify.ts).
const isVerify = process.argv[2] === 'vault' && process.argv[3] === 'verify';
if (isVerify) (await import('./early-verify.js')).startEarlyVerify(process.argv.slice(4));
const plainVerify = isVerify ? await import('./plain-verify.js') : null;
const verifyArgs = plainVerify?.plainVerifyArgs(process.argv.slice(4)) ?? null;

const [command, sub, vault, flag, ...rest] = process.argv.slice(2);
// `vault status VAULT [--json]` exactly, as a monitoring check runs it: the runner the command tree
// would call, with its failure path, without loading commander and building the tree
// (src/cli/plain-status.ts, loaded as one CommonJS file). Any other form (options first, `--`,
// more arguments) goes through the tree.
if (plainVerify !== null && verifyArgs !== null) {
  process.exitCode = await plainVerify.runPlainVaultVerify(verifyArgs);
} else if (command === 'vault' && sub === 'status' && vault !== undefined && !vault.startsWith('-') && (flag === undefined || flag === '--json') && rest.length === 0) {
  setJsonMode(flag === '--json');
  process.exitCode = await loadStatusRunner(new URL('.', import.meta.url).href).then((runner) => {
    report = runner.reportFailure;
    return runner.runPlainVaultStatus(vault, flag === '--json');
  }, reportFailure);
} else {
  const { runCli } = await import('./program.js');
  process.exitCode = await runCli(process.argv);
}
