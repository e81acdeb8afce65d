// A vault with a given source tree deployed, for benchmarks of the real `vault verify` path
// (Vault.verify: vault.json, flags of the top level, signatures, tree walk, hashes, flags).
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { keyPairFromSeed } from '../../src/core/keys.js';
import { defaultFlagStore } from '../../src/adapters/flags.js';
import type { HashPool } from '../../src/adapters/hash.js';
import { initVault } from '../../src/vault/index.js';
import type { Vault } from '../../src/vault/index.js';
import { createBundle } from '../../src/vault/sign.js';

/** A deployed vault and where its live tree is (peers hash the same files). */
export interface DeployedVault {
  vault: Vault;
  /** The live release's tree directory. */
  tree: string;
}

// Signs `src` into a bundle, deploys it into a fresh vault under `dir`, and removes the bundle file.
export async function deployTree(dir: string, src: string, hash: HashPool): Promise<DeployedVault> {
  const key = keyPairFromSeed(new Uint8Array(randomBytes(32)), 'bench');
  const vaultPath = join(dir, 'vault');
  const deps = { flags: defaultFlagStore(), hash, now: () => new Date() };
  const vault = await initVault(vaultPath, { trust: [key.public], threshold: 1, vaultId: 'bench' }, deps);
  const now = new Date();
  const bundle = join(dir, 'verify.bundle');
  await createBundle(src, { keys: [key.secret], vaultId: 'bench', version: 1, created: now, expires: new Date(now.getTime() + 3600_000), out: bundle });
  const r = await vault.deploy(bundle);
  rmSync(bundle, { force: true });
  return { vault, tree: join(vaultPath, 'releases', r.releaseDir, 'tree') };
}
