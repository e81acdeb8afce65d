// `vault verify`'s checks of the vault's own paths (docs/VAULT.md#invariants 5 and 6): +i and no
// untolerated extended attribute on each, and a release directory's own shape (exactly
// manifest.json, signatures.json and tree/, the tree a directory of the vault's owner, each with the
// mode the deploy gave it). None of them
// reads the release tree, so verify runs a release directory's while the tree pass hashes.
import { lstatSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { messageOf } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import { describeXattrs } from '../core/tree-check.js';
import { FS_IMMUTABLE_FL, areImmutable } from '../adapters/flags.js';
import { defaultXattrLister } from '../adapters/xattrs.js';
import type { VaultCtx } from './context.js';
import { NAMES, releaseFiles } from './layout.js';
import type { VerifyProblem } from './types.js';

export function problem(code: ErrorCode, path: string, message: string): VerifyProblem {
  return { code, path, message, detail: message };
}

const FLAG_SLICE = 512;

/** +i of each of the vault's own paths (not the tree's: the inspection reads those); a flag that cannot be read is a problem. */
export async function checkSealed(ctx: VaultCtx, paths: string[], where: (abs: string) => string, problems: VerifyProblem[]): Promise<void> {
  const store = ctx.deps.flags;
  for (let i = 0; i < paths.length; i += FLAG_SLICE) {
    const slice = paths.slice(i, i + FLAG_SLICE);
    let sealed: (boolean | { failed: string })[];
    try {
      sealed = await areImmutable(store, slice);
    } catch {
      // Some path could not be read: ask one by one so each failure is named.
      sealed = [];
      for (const p of slice) {
        try {
          sealed.push(((await store.getFlags(p)) & FS_IMMUTABLE_FL) !== 0);
        } catch (e) {
          sealed.push({ failed: messageOf(e) });
        }
      }
    }
    slice.forEach((p, j) => {
      const f = sealed[j];
      // A symlink carries no flags: the check that reads or walks that path names it, as tampered or insecure-path (never followed).
      if (typeof f === 'object' && lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink() === true) return;
      if (typeof f === 'object') problems.push(problem('unsealed', where(p), `cannot read the immutable flag: ${f.failed}`));
      else if (f !== true) problems.push(problem('unsealed', where(p), 'not immutable (+i missing)'));
    });
  }
}

/** No untolerated extended attribute on the vault's own paths (its files, directories, `current`, each release's files and tree root). */
export async function checkOwnXattrs(all: string[], where: (abs: string) => string, problems: VerifyProblem[]): Promise<void> {
  // A missing path is another check's problem (a missing file, no release deployed).
  const paths = all.filter((p) => lstatSync(p, { throwIfNoEntry: false }) !== undefined);
  const found = await defaultXattrLister().listPaths(paths);
  paths.forEach((p, i) => {
    const x = found[i];
    if (x === undefined || !x.ok) problems.push(problem('io', where(p), `cannot list the extended attributes: ${x?.ok === false ? x.error : 'not read'}`));
    else if (x.value.length > 0) problems.push(problem('tampered', where(p), describeXattrs(x.value)));
  });
}

/** What a release directory's own checks found; `tree`: whether its tree is a directory, to be compared with the manifest. */
export interface ReleaseDirCheck {
  problems: VerifyProblem[];
  tree: boolean;
}

/** The modes a deploy gives a release's own paths (docs/VAULT.md#modes); the manifest lists the tree's entries, not these. */
const RELEASE_DIR_MODE = 0o755;
const SIGNED_FILE_MODE = 0o444;

// Why: a mode the deploy set and no manifest records (0777 on a release directory lets anyone add to it
// once +i is lifted; 0700 on the tree root locks the services out) is still a change, named like the tree's.
async function checkReleaseModes(dir: string, treeMode: number, where: (abs: string) => string, problems: VerifyProblem[]): Promise<void> {
  const files = releaseFiles(dir);
  const modeOf = async (p: string): Promise<number | null> => {
    // Missing, unreadable or a symlink: the checks that read those paths name it.
    const st = await lstat(p).catch(() => null);
    return st === null || st.isSymbolicLink() ? null : st.mode & 0o7777;
  };
  const found: [string, number | null, number][] = [
    [dir, await modeOf(dir), RELEASE_DIR_MODE],
    [files.tree, treeMode & 0o7777, RELEASE_DIR_MODE],
    [files.manifest, await modeOf(files.manifest), SIGNED_FILE_MODE],
    [files.signatures, await modeOf(files.signatures), SIGNED_FILE_MODE],
  ];
  for (const [p, mode, want] of found) {
    if (mode !== null && mode !== want) problems.push(problem('tampered', where(p), `mode ${mode.toString(8)}, the vault sets ${want.toString(8)}`));
  }
}

// Why: a release directory is exactly its manifest, signatures and tree, sealed, without extended
// attributes, its tree owned as the vault is; in this order its problems are named, before the tree's.
export async function checkReleaseDir(ctx: VaultCtx, dir: string): Promise<ReleaseDirCheck> {
  const problems: VerifyProblem[] = [];
  const files = releaseFiles(dir);
  const rel = (abs: string) => relative(ctx.path, abs) || '.';
  // The release directory holds exactly manifest.json, signatures.json and tree/.
  const top = await readdir(dir);
  for (const name of top) {
    if (name !== NAMES.manifest && name !== NAMES.signatures && name !== NAMES.tree) problems.push(problem('tampered', rel(join(dir, name)), 'extra entry in the release directory'));
  }
  let treeSt;
  try {
    treeSt = await lstat(files.tree);
  } catch {
    problems.push(problem('tampered', rel(files.tree), 'release tree is missing'));
    return { problems, tree: false };
  }
  if (!treeSt.isDirectory()) {
    problems.push(problem('tampered', rel(files.tree), 'release tree is not a directory'));
    return { problems, tree: false };
  }
  // Every entry must have the tree root's owner (checkTree); the root's uid must be the vault's (root, or the user running the sentinel).
  const vaultUid = (await lstat(ctx.layout.root)).uid;
  if (treeSt.uid !== vaultUid) problems.push(problem('tampered', rel(files.tree), `owned by uid ${treeSt.uid}; the vault belongs to uid ${vaultUid}`));
  await checkReleaseModes(dir, treeSt.mode, rel, problems);
  await checkSealed(ctx, [files.tree, files.manifest, files.signatures, dir], rel, problems);
  await checkOwnXattrs([files.tree, files.manifest, files.signatures, dir], rel, problems);
  return { problems, tree: true };
}
