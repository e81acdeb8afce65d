// The guardian's cheap periodic check (docs/DAEMON.md#tamper-watch-and-healing): every file and directory of the live
// release, the vault's root and releases/ still carry +i. The path list is cached per live release (it only
// changes on deploy/heal); an added file needs its directory unsealed first, which this check or the directory
// watch sees.
import { readlink } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { messageOf } from '../core/errors.js';
import { FS_IMMUTABLE_FL, listFlagTargets, type FlagStore } from '../adapters/flags.js';

export class FlagAudit {
  private targets: { liveDir: string; paths: string[] } | null = null;

  constructor(
    private readonly root: string,
    private readonly store: FlagStore,
  ) {}

  /** The vault-relative paths that lost +i (a line saying so when the flags could not be read). */
  async unsealed(): Promise<string[]> {
    const root = this.root;
    // A fresh vault has no `current` yet: then only its own directories are audited (verify judges the rest).
    const pointer = await readlink(join(root, 'current')).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    });
    const liveDir = pointer === null ? '' : basename(pointer);
    if (this.targets === null || this.targets.liveDir !== liveDir) {
      const { files, dirs } = pointer === null ? { files: [], dirs: [] } : await listFlagTargets(join(root, 'releases', liveDir));
      this.targets = { liveDir, paths: [root, join(root, 'releases'), ...dirs, ...files] };
    }
    const paths = this.targets.paths;
    const store = this.store;
    let flags: number[];
    try {
      flags = store.getFlagsMany !== undefined ? await store.getFlagsMany(paths) : await Promise.all(paths.map((p) => store.getFlags(p)));
    } catch (e) {
      this.targets = null;
      return [`(flag audit could not read: ${messageOf(e)})`];
    }
    const out: string[] = [];
    flags.forEach((f, i) => {
      if ((f & FS_IMMUTABLE_FL) === 0) out.push(relative(root, paths[i] ?? '').split(sep).join('/'));
    });
    return out;
  }
}
