// The kept releases as a deploy sees them (docs/VAULT.md#deploy): read once, with state/highest.json,
// for the version check before staging and for pruning after the swap.
import { fsyncDir } from '../adapters/bundle-file.js';
import { allInOrder, byVersion, listKeptReleases, readLiveDirName, removeTree, step } from './context.js';
import { readHighestState } from './highest.js';
import type { KeptReleaseInfo, VaultCtx } from './context.js';
import type { HighestState } from './layout.js';
import { moveReleaseOut, retireBundle } from './retire.js';

/** state/highest.json and every kept release that can be read, as one deploy reads them once. */
export interface KeptScan {
  state: HighestState;
  kept: KeptReleaseInfo[];
  /** max(state, every kept release): the version a new deploy must exceed. */
  highest: number;
}

// Why: rollback protection counts every release still kept, not only state/highest.json, so a lost
// or stale state file cannot re-open an older version. A deploy reads them once (under the vault
// lock nothing else changes them) and prunes from the same list.
export async function scanKept(ctx: VaultCtx): Promise<KeptScan> {
  const [state, { ok }] = await Promise.all([readHighestState(ctx), listKeptReleases(ctx)]);
  return { state, kept: ok, highest: ok.reduce((max, r) => Math.max(max, r.manifest.version), state.version) };
}

export async function highestVersion(ctx: VaultCtx): Promise<number> {
  return (await scanKept(ctx)).highest;
}

// Why: keeps the newest `keep` releases for rollback, and never removes the live one or the one it
// replaced. Every release it removes is moved out of releases/ first; one flush of releases/ (with
// `flushWith`, directories whose renames the caller wants flushed at the same time) makes the moves
// durable before anything is deleted (docs/VAULT.md#durability). `known`: the kept releases as the
// caller read them (a deploy), else they are read here.
export async function prune(ctx: VaultCtx, previous: string | null, opts: { known?: KeptReleaseInfo[]; flushWith?: string[] } = {}): Promise<string[]> {
  const live = await readLiveDirName(ctx);
  const ok = opts.known === undefined ? (await listKeptReleases(ctx)).ok : [...opts.known].sort(byVersion);
  const newestFirst = [...ok].reverse();
  const keepNames = new Set<string>(newestFirst.slice(0, ctx.keep).map((r) => r.dirName));
  if (live !== null) keepNames.add(live);
  if (previous !== null) keepNames.add(previous);
  const removed: string[] = [];
  const trash: string[] = [];
  const bundles: string[] = [];
  for (const r of newestFirst) {
    if (keepNames.has(r.dirName)) continue;
    const moved = await moveReleaseOut(ctx, r.dirName);
    removed.push(r.dirName);
    if (moved?.trash != null) trash.push(moved.trash);
    if (!ok.some((o) => o.releaseId === r.releaseId && keepNames.has(o.dirName))) bundles.push(r.releaseId);
  }
  await allInOrder([...(removed.length > 0 ? [fsyncDir(ctx.layout.releases)] : []), ...(opts.flushWith ?? []).map((d) => fsyncDir(d))]);
  // The middle of pruning: moved out and flushed, not yet deleted (crash tests stop here).
  await step(ctx, 'pruning');
  // The moved releases (in staging/, each deleted by the addon's walk on threads of its own) and their
  // stored bundles go at the same time: on a busy ext4 every unlink may wait for a journal commit, and
  // these waits then overlap. The bundles one after the other (each unseals and re-seals bundles/,
  // which must not close under another's removal). All settle before the first error is thrown.
  const retireBundles = async (): Promise<void> => {
    for (const id of bundles) await retireBundle(ctx, id);
  };
  await allInOrder([...trash.map((t) => removeTree(ctx, t)), retireBundles()]);
  return removed;
}
