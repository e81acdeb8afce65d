// `sentinel install-units`: copies the unit files of systemd/ with this host's node, CLI and package
// paths, and removes them again. `--sample-backend` adds the drop-in that runs the sample backend and
// the unit of the sample MCP worker.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, rmdir, writeFile, lstat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { packageRoot } from '../adapters/package-root.js';
import { daemonReload, disableNow, resetFailed, runningInSlice, stopUnit } from '../adapters/systemctl.js';

// Why: the unit files shipped in systemd/ and installed by `install-units`.
export const UNIT_FILES = ['omnimind.slice', 'omnimind-sentinel.service', 'omnimind-backend.socket', 'omnimind-backend.service'] as const;

/** The slice of UNIT_FILES the OmniMind services run in. */
const SLICE = 'omnimind.slice';

/** The drop-in `--sample-backend` adds: the backend unit runs examples/backend instead of OmniMind. */
export const SAMPLE_BACKEND_DROP_IN = 'omnimind-backend.service.d/sample-backend.conf';

/** Units of the package's sample services, installed with `--sample-backend` only (examples/mcp-worker). */
export const SAMPLE_UNITS = ['omnimind-mcp-worker.service'] as const;

/**
 * Placeholders in systemd/* replaced at install time: @DOCS@ is the directory holding README.md and
 * docs/, @SENTINEL_ROOT@ the package (examples/), @PYTHONPATH@ its integrations/python.
 */
export const PLACEHOLDERS = { node: '@NODE@', cli: '@SENTINEL_CLI@', docs: '@DOCS@', root: '@SENTINEL_ROOT@', pythonPath: '@PYTHONPATH@' } as const;

/** The paths written into the installed units in place of the placeholders. */
export interface UnitPaths {
  node: string;
  cli: string;
  /** Where README.md and docs/ are (default: docsDirectory()). */
  docs?: string;
  /** The package root (examples/, integrations/); default: this package. */
  root?: string;
}

/** Where the Debian package installs README.md and docs/ (its program is in /usr/lib/omnimind-sentinel). */
export const PACKAGE_DOC_DIR = '/usr/share/doc/omnimind-sentinel';

// Why: a checkout holds docs/ itself; the package keeps it apart from the program, so a unit's
// Documentation= must name the package's doc directory instead (no docs/ beside the program).
export function docsDirectory(root = packageRoot()): string {
  if (existsSync(join(root, 'docs')) || !existsSync(join(PACKAGE_DOC_DIR, 'docs'))) return root;
  return PACKAGE_DOC_DIR;
}

// Why: the same substitution for install, the package and tests (systemd-analyze needs ExecStart to exist).
export function renderUnit(text: string, paths: UnitPaths): string {
  const root = paths.root ?? packageRoot();
  return text
    .split(PLACEHOLDERS.node).join(paths.node)
    .split(PLACEHOLDERS.cli).join(paths.cli)
    .split(PLACEHOLDERS.docs).join(paths.docs ?? docsDirectory(root))
    .split(PLACEHOLDERS.pythonPath).join(join(root, 'integrations', 'python'))
    .split(PLACEHOLDERS.root).join(root);
}

const HIDDEN: readonly [RegExp, string][] = [
  [/^\/(home|root|run\/user)(\/|$)/, 'ProtectHome=yes'],
  [/^\/(tmp|var\/tmp)(\/|$)/, 'PrivateTmp=yes'],
];

// Why: every shipped unit has ProtectHome=yes and PrivateTmp=yes, so a node, a CLI or a package below /root, /home or
// /tmp is not there for it: the sentinel's own unit would fail to start. Said once, naming each such place.
export function unitVisibilityWarnings(paths: { node: string; cli: string; root: string }): string[] {
  const hidden = new Map<string, string>();
  for (const p of [paths.root, paths.cli, paths.node]) {
    if (p !== paths.root && p.startsWith(`${paths.root}/`) && hidden.has(paths.root)) continue;
    const why = HIDDEN.find(([re]) => re.test(p))?.[1];
    if (why !== undefined) hidden.set(p, why);
  }
  if (hidden.size === 0) return [];
  const where = [...hidden.keys()].join(', ');
  const why = [...new Set(hidden.values())].join(', ');
  return [`${where} cannot be seen by the units (${why}): omnimind-sentinel.service would fail to start, and the backend units too; put the checkout under /opt (e.g. /opt/omnimind-sentinel) and run install-units from there, or install the package`];
}

// Why: installs the units and the sample config (never overwriting an existing config).
export async function installUnits(opts: { prefix: string; node?: string; cli?: string; reload: boolean; source?: string; sampleBackend?: boolean }): Promise<{ files: string[]; warnings: string[] }> {
  const source = opts.source ?? join(packageRoot(), 'systemd');
  const paths = { node: resolve(opts.node ?? process.execPath), cli: resolve(opts.cli ?? join(packageRoot(), 'dist', 'src', 'cli', 'main.js')), root: packageRoot() };
  for (const [what, p] of Object.entries(paths)) {
    try {
      await lstat(p);
    } catch (cause) {
      throw new SentinelError('not-found', `${what} path for ExecStart does not exist`, { where: p, cause });
    }
  }
  const warnings = unitVisibilityWarnings(paths);
  await mkdir(opts.prefix, { recursive: true });
  const names: string[] = [...UNIT_FILES];
  // Without the flag the drop-in goes (the backend runs OmniMind's app); a sample unit already there is left alone.
  if (opts.sampleBackend === true) names.push(SAMPLE_BACKEND_DROP_IN, ...SAMPLE_UNITS);
  else await removeFile(join(opts.prefix, SAMPLE_BACKEND_DROP_IN));
  const files: string[] = [];
  for (const name of names) {
    const from = join(source, name);
    const to = join(opts.prefix, name);
    let text: string;
    try {
      text = await readFile(from, 'utf8');
    } catch (cause) {
      throw new SentinelError('not-found', 'unit file missing from the package', { where: from, cause });
    }
    await mkdir(dirname(to), { recursive: true });
    await writeFile(`${to}.tmp`, renderUnit(text, paths), { mode: 0o644 });
    await rename(`${to}.tmp`, to);
    files.push(to);
  }
  const notReloaded = opts.reload ? await daemonReload() : null;
  if (notReloaded !== null) warnings.push(`systemctl daemon-reload failed (${notReloaded}): systemd has not read these units; run \`systemctl daemon-reload\` once it runs, before enabling them`);
  return { files, warnings };
}

async function removeFile(p: string): Promise<boolean> {
  try {
    await lstat(p);
  } catch {
    return false;
  }
  await rm(p, { force: true });
  if (dirname(p).endsWith('.d')) await rmdir(dirname(p)).catch(() => undefined); // a drop-in directory, if now empty
  return true;
}

/** Where systemd reads administrator units; only there do stop/disable concern the files install-units wrote. */
export const SYSTEM_UNIT_DIR = '/etc/systemd/system';

/** Where a package puts the units it ships (the Debian package: omnimind-sentinel.service, omnimind.slice). */
const VENDOR_UNIT_DIRS = ['/usr/lib/systemd/system', '/lib/systemd/system'];

async function present(paths: readonly string[]): Promise<boolean> {
  for (const p of paths) if (await lstat(p).then(() => true, () => false)) return true;
  return false;
}

// Why: removing the files of an enabled, running unit leaves it running and leaves its
// multi-user.target.wants link, so a later install shows it enabled again: stop and disable first,
// every OmniMind unit systemd has (the ones a package ships too, whose program is about to go).
// Then nothing of ours may stay loaded: a failed unit's failure is reset, and the slice (which systemd
// never stops by itself) is stopped, unless a unit of the operator's own still runs in it.
// keepFiles: the same, but the files stay (the package's removal: they are configuration until a purge).
export async function uninstallUnits(opts: { prefix: string; reload: boolean; keepFiles?: boolean }): Promise<{ files: string[]; disabled: string[]; stopped: string[]; warnings: string[] }> {
  const disabled: string[] = [];
  const stopped: string[] = [];
  const warnings: string[] = [];
  const systemUnits = opts.reload && resolve(opts.prefix) === SYSTEM_UNIT_DIR;
  const units: string[] = [];
  if (systemUnits) {
    for (const name of [...UNIT_FILES, ...SAMPLE_UNITS]) {
      if (/\.(service|socket)$/.test(name) && (await present([opts.prefix, ...VENDOR_UNIT_DIRS].map((d) => join(d, name))))) units.push(name);
    }
    if (units.length > 0 && (await disableNow(units))) disabled.push(...units);
    else {
      // systemctl refused the transaction as a whole: each unit alone, the units that want the sentinel first
      for (const name of [...units].reverse()) if (await disableNow([name])) disabled.push(name);
    }
  }
  const files: string[] = [];
  if (opts.keepFiles !== true) {
    for (const name of [...UNIT_FILES, SAMPLE_BACKEND_DROP_IN, ...SAMPLE_UNITS]) {
      const p = join(opts.prefix, name);
      if (await removeFile(p)) files.push(p);
    }
  }
  if (opts.reload) await daemonReload();
  if (systemUnits) {
    if (units.length > 0) await resetFailed(units);
    const members = await runningInSlice(SLICE);
    if (members !== null && members.length === 0) {
      if (await stopUnit(SLICE)) stopped.push(SLICE);
    } else if (members !== null) warnings.push(`${SLICE} left running: it still holds ${members.join(', ')}`);
  }
  return { files, disabled, stopped, warnings };
}
