// Run once after tsc (`npm run build`): makes the CLI executable, so a symlink on PATH runs it from
// a checkout, and writes sentinel(1) and the bash completion generated from the command tree.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { packageRoot, packageVersion } from '../adapters/package-root.js';
import { bashCompletion } from './completion.js';
import { renderManPage } from './man-page.js';
import { buildProgram } from './program.js';

const dist = join(packageRoot(), 'dist');
chmodSync(join(dist, 'src', 'cli', 'main.js'), 0o755);

// Where the package script picks these up (dist/share mirrors /usr/share).
const write = (rel: string, text: string): void => {
  const file = join(dist, 'share', rel);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
};
write('man/man1/sentinel.1', renderManPage(buildProgram(), packageVersion()));
write('bash-completion/completions/sentinel', bashCompletion(buildProgram()));
