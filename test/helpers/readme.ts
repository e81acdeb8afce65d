// The README's install and uninstall commands, taken verbatim from the fenced block after a
// `<!-- readme:NAME -->` marker, so the container tests run exactly what an operator copies.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';

// The body of the ```sh block that follows `<!-- readme:NAME -->` in README.md.
export function readmeBlock(name: string): string {
  const text = readFileSync(join(packageRoot(), 'README.md'), 'utf8');
  const m = new RegExp(`<!-- readme:${name} -->\\n\`\`\`sh\\n([\\s\\S]*?)\\n\`\`\``).exec(text);
  if (m === null) throw new Error(`README.md has no block marked <!-- readme:${name} -->`);
  return `${m[1] ?? ''}\n`;
}
