// The portable way of reading a release tree for verify: an lstat walk on this thread (link counts
// from it), the flag store for +i, extended attributes through the addon or getfattr, and the
// hashing workers for SHA-256 (files handed over in batches while the walk
// goes on). Used where the addon is absent, and with any flag store that is not the addon's.
import { lstatSync, readdirSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isSentinelError, messageOf } from '../core/errors.js';
import { errnoOf } from '../core/errno.js';
import { checkTree } from '../core/tree-check.js';
import type { ExpectedEntry, ObservedEntry, ObservedTree, ObservedType, Owner, Reading } from '../core/tree-check.js';
import { FS_IMMUTABLE_FL, areImmutable } from './flags.js';
import type { FlagStore } from './flags.js';
import type { HashPool, HashResult } from './hash.js';
import type { TreeInspector, TreeReading } from './tree-inspector.js';
import { nameOf, utf8OrNull } from './tree-records.js';
import { defaultXattrLister } from './xattrs.js';
import type { XattrLister } from './xattrs.js';

/** The tree root's owner, which every entry must have; undefined when the root cannot be read (its listing fails then too). */
function ownerOf(top: string): Owner | undefined {
  try {
    const st = lstatSync(top);
    return { uid: st.uid, gid: st.gid };
  } catch {
    return undefined;
  }
}

/** Files per hash job handed to the pool during the walk. */
const HASH_BATCH = 512;
/** Paths per batched flag read; the event loop turns between slices so the hash pool stays fed. */
const FLAG_SLICE = 512;
/** Longest stretch of synchronous lstat calls before the walk yields to the event loop. */
const YIELD_MS = 20;

const failure = (e: unknown): { ok: false; error: string } => ({ ok: false, error: errnoOf(isSentinelError(e) ? e.cause : e) ?? errnoOf(e) ?? messageOf(e) });

function typeOf(st: Stats): ObservedType {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
}

/** +i of each path: one batched read per slice, one by one where a slice fails so each failure is named. */
async function readSealed(flags: FlagStore, paths: readonly string[]): Promise<Reading<boolean>[]> {
  const out: Reading<boolean>[] = [];
  for (let i = 0; i < paths.length; i += FLAG_SLICE) {
    const slice = paths.slice(i, i + FLAG_SLICE);
    try {
      for (const v of await areImmutable(flags, slice)) out.push({ ok: true, value: v });
    } catch {
      for (const p of slice) {
        try {
          out.push({ ok: true, value: ((await flags.getFlags(p)) & FS_IMMUTABLE_FL) !== 0 });
        } catch (e) {
          out.push({ ok: false, error: messageOf(e) });
        }
      }
    }
    if (i + FLAG_SLICE < paths.length) await new Promise((r) => setImmediate(r));
  }
  return out;
}

/** The digests of one hash job; where the job failed, each of its files again alone, so every failure is its own. */
async function digestsOf(hash: HashPool, paths: readonly string[], job: Promise<HashResult[]>): Promise<Reading<{ sha256: string; bytes: number }>[]> {
  try {
    return (await job).map((r) => ({ ok: true, value: { sha256: r.sha256, bytes: r.size } }));
  } catch {
    const out: Reading<{ sha256: string; bytes: number }>[] = [];
    for (const p of paths) {
      try {
        const [r] = await hash.hashFiles([p]);
        out.push(r === undefined ? { ok: false, error: 'EIO' } : { ok: true, value: { sha256: r.sha256, bytes: r.size } });
      } catch (e) {
        out.push(failure(e));
      }
    }
    return out;
  }
}

async function walkTree(top: string, expected: readonly ExpectedEntry[], hash: HashPool, flags: FlagStore, xattrs: XattrLister, onProgress?: (done: number, total: number) => void): Promise<ObservedTree> {
  const byPath = new Map(expected.map((e) => [e.path, e]));
  const total = expected.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
  const entries: ObservedEntry[] = [];
  const unlisted: { path: string; error: string }[] = [];
  const jobs: { entries: ObservedEntry[]; paths: string[]; job: Promise<HashResult[]> }[] = [];
  const jobDone: number[] = [];
  let batch: { entries: ObservedEntry[]; paths: string[] } = { entries: [], paths: [] };
  const flush = (): void => {
    if (batch.paths.length === 0) return;
    const k = jobDone.push(0) - 1;
    const progress = onProgress === undefined ? undefined : (doneBytes: number) => {
      jobDone[k] = doneBytes;
      onProgress(jobDone.reduce((a, b) => a + b, 0), total);
    };
    const job = hash.hashFiles(batch.paths, progress);
    job.catch(() => undefined);
    jobs.push({ ...batch, job });
    batch = { entries: [], paths: [] };
  };
  let since = performance.now();
  const visit = async (dir: string, rel: string): Promise<void> => {
    let raw: Buffer[];
    try {
      raw = readdirSync(dir, { encoding: 'buffer' });
    } catch (e) {
      unlisted.push({ path: rel, error: errnoOf(e) ?? messageOf(e) });
      return;
    }
    // A name that is not UTF-8 has no string path that reaches it (Node would encode it to another
    // name, maybe a signed one): it is an entry of its own, under a name no signed path can have.
    const names = raw.map((b) => ({ name: nameOf(b), valid: utf8OrNull(b) !== null }));
    for (const { name, valid } of names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const abs = join(dir, name);
      const path = rel === '' ? name : `${rel}/${name}`;
      if (!valid) {
        entries.push({ path, stat: { ok: false, error: 'EILSEQ' } });
        continue;
      }
      let st: Stats;
      try {
        // Synchronous lstat: one libuv round trip per entry costs far more than the call itself.
        st = lstatSync(abs);
      } catch (e) {
        entries.push({ path, stat: { ok: false, error: errnoOf(e) ?? messageOf(e) } });
        continue;
      }
      if (performance.now() - since > YIELD_MS) {
        await new Promise((r) => setImmediate(r));
        since = performance.now();
      }
      const type = typeOf(st);
      const entry: ObservedEntry = { path, stat: { ok: true, value: { type, mode: st.mode & 0o7777, size: st.size } }, owner: { uid: st.uid, gid: st.gid } };
      if (type === 'file') entry.links = st.nlink;
      entries.push(entry);
      const want = byPath.get(path);
      if (want?.type === 'file' && type === 'file' && st.size === want.size) {
        batch.entries.push(entry);
        batch.paths.push(abs);
        if (batch.paths.length >= HASH_BATCH) flush();
      }
      if (type === 'dir') await visit(abs, path);
    }
  };
  const owner = ownerOf(top);
  await visit(top, '');
  flush();

  // Targets and flags are read while the pool finishes hashing.
  const sealTargets: ObservedEntry[] = [];
  for (const entry of entries) {
    const want = byPath.get(entry.path);
    if (want === undefined || !entry.stat.ok || entry.stat.value.type !== want.type) continue;
    if (want.type === 'symlink') {
      try {
        // Read as bytes: a target that is not UTF-8 must not match a signed one that decodes alike.
        const value = utf8OrNull(await readlink(join(top, entry.path), { encoding: 'buffer' }));
        entry.target = value === null ? { ok: false, error: 'EILSEQ' } : { ok: true, value };
      } catch (e) {
        entry.target = failure(e);
      }
    } else sealTargets.push(entry);
  }
  const found = entries.filter((e) => e.stat.ok);
  const names = await xattrs.list(top, found.map((e) => e.path));
  found.forEach((e, i) => (e.xattrs = names[i] ?? { ok: false, error: 'not read' }));
  const sealed = await readSealed(flags, sealTargets.map((e) => join(top, e.path)));
  sealTargets.forEach((e, i) => (e.sealed = sealed[i] ?? { ok: false, error: 'not read' }));
  for (const j of jobs) {
    const digests = await digestsOf(hash, j.paths, j.job);
    j.entries.forEach((e, i) => (e.digest = digests[i] ?? { ok: false, error: 'EIO' }));
  }
  onProgress?.(total, total);
  return { entries, unlisted, ...(owner === undefined ? {} : { owner }) };
}

// Why: verify without the addon (or with a flag store of its own): the same observed entries as
// the native pass, read with the flag store it was given (docs/VAULT.md#tree-check).
export function walkTreeInspector(flags: FlagStore, hash: HashPool, xattrs: XattrLister = defaultXattrLister()): TreeInspector {
  return {
    kind: 'walk',
    start(root: string): TreeReading {
      const top = resolve(root);
      return {
        finish: (expected, onProgress) => walkTree(top, expected, hash, flags, xattrs, onProgress),
        check: async (expected, onProgress) => checkTree(expected, await walkTree(top, expected, hash, flags, xattrs, onProgress)),
        abandon: () => Promise.resolve(),
      };
    },
  };
}
