// Trust anchors from outside the vault (`--trust`, the daemon's `vault.trust`): the vault's own
// policy in vault.json must say exactly what they say, or verify reports it and a deploy, heal or
// rollback is refused before it reads the bundle (docs/SECURITY.md#trust-anchors-from-outside).
import { SentinelError } from '../core/errors.js';
import { trustPolicyDifferences } from '../core/trust.js';
import type { TrustPolicy } from '../core/trust.js';
import type { VaultCtx } from './context.js';
import { readVaultConfigText } from './context.js';
import { parseVaultConfig } from './layout.js';

/** The one-line message for a vault policy that differs from the anchors. */
export function anchorMismatchMessage(differences: readonly string[]): string {
  return `vault.json's trust policy differs from the trust anchors: it ${differences.join('; it ')}`;
}

// Why: a root attacker who adds their key to vault.json and re-seals it must not gain a deploy:
// with anchors, both the policy the vault was opened with and the one on disk now must match them.
export async function assertVaultTrustsAnchors(ctx: VaultCtx, anchors: TrustPolicy | undefined): Promise<void> {
  if (anchors === undefined) return;
  const file = ctx.layout.config;
  const onDisk = parseVaultConfig(await readVaultConfigText(file), file).trust;
  for (const policy of [ctx.config.trust, onDisk]) {
    const differences = trustPolicyDifferences(policy, anchors);
    if (differences.length > 0) throw new SentinelError('tampered', anchorMismatchMessage(differences), { where: file });
  }
}

/** At open, with anchors: recovery runs only on a vault whose policy matches them (a write operation then refuses). */
export async function vaultAgreesWithAnchors(ctx: VaultCtx, anchors: TrustPolicy | undefined): Promise<boolean> {
  try {
    await assertVaultTrustsAnchors(ctx, anchors);
    return true;
  } catch {
    return false;
  }
}
