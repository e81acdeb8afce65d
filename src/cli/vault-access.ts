// The CLI's one place that builds vault dependencies (flags store, hash pool, wall clock) and
// always releases them, so each command is a short "open, act, close".
import { defaultFlagStore } from '../adapters/flags.js';
import { HashPool } from '../adapters/hash.js';
import { initVault, openVault } from '../vault/index.js';
import type { Vault, VaultDeps } from '../vault/index.js';
import type { PublicKey } from '../core/keys.js';
import type { TrustPolicy } from '../core/trust.js';

// Runs `act` with fresh vault dependencies and closes the hash workers afterwards, even on failure.
export async function withVaultDeps<T>(act: (deps: VaultDeps) => Promise<T>): Promise<T> {
  const hash = new HashPool();
  try {
    return await act({ flags: defaultFlagStore(), hash, now: () => new Date() });
  } finally {
    await hash.close();
  }
}

// Opens an existing vault (leftovers removed first, as openVault does; with `trust`, only if vault.json matches it) for one command.
export async function withVault<T>(path: string, act: (vault: Vault, deps: VaultDeps) => Promise<T>, opts: { trust?: TrustPolicy } = {}): Promise<T> {
  return withVaultDeps(async (deps) => act(await openVault(path, deps, opts), deps));
}

// `vault init`: creates and seals a new vault with its trust policy.
export async function createVault(path: string, opts: { trust: PublicKey[]; threshold: number; vaultId?: string }): Promise<{ path: string; vaultId: string }> {
  return withVaultDeps(async (deps) => {
    const vault = await initVault(path, opts, deps);
    return { path: vault.path, vaultId: vault.vaultId };
  });
}
