// Run once after tsc and the bundle (`npm run build`): makes the CLI executable, so a symlink on PATH
// runs it from a checkout, writes the V8 code cache of the plain runners' bundle, and writes
// sentinel(1) and the bash completion generated from the command tree.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { packageRoot, packageVersion } from '../adapters/package-root.js';
import { bashCompletion } from './completion.js';
import { renderManPage } from './man-page.js';
import { writeCodeCache } from './bundle-loader.js';
import { buildProgram } from './program.js';

const dist = join(packageRoot(), 'dist');
chmodSync(join(dist, 'src', 'cli', 'main.js'), 0o755);

// plain.cjs's code cache (plain.cjs.cache), from the bundle's final text and with this very `node`:
// a `vault verify` or `vault status` process then compiles none of the bundle's functions itself; a
// Node of another version or other V8 flags refuses it and compiles the source, and a cache made for
// another source is never used (src/cli/bundle-loader.ts). Measured: BENCHMARKS.md "CLI: whole processes".
writeCodeCache(join(dist, 'src', 'cli', 'plain.cjs'));

// Where the package script picks these up (dist/share mirrors /usr/share).
const write = (rel: string, text: string): void => {
  const file = join(dist, 'share', rel);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
};
write('man/man1/sentinel.1', renderManPage(buildProgram(), packageVersion()));
write('bash-completion/completions/sentinel', bashCompletion(buildProgram()));
