// The vault (docs/VAULT.md): init, open (with crash recovery), deploy, verify,
// status, heal, rollback. Used by the CLI and the daemon; verification needs no daemon.
import { chmod, lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { SentinelError, isSentinelError } from '../core/errors.js';
import { ioError } from '../core/errno.js';
import type { PublicKey } from '../core/keys.js';
import { assertTrustPolicy } from '../core/trust.js';
import type { TrustPolicy, VerifiedManifest } from '../core/trust.js';
import { probeImmutableSupport, unsealTree } from '../adapters/flags.js';
import { syncFilesystem } from '../adapters/bundle-file.js';
import { emit, listKeptReleases, makeCtx, readLiveDirName, sealPaths, writeFileDurable } from './context.js';
import type { VaultCtx } from './context.js';
import { assertVaultPathLength, encodeHighest, encodeVaultConfig, layoutOf, parseReleaseDirName, VAULT_FORMAT } from './layout.js';
import type { VaultConfig } from './layout.js';
import { assertVaultTrustsAnchors } from './anchors.js';
import { acquireLock } from './lock.js';
import { createMissingParents, removeCreatedParents } from './parents.js';
import { assertSafeNewVault, assertSafeVault, tightenStaging } from './safety.js';
import type * as DeployModule from './deploy.js';
import { leftoversPresent, openVaultContext, readConfig } from './open.js';
import { recoverVault } from './recover.js';
import { vaultStatus } from './status.js';
import { liveVerifiedManifest, verifyVault } from './verify.js';
import type { DeployResult, RecoveryReport, Vault, VaultDeps, VaultInfo, VaultStatus, VerifyReport, VerifyScope } from './types.js';

export type { DeployResult, KeptRelease, RecoveryReport, Vault, VaultDeps, VaultEvent, VaultInfo, VaultStatus, VerifyProblem, VerifyReport, VerifyScope } from './types.js';

// Deploy, heal and rollback are loaded when one runs: `vault verify` and `vault status` never need them (docs/ARCHITECTURE.md#start-up).
const deployCode = (): Promise<typeof DeployModule> => import('./deploy.js');

const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

class OpenVault implements Vault {
  readonly path: string;
  readonly vaultId: string;
  readonly policy: TrustPolicy;

  constructor(private readonly ctx: VaultCtx) {
    this.path = ctx.path;
    this.vaultId = ctx.config.vaultId;
    this.policy = ctx.config.trust;
  }

  /** Runs a write operation under the vault lock, recovering first if a crash left traces; anchors (if given) are checked before that. */
  private async exclusive<T>(act: (recovered: RecoveryReport | null) => Promise<T>, anchors: TrustPolicy | undefined, forceRecovery = false): Promise<T> {
    // Checked again for every operation: the daemon keeps a vault open for months.
    assertSafeVault(this.ctx.layout);
    await tightenStaging(this.ctx.layout.staging);
    const lock = await acquireLock(this.ctx.layout.lock, { timeoutMs: this.ctx.deps.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS });
    try {
      // Flags are re-applied only after a real crash (a stale lock) or on explicit recover; leftovers alone are just removed.
      await assertVaultTrustsAnchors(this.ctx, anchors);
      const reseal = lock.staleTakeover || forceRecovery;
      const recovered = reseal || leftoversPresent(this.ctx) ? await recoverVault(this.ctx, reseal, anchors) : null;
      return await act(recovered);
    } finally {
      await lock.release();
    }
  }

  deploy(bundlePath: string, opts: { consume?: boolean; trust?: TrustPolicy; onLive?: (result: DeployResult) => void; noFollow?: boolean } = {}): Promise<DeployResult> {
    return this.exclusive(async () => (await deployCode()).deployFrom(this.ctx, resolve(bundlePath), 'deploy', opts), opts.trust);
  }

  heal(opts: { trust?: TrustPolicy } = {}): Promise<DeployResult> {
    return this.exclusive(async () => {
      const live = await readLiveDirName(this.ctx);
      const parsed = live === null ? null : parseReleaseDirName(live);
      if (parsed === null) throw new SentinelError('not-found', 'no live release to heal', { where: this.ctx.layout.current });
      return (await deployCode()).deployFrom(this.ctx, this.ctx.layout.bundle(parsed.releaseId), 'heal');
    }, opts.trust);
  }

  rollback(opts: { trust?: TrustPolicy } = {}): Promise<DeployResult> {
    return this.exclusive(async () => (await deployCode()).rollbackTo(this.ctx), opts.trust);
  }

  recover(opts: { trust?: TrustPolicy } = {}): Promise<RecoveryReport> {
    return this.exclusive(async (r) => r ?? recoverVault(this.ctx, true, opts.trust), opts.trust, true);
  }

  // Verify reads under the shared lock: never in the middle of another process's deploy window.
  async verify(opts: { trust?: TrustPolicy; onProgress?(done: number, total: number): void; scope?: VerifyScope } = {}): Promise<VerifyReport> {
    if (opts.trust !== undefined) assertTrustPolicy(opts.trust);
    const lock = await acquireLock(this.ctx.layout.lock, { timeoutMs: this.ctx.deps.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, shared: true });
    try {
      return await verifyVault(this.ctx, { ...opts, interrupted: lock.interrupted });
    } finally {
      await lock.release();
    }
  }

  liveManifest(): Promise<VerifiedManifest> {
    return liveVerifiedManifest(this.ctx);
  }

  status(): Promise<VaultStatus> {
    return vaultStatus(this.ctx);
  }
}

// Why: `vault init` — refuses a non-empty directory, probes +i support before writing anything, and
// leaves nothing behind when it fails.
export async function initVault(path: string, opts: { trust: PublicKey[]; threshold: number; vaultId?: string }, deps: VaultDeps): Promise<Vault> {
  const root = resolve(path);
  const policy: TrustPolicy = { keys: opts.trust, threshold: opts.threshold };
  try {
    assertTrustPolicy(policy);
  } catch (e) {
    if (isSentinelError(e)) throw new SentinelError('usage', e.message, { where: e.where ?? '--trust', cause: e });
    throw e;
  }
  assertVaultPathLength(root);
  assertSafeNewVault(root);
  const vaultId = opts.vaultId ?? `vault-${randomBytes(8).toString('hex')}`;
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(vaultId)) throw new SentinelError('usage', 'vault id must match [a-z0-9][a-z0-9._-]{0,63}', { where: '--vault-id' });
  let created = false;
  let parents: string[] = [];
  try {
    const st = await lstat(root);
    if (!st.isDirectory()) throw new SentinelError('exists', 'exists and is not a directory', { where: root });
    if ((await readdir(root)).length > 0) throw new SentinelError('exists', 'refusing to create a vault in a non-empty directory', { where: root });
  } catch (e) {
    if (isSentinelError(e)) throw e;
    const errno = (e as NodeJS.ErrnoException).code;
    if (errno !== 'ENOENT' && errno !== 'ENOTDIR') throw ioError(e, 'cannot inspect the vault path', root);
    parents = await createMissingParents(dirname(root));
    try {
      await mkdir(root, { mode: 0o755 });
      await chmod(root, 0o755); // not the umask's mode: services read the live tree through it
    } catch (cause) {
      await removeCreatedParents(parents);
      throw ioError(cause, 'cannot create the vault directory', root);
    }
    created = true;
  }
  const layout = layoutOf(root);
  const config: VaultConfig = { format: VAULT_FORMAT, vaultId, trust: policy, created: deps.now().toISOString() };
  const ctx = makeCtx(root, config, deps);
  try {
    await probeImmutableSupport(root, deps.flags);
    for (const d of [layout.releases, layout.bundles, layout.state]) {
      await mkdir(d, { mode: 0o755 });
      await chmod(d, 0o755);
    }
    // staging/ is root's alone: nobody else may even reach a release while it is being staged.
    await mkdir(layout.staging, { mode: 0o700 });
    await chmod(layout.staging, 0o700);
    await writeFileDurable(layout.config, encodeVaultConfig(config));
    await writeFileDurable(layout.highest, encodeHighest({ version: 0, releaseId: null }));
    // The lock file exists from the start and is never removed (docs/VAULT.md#locking).
    await writeFileDurable(layout.lock, '', 0o600);
    await syncFilesystem(root);
    await sealPaths(ctx, [layout.config, layout.highest, layout.state, layout.releases, layout.bundles, layout.root]);
  } catch (e) {
    await unsealTree(deps.flags, root).catch(() => undefined);
    if (created) {
      await rm(root, { recursive: true, force: true }).catch(() => undefined);
      await removeCreatedParents(parents);
    } else for (const name of await readdir(root).catch(() => [] as string[])) await rm(join(root, name), { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
  emit(ctx, { kind: 'seal', path: root, detail: 'vault initialised' });
  return new OpenVault(ctx);
}

// Why: every write path starts here; the vault's checks and a crashed operation's recovery are
// openVaultContext's (src/vault/open.ts), which `vault status` runs without the rest of this module.
export async function openVault(path: string, deps: VaultDeps, opts: { trust?: TrustPolicy } = {}): Promise<Vault> {
  return new OpenVault(await openVaultContext(path, deps, opts));
}

function noSideEffects(): never {
  throw new SentinelError('internal', 'readVaultInfo must not seal, hash or read the clock');
}

/** Dependencies for read-only helpers: any use of a side effect is a bug. */
const READ_ONLY_DEPS: VaultDeps = {
  get flags(): never {
    return noSideEffects();
  },
  get hash(): never {
    return noSideEffects();
  },
  now: noSideEffects,
};

// Why: the CLI's `sign --vault` and `sign-and-deploy` need the vault id, policy and next version without a write open.
export async function readVaultInfo(path: string): Promise<VaultInfo> {
  const root = resolve(path);
  const config = await readConfig(root);
  const ctx = makeCtx(root, config, READ_ONLY_DEPS);
  const highest = await (await deployCode()).highestVersion(ctx);
  const live = await readLiveDirName(ctx).catch(() => null);
  const { ok } = await listKeptReleases(ctx);
  const liveInfo = ok.find((r) => r.dirName === live);
  return { path: root, vaultId: config.vaultId, policy: config.trust, highestVersion: highest, liveVersion: liveInfo?.manifest.version ?? null, liveReleaseId: liveInfo?.releaseId ?? null };
}
