#!/usr/bin/env node
// The `sentinel` executable: builds the command tree and turns every outcome into an exit code;
// even an error escaping every handler ends as one stderr line, not a stack trace.
import { reportFailure, setJsonMode } from './failure.js';
import { loadPlainRunners } from './bundle-loader.js';

// The plain runners' bundle brings its own copy of the failure path (see below).
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

const words = process.argv.slice(2);
const isVerify = words[0] === 'vault' && words[1] === 'verify';
// `vault verify VAULT [--trust KEY...] [--live-only] [--json]` and `vault status VAULT [--json]`
// exactly, as a shell, cron or a monitoring check runs them: their runners with their failure path,
// without commander and the command tree, from one CommonJS bundle with a code cache
// (src/cli/plain-runners.ts, loaded by src/cli/bundle-loader.ts); verify's native pass starts in
// it first. Any other form (options first, `--`, more arguments) goes through the tree.
let plain: Promise<number> | null = null;
if (isVerify || (words[0] === 'vault' && words[1] === 'status')) {
  try {
    const runners = await loadPlainRunners(new URL('.', import.meta.url).href);
    plain = runners.runPlain(words);
    if (plain !== null) report = runners.reportFailure;
  } catch (e) {
    // As the tree does for a failure before the command runs: --json still gets its object.
    setJsonMode(words.includes('--json'));
    plain = Promise.resolve(reportFailure(e));
  }
}
if (plain !== null) {
  process.exitCode = await plain;
} else {
  // Verify's other forms: the live tree's hashing still starts before the command tree is loaded.
  if (isVerify) (await import('./early-verify.js')).startEarlyVerify(words.slice(2));
  const { runCli } = await import('./program.js');
  process.exitCode = await runCli(process.argv);
}
