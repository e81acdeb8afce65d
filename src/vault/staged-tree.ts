// The `tree/` of a staged release, written and sealed through directory fds
// (docs/VAULT.md#staging-through-directory-fds): made with mkdirat in the held staged release, each
// of its directories reached with openat2 beneath it (no symlink followed at any component, never
// leaving it) and checked with fstat before a mkdirat, symlinkat, fchmod or flag change goes through
// it. A flag is set through a path anchored at the checked descriptor of the entry's own directory.
import { closeSync, constants, fchmodSync, fstatSync } from 'node:fs';
import { SentinelError } from '../core/errors.js';
import { ioError } from '../core/errno.js';
import type { ManifestEntry } from '../core/manifest.js';
import { openDirAt } from '../adapters/dir-fd.js';
import type { DirFdOps } from '../adapters/dir-fd.js';
import { seal } from '../adapters/flags.js';
import { emit } from './context.js';
import type { VaultCtx } from './context.js';
import { anchored } from './held.js';
import type { HeldDir, HeldVault } from './held.js';

/** Directory descriptors held at once while sealing; more are sealed in several batches. */
const SEAL_BATCH_DIRS = 256;

const parentOf = (rel: string): string => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
const leafOf = (rel: string): string => rel.slice(rel.lastIndexOf('/') + 1);

// Why: the one writer of a staged tree; every call resolves below `fd`, never through a name above it.
export class StagedTree {
  private constructor(
    private readonly ops: DirFdOps,
    readonly fd: number,
    private readonly dev: number,
    readonly where: string,
  ) {}

  // Made in the held staged release, 0700 until its manifest mode is applied.
  static make(held: HeldVault, staged: HeldDir): StagedTree {
    const where = `${staged.where}/tree`;
    try {
      held.ops.mkdirAt(staged.fd, 'tree', 0o700);
    } catch (e) {
      throw ioError(e, 'cannot create the staged tree', where);
    }
    const d = held.holdAt(staged, 'tree', where);
    return new StagedTree(held.ops, d.fd, d.dev, where);
  }

  /** The checked descriptor of a directory of the tree ('' is the tree itself, not to be closed). */
  dirFd(rel: string): number {
    if (rel === '') return this.fd;
    let fd: number;
    try {
      fd = openDirAt(this.ops, this.fd, rel);
    } catch (e) {
      throw ioError(e, 'cannot open a staged directory (changed underneath)', `${this.where}/${rel}`);
    }
    const st = fstatSync(fd);
    if (!st.isDirectory() || st.dev !== this.dev || st.uid !== (process.geteuid?.() ?? 0)) {
      closeSync(fd);
      throw new SentinelError('tampered', 'a staged directory is not the one this deploy made', { where: `${this.where}/${rel}` });
    }
    return fd;
  }

  private inDir<T>(rel: string, act: (fd: number) => T): T {
    const fd = this.dirFd(rel);
    try {
      return act(fd);
    } finally {
      if (fd !== this.fd) closeSync(fd);
    }
  }

  mkdir(rel: string): void {
    this.inDir(parentOf(rel), (fd) => this.ops.mkdirAt(fd, leafOf(rel), 0o700));
  }

  symlink(rel: string, target: string): void {
    this.inDir(parentOf(rel), (fd) => this.ops.symlinkAt(target, fd, leafOf(rel)));
  }

  chmod(rel: string, mode: number): void {
    this.inDir(rel, (fd) => fchmodSync(fd, mode));
  }

  /** A new payload file (O_CREAT|O_EXCL, 0600), opened beneath the tree; for the writer without the addon. */
  create(rel: string): number {
    return this.ops.openAt(this.fd, rel, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  }

  // Why: invariant 1 — every file and directory of the tree sealed (+i), each directory after what it
  // holds, each through the checked descriptor of its own directory. Returns how many were sealed.
  async seal(ctx: VaultCtx, entries: readonly ManifestEntry[]): Promise<number> {
    const filesIn = new Map<string, string[]>([['', []]]);
    for (const e of entries) if (e.type === 'dir') filesIn.set(e.path, []);
    for (const e of entries) if (e.type === 'file') filesIn.get(parentOf(e.path))!.push(leafOf(e.path));
    // Deepest first: a directory is sealed after every directory below it.
    const order = [...filesIn.keys()].sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? 1 : -1));
    order.sort((a, b) => (a === '' ? 1 : b === '' ? -1 : 0));
    let count = 0;
    for (let i = 0; i < order.length; i += SEAL_BATCH_DIRS) {
      const fds: number[] = [];
      const paths: string[] = [];
      try {
        for (const rel of order.slice(i, i + SEAL_BATCH_DIRS)) {
          const fd = this.dirFd(rel);
          if (fd !== this.fd) fds.push(fd);
          for (const leaf of filesIn.get(rel)!) paths.push(anchored(fd, leaf));
          paths.push(anchored(fd, '.'));
        }
        try {
          await seal(ctx.deps.flags, paths);
        } catch (e) {
          // The flag store names an anchored path; the message names the staged tree.
          if (e instanceof SentinelError) throw new SentinelError(e.code, e.message, { where: this.where, cause: e });
          throw e;
        }
        count += paths.length;
      } finally {
        for (const fd of fds) closeSync(fd);
      }
    }
    emit(ctx, { kind: 'seal', path: this.where, count });
    return count;
  }
}
