// Run once after tsc and the bundle (`npm run build`): makes the CLI executable, so a symlink on PATH
// runs it from a checkout, writes the top-level help text and the V8 code cache of the plain
// runners' bundle, and writes sentinel(1) and the bash completion generated from the command tree.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { packageRoot, packageVersion } from '../adapters/package-root.js';
import { bashCompletion } from './completion.js';
import { renderManPage } from './man-page.js';
import { writeCodeCache } from './bundle-loader.js';
import { buildProgram, topLevelHelp } from './program.js';

const dist = join(packageRoot(), 'dist');
const cli = join(dist, 'src', 'cli');
// main.js and the package's bin, sentinel.cjs, which imports main.js for anything it does not run itself.
for (const entry of ['main.js', 'sentinel.cjs']) chmodSync(join(cli, entry), 0o755);

// `sentinel --help`'s text as the command tree prints it, which the executable (src/cli/entry.ts)
// prints without loading the tree; the tree prints it at the same fixed width.
writeFileSync(join(cli, 'help.txt'), topLevelHelp());

// The plain runners' bundles' code caches (plain.cjs.cache, status.cjs.cache), from each bundle's
// final text and with this very `node`: a `vault verify`, `vault status` or `deploy` process then
// compiles none of its bundle's functions itself; a Node of another version or other V8 flags
// refuses a cache and compiles the source, and a cache made for another source is never used
// (src/cli/bundle-loader.ts). Measured: BENCHMARKS.md "CLI: whole processes".
for (const bundle of ['plain.cjs', 'status.cjs']) writeCodeCache(join(cli, bundle));

// Where the package script picks these up (dist/share mirrors /usr/share).
const write = (rel: string, text: string): void => {
  const file = join(dist, 'share', rel);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
};
write('man/man1/sentinel.1', renderManPage(buildProgram(), packageVersion()));
write('bash-completion/completions/sentinel', bashCompletion(buildProgram()));
