// Who may change the way into the vault (docs/SECURITY.md#what-the-vault-requires-of-its-directories):
// the vault directory, its own directories (releases/, bundles/, state/, staging/) and every directory
// on the way to it must be owned by root and not writable by group or others, or the owner of one of
// them could rename a directory the vault is about to write through and have root seal their files
// into the live release. A root-owned sticky directory (/tmp) may be on the way: others cannot rename
// or remove what root owns there. Checked at init and at every operation; a finding names the path,
// its owner and its mode.
// node:fs's promises on first use: `vault verify` checks the vault's paths with these functions
// before its tree pass starts, and node:fs/promises (readline and the stream modules with it)
// loads then would delay the pass (BENCHMARKS.md "CLI: whole processes").
import { lstatSync, promises as fsp, realpathSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { dirname, parse } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { errnoOf, ioError } from '../core/errno.js';
import type { VaultLayout } from './layout.js';

/** One directory that does not meet the rule. */
export interface UnsafeDir {
  path: string;
  message: string;
}

const S_ISVTX = 0o1000;

/** The owners the rule accepts: root, and the user running the sentinel when that is not root. */
export function trustedOwner(uid: number): boolean {
  const euid = process.geteuid?.() ?? 0;
  return uid === 0 || uid === euid;
}

/** What the owner rule reads of a directory (an lstat, a stat, or an fstat of a held descriptor). */
export interface OwnerMode {
  uid: number;
  mode: number;
}

function describe(st: OwnerMode): string {
  return `owned by uid ${String(st.uid)} with mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}`;
}

/**
 * Why a directory the sentinel writes in as root (the vault's, the inbox's done/ and rejected/, a
 * socket's) fails the owner rule, or null: owned by root or the user running the sentinel, and not
 * writable by group or others. `what` names it in the reason; `owner` says who may own it.
 */
export function ownedDirProblem(st: OwnerMode, what: string, owner = 'root'): string | null {
  if (!trustedOwner(st.uid)) return `${describe(st)}: ${what} must be owned by ${owner}`;
  if ((st.mode & 0o022) !== 0) return `${describe(st)}: ${what} must not be writable by group or others`;
  return null;
}

/** Why a directory on the way to the vault is unsafe, or null. */
function ancestorProblem(st: Stats): string | null {
  if (!trustedOwner(st.uid)) return `${describe(st)}: every directory on the way must be owned by root`;
  if ((st.mode & 0o022) !== 0 && (st.mode & S_ISVTX) === 0) return `${describe(st)}: writable by group or others (only a sticky directory like /tmp may be)`;
  return null;
}

/** Why one of the vault's own directories is unsafe, or null (an lstat or an fstat of a held directory). */
export function vaultDirProblem(st: Stats): string | null {
  if (st.isSymbolicLink()) return 'is a symlink: the vault and its directories must be real directories';
  if (!st.isDirectory()) return 'is not a directory';
  return ownedDirProblem(st, 'a vault directory');
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (e) {
    // Missing (or a file where a directory was expected): the operation that needs it reports that.
    if (errnoOf(e) === 'ENOENT' || errnoOf(e) === 'ENOTDIR') return null;
    throw ioError(e, 'cannot inspect a directory on the way to the vault', path);
  }
}

/** Every directory above `path`, from the root down (lexically, then again along the resolved path). */
function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  let p = dirname(path);
  const root = parse(path).root;
  for (;;) {
    out.unshift(p);
    if (p === root) break;
    p = dirname(p);
  }
  // Symlinks on the way are followed by the kernel: the directories they lead to count as well.
  let real: string;
  try {
    real = realpathSync(dirname(path));
  } catch {
    return out;
  }
  if (real !== dirname(path)) {
    let r = real;
    for (;;) {
      if (!out.includes(r)) out.push(r);
      if (r === root || r === '') break;
      r = dirname(r);
    }
  }
  return out;
}

// Why: the parent chain decides who can swap the vault's path; refused before anything is created.
export function unsafeAncestors(vault: string): UnsafeDir[] {
  const found: UnsafeDir[] = [];
  for (const dir of ancestorsOf(vault)) {
    const st = lstatOrNull(dir);
    if (st === null) continue;
    // A symlink on the way is judged by the directory holding it (checked as its own ancestor) and by
    // where it leads (the resolved directories, added above).
    if (st.isSymbolicLink()) {
      if (!trustedOwner(st.uid)) found.push({ path: dir, message: `is a symlink ${describe(st)}` });
      continue;
    }
    const why = ancestorProblem(st);
    if (why !== null) found.push({ path: dir, message: why });
  }
  return found;
}

// Why: VAULT/ and the four directories every operation writes through, each a real root-owned directory.
export function unsafeVaultDirs(layout: VaultLayout): UnsafeDir[] {
  const found: UnsafeDir[] = [];
  for (const dir of [layout.root, layout.releases, layout.bundles, layout.state, layout.staging]) {
    const st = lstatOrNull(dir);
    if (st === null) continue; // a missing directory is reported by the operation that needs it
    const why = vaultDirProblem(st);
    if (why !== null) found.push({ path: dir, message: why });
  }
  return found;
}

// Why: every operation starts here; the first unsafe directory is the error (code insecure-path). A vault
// path naming a file (a typo: the bundle's name) is no vault at all, as a missing one is (not-found); a
// symlink stays insecure-path, whatever it leads to.
export function assertSafeVault(layout: VaultLayout): void {
  const first = unsafeAncestors(layout.root)[0];
  if (first !== undefined) throw new SentinelError('insecure-path', first.message, { where: first.path });
  const st = lstatOrNull(layout.root);
  if (st !== null && !st.isDirectory() && !st.isSymbolicLink()) throw new SentinelError('not-found', 'not a vault (not a directory)', { where: layout.root });
  const own = unsafeVaultDirs(layout)[0];
  if (own !== undefined) throw new SentinelError('insecure-path', own.message, { where: own.path });
}

// Why: `vault init` on an existing directory: the directory itself and its parents must already be safe.
export function assertSafeNewVault(root: string): void {
  const first = unsafeAncestors(root)[0];
  if (first !== undefined) throw new SentinelError('insecure-path', first.message, { where: first.path });
  const st = lstatOrNull(root);
  if (st === null) return;
  const why = vaultDirProblem(st);
  if (why !== null) throw new SentinelError('insecure-path', why, { where: root });
}

// Why: vaults made before staging/ was 0700 get it tightened by the next operation (it is scratch space, never sealed).
export async function tightenStaging(staging: string): Promise<void> {
  const st = await fsp.lstat(staging).catch(() => null);
  if (st !== null && st.isDirectory() && (st.mode & 0o077) !== 0) await fsp.chmod(staging, 0o700);
}
