// The vault's directories held open for one write operation (docs/SECURITY.md#how-deploy-and-heal-write):
// VAULT/ is opened with O_DIRECTORY|O_NOFOLLOW, releases/, bundles/, state/ and staging/ relative to
// it, and a staged release relative to staging/; each is checked with fstat (a directory, owned by
// root, not writable by group or others, on the vault's filesystem; a staged release also freshly
// made by us and empty). Every write then goes through these descriptors: the *at calls, or a path
// anchored at a held descriptor, `/proc/<pid>/fd/<fd>/<name>`, which the kernel resolves through the
// open directory itself, never through the vault's path. So a directory renamed or swapped for a
// symlink under a running deploy cannot redirect a write, a seal or a rename.
import { closeSync, constants, fstatSync, fsync, openSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { SentinelError, isSentinelError } from '../core/errors.js';
import { ioError } from '../core/errno.js';
import { dirFdOps, openDirAt } from '../adapters/dir-fd.js';
import type { DirFdOps } from '../adapters/dir-fd.js';
import { NAMES } from './layout.js';
import type { VaultLayout } from './layout.js';
import type { VaultCtx } from './context.js';
import { vaultDirProblem } from './safety.js';

/** A directory this operation opened and checked, and what it is called in messages. */
export interface HeldDir {
  fd: number;
  dev: number;
  ino: number;
  where: string;
}

/** The path of `name` inside a held directory, resolved by the kernel through the descriptor ('.' is the directory itself). */
export function anchored(fd: number, name: string): string {
  return `/proc/${process.pid}/fd/${fd}/${name}`;
}

/**
 * fsync(2) of a held directory through the descriptor held since the operation began: no re-open
 * (one pool round trip instead of three), and a writeback error since then is reported too.
 */
export function fsyncHeld(d: HeldDir): Promise<void> {
  return new Promise((resolve, reject) => fsync(d.fd, (e) => (e === null ? resolve() : reject(ioError(e, 'cannot flush a vault directory', d.where)))));
}

function checkHeld(st: Stats, where: string, dev: number | null): void {
  const why = vaultDirProblem(st);
  if (why !== null) throw new SentinelError('insecure-path', why, { where });
  if (dev !== null && st.dev !== dev) throw new SentinelError('tampered', 'is not on the vault filesystem (a mount or a swapped directory)', { where });
}

// Why: one open-and-check for every held directory; the fd is closed again when the check fails.
function holdAt(ops: DirFdOps, parent: HeldDir, name: string, where: string): HeldDir {
  let fd: number;
  try {
    fd = openDirAt(ops, parent.fd, name);
  } catch (e) {
    throw ioError(e, 'cannot open a vault directory (a symlink or a missing directory is refused)', where);
  }
  try {
    const st = fstatSync(fd);
    checkHeld(st, where, parent.dev);
    return { fd, dev: st.dev, ino: st.ino, where };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** VAULT/ and its four directories, held for one operation. */
export class HeldVault {
  private readonly extra: HeldDir[] = [];
  private readonly names = new Map<string, string>();

  private constructor(
    readonly ops: DirFdOps,
    readonly root: HeldDir,
    readonly releases: HeldDir,
    readonly bundles: HeldDir,
    readonly state: HeldDir,
    readonly staging: HeldDir,
  ) {
    for (const d of [root, releases, bundles, state, staging]) this.names.set(anchored(d.fd, ''), `${d.where}/`);
  }

  // Why: every write of a deploy, heal or rollback starts from these descriptors, never from the vault's path again.
  static open(layout: VaultLayout, ops: DirFdOps = dirFdOps()): HeldVault {
    let rootFd: number;
    try {
      rootFd = openSync(layout.root, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    } catch (e) {
      throw ioError(e, 'cannot open the vault directory (a symlink is refused)', layout.root);
    }
    const held: HeldDir[] = [];
    try {
      const st = fstatSync(rootFd);
      checkHeld(st, layout.root, null);
      const root = { fd: rootFd, dev: st.dev, ino: st.ino, where: layout.root };
      held.push(root);
      for (const [name, where] of [
        [NAMES.releases, layout.releases],
        [NAMES.bundles, layout.bundles],
        [NAMES.state, layout.state],
        [NAMES.staging, layout.staging],
      ] as const) {
        held.push(holdAt(ops, root, name, where));
      }
      return new HeldVault(ops, root, held[1]!, held[2]!, held[3]!, held[4]!);
    } catch (e) {
      if (held.length === 0) closeSync(rootFd);
      for (const d of held) closeSync(d.fd);
      throw e;
    }
  }

  // Why: a staged release is a directory we just made in the held staging/: it must be ours, empty, on the vault's filesystem.
  makeStaged(name: string): HeldDir {
    const where = join(this.staging.where, name);
    try {
      this.ops.mkdirAt(this.staging.fd, name, 0o700);
    } catch (e) {
      throw ioError(e, 'cannot create the staged release', where);
    }
    const d = holdAt(this.ops, this.staging, name, where);
    this.extra.push(d);
    this.names.set(anchored(d.fd, ''), `${where}/`);
    const st = fstatSync(d.fd);
    if ((st.mode & 0o777) !== 0o700 || st.nlink !== 2 || this.ops.readDir(d.fd).length !== 0) {
      throw new SentinelError('tampered', 'the staged release was replaced before it could be used', { where });
    }
    return d;
  }

  /** A directory below a held one, opened and checked like the vault's own and closed with them. */
  holdAt(parent: HeldDir, name: string, where: string): HeldDir {
    const d = holdAt(this.ops, parent, name, where);
    this.extra.push(d);
    return d;
  }

  /** Whether `name` in `dir` is (still) the held directory `d`: same device and inode, never following a symlink. */
  isAt(dir: HeldDir, name: string, d: HeldDir): boolean {
    try {
      const st = this.ops.statAt(dir.fd, name);
      return st.dev === d.dev && st.ino === d.ino;
    } catch {
      return false;
    }
  }

  /** The layout of this vault with every directory replaced by its held descriptor. */
  layout(real: VaultLayout): VaultLayout {
    const a = (d: HeldDir, name: string) => anchored(d.fd, name);
    return {
      ...real,
      root: a(this.root, '.'),
      config: a(this.root, NAMES.config),
      current: a(this.root, NAMES.current),
      currentTmp: a(this.root, NAMES.currentTmp),
      releases: a(this.releases, '.'),
      bundles: a(this.bundles, '.'),
      state: a(this.state, '.'),
      highest: a(this.state, NAMES.highest),
      staging: a(this.staging, '.'),
      lock: a(this.staging, NAMES.lock),
      release: (name: string) => a(this.releases, name),
      bundle: (releaseId: string) => a(this.bundles, `${releaseId}.bundle`),
    };
  }

  /** A path anchored at a held descriptor, written back as the vault path it stands for (messages, audit events). */
  label(path: string): string {
    if (!path.startsWith(`/proc/${process.pid}/fd/`)) return path;
    for (const [prefix, name] of this.names) {
      if (path.startsWith(prefix)) {
        const rest = path.slice(prefix.length);
        return rest === '.' || rest === '' ? name.slice(0, -1) : join(name, rest);
      }
    }
    return path;
  }

  close(): void {
    for (const d of [...this.extra, this.root, this.releases, this.bundles, this.state, this.staging]) {
      try {
        closeSync(d.fd);
      } catch {
        // Already closed.
      }
    }
    this.extra.length = 0;
  }
}

// Why: renameat2 between two held directories; what moves is found by name in `from`.
export function renameHeld(held: HeldVault, from: HeldDir, to: HeldDir, name: string, noReplace = false): void {
  try {
    held.ops.renameAt(from.fd, name, to.fd, name, noReplace);
  } catch (e) {
    throw ioError(e, `cannot move ${name} into ${to.where}`, join(from.where, name));
  }
}

// Why: a rename goes by name, so the name is checked to be the held staged release just before and
// just after it moves into releases/; anything else there (a copy, a symlink) is refused, and the
// caller takes it out again (onMoved marks that something did move).
export function moveStaged(held: HeldVault, name: string, d: HeldDir, onMoved: () => void): void {
  if (!held.isAt(held.staging, name, d)) throw new SentinelError('tampered', 'the staged release was replaced in staging/ before it was moved into releases/', { where: d.where });
  renameHeld(held, held.staging, held.releases, name, true);
  onMoved();
  if (!held.isAt(held.releases, name, d)) {
    throw new SentinelError('tampered', 'the staged release was replaced while it was moved into releases/', { where: join(held.releases.where, name) });
  }
}

// Why: deploy, heal and rollback run on a context whose layout is the held descriptors; messages and
// audit events still name the vault's real paths.
export async function withHeldVault<T>(ctx: VaultCtx, act: (held: HeldVault, opCtx: VaultCtx) => Promise<T>): Promise<T> {
  const held = HeldVault.open(ctx.layout);
  const opCtx: VaultCtx = { ...ctx, layout: held.layout(ctx.layout), label: (p) => held.label(p) };
  try {
    return await act(held, opCtx);
  } catch (e) {
    if (isSentinelError(e) && e.where !== undefined) {
      const where = held.label(e.where);
      if (where !== e.where) throw new SentinelError(e.code, e.message, { where, cause: e.cause ?? e });
    }
    throw e;
  } finally {
    held.close();
  }
}
