#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS SENTINEL_NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS} node
// The `sentinel` executable: runs the command and turns every outcome into an exit code; even an
// error escaping every handler ends as one stderr line, not a stack trace. The first line starts
// Node without NODE_EXTRA_CA_CERTS, whose value the process puts back before anything else
// (src/cli/launcher-env.ts). Before it branches, this file loads nothing but the plain runners'
// loader (docs/ARCHITECTURE.md#start-up).
import { loadPlainRunners } from './bundle-loader.js';
import { restoreLauncherEnv } from './launcher-env.js';

restoreLauncherEnv();

// The plain runners' bundle and the command tree each bring their own failure path; until one is
// loaded, an error escaping everything is a bug, still reported as one line.
let report = (e: unknown): number => {
  process.stderr.write(`sentinel: internal: ${e instanceof Error ? e.message : String(e)}\n`);
  return 2;
};
const lastResort = (e: unknown): void => {
  process.exit(report(e));
};
process.on('uncaughtException', lastResort);
process.on('unhandledRejection', lastResort);

const words = process.argv.slice(2);
const isVerify = words[0] === 'vault' && words[1] === 'verify';
// `vault verify VAULT [--trust KEY...] [--live-only] [--json]`, `vault status VAULT [--json]` and
// `deploy BUNDLE --vault VAULT [--json]` (src/cli/plain-deploy.ts) exactly, as a shell, cron or a
// monitoring check runs them: their runners with their failure path,
// without commander and the command tree, from a CommonJS bundle with a code cache (status's own,
// src/cli/plain-status.ts; verify's and deploy's, src/cli/plain-runners.ts; loaded by
// src/cli/bundle-loader.ts); verify's native pass starts in it first. Any other form (options first, `--`, more arguments) goes through the tree.
let plain: Promise<number> | null = null;
if (isVerify || (words[0] === 'vault' && words[1] === 'status') || words[0] === 'deploy') {
  try {
    const runners = await loadPlainRunners(new URL('.', import.meta.url).href, words);
    plain = runners.runPlain(words);
    if (plain !== null) report = runners.reportFailure;
  } catch (e) {
    const failure = await import('./failure.js');
    // As the tree does for a failure before the command runs: --json still gets its object.
    failure.setJsonMode(words.includes('--json'));
    plain = Promise.resolve(failure.reportFailure(e));
  }
}

// A reader that went away (`sentinel ... | head`) is not the command's failure: its output is
// dropped and the command ends with its own exit status, as it would have with the reader there.
// Set up only here: process.stdout is made on first use (with the stream modules), which so comes
// after verify's native pass has started; a runner writes nothing before its first await.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') lastResort(e);
});

if (plain !== null) {
  process.exitCode = await plain;
} else {
  const failure = await import('./failure.js');
  report = failure.reportFailure;
  // Verify's other forms: the live tree's hashing still starts before the command tree is loaded.
  if (isVerify) (await import('./early-verify.js')).startEarlyVerify(words.slice(2));
  const { runCli } = await import('./program.js');
  process.exitCode = await runCli(process.argv);
}
