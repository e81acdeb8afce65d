// The on-disk shape of a vault (docs/VAULT.md): where each part lives, and the strict parsers of
// the two small JSON files the vault keeps about itself (vault.json, state/highest.json).
import { join } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { parsePublicKey } from '../core/keys.js';
import type { PublicKey } from '../core/keys.js';
import { assertTrustPolicy } from '../core/trust.js';
import type { TrustPolicy } from '../core/trust.js';
import { MAX_VAULT_PATH_BYTES } from '../core/limits.js';

export const VAULT_FORMAT = 'omnimind-sentinel/vault/v1';

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

export interface VaultConfig {
  format: typeof VAULT_FORMAT;
  vaultId: string;
  trust: TrustPolicy;
  created: string;
}

interface VaultConfigJson {
  format: string;
  vaultId: string;
  trust: { keys: { id: string; key: string; comment?: string }[]; threshold: number };
  created: string;
}

// Why: vault.json is written once at init and sealed; its bytes are deterministic for a given policy.
export function encodeVaultConfig(c: VaultConfig): string {
  const json: VaultConfigJson = {
    format: VAULT_FORMAT,
    vaultId: c.vaultId,
    trust: {
      keys: c.trust.keys.map((k) => ({ id: k.id, key: Buffer.from(k.key).toString('base64'), ...(k.comment === undefined ? {} : { comment: k.comment }) })),
      threshold: c.trust.threshold,
    },
    created: c.created,
  };
  return `${JSON.stringify(json, null, 2)}\n`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Why: vault.json may have been rewritten by an attacker; every field is checked and each bad one named.
export function parseVaultConfig(text: string, where: string): VaultConfig {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw new SentinelError('config', 'vault.json is not valid JSON', { where, cause });
  }
  const bad: string[] = [];
  if (!isRecord(v)) throw new SentinelError('config', 'vault.json is not an object', { where });
  if (v.format !== VAULT_FORMAT) bad.push('format');
  if (typeof v.vaultId !== 'string' || v.vaultId.length === 0) bad.push('vaultId');
  if (typeof v.created !== 'string') bad.push('created');
  const keys: PublicKey[] = [];
  let threshold = 0;
  if (!isRecord(v.trust)) bad.push('trust');
  else {
    if (typeof v.trust.threshold !== 'number' || !Number.isInteger(v.trust.threshold)) bad.push('trust.threshold');
    else threshold = v.trust.threshold;
    if (!Array.isArray(v.trust.keys)) bad.push('trust.keys');
    else {
      v.trust.keys.forEach((k: unknown, i) => {
        if (!isRecord(k) || typeof k.key !== 'string' || typeof k.id !== 'string') {
          bad.push(`trust.keys[${i}]`);
          return;
        }
        try {
          const pk = parsePublicKey(k.key, `${where}: trust.keys[${i}]`);
          if (pk.id !== k.id) bad.push(`trust.keys[${i}].id`);
          keys.push(typeof k.comment === 'string' ? { ...pk, comment: k.comment } : pk);
        } catch {
          bad.push(`trust.keys[${i}].key`);
        }
      });
    }
  }
  if (bad.length > 0) throw new SentinelError('config', `vault.json has bad fields: ${bad.join(', ')}`, { where });
  const trust: TrustPolicy = { keys, threshold };
  try {
    assertTrustPolicy(trust);
  } catch (cause) {
    throw new SentinelError('config', 'vault.json trust policy is invalid', { where, cause });
  }
  return { format: VAULT_FORMAT, vaultId: v.vaultId as string, trust, created: v.created as string };
}

export interface HighestState {
  version: number;
  releaseId: string | null;
}

// Why: rollback protection that survives reboot lives in this one sealed file.
export function encodeHighest(h: HighestState): string {
  return `${JSON.stringify({ version: h.version, releaseId: h.releaseId })}\n`;
}

// Why: highest.json is read on every deploy; a damaged one is an integrity problem, never "version 0".
export function parseHighest(text: string, where: string): HighestState {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw new SentinelError('tampered', 'highest.json is not valid JSON', { where, cause });
  }
  if (!isRecord(v)) throw new SentinelError('tampered', 'highest.json is not an object', { where });
  const bad: string[] = [];
  if (typeof v.version !== 'number' || !Number.isSafeInteger(v.version) || v.version < 0) bad.push('version');
  if (v.releaseId !== null && typeof v.releaseId !== 'string') bad.push('releaseId');
  if (bad.length > 0) throw new SentinelError('tampered', `highest.json has bad fields: ${bad.join(', ')}`, { where });
  return { version: v.version as number, releaseId: v.releaseId as string | null };
}
