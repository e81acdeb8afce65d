// Finds the project's root directory from a module's own URL, so the native addon and the hash
// worker are located the same way from src/ (tsx, tests) and from the compiled dist/ tree.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SentinelError } from '../core/errors.js';

const PACKAGE_NAME = 'omnimind-sentinel';
let cached: string | undefined;

function isOurPackage(dir: string): boolean {
  const file = join(dir, 'package.json');
  if (!existsSync(file)) return false;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown };
    return parsed.name === PACKAGE_NAME;
  } catch {
    return false;
  }
}

// The nearest ancestor of `fromUrl` (default: this module) holding omnimind-sentinel's package.json.
export function packageRoot(fromUrl: string = import.meta.url): string {
  if (fromUrl === import.meta.url && cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(fromUrl));
  for (;;) {
    if (isOurPackage(dir)) break;
    const parent = dirname(dir);
    if (parent === dir) throw new SentinelError('internal', `no ${PACKAGE_NAME} package.json above this module`, { where: fromUrl });
    dir = parent;
  }
  if (fromUrl === import.meta.url) cached = dir;
  return dir;
}

let cachedVersion: string | undefined;

// The product version (package.json "version"): what `sentinel --version`, the daemon and the package report.
export function packageVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  try {
    const parsed = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown };
    cachedVersion = typeof parsed.version === 'string' ? parsed.version : 'unknown';
  } catch {
    cachedVersion = 'unknown';
  }
  return cachedVersion;
}
