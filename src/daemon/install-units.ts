// `sentinel install-units`: copies the unit files of systemd/ with this host's node and CLI paths, and removes them again.
import { mkdir, readFile, rename, rm, writeFile, lstat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { packageRoot } from '../adapters/package-root.js';
import { daemonReload } from '../adapters/systemctl.js';

// Why: the unit files shipped in systemd/ and installed by `install-units`.
export const UNIT_FILES = ['omnimind.slice', 'omnimind-sentinel.service', 'omnimind-backend.service'] as const;

/** Placeholders in systemd/*.service replaced at install time; @DOCS@ is the directory holding README.md and docs/. */
export const PLACEHOLDERS = { node: '@NODE@', cli: '@SENTINEL_CLI@', docs: '@DOCS@' } as const;

// Why: the same substitution for install, the package and tests (systemd-analyze needs ExecStart to exist).
export function renderUnit(text: string, paths: { node: string; cli: string; docs?: string }): string {
  return text.split(PLACEHOLDERS.node).join(paths.node).split(PLACEHOLDERS.cli).join(paths.cli).split(PLACEHOLDERS.docs).join(paths.docs ?? packageRoot());
}

// Why: installs the units and the sample config (never overwriting an existing config).
export async function installUnits(opts: { prefix: string; node?: string; cli?: string; reload: boolean; source?: string }): Promise<{ files: string[] }> {
  const source = opts.source ?? join(packageRoot(), 'systemd');
  const paths = { node: resolve(opts.node ?? process.execPath), cli: resolve(opts.cli ?? join(packageRoot(), 'dist', 'src', 'cli', 'main.js')) };
  for (const [what, p] of Object.entries(paths)) {
    try {
      await lstat(p);
    } catch (cause) {
      throw new SentinelError('not-found', `${what} path for ExecStart does not exist`, { where: p, cause });
    }
  }
  await mkdir(opts.prefix, { recursive: true });
  const files: string[] = [];
  for (const name of UNIT_FILES) {
    const from = join(source, name);
    const to = join(opts.prefix, name);
    let text: string;
    try {
      text = await readFile(from, 'utf8');
    } catch (cause) {
      throw new SentinelError('not-found', 'unit file missing from the package', { where: from, cause });
    }
    await writeFile(`${to}.tmp`, renderUnit(text, paths), { mode: 0o644 });
    await rename(`${to}.tmp`, to);
    files.push(to);
  }
  if (opts.reload) await daemonReload();
  return { files };
}

// Why: `install-units --uninstall` removes exactly the files install put there.
export async function uninstallUnits(opts: { prefix: string; reload: boolean }): Promise<{ files: string[] }> {
  const files: string[] = [];
  for (const name of UNIT_FILES) {
    const p = join(opts.prefix, name);
    try {
      await lstat(p);
    } catch {
      continue;
    }
    await rm(p, { force: true });
    files.push(p);
  }
  if (opts.reload) await daemonReload();
  return { files };
}
