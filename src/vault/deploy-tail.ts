// The tail of a deploy or heal (docs/VAULT.md#deploy, step 6): what comes after the new release is
// live and its swap on stable storage, and after the result has been reported (`onLive`), still under
// the vault lock: state/highest.json raised, old releases pruned (a heal: the copy it replaced
// retired). Nothing here is needed for the new release to be live or durable; a failure is a warning.
import type { Manifest } from '../core/manifest.js';
import { discardStagedHighest, installHighestState, stageHighestState } from './highest.js';
import { prune } from './kept.js';
import type { KeptScan } from './kept.js';
import { retireRelease } from './retire.js';
import { step } from './context.js';
import type { VaultCtx } from './context.js';

export function afterCommit(e: unknown): string {
  return `a step after the swap failed (${e instanceof Error ? e.message : String(e)}); the new release is live, and \`sentinel vault recover\` or the next deploy finishes the rest`;
}

/** The release just made live, as the tail needs it. */
export interface LiveRelease {
  dirName: string;
  dir: string;
  releaseId: string;
  manifest: Manifest;
  manifestBytes: Uint8Array;
  signatureBytes: Uint8Array;
}

/**
 * Runs the tail; resolves with the warning its failure gives (undefined: it finished). `scan`: the
 * kept releases a deploy read before staging (null: a heal). Only called once the swap is durable.
 */
export async function finishAfterLive(ctx: VaultCtx, live: LiveRelease, previous: string | null, scan: KeptScan | null): Promise<string | undefined> {
  // highest.json is written and fsync'ed in staging/, renamed in, and that rename flushed with the
  // prune's moves out of releases/, before any pruned release is deleted (docs/VAULT.md#durability).
  const raise = scan !== null && live.manifest.version > scan.state.version;
  try {
    if (scan !== null) {
      if (raise) {
        await stageHighestState(ctx, { version: live.manifest.version, releaseId: live.releaseId });
        await installHighestState(ctx);
      }
      await step(ctx, 'highest-updated');
    } else if (previous !== null && previous !== live.dirName) {
      await retireRelease(ctx, previous);
    }
    // A deploy prunes from the releases it read before staging, plus the one it just made live.
    const known = scan === null ? undefined : [...scan.kept, live];
    await prune(ctx, previous, { ...(known !== undefined ? { known } : {}), flushWith: raise ? [ctx.layout.state] : [] });
    await step(ctx, 'pruned');
    return undefined;
  } catch (e) {
    // The new release is live. highest.json is only a floor (highestVersion() also reads every kept
    // release), and `vault recover` or the next deploy finishes what is left.
    if (raise) await discardStagedHighest(ctx).catch(() => undefined);
    return afterCommit(e);
  }
}
