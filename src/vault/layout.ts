// The on-disk shape of a vault (docs/VAULT.md): where each part lives, and the strict parsers of
// the two small JSON files the vault keeps about itself (vault.json, state/highest.json).
import { SentinelError } from '../core/errors.js';
import { parsePublicKey } from '../core/keys.js';
import type { PublicKey } from '../core/keys.js';
import { assertTrustPolicy } from '../core/trust.js';
import type { TrustPolicy } from '../core/trust.js';

export const VAULT_FORMAT = 'omnimind-sentinel/vault/v1';

export { NAMES, assertVaultPathLength, layoutOf, liveDirOfTarget, parseReleaseDirName, releaseFiles } from './paths.js';
export type { VaultLayout } from './paths.js';

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
