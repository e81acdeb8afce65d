// Taking a release or a stored bundle out of the vault: moved out of its sealed directory inside a
// short unseal, then deleted where nothing is sealed (docs/VAULT.md#deploy, pruning).
import { lstat, rename, rm, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fsyncDir } from '../adapters/bundle-file.js';
import { exists, removeTree, sealPaths, unsealPaths, withUnsealed } from './context.js';
import { putBack } from './stage.js';
import type { VaultCtx } from './context.js';

/** Unseals one entry for an act that moves or removes it; if the act fails, the entry is sealed again. */
async function withEntryUnsealed(ctx: VaultCtx, entry: string, act: () => Promise<void>): Promise<void> {
  await unsealPaths(ctx, [entry]);
  try {
    await act();
  } catch (e) {
    await sealPaths(ctx, [entry]).catch(() => undefined);
    throw e;
  }
}

/**
 * Takes a release (and nothing else) out of releases/: moved into staging/, where it can be deleted
 * unsealed, and that path returned (null: nothing to delete). Durable once releases/ is fsync'ed,
 * which must come before the deletion (else a power cut could keep a half-deleted release).
 */
export async function moveReleaseOut(ctx: VaultCtx, dirName: string): Promise<{ trash: string | null } | null> {
  const src = ctx.layout.release(dirName);
  let st;
  try {
    st = await lstat(src);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (!st.isDirectory() && !st.isFile()) {
    // Not a release: what a racing root put in its place (a symlink moved in under a deploy or heal).
    // It carries no inode flags to lift; it is unlinked in releases/ itself (src is anchored at the
    // held directory), so neither it nor what it points to is ever followed.
    await withUnsealed(ctx, [ctx.layout.releases], () => unlink(src));
    return { trash: null };
  }
  const trash = join(ctx.layout.staging, `trash-${dirName}-${randomBytes(4).toString('hex')}`);
  await withUnsealed(ctx, [ctx.layout.releases], () => withEntryUnsealed(ctx, src, () => rename(src, trash)));
  return { trash };
}

/** Moves a release out of releases/ (made durable), then deletes it from staging/. */
export async function retireRelease(ctx: VaultCtx, dirName: string): Promise<void> {
  const moved = await moveReleaseOut(ctx, dirName);
  if (moved === null) return;
  await fsyncDir(ctx.layout.releases);
  if (moved.trash !== null) await removeTree(ctx, moved.trash);
}

/** Removes a stored bundle from bundles/. */
export async function retireBundle(ctx: VaultCtx, releaseId: string): Promise<void> {
  const file = ctx.layout.bundle(releaseId);
  try {
    await lstat(file);
  } catch {
    return;
  }
  await withUnsealed(ctx, [ctx.layout.bundles], () => withEntryUnsealed(ctx, file, () => rm(file, { force: true })));
}

/** What a deploy had moved into the vault before it failed short of the swap. */
export interface Uncommitted {
  dirName: string;
  staged: string;
  releaseMoved: boolean;
  stagedBundle: string;
  storedBundle: string;
  bundleStored: boolean;
  releaseId: string;
}

// Why: invariant 4 (docs/VAULT.md#invariants) — a deploy that fails before the pointer swap must leave the vault as it was; a
// release left in releases/ would count towards the highest version and refuse the same bundle again.
export async function undoUncommitted(ctx: VaultCtx, u: Uncommitted, consumed: { path: string; mode: number } | null): Promise<void> {
  if (u.releaseMoved) await retireRelease(ctx, u.dirName);
  else await removeTree(ctx, u.staged);
  if (u.bundleStored) {
    if (consumed !== null && !(await exists(consumed.path))) {
      await withUnsealed(ctx, [ctx.layout.bundles], async () => {
        await unsealPaths(ctx, [u.storedBundle]);
        await putBack(u.storedBundle, consumed.path, consumed.mode);
      });
    }
    await retireBundle(ctx, u.releaseId);
  } else {
    if (consumed !== null && (await exists(u.stagedBundle)) && !(await exists(consumed.path))) await putBack(u.stagedBundle, consumed.path, consumed.mode);
    await rm(u.stagedBundle, { force: true });
  }
}
