// Where each part of a vault lives (docs/VAULT.md): names and paths only, with no parser behind
// them, so that code run before the rest is loaded (the CLI's early start of verify's tree reading)
// computes the very same paths as deploy, verify and recovery.
import { join } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { MAX_VAULT_PATH_BYTES } from '../core/limits.js';

/** Names inside the vault directory; everything but staging/ is sealed (+i) between operations. */
export const NAMES = {
  config: 'vault.json',
  current: 'current',
  currentTmp: 'current.tmp',
  releases: 'releases',
  bundles: 'bundles',
  state: 'state',
  highest: 'highest.json',
  staging: 'staging',
  lock: '.lock',
  manifest: 'manifest.json',
  signatures: 'signatures.json',
  tree: 'tree',
} as const;

// Why: an entry of MAX_ENTRY_PATH_BYTES must stay openable by its full path under the vault (docs/FORMAT.md#25-limits).
export function assertVaultPathLength(vault: string): void {
  const n = Buffer.byteLength(vault);
  if (n > MAX_VAULT_PATH_BYTES) throw new SentinelError('usage', `the vault path is ${n} bytes; at most ${MAX_VAULT_PATH_BYTES} are allowed`, { where: vault });
}

// Why: one place computes every path, so deploy, verify and recovery agree on the layout.
export function layoutOf(vault: string) {
  const releases = join(vault, NAMES.releases);
  const bundles = join(vault, NAMES.bundles);
  const state = join(vault, NAMES.state);
  const staging = join(vault, NAMES.staging);
  return {
    root: vault,
    config: join(vault, NAMES.config),
    current: join(vault, NAMES.current),
    currentTmp: join(vault, NAMES.currentTmp),
    releases,
    bundles,
    state,
    highest: join(state, NAMES.highest),
    staging,
    lock: join(staging, NAMES.lock),
    release: (name: string) => join(releases, name),
    bundle: (releaseId: string) => join(bundles, `${releaseId}.bundle`),
  };
}
export type VaultLayout = ReturnType<typeof layoutOf>;

// Why: the files of one release directory (staged or kept) are named in one place.
export function releaseFiles(dir: string) {
  return { dir, manifest: join(dir, NAMES.manifest), signatures: join(dir, NAMES.signatures), tree: join(dir, NAMES.tree) };
}

/** A release directory is named `<releaseId>` or, after a heal, `<releaseId>.h<n>`. */
const RELEASE_DIR_RE = /^(r[0-9]{8,16}-[0-9a-f]{12,64})(?:\.h([0-9]{1,6}))?$/;

// Why: `current` and directory listings are untrusted on verify; only well-formed release names are followed.
export function parseReleaseDirName(name: string): { releaseId: string; heal: number } | null {
  const m = RELEASE_DIR_RE.exec(name);
  if (m === null || m[1] === undefined) return null;
  return { releaseId: m[1], heal: m[2] === undefined ? 0 : Number(m[2]) };
}

// Why: `current` is untrusted on verify: only `releases/<a well-formed release name>` is followed.
export function liveDirOfTarget(target: string): string | null {
  const m = /^releases\/([^/]+)$/.exec(target);
  return m === null || m[1] === undefined || parseReleaseDirName(m[1]) === null ? null : m[1];
}
