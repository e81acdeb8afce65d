#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS SENTINEL_NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS} node
// The `sentinel` executable (the package's `bin`): `npm run build` bundles this file alone as
// CommonJS, `dist/src/cli/sentinel.cjs`, so the forms a shell, cron or a monitoring check runs most
// start without Node's ES module loader (docs/ARCHITECTURE.md#start-up): `sentinel --help` (or
// `-h`) prints the help text the build wrote from the command tree, and the plain `vault verify`,
// `vault status` and `deploy` forms run from the plain runners' bundles as `main.js` runs them.
// Everything else, and these forms wherever that bundle cannot be used, is `main.js` itself,
// imported as it is. The first line is main.js's, and the value it saves is put back first here too.
import { readFileSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { plainBundleName, runCommonJs, type PlainRunners } from './bundle-loader.js';
import { restoreLauncherEnv } from './launcher-env.js';


restoreLauncherEnv();
const words = process.argv.slice(2);
const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));

// help.txt, written by `npm run build` next to this file from the command tree (src/cli/build-assets.ts),
// whole to stdout. False when nothing was written (no stored text): the tree prints it.
function printStoredHelp(): boolean {
  let text: Buffer;
  try {
    text = readFileSync(here('help.txt'));
  } catch {
    return false;
  }
  let done = 0;
  try {
    while (done < text.length) done += writeSync(1, text, done);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // A reader that went away: the output is dropped and the command succeeds, as main.js does.
    if (code === 'EPIPE') return true;
    // A non-blocking stdout that is full: the rest through the stream, which waits for it.
    if (code === 'EAGAIN') {
      process.stdout.on('error', () => undefined);
      process.stdout.write(text.subarray(done));
      return true;
    }
    if (done > 0) throw e;
    return false;
  }
  return true;
}

// The plain runners, when this Node can load their bundle (main.js covers the rest, see bundle-loader.ts).
function plainRunners(): PlainRunners | null {
  if ((process.features as { require_module?: boolean }).require_module !== true) return null;
  try {
    return runCommonJs(here(plainBundleName(words))).exports as PlainRunners;
  } catch {
    return null; // main.js loads it again and reports what is wrong, as it always has
  }
}

async function run(): Promise<boolean> {
  if (words.length === 1 && (words[0] === '--help' || words[0] === '-h')) return printStoredHelp();
  if (words[0] !== 'deploy' && (words[0] !== 'vault' || (words[1] !== 'verify' && words[1] !== 'status'))) return false;
  const runners = plainRunners();
  if (runners === null) return false;
  let plain: Promise<number> | null;
  try {
    plain = runners.runPlain(words);
  } catch (e) {
    plain = Promise.resolve(runners.reportFailure(e));
  }
  if (plain === null) return false;
  // As in main.js: anything escaping is one stderr line, and a reader that went away is not a failure.
  const lastResort = (e: unknown): void => {
    process.exit(runners.reportFailure(e));
  };
  process.on('uncaughtException', lastResort);
  process.on('unhandledRejection', lastResort);
  // Status and verify write fd 1 themselves and make process.stdout (and load the stream modules)
  // only when a write must wait (src/cli/output.ts); deploy writes through the stream.
  if (words[0] === 'deploy') {
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') lastResort(e);
    });
  }
  process.exitCode = await plain;
  return true;
}

// Until main.js or the plain runners' failure path takes over, an error is a bug, still one line.
run()
  .then((done) => (done ? undefined : import('./main.js')))
  .catch((e: unknown) => {
    process.stderr.write(`sentinel: internal: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
  });
