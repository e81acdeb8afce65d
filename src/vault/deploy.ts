// Deploy, heal and rollback (docs/VAULT.md#invariants 1–4): verify the bundle's head
// against the trust policy before anything is written, stage and hash-check every file, seal the
// staged release, move it into releases/, then swap the live pointer inside the one short unseal of
// VAULT/. The swap is the commit point: a crash before it leaves the old release live, after it the new.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SentinelError, exitCodeFor, isSentinelError } from '../core/errors.js';
import { payloadLayout } from '../core/manifest.js';
import { parseSignatures } from '../core/signature.js';
import { checkDeployable, verifySignedManifest } from '../core/trust.js';
import type { VerifiedManifest } from '../core/trust.js';
import { openBundle } from '../adapters/bundle-file.js';
import { checkKeptBundle } from '../adapters/kept-bundle.js';
import type { OpenedBundle } from '../adapters/bundle-file.js';
import { anchored, fsyncHeld, moveStaged, renameHeld, withHeldVault } from './held.js';
import type { HeldDir, HeldVault } from './held.js';
import { canKeepWhileStaging, makeDurable, putBack, stageRelease, storeBundleIn } from './stage.js';
import type { StageStats } from './stage.js';
import {
  emit,
  exists,
  listKeptReleases,
  listReleaseDirs,
  readKeptRelease,
  readLiveDirName,
  removeTree,
  sealPaths,
  step,
  swapLive,
  unsealPaths,
  verifyKeptRelease,
  withUnsealed,
  allInOrder,
} from './context.js';
import type { VaultCtx } from './context.js';
import { undoUncommitted } from './retire.js';
import { scanKept, type KeptScan } from './kept.js';
import { afterCommit, finishAfterLive } from './deploy-tail.js';
import { raiseHighestToKept } from './highest.js';
import { parseReleaseDirName, releaseFiles } from './layout.js';
import { verifyRelease } from './verify.js';
import type { DeployResult } from './types.js';
import { ed25519Verify, sha512 } from './ed25519.js';
export { highestVersion } from './kept.js';

function rejectEvent(ctx: VaultCtx, e: unknown, bundlePath: string): void {
  if (isSentinelError(e)) emit(ctx, { kind: 'reject', code: e.code, path: e.where ?? bundlePath, detail: e.message });
  else emit(ctx, { kind: 'reject', code: 'internal', path: bundlePath, detail: String(e) });
}

async function nextHealName(ctx: VaultCtx, releaseId: string): Promise<string> {
  let n = 0;
  for (const name of await listReleaseDirs(ctx)) {
    const p = parseReleaseDirName(name);
    if (p !== null && p.releaseId === releaseId) n = Math.max(n, p.heal);
  }
  return `${releaseId}.h${n + 1}`;
}

/** `onLive`: see Vault.deploy (src/vault/types.ts). */
export interface DeployOptions {
  consume?: boolean;
  noFollow?: boolean;
  onLive?: (result: DeployResult) => void;
}

/**
 * Deploys (kind `deploy`) or re-stages the live release from its stored bundle (kind `heal`).
 * The caller holds the vault lock.
 */
export function deployFrom(ctx: VaultCtx, bundlePath: string, kind: 'deploy' | 'heal', opts: DeployOptions = {}): Promise<DeployResult> {
  return withHeldVault(ctx, (held, opCtx) => deployHeld(opCtx, held, bundlePath, kind, opts));
}

// Every write below goes through `held` (src/vault/held.ts): ctx.layout is anchored at its descriptors.
async function deployHeld(ctx: VaultCtx, held: HeldVault, bundlePath: string, kind: 'deploy' | 'heal', opts: DeployOptions): Promise<DeployResult> {
  const t0 = performance.now();
  const { layout } = ctx;
  const previous = await readLiveDirName(ctx);
  // A deploy reads the kept releases while the bundle's head is read and verified; the read is
  // awaited where it was needed before (errors keep their order) and has settled on every path out,
  // so none outlives the held descriptors.
  const scanning = kind === 'deploy' ? scanKept(ctx) : null;
  const scanSettled = scanning?.then(
    () => undefined,
    () => undefined,
  );
  let bundle: OpenedBundle;
  try {
    bundle = await openBundle(bundlePath, ctx.limits, { noFollow: opts.noFollow === true, kept: kind === 'heal' });
  } catch (e) {
    await scanSettled;
    rejectEvent(ctx, e, bundlePath);
    throw e;
  }
  // A consumed bundle that is put back gets its own mode back (it is made 0444 while kept).
  const consume = opts.consume === true;
  let bundleMode = 0;
  let v: VerifiedManifest;
  let scan: KeptScan | null = null;
  let dirName: string;
  let staged: string;
  let stagedByName: string;
  let stagedDir: HeldDir;
  let stagedBundle: string;
  let storedBundle: string;
  let storeBundle: boolean;
  // The kept copy written by the staging pass from the bytes it hashed; else copied or moved in, and read back before the swap.
  let keptWhileStaging = false;
  let movedIn = false;
  let stats: StageStats;
  // The bundle's descriptor is closed on every path out of verification and staging.
  try {
    try {
      if (consume) bundleMode = (await bundle.handle.stat()).mode & 0o7777;
      const sigs = parseSignatures(bundle.signatureBytes, ctx.limits);
      v = verifySignedManifest(bundle.manifestBytes, sigs, ctx.config.trust, ctx.limits, { verify: ed25519Verify, sha512 });
      if (scanning !== null) {
        scan = await scanning;
        checkDeployable(v, { vaultId: ctx.config.vaultId, highestVersion: scan.highest, now: ctx.deps.now() });
      } else {
        // Heal re-stages what is already live: same release, same vault; expiry does not apply (docs/VAULT.md).
        if (v.manifest.vaultId !== ctx.config.vaultId) throw new SentinelError('wrong-vault', `stored bundle is bound to vault ${v.manifest.vaultId}`, { where: bundlePath });
        const live = previous === null ? null : parseReleaseDirName(previous);
        if (live?.releaseId !== v.releaseId) throw new SentinelError('tampered', 'stored bundle is not the live release', { where: bundlePath });
      }
    } catch (e) {
      await scanSettled;
      rejectEvent(ctx, e, bundlePath);
      throw e;
    }
    await step(ctx, 'verified');

    dirName = kind === 'deploy' ? v.releaseId : await nextHealName(ctx, v.releaseId);
    if (await exists(layout.release(dirName))) {
      throw new SentinelError('exists', 'a release with this id is already kept', { where: layout.release(dirName) });
    }
    stagedByName = join(layout.staging, dirName);
    stagedBundle = join(layout.staging, `${v.releaseId}.bundle`);
    storedBundle = layout.bundle(v.releaseId);
    storeBundle = kind === 'deploy' || !(await exists(storedBundle));
    try {
      // staging/ holds nothing but the lock here: the caller took the lock and ran recovery if it held
      // anything else (src/vault/index.ts). Both names are created exclusively (mkdirat, O_EXCL), so
      // one put there since is refused, never written through.
      stagedDir = held.makeStaged(dirName);
      staged = anchored(stagedDir.fd, '.');
      // A copied bundle is kept from the bytes the staging pass hashes (verify-then-write); else the
      // copy or move of the bundle runs alongside the hash-checked staging of its payload.
      keptWhileStaging = storeBundle && !consume && canKeepWhileStaging();
      const copied = storeBundle && !keptWhileStaging ? storeBundleIn(bundle, stagedBundle, consume) : Promise.resolve(false);
      const staging = stageRelease(bundle, v, held, stagedDir, keptWhileStaging ? `${v.releaseId}.bundle` : null);
      // Both settle before any cleanup, so a failed staging never races a still-running copy.
      const settled = await Promise.allSettled([staging, copied]);
      movedIn = settled[1].status === 'fulfilled' && settled[1].value;
      for (const x of settled) if (x.status === 'rejected') throw x.reason;
      stats = await staging;
      await step(ctx, 'staged');
      await makeDurable(staged, stats.written, storeBundle ? stagedBundle : null, layout.staging, held.staging.fd);
      const files = releaseFiles(staged);
      await stats.tree.seal(ctx, v.manifest.entries);
      await sealPaths(ctx, [files.manifest, files.signatures]);
      await step(ctx, 'sealed-release');
    } catch (e) {
      await removeTree(ctx, stagedByName).catch(() => undefined);
      if (consume && storeBundle && (await exists(stagedBundle)) && !(await exists(bundlePath))) {
        // A consumed bundle goes back where it came from when the deploy is rejected.
        await putBack(stagedBundle, bundlePath, bundleMode);
      }
      await rm(stagedBundle, { force: true }).catch(() => undefined);
      if (isSentinelError(e) && exitCodeFor(e.code) === 1) rejectEvent(ctx, e, bundlePath);
      throw e;
    }
  } finally {
    await bundle.close();
  }

  // Short windows: each parent is unsealed only for one rename and the seal of the moved entry.
  // Until the swap nothing is committed: a failure here takes the release (and the bundle stored
  // with it) out again, so the vault is as it was and the same bundle can be deployed later.
  const finalDir = layout.release(dirName);
  let liveWindowMs = 0;
  let warning: string | undefined;
  let releaseMoved = false;
  let bundleStored = false;
  try {
    await withUnsealed(ctx, [layout.releases], async () => {
      moveStaged(held, dirName, stagedDir, () => (releaseMoved = true));
      // Sealed through the held descriptor: exactly the directory staged and checked above.
      await sealPaths(ctx, [staged]);
    });
    if (storeBundle) {
      await withUnsealed(ctx, [layout.bundles], async () => {
        if (await exists(storedBundle)) {
          await unsealPaths(ctx, [storedBundle]);
          await rm(storedBundle, { force: true });
        }
        renameHeld(held, held.staging, held.bundles, `${v.releaseId}.bundle`);
        bundleStored = true;
        await sealPaths(ctx, [storedBundle]);
      });
    }
    // Both renames made durable before the swap, by one flush of the two directories (docs/VAULT.md#durability),
    // while a kept bundle that was copied or moved in, sealed now, is read back: what is kept for heal must be
    // the verified bytes (rewritten in place meanwhile: refused). One written by the staging pass already is.
    await allInOrder([
      fsyncHeld(held.releases),
      storeBundle ? fsyncHeld(held.bundles) : null,
      storeBundle && !keptWhileStaging ? checkKeptBundle(storedBundle, bundle, payloadLayout(v.manifest).files.map((f) => f.entry), ctx.limits) : null,
    ]);
    await step(ctx, 'before-swap');
    liveWindowMs = await swapLive(ctx, dirName, { sync: false });
  } catch (e) {
    // The rename onto `current` is the commit point: a failure after it (re-sealing the root) is only a warning.
    if ((await readLiveDirName(ctx).catch(() => null)) !== dirName) {
      await undoUncommitted(ctx, { dirName, staged: stagedByName, releaseMoved, stagedBundle, storedBundle, bundleStored, releaseId: v.releaseId }, consume && movedIn ? { path: bundlePath, mode: bundleMode } : null).catch(
        () => undefined,
      );
      rejectEvent(ctx, e, bundlePath);
      throw e;
    }
    warning = afterCommit(e);
  }

  // Committed. The swap is made durable (VAULT/ fsync'ed) before the result is reported and before
  // anything builds on it; from here the new release is live and on stable storage (docs/VAULT.md#durability).
  let durable = false;
  try {
    await fsyncHeld(held.root);
    await step(ctx, 'swapped');
    durable = true;
  } catch (e) {
    warning ??= afterCommit(e);
  }
  const previousReleaseId = previous === null ? null : (parseReleaseDirName(previous)?.releaseId ?? null);
  const about = { releaseId: v.releaseId, version: v.manifest.version };
  const result = (): DeployResult => ({
    kind,
    ...about,
    releaseDir: dirName,
    signers: v.signers,
    previousReleaseId,
    files: stats.files,
    bytes: stats.bytes,
    liveWindowMs,
    totalMs: performance.now() - t0,
    ...(warning !== undefined ? { warning } : {}),
  });
  // Reported now, its event first (the audit record precedes the daemon's reply); then the tail, its own event.
  emit(ctx, { kind, ...about, path: finalDir, detail: `live window ${liveWindowMs.toFixed(3)} ms${warning !== undefined ? `; ${warning}` : ''}` });
  try {
    opts.onLive?.(result());
  } catch {
    // Ignored (Vault.deploy's contract): the deploy has happened either way.
  }
  if (durable) {
    const live = { dirName, dir: finalDir, releaseId: v.releaseId, manifest: v.manifest, manifestBytes: v.manifestBytes, signatureBytes: bundle.signatureBytes };
    const tail = await finishAfterLive(ctx, live, previous, scan);
    emit(ctx, { kind: 'deploy-tail', ...about, path: finalDir, detail: tail ?? 'finished' });
    warning ??= tail;
  }
  return result();
}

// Why: back to the previous *signed* release still kept; its signature and tree are
// re-verified first. The highest version stays, so the version rolled back from cannot be re-deployed.
export async function rollbackTo(ctx: VaultCtx): Promise<DeployResult> {
  const t0 = performance.now();
  const live = await readLiveDirName(ctx);
  if (live === null) throw new SentinelError('not-found', 'no release is deployed', { where: ctx.layout.current });
  const liveInfo = await readKeptRelease(ctx, ctx.layout.release(live));
  const { ok } = await listKeptReleases(ctx);
  const older = ok.filter((r) => r.manifest.version < liveInfo.manifest.version);
  const target = older[older.length - 1];
  if (target === undefined) throw new SentinelError('not-found', `no release older than version ${liveInfo.manifest.version} is kept`, { where: ctx.layout.releases });
  const v = verifyKeptRelease(ctx, target, ctx.config.trust);
  const check = await verifyRelease(ctx, target.dir, v, {});
  const first = check.problems[0];
  if (first !== undefined) {
    emit(ctx, { kind: 'reject', code: first.code, path: first.path, detail: `rollback target: ${first.message}` });
    throw new SentinelError(first.code, `rollback target is not intact: ${first.message}`, { where: first.path });
  }
  await raiseHighestToKept(ctx, ok); // before the swap: a failure refuses the rollback, nothing swapped
  await step(ctx, 'verified');
  const liveWindowMs = await withHeldVault(ctx, (_held, opCtx) => swapLive(opCtx, target.dirName));
  await step(ctx, 'swapped');
  emit(ctx, { kind: 'rollback', releaseId: v.releaseId, version: v.manifest.version, path: target.dir });
  return {
    kind: 'rollback',
    releaseId: v.releaseId,
    releaseDir: target.dirName,
    version: v.manifest.version,
    signers: v.signers,
    previousReleaseId: liveInfo.releaseId,
    files: check.checkedFiles,
    bytes: check.checkedBytes,
    liveWindowMs,
    totalMs: performance.now() - t0,
  };
}
