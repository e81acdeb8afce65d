// The common answer of `vault verify`, an intact tree, recognised straight from the native pass's
// records by index: no object per entry, no hex string per digest. Anything that is not provably
// intact returns null and takes the full comparison (core's checkTree), which names every problem;
// so this adds no answer of its own, it only skips building entries whose comparison would find none.
import type { ExpectedEntry, Owner, TreeCheck } from '../core/tree-check.js';
import { FS_IMMUTABLE_FL } from './flag-store.js';
import type { InspectedEntries } from './tree-records.js';

/**
 * checkTree's answer when every property it compares holds, else null: the listing (`paths`, none
 * unlisted) is exactly the manifest's paths in its order, and each entry has the manifest's type,
 * no untolerated extended attribute; a file or directory its mode and +i; a file its size, one
 * link, and a digest of exactly its size equal to `digests` (8 words per manifest entry); a
 * symlink its target (as the pass read it in its directory's fd); every entry `owner`.
 */
export function intactTree(
  s: InspectedEntries,
  paths: readonly string[],
  unlisted: number,
  want: readonly ExpectedEntry[],
  digests: Uint32Array | null,
  owner: Owner | undefined,
): TreeCheck | null {
  if (owner === undefined || digests === null || unlisted !== 0 || paths.length !== want.length || s.count !== want.length || digests.length !== want.length * 8) return null;
  let checkedFiles = 0;
  let checkedBytes = 0;
  const symlinks: number[] = [];
  for (let i = 0; i < want.length; i++) {
    const e = want[i]!;
    if (paths[i] !== e.path || s.type(i) !== e.type || s.xattrCount(i) !== 0 || s.uid(i) !== owner.uid || s.gid(i) !== owner.gid) return null;
    if (e.type === 'symlink') {
      symlinks.push(i);
      continue;
    }
    const bits = s.sealBits(i);
    if (s.mode(i) !== e.mode || typeof bits !== 'number' || (bits & FS_IMMUTABLE_FL) === 0) return null;
    if (e.type === 'file') {
      if (s.size(i) !== e.size || s.links(i) !== 1 || !s.hashed(i) || s.hashedBytes(i) !== e.size || !s.sha256Equals(i, digests, i * 8)) return null;
      checkedFiles += 1;
      checkedBytes += e.size;
    }
  }
  for (const i of symlinks) {
    const e = want[i]!;
    const t = s.target(i);
    if (e.type !== 'symlink' || !t.ok || t.value !== e.target) return null;
  }
  return { problems: [], checkedFiles, checkedBytes };
}
