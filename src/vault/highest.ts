// state/highest.json (docs/VAULT.md#layout): the highest version ever accepted, read bounded and
// replaced by a rename inside a short unseal of state/, the new file written and fsync'ed first.
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SentinelError, isSentinelError } from '../core/errors.js';
import { fsyncDir } from '../adapters/bundle-file.js';
import { readSmallFile } from '../adapters/small-file.js';
import { sealPaths, unsealPaths, withUnsealed, writeFileDurable } from './context.js';
import type { VaultCtx } from './context.js';
import { NAMES, encodeHighest, parseHighest } from './layout.js';
import type { HighestState } from './layout.js';

/** Largest state/highest.json read. */
const MAX_HIGHEST_BYTES = 4096;

export async function readHighestState(ctx: VaultCtx): Promise<HighestState> {
  let text: string;
  try {
    text = await readSmallFile(ctx.layout.highest, { what: 'state/highest.json', maxBytes: MAX_HIGHEST_BYTES, badFileCode: 'tampered', noFollow: true });
  } catch (e) {
    if (isSentinelError(e, 'not-found')) throw new SentinelError('tampered', 'state/highest.json is missing', { where: ctx.layout.highest, cause: e });
    throw e;
  }
  return parseHighest(text, ctx.layout.highest);
}

const highestTmp = (ctx: VaultCtx): string => join(ctx.layout.staging, `${NAMES.highest}.tmp`);

/** The first half of writeHighestState: the new file written and fsync'ed in staging/ (a deploy does it while its swap is flushed). */
export async function stageHighestState(ctx: VaultCtx, h: HighestState): Promise<void> {
  const tmp = highestTmp(ctx);
  await rm(tmp, { force: true });
  await writeFileDurable(tmp, encodeHighest(h));
}

/** Removes a staged highest.json a deploy could not install (missing is fine). */
export async function discardStagedHighest(ctx: VaultCtx): Promise<void> {
  await rm(highestTmp(ctx), { force: true });
}

/** The second half: the staged file renamed over state/highest.json inside a short unseal of state/; durable once state/ is fsync'ed. */
export async function installHighestState(ctx: VaultCtx): Promise<void> {
  const { state, highest } = ctx.layout;
  await withUnsealed(ctx, [state], async () => {
    await unsealPaths(ctx, [highest]).catch((e: unknown) => {
      if (!(e instanceof SentinelError && e.code === 'not-found')) throw e;
    });
    await rename(highestTmp(ctx), highest);
    await sealPaths(ctx, [highest]);
  });
}

// Why: rollback protection that survives reboot — the new file is written and fsync'ed in staging/
// first, so the unseal of state/ covers only a rename and two seals.
export async function writeHighestState(ctx: VaultCtx, h: HighestState): Promise<void> {
  await stageHighestState(ctx, h);
  await installHighestState(ctx);
  await fsyncDir(ctx.layout.state);
}

// Why: a rollback leaves the release it rolled back from kept but not live; a highest.json lower than
// it (a deploy whose tail failed) would let recovery take it for an interrupted deploy, delete it and
// re-open its version. So before a rollback swaps, highest.json is raised to every kept release.
export async function raiseHighestToKept(ctx: VaultCtx, kept: { releaseId: string; manifest: { version: number } }[]): Promise<void> {
  const top = kept.reduce<(typeof kept)[number] | null>((a, r) => (a === null || r.manifest.version > a.manifest.version ? r : a), null);
  if (top === null || top.manifest.version <= (await readHighestState(ctx)).version) return;
  await writeHighestState(ctx, { version: top.manifest.version, releaseId: top.releaseId });
}

