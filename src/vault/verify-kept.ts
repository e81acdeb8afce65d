// The rest of the vault for `vault verify` (docs/SECURITY.md#what-verify-covers): nothing unlisted
// in the vault's own directories, and, unless only the live release is asked for, every kept
// release (signatures, whole tree, flags) and every stored bundle (head equal to its release's
// signed bytes, every payload file its signed SHA-256) checked in full.
import { lstat, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { payloadLayout } from '../core/manifest.js';
import type { TrustPolicy, VerifiedManifest } from '../core/trust.js';
import { checkKeptBundle } from '../adapters/kept-bundle.js';
import { readHighestState } from './highest.js';
import type { ReleaseBytes, VaultCtx } from './context.js';
import { readReleaseBytes, verifyKeptRelease } from './context.js';
import { NAMES, parseReleaseDirName } from './layout.js';
import type { VerifyProblem } from './types.js';
import { checkSealed } from './verify-own.js';

type Report = (p: VerifyProblem) => void;
type ProblemOf = (e: unknown, path: string) => VerifyProblem;

const VAULT_NAMES: ReadonlySet<string> = new Set([NAMES.config, NAMES.current, NAMES.releases, NAMES.bundles, NAMES.state, NAMES.staging]);

function extra(path: string, message: string): VerifyProblem {
  return { code: 'tampered', path, message, detail: message };
}

async function namesIn(dir: string, rel: string, problemOf: ProblemOf, report: Report): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (e) {
    report(problemOf(e, rel));
    return [];
  }
}

/** A bare release id's stored bundle name: `<releaseId>.bundle`. */
function bundleReleaseId(name: string): string | null {
  if (!name.endsWith('.bundle')) return null;
  const id = name.slice(0, -'.bundle'.length);
  const parsed = parseReleaseDirName(id);
  return parsed !== null && parsed.heal === 0 && parsed.releaseId === id ? id : null;
}

/** What the vault's own directories hold: release directory names (well-formed directories) by release id. */
export interface VaultListing {
  releaseDirs: string[];
  bundles: Map<string, string>;
}

// Why: whatever is unlisted in VAULT/, releases/, bundles/ or state/ is named: nothing the vault did
// not write may hide there (a stored bundle without its release included).
export async function checkVaultEntries(ctx: VaultCtx, problemOf: ProblemOf, report: Report): Promise<VaultListing> {
  const { layout } = ctx;
  for (const name of await namesIn(layout.root, '.', problemOf, report)) {
    if (!VAULT_NAMES.has(name)) report(extra(name, 'extra entry in the vault directory'));
  }
  const releaseDirs: string[] = [];
  for (const name of await namesIn(layout.releases, NAMES.releases, problemOf, report)) {
    const path = `${NAMES.releases}/${name}`;
    const isDir = await lstat(join(layout.releases, name)).then((s) => s.isDirectory(), () => false);
    if (parseReleaseDirName(name) === null || !isDir) report(extra(path, 'extra entry in releases/ (not a release directory)'));
    else releaseDirs.push(name);
  }
  const keptIds = new Set(releaseDirs.map((n) => parseReleaseDirName(n)?.releaseId));
  const bundles = new Map<string, string>();
  for (const name of await namesIn(layout.bundles, NAMES.bundles, problemOf, report)) {
    const id = bundleReleaseId(name);
    const path = `${NAMES.bundles}/${name}`;
    if (id === null) report(extra(path, 'extra entry in bundles/ (not a stored bundle)'));
    else if (!keptIds.has(id)) report(extra(path, 'stored bundle without a kept release'));
    else bundles.set(id, name);
  }
  for (const name of await namesIn(layout.state, NAMES.state, problemOf, report)) {
    if (name !== NAMES.highest) report(extra(`${NAMES.state}/${name}`, 'extra entry in state/'));
  }
  // The rollback floor a deploy reads: one that does not parse would refuse the next deploy, so it is named now.
  await readHighestState(ctx).catch((e: unknown) => report(problemOf(e, `${NAMES.state}/${NAMES.highest}`)));
  return { releaseDirs, bundles };
}

/** Release directories whose signatures verified against the same trust in this run, with the very bytes verified. */
export type KnownReleases = Map<string, { bytes: ReleaseBytes; v: VerifiedManifest }>;

// Why: a rollback or heal would use a kept release or stored bundle; verify says now whether it still
// holds the signed bytes, instead of the day it is needed. `checkRelease` is verify's own check of one
// release directory (signatures, tree, flags), which records in `verified` each one that verified.
export async function checkKeptReleasesAndBundles(
  ctx: VaultCtx,
  listing: VaultListing,
  live: string | null,
  trust: TrustPolicy,
  { checkRelease, verified }: { checkRelease: (dirName: string) => Promise<void>; verified: KnownReleases },
  problemOf: ProblemOf,
  report: Report,
): Promise<{ releases: string[]; bundles: string[] }> {
  const releases: string[] = [];
  for (const name of listing.releaseDirs) {
    if (name === live) continue;
    releases.push(name);
    await checkRelease(name);
  }
  const bundles: string[] = [];
  for (const [releaseId, name] of listing.bundles) {
    const path = `${NAMES.bundles}/${name}`;
    bundles.push(name);
    // Compared with a kept release of that id whose signatures verify (the live one first).
    const dirs = listing.releaseDirs.filter((d) => parseReleaseDirName(d)?.releaseId === releaseId).sort((a, b) => (a === live ? -1 : b === live ? 1 : 0));
    let checked = false;
    let why: VerifyProblem | null = null;
    for (const dir of dirs) {
      let known = verified.get(dir);
      if (known === undefined) {
        try {
          const bytes = await readReleaseBytes(ctx, ctx.layout.release(dir));
          known = { bytes, v: verifyKeptRelease(ctx, bytes, trust) };
        } catch (e) {
          why ??= problemOf(e, path); // that release's own check reports it in full
          continue;
        }
      }
      const { bytes, v } = known;
      try {
        await checkKeptBundle(ctx.layout.bundle(releaseId), bytes, payloadLayout(v.manifest).files.map((f) => f.entry), ctx.limits);
      } catch (e) {
        const p = problemOf(e, path);
        report({ ...p, path });
      }
      checked = true;
      break;
    }
    // Unchecked, not found changed: it carries the code of why its release did not verify (an untrusted
    // key under a wrong anchor is a trust problem, not tampering), and verify fails either way.
    if (!checked) {
      const message = `stored bundle not checked: no kept release of its id verifies to check it against (${why?.code ?? 'none readable'})`;
      report({ code: why?.code ?? 'tampered', path, message, detail: message });
    }
  }
  // Sealed like the rest of the vault (a heal trusts these bytes): a bundle whose +i was lifted is named;
  // a symlink there is named by the read above, not again here.
  const flags: VerifyProblem[] = [];
  await checkSealed(ctx, [...listing.bundles.values()].map((n) => join(ctx.layout.bundles, n)), (abs) => `${NAMES.bundles}/${basename(abs)}`, flags);
  for (const p of flags) report(p);
  // Every kept release keeps its bundle for heal (docs/VAULT.md): one gone is named now, not when a heal
  // needs it. Only for releases whose signatures verified: one that did not is named by its own problem.
  const verifiedIds = new Set([...verified.keys()].map((d) => parseReleaseDirName(d)?.releaseId));
  for (const releaseId of verifiedIds) {
    if (releaseId === undefined || listing.bundles.has(releaseId)) continue;
    const message = 'kept release without its stored bundle (a heal of it needs the bundle)';
    report({ code: 'tampered', path: `${NAMES.bundles}/${releaseId}.bundle`, message, detail: message });
  }
  return { releases, bundles };
}
