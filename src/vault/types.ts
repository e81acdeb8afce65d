// The vault's public types (docs/ARCHITECTURE.md "vault/"), kept apart so every vault module and its
// callers (CLI, daemon) share them without import cycles.
import type { ErrorCode } from '../core/errors.js';
import type { BundleLimits } from '../core/limits.js';
import type { TrustPolicy, VerifiedManifest } from '../core/trust.js';
import type { FlagStore } from '../adapters/flags.js';
import type { HashPool } from '../adapters/hash.js';
import type { TreeInspector } from '../adapters/tree-inspector.js';

/** What the daemon's audit log records; `at` is `performance.now()` in ms (monotonic, sub-µs). */
export interface VaultEvent {
  /** `deploy-tail`: how a deploy's or heal's tail (after its `deploy`/`heal` event) ended; `detail` says. */
  kind: 'seal' | 'unseal' | 'deploy' | 'deploy-tail' | 'reject' | 'heal' | 'rollback' | 'recover';
  at: number;
  path?: string;
  count?: number;
  releaseId?: string;
  version?: number;
  code?: ErrorCode;
  detail?: string;
}

// Side effects the vault needs, injected so the daemon and the CLI build them once.
export interface VaultDeps {
  flags: FlagStore;
  hash: HashPool;
  /** How verify reads a tree (docs/VAULT.md#tree-check); default: defaultTreeInspector(flags, hash). */
  inspector?: TreeInspector;
  now(): Date;
  onEvent?(e: VaultEvent): void;
  /** Awaited between deploy steps; crash-consistency tests pause here. */
  hook?(step: string): Promise<void>;
  limits?: BundleLimits;
  /** How long a write operation waits for another one's lock before `busy`; default 30 s. */
  lockTimeoutMs?: number;
  /** Releases kept for rollback, the live one included; default 3, never fewer than 2. */
  keepReleases?: number;
}

export interface DeployResult {
  kind: 'deploy' | 'heal' | 'rollback';
  releaseId: string;
  /** Directory name under releases/ (`<releaseId>` or `<releaseId>.h<n>` after a heal). */
  releaseDir: string;
  version: number;
  signers: string[];
  previousReleaseId: string | null;
  /** Set when a step after the commit point (highest.json, pruning) failed: the release is live regardless. */
  warning?: string;
  files: number;
  bytes: number;
  /** From the unseal of VAULT/ to its re-seal around the pointer swap, in ms. */
  liveWindowMs: number;
  totalMs: number;
}

export interface VerifyProblem {
  code: ErrorCode;
  /** Path relative to the vault (or a manifest path inside `tree/`). */
  path: string;
  /** One human line. */
  message: string;
  /** Same text as `message` (field name of the original brief). */
  detail: string;
}

export interface VerifyReport {
  ok: boolean;
  releaseId: string | null;
  releaseDir: string | null;
  version: number | null;
  signers: string[];
  checkedFiles: number;
  checkedBytes: number;
  /** `vault.json` (the vault's own policy) or `override` (trust given from outside). */
  trustSource: 'vault.json' | 'override';
  /** With scope 'all': the kept releases other than the live one and the stored bundles that were checked in full; null with scope 'live'. */
  kept: { releases: string[]; bundles: string[] } | null;
  problems: VerifyProblem[];
}

/**
 * What verify checks in full: 'all' (the default; `sentinel vault verify`) the live release, every
 * other kept release and every stored bundle; 'live' (the daemon's periodic check, `--live-only`)
 * the live release only. Both check the vault's own directories for unlisted entries.
 */
export type VerifyScope = 'all' | 'live';

/** A kept release as `status()` lists it: from its directory name (docs/VAULT.md#status). */
export interface KeptRelease {
  releaseDir: string;
  releaseId: string;
  version: number;
  live: boolean;
  /** True only for the live release when its signatures, release id and vault id checked out; the others are listed, not checked. */
  checked: boolean;
}

export interface VaultStatus {
  path: string;
  vaultId: string;
  threshold: number;
  trustedKeys: string[];
  version: number | null;
  releaseId: string | null;
  releaseDir: string | null;
  /** Trusted keys whose signatures over the live manifest verify; empty when `liveProblem` is set. */
  signers: string[];
  /** Why the live release did not check out (`code: message`): unreadable `current`, release files, signatures, release id or vault id; null when it did or none is deployed. */
  liveProblem: string | null;
  /** What status does not check (`vault verify` does): always the same list, so a reader of the JSON sees it too. */
  notChecked: string[];
  /** Cheap check: top-level paths, release dirs and their manifest files are +i. */
  sealed: boolean;
  unsealedPaths: string[];
  /** An operation was left interrupted (the crash marker in staging/.lock): status re-seals nothing; `vault recover` finishes or undoes it. */
  interrupted: boolean;
  /** When the live pointer was last swapped (deploy, heal or rollback), ISO-8601. */
  deployedAt: string | null;
  highestVersion: number;
  releases: KeptRelease[];
}

export interface RecoveryReport {
  /** Whether an interrupted operation was found (stale lock, staging leftovers, current.tmp). */
  interrupted: boolean;
  removedStaging: string[];
  removedReleases: string[];
  removedBundles: string[];
  removedCurrentTmp: boolean;
  /** Set when `current` was missing or pointed at an incomplete release and was repointed. */
  repointedTo: string | null;
  highestVersion: number;
  highestRaised: boolean;
  resealed: number;
}

export interface Vault {
  readonly path: string;
  readonly vaultId: string;
  readonly policy: TrustPolicy;
  status(): Promise<VaultStatus>;
  /**
   * `consume`: the bundle file is moved into the vault (kept for heal) instead of copied; put back if rejected.
   * `trust`: anchors from outside the vault; a vault.json that says otherwise refuses the deploy (`tampered`).
   * `onLive`: called once, as soon as the new release is live and on stable storage, with the result so
   * far (`totalMs` up to then; a `warning` if the swap's re-seal or fsync failed after the swap); the
   * deploy then finishes its tail (highest.json, pruning) under the vault lock and resolves with the
   * final result (a failure of the tail is its `warning`). What it throws is ignored. Not called for a
   * deploy that is refused (docs/VAULT.md#deploy).
   * `noFollow`: a bundle path that is a symlink is refused (`bad-path`), never followed (the daemon's inbox).
   */
  deploy(bundlePath: string, opts?: { consume?: boolean; trust?: TrustPolicy; onLive?: (result: DeployResult) => void; noFollow?: boolean }): Promise<DeployResult>;
  /** With `trust`, a vault.json that differs from those anchors is a `tampered` problem naming the difference. */
  verify(opts?: { trust?: TrustPolicy; onProgress?(done: number, total: number): void; scope?: VerifyScope }): Promise<VerifyReport>;
  heal(opts?: { trust?: TrustPolicy }): Promise<DeployResult>;
  rollback(opts?: { trust?: TrustPolicy }): Promise<DeployResult>;
  liveManifest(): Promise<VerifiedManifest>;
  recover(opts?: { trust?: TrustPolicy }): Promise<RecoveryReport>;
}

/** What the CLI needs without opening the vault for write. */
export interface VaultInfo {
  path: string;
  vaultId: string;
  policy: TrustPolicy;
  highestVersion: number;
  liveVersion: number | null;
  liveReleaseId: string | null;
}
