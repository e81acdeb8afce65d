// Recovery after a crash (docs/VAULT.md#invariants 3): the swap of `current` is the commit point, so recovery
// removes whatever an interrupted operation left behind (staging/, current.tmp, a release moved into
// releases/ but never made live, its bundle, a second copy of the live release left by a heal), makes sure `current` names a complete release, raises
// the highest version to the live one, and re-applies +i where an interrupted operation lifted it.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TrustPolicy } from '../core/trust.js';
import {
  emit,
  exists,
  isSealed,
  listKeptReleases,
  readLiveDirName,
  removeTree,
  sealPaths,
  sealWholeTree,
  swapLive,
  verifyKeptRelease,
  withUnsealed,
} from './context.js';
import type { KeptReleaseInfo, VaultCtx } from './context.js';
import { readHighestState, writeHighestState } from './highest.js';
import { retireBundle, retireRelease } from './retire.js';
import { NAMES, parseReleaseDirName, releaseFiles } from './layout.js';
import type { RecoveryReport } from './types.js';

function verifies(ctx: VaultCtx, r: KeptReleaseInfo, policy: TrustPolicy): boolean {
  try {
    verifyKeptRelease(ctx, r, policy);
    return true;
  } catch {
    return false;
  }
}

/**
 * Recovery; the caller holds the vault lock and has checked `anchors` (when given) against vault.json.
 * `interrupted` (a crash was detected, or explicit recover) also re-applies flags.
 */
export async function recoverVault(ctx: VaultCtx, interrupted: boolean, anchors?: TrustPolicy): Promise<RecoveryReport> {
  const { layout } = ctx;
  const report: RecoveryReport = {
    interrupted,
    removedStaging: [],
    removedReleases: [],
    removedBundles: [],
    removedCurrentTmp: false,
    repointedTo: null,
    highestVersion: 0,
    highestRaised: false,
    resealed: 0,
  };

  // 1. Scratch space: everything under staging/ but our own lock.
  for (const name of await readdir(layout.staging)) {
    if (name === NAMES.lock) continue;
    await removeTree(ctx, join(layout.staging, name));
    report.removedStaging.push(name);
  }

  // 2. Top-level flags an interrupted window may have left lifted (only re-applied after a crash, or on explicit recover).
  if (interrupted) {
    for (const p of [layout.config, layout.highest, layout.state, layout.releases, layout.bundles]) {
      if (!(await isSealed(ctx, p))) {
        await sealPaths(ctx, [p]);
        report.resealed++;
      }
    }
  }
  if (await exists(layout.currentTmp)) {
    await withUnsealed(ctx, [layout.root], () => rm(layout.currentTmp, { force: true }));
    report.removedCurrentTmp = true;
  }
  if (interrupted && !(await isSealed(ctx, layout.root))) {
    await sealPaths(ctx, [layout.root]);
    report.resealed++;
  }

  // 3. Releases: one never made live and newer than highest.json is an interrupted deploy — undone.
  // Another copy of the live release is an interrupted heal: the copy it staged (crash before the
  // swap) or the tampered one it replaced (crash after it) — removed as the heal would have.
  const state = await readHighestState(ctx);
  let live: string | null = null;
  try {
    live = await readLiveDirName(ctx);
  } catch {
    live = null;
  }
  const liveId = live === null ? null : (parseReleaseDirName(live)?.releaseId ?? null);
  const { ok, broken } = await listKeptReleases(ctx);
  for (const r of ok) {
    if (r.dirName !== live && (r.manifest.version > state.version || r.releaseId === liveId)) {
      await retireRelease(ctx, r.dirName);
      report.removedReleases.push(r.dirName);
    }
  }
  // A release that cannot be read is no debris of ours (each is complete before it is moved into
  // releases/): a tamper that verify names and heal mends, never deleted here, except a copy of the
  // live release (an interrupted heal's), whose release id the live one still holds.
  for (const name of broken) {
    if (name === live || liveId === null || parseReleaseDirName(name)?.releaseId !== liveId) continue;
    await retireRelease(ctx, name);
    report.removedReleases.push(name);
  }
  const kept = ok.filter((r) => !report.removedReleases.includes(r.dirName));
  const keptBroken = broken.filter((name) => !report.removedReleases.includes(name));

  // 4. `current` missing (or unreadable) is pointed at the newest complete release whose signatures
  // verify against the trust anchors when given, else the vault's policy (nothing unverified is ever
  // made live). A `current` that names a release recovery cannot read (damaged, or gone) is left as
  // it is: repointing would roll back a tamper silently; verify names it and heal re-stages it.
  if (live === null) {
    const fallback = [...kept].reverse().find((r) => verifies(ctx, r, anchors ?? ctx.config.trust));
    if (fallback !== undefined) {
      await swapLive(ctx, fallback.dirName);
      report.repointedTo = fallback.dirName;
      live = fallback.dirName;
    }
  }

  // 5. Sealed releases: a top dir left unsealed by an interrupted move gets its whole tree re-sealed.
  for (const r of kept) {
    const files = releaseFiles(r.dir);
    if (interrupted && !(await isSealed(ctx, r.dir))) {
      report.resealed += await sealWholeTree(ctx, files.tree);
      await sealPaths(ctx, [files.manifest, files.signatures, r.dir]);
      report.resealed += 3;
    }
  }

  // 6. Stored bundles without a kept release are leftovers; bundles left unsealed are re-sealed.
  const keptIds = new Set([...kept.map((r) => r.releaseId), ...keptBroken.map((n) => parseReleaseDirName(n)?.releaseId), ...(liveId === null ? [] : [liveId])]);
  for (const name of await readdir(layout.bundles)) {
    const id = name.endsWith('.bundle') ? name.slice(0, -'.bundle'.length) : null;
    const file = join(layout.bundles, name);
    if (id === null || parseReleaseDirName(id) === null || !keptIds.has(id)) {
      if (id !== null) await retireBundle(ctx, id);
      else await withUnsealed(ctx, [layout.bundles], () => removeTree(ctx, file));
      report.removedBundles.push(name);
    } else if (interrupted && !(await isSealed(ctx, file))) {
      await sealPaths(ctx, [file]);
      report.resealed++;
    }
  }

  // 7. Highest version = max(highest.json, every kept release).
  const liveVersion = kept.reduce((m, r) => Math.max(m, r.manifest.version), 0);
  report.highestVersion = Math.max(state.version, liveVersion);
  if (liveVersion > state.version) {
    const top = kept.filter((r) => r.manifest.version === liveVersion).pop();
    await writeHighestState(ctx, { version: liveVersion, releaseId: top?.releaseId ?? null });
    report.highestRaised = true;
  }
  if (interrupted || report.removedStaging.length > 0 || report.removedReleases.length > 0 || report.repointedTo !== null || report.highestRaised) {
    emit(ctx, { kind: 'recover', detail: JSON.stringify({ ...report }) });
  }
  return report;
}
