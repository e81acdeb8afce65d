// Opening a vault (docs/VAULT.md): vault.json read and checked, the vault's directories held to the
// owner rule, and leftovers of an earlier process removed (a crash marker is left for a write operation). The Vault
// object (src/vault/index.ts) is built on the context this returns; `vault status` uses the context
// alone, so its bundle holds neither the deploy nor the verify code (docs/ARCHITECTURE.md#start-up).
// Recovery's own code (src/vault/recover.ts, which stages and retires releases) is loaded only
// when there is something to recover. The looks at staging/ and current.tmp are synchronous: each
// is one system call on a small directory, which a round trip to the thread pool would only wait
// for (the open has nothing else to do meanwhile).
import { lstatSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { SentinelError, isSentinelError } from '../core/errors.js';
import type { TrustPolicy } from '../core/trust.js';
import { isSealed, makeCtx, readVaultConfigText } from './context.js';
import type { VaultCtx } from './context.js';
import { assertVaultPathLength, layoutOf, NAMES, parseVaultConfig } from './layout.js';
import type { VaultConfig } from './layout.js';
import { vaultAgreesWithAnchors } from './anchors.js';
import { acquireLock, isUnwritableLock, type VaultLock } from './lock.js';
import { dropEarlyReading, earlyLockHeld } from './early-reading.js';
import { assertSafeVault } from './safety.js';
import type { VaultDeps } from './types.js';

/** The names a vault keeps besides vault.json: one of them without vault.json is a vault that lost it, not no vault. */
const VAULT_OWN_NAMES: ReadonlySet<string> = new Set([NAMES.current, NAMES.currentTmp, NAMES.releases, NAMES.bundles, NAMES.state, NAMES.staging]);

// The directory's names, none when it cannot be listed (then it is simply not a vault); synchronous, as the open's other looks.
function namesIn(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

export async function readConfig(path: string): Promise<VaultConfig> {
  assertVaultPathLength(path);
  assertSafeVault(layoutOf(path));
  const file = layoutOf(path).config;
  let text: string;
  try {
    text = await readVaultConfigText(file);
  } catch (e) {
    if (!isSentinelError(e, 'not-found')) throw e;
    // A vault whose vault.json was removed is tampered (exit 1, which the unit does not restart), not absent (exit 2).
    const kept = namesIn(path).filter((n) => VAULT_OWN_NAMES.has(n)).sort();
    if (kept.length > 0) throw new SentinelError('tampered', `vault.json is missing from a vault that still holds ${kept.join(', ')}`, { where: file, cause: e });
    throw new SentinelError('not-found', 'not a vault (no vault.json)', { where: path, cause: e });
  }
  return parseVaultConfig(text, file);
}

// Why: leftovers to clean up. Flags are re-applied only after a real crash (a stale lock), so a file an
// attacker drops into staging/ cannot make a read-only `verify` re-seal (and so hide) a lifted flag.
// Every write operation asks this first; an unreadable staging/ is its error.
export function leftoversPresent(ctx: VaultCtx): boolean {
  return readdirSync(ctx.layout.staging).some((n) => n !== NAMES.lock) || existsNoFollow(ctx.layout.currentTmp);
}

/** Whether anything (a symlink included, never followed) exists at `path`. */
function existsNoFollow(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

// Why: the removals of a look's recovery go through short unseals of the vault's directories (the root for
// current.tmp, releases/, bundles/, state/ for highest.json), each sealed again afterwards. Run only when
// every one of them is sealed, it re-seals nothing it did not lift itself; else the leftovers wait for a
// write operation, and verify and status name the directory found unsealed. A flag that cannot be read counts as unsealed.
async function sealedForLook(ctx: VaultCtx): Promise<boolean> {
  const { layout } = ctx;
  for (const p of [layout.root, layout.releases, layout.bundles, layout.state, layout.highest]) {
    if (!(await isSealed(ctx, p).catch(() => false))) return false;
  }
  return true;
}

// Why: every command starts here; leftovers of an earlier process (staging/, current.tmp) are removed before
// anything else (with trust anchors — the daemon's vault.trust, `--trust` — only if vault.json matches them),
// and a crash marker is left for the write operations, which re-seal.
export async function openVaultContext(path: string, deps: VaultDeps, opts: { trust?: TrustPolicy } = {}): Promise<VaultCtx> {
  const root = resolve(path);
  const config = await readConfig(root);
  const ctx = makeCtx(root, config, deps);
  try {
    lstatSync(ctx.layout.staging);
  } catch (e) {
    throw new SentinelError('tampered', 'vault has no staging/ directory', { where: ctx.layout.staging, cause: e });
  }
  // The CLI's early verify reading holds a shared lock taken while no operation was in progress or interrupted:
  // only leftovers in staging/ can need recovery, and then it is dropped so the attempt below meets no lock of ours.
  if (earlyLockHeld(ctx.layout.lock)) {
    if (!leftoversPresent(ctx)) return ctx;
    await dropEarlyReading();
  }
  let lock: VaultLock | null = null;
  try {
    lock = await acquireLock(ctx.layout.lock, { timeoutMs: 0 });
  } catch (e) {
    // Another live process is operating on the vault: it is not crashed, so there is nothing to recover.
    // A read-only or full filesystem takes no recovery either: a command that only looks (status, verify,
    // manifest) goes on and shows what is there; one that writes fails on its own lock with the same errno.
    if (!isSentinelError(e, 'busy') && !isUnwritableLock(e)) throw e;
  }
  if (lock !== null) {
    try {
      // A crash marker (an exclusive holder died mid-operation, or someone who can lift +i wrote a pid
      // there) is left as found: opening only looks. Recovery re-seals whatever it finds unsealed, so
      // doing it here would hide flags an attacker lifted from status and verify, which name the
      // interrupted operation and the lifted flags instead; the next write operation (deploy, heal,
      // rollback, `vault recover`) recovers (docs/VAULT.md#recovery-crash-consistency-invariant-3).
      if (!lock.staleTakeover && leftoversPresent(ctx) && (await sealedForLook(ctx)) && (await vaultAgreesWithAnchors(ctx, opts.trust))) {
        const { recoverVault } = await import('./recover.js');
        await recoverVault(ctx, false, opts.trust);
      }
    } finally {
      await lock.release({ keepMarker: true });
    }
  }
  return ctx;
}
