// Staging a release (docs/VAULT.md#deploy steps 2–3): the payload written and hash-checked into a
// staged release directory this operation made and holds open (src/vault/held.ts), the kept bundle
// written alongside from the same hashed bytes (or copied or moved next to it), then both made durable. `dir` and every path here are anchored at held
// directory descriptors, so a staging/ or staged release swapped underneath cannot redirect a write.
import { chmod, constants, copyFile, lstat, open, rename, writeFile } from 'node:fs/promises';
import { closeSync, fchmodSync, fstatSync, writeSync } from 'node:fs';
import { SentinelError } from '../core/errors.js';
import { codeForErrno, ioError } from '../core/errno.js';
import { encodeBundleHead } from '../core/bundle.js';
import type { FileEntry } from '../core/manifest.js';
import { payloadLayout } from '../core/manifest.js';
import type { VerifiedManifest } from '../core/trust.js';
import { fsyncDir, stagePayload, syncFilesystem } from '../adapters/bundle-file.js';
import type { OpenedBundle } from '../adapters/bundle-file.js';
import { copyColdFile, hasNativeKeptStaging, hasNativeSyncFs, nativeThreads, stageFilesNative, syncFsFdNative } from '../adapters/native.js';
import { allInOrder, exists } from './context.js';
import { releaseFiles } from './layout.js';
import { anchored } from './held.js';
import type { HeldDir, HeldVault } from './held.js';
import { StagedTree } from './staged-tree.js';

// The payload into staging: the bundle's length must be exactly head + payload (`truncated` /
// `trailing-data`), then every file is written and hashed on all cores by the addon (the digest is
// of the bytes written) and checked against the signed manifest (`hash-mismatch`). Without the
// addon, bundle-file's streaming stagePayload does the same on this thread. With `kept`, the addon
// also writes every hashed chunk into the kept bundle copy at its bundle offset.
async function writePayload(bundle: OpenedBundle, files: { entry: FileEntry; offset: number; dest: string }[], totalBytes: number, tree: StagedTree, kept?: KeptCopy): Promise<void> {
  const expectedEnd = bundle.payloadOffset + totalBytes;
  if (bundle.size < expectedEnd) throw new SentinelError('truncated', `bundle has ${bundle.size} bytes, its manifest needs ${expectedEnd}`, { where: bundle.path });
  if (bundle.size > expectedEnd) throw new SentinelError('trailing-data', `bundle has ${bundle.size - expectedEnd} bytes after the last payload file`, { where: bundle.path });
  const items = files.map((f) => ({ dest: f.dest, offset: bundle.payloadOffset + f.offset, size: f.entry.size, mode: f.entry.mode }));
  const results = await stageFilesNative(bundle.handle.fd, items, nativeThreads(), tree.fd, kept?.fd);
  if (results === null && kept !== undefined) throw new SentinelError('internal', 'the addon cannot write the kept bundle copy while staging', { where: kept.where });
  if (results === null) {
    await stagePayload(bundle, files.map((f) => ({ entry: f.entry, dest: `${tree.where}/${f.dest}` })), totalBytes, undefined, (f) => tree.create(f.entry.path));
    return;
  }
  let notReached = 0;
  for (const [i, r] of results.entries()) {
    const f = files[i]!;
    if (!r.ok) {
      if (r.errno === null) {
        notReached += 1;
        continue;
      }
      if (r.errno === 'ENODATA') throw new SentinelError('truncated', 'bundle payload ends early', { where: f.entry.path });
      if (r.kept === true && kept !== undefined) throw new SentinelError(codeForErrno(r.errno), `cannot write the kept bundle copy (${r.errno})`, { where: kept.where });
      throw new SentinelError(codeForErrno(r.errno), `cannot write staged file (${r.errno})`, { where: `${tree.where}/${f.dest}` });
    }
    if (r.written !== f.entry.size) throw new SentinelError('truncated', 'bundle payload ends early', { where: f.entry.path });
    if (r.sha256 !== f.entry.sha256) {
      throw new SentinelError('hash-mismatch', `payload SHA-256 ${r.sha256} differs from the manifest's ${f.entry.sha256}`, { where: f.entry.path });
    }
  }
  if (notReached > 0) throw new SentinelError('internal', `${notReached} payload file(s) were never staged`, { where: bundle.path });
}

// manifest.json and signatures.json, created O_EXCL (never through a name already there) and 0444 whatever the umask.
async function writeSigned(files: { manifest: string; signatures: string }, manifestBytes: Uint8Array, signatureBytes: Uint8Array): Promise<void> {
  await Promise.all([writeFile(files.manifest, manifestBytes, { flag: 'wx', mode: 0o444 }), writeFile(files.signatures, signatureBytes, { flag: 'wx', mode: 0o444 })]);
  await Promise.all([chmod(files.manifest, 0o444), chmod(files.signatures, 0o444)]);
}

/** Counts of what a staged release holds. */
export interface StageStats {
  files: number;
  bytes: number;
  /** Everything written, for making a small release durable file by file. */
  written: string[];
  /** The staged tree, held open until it is sealed. */
  tree: StagedTree;
}

/** The kept bundle copy being written while the payload is staged: its open descriptor and its path for messages. */
interface KeptCopy {
  fd: number;
  where: string;
}

/** Whether a deploy can write the kept bundle copy from the bytes it hashes while staging (the addon's stageFilesKeptAtAsync). */
export function canKeepWhileStaging(): boolean {
  return hasNativeKeptStaging();
}

// Why: verify-then-write for the bundle kept for heal (docs/VAULT.md#deploy): the copy is created in
// the held staging/ (O_EXCL, no symlink followed), its head written from the verified head bytes in
// memory, its payload by the addon from the very buffers it hashes; the source is never read again
// for it, so a bundle rewritten after it was read cannot put other bytes into the kept copy.
async function withKeptCopy(held: HeldVault, name: string, bundle: OpenedBundle, payloadBytes: number, act: (kept: KeptCopy) => Promise<void>): Promise<void> {
  const where = anchored(held.staging.fd, name);
  const head = encodeBundleHead(bundle.manifestBytes, bundle.signatureBytes);
  if (head.length !== bundle.payloadOffset) throw new SentinelError('internal', `re-encoded bundle head is ${head.length} bytes, the bundle's is ${bundle.payloadOffset}`, { where: bundle.path });
  let fd: number;
  try {
    fd = held.ops.openAt(held.staging.fd, name, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw ioError(e, 'cannot create the kept bundle copy', where);
  }
  try {
    try {
      for (let off = 0; off < head.length; ) off += writeSync(fd, head, off, head.length - off, off);
    } catch (e) {
      throw ioError(e, 'cannot write the kept bundle copy', where);
    }
    await act({ fd, where });
    const size = fstatSync(fd).size;
    if (size !== bundle.payloadOffset + payloadBytes) throw new SentinelError('internal', `the kept bundle copy has ${size} bytes, ${bundle.payloadOffset + payloadBytes} were written`, { where });
    fchmodSync(fd, 0o444);
  } finally {
    closeSync(fd);
  }
}

// Why: invariant 2 (docs/VAULT.md#invariants) — the payload lands only in the held staged release, each file hash-checked as
// written; symlinks are created after all files so no file can ever be written through one. With
// `keepAs`, the bundle is kept as that name in staging/ from the same hashed bytes (withKeptCopy).
export async function stageRelease(bundle: OpenedBundle, v: VerifiedManifest, held: HeldVault, stagedDir: HeldDir, keepAs: string | null = null): Promise<StageStats> {
  const dir = anchored(stagedDir.fd, '.');
  const files = releaseFiles(dir);
  // The staged release was made 0700 by HeldVault.makeStaged and gets 0755 last. Modes come from
  // here and from the manifest, never from the umask (docs/VAULT.md#modes).
  const tree = StagedTree.make(held, stagedDir);
  const dirs: { path: string; mode: number }[] = [];
  for (const e of v.manifest.entries) {
    if (e.type !== 'dir') continue;
    tree.mkdir(e.path);
    dirs.push({ path: e.path, mode: e.mode });
  }
  const layout = payloadLayout(v.manifest);
  let offset = 0;
  for (const f of layout.files) {
    if (f.offset !== offset) throw new SentinelError('internal', `payload layout is not sequential at ${f.entry.path}`, { where: bundle.path });
    offset += f.entry.size;
  }
  // The signed manifest and signature block go into the staged release (beside its tree, never
  // into it) while the payload is written; both have settled before anything else happens, and a
  // payload error is the one reported.
  const items = layout.files.map((f) => ({ entry: f.entry, offset: f.offset, dest: f.entry.path }));
  await allInOrder([
    keepAs === null ? writePayload(bundle, items, layout.totalBytes, tree) : withKeptCopy(held, keepAs, bundle, layout.totalBytes, (kept) => writePayload(bundle, items, layout.totalBytes, tree, kept)),
    writeSigned(files, v.manifestBytes, bundle.signatureBytes),
  ]);
  for (const e of v.manifest.entries) {
    if (e.type === 'symlink') tree.symlink(e.path, e.target);
  }
  for (const d of dirs.reverse()) tree.chmod(d.path, d.mode);
  fchmodSync(tree.fd, 0o755);
  fchmodSync(stagedDir.fd, 0o755);
  const inTree = (rel: string) => anchored(tree.fd, rel);
  const written = [...layout.files.map((f) => inTree(f.entry.path)), files.manifest, files.signatures, ...dirs.map((d) => inTree(d.path)), anchored(tree.fd, '.'), dir];
  return { files: layout.files.length, bytes: layout.totalBytes, written, tree };
}

// Keeps the received bundle for heal: moved when the caller hands it over (`consume`, same
// filesystem), else copied out of the page cache (a reflink where the filesystem has them, else
// O_DIRECT writes: the copy then neither competes with staging for fresh cache pages nor adds to
// what the durability sync must flush). Made durable by the one syncfs(2) that follows staging.
// What is kept is the verified file itself: the copy reads it through the open descriptor, and a
// moved file must be that same inode (a file swapped in at the path after verification is refused).
// Returns whether the bundle was moved.
export async function storeBundleIn(bundle: OpenedBundle, dest: string, consume: boolean): Promise<boolean> {
  if (consume) {
    try {
      await rename(bundle.path, dest);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    }
    if (await exists(dest)) {
      const [kept, verified] = await Promise.all([lstat(dest), bundle.handle.stat()]);
      if (kept.ino !== verified.ino || kept.dev !== verified.dev) {
        throw new SentinelError('tampered', 'the bundle file was replaced after its signature was verified', { where: bundle.path });
      }
      await chmod(dest, 0o444);
      return true;
    }
  }
  const src = `/proc/self/fd/${bundle.handle.fd}`;
  if ((await copyColdFile(src, dest)) === null) await copyFile(src, dest, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  await chmod(dest, 0o444);
  return false;
}

/** Without the addon's syncfs, up to this many staged paths are fsync'ed one by one; more are flushed with `sync -f`. */
const FSYNC_EACH_MAX = 256;

// Why: the staged release must be on disk before it can become live (power loss, docs/VAULT.md#durability).
// One syncfs(2) of the staging filesystem through the addon (the kept bundle copy is staged beside
// the release, on the same filesystem), through `stagingFd` (held since before staging wrote
// anything, so a writeback error while staging is reported too); without it a small release is
// fsync'ed path by path (concurrently, so the journal batches them) and a large one with one `sync -f`.
export async function makeDurable(staged: string, written: string[], bundleCopy: string | null, stagingDir: string, stagingFd?: number): Promise<void> {
  if (written.length > FSYNC_EACH_MAX || hasNativeSyncFs()) {
    try {
      if (stagingFd !== undefined && (await syncFsFdNative(stagingFd, stagingDir))) return;
    } catch (e) {
      throw ioError(e, 'syncfs failed', stagingDir);
    }
    await syncFilesystem(staged);
    return;
  }
  const paths = bundleCopy === null ? written : [...written, bundleCopy];
  await Promise.all(
    paths.map(async (p) => {
      const fh = await open(p, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }),
  );
  // The directory the staged release was made in (held: never `..` of a directory that may have been moved).
  await fsyncDir(stagingDir);
}
/**
 * Moves a consumed bundle back to where it came from, with its own permission bits: set on the file
 * itself, through a descriptor opened where it is kept (never following a symlink), before the move, so
 * nothing is ever changed through `to`, a path others can write. Setuid, setgid and sticky bits are not
 * given back (root has no reason to set them on a file someone else wrote). Best effort, like the move.
 */
export async function putBack(from: string, to: string, mode: number): Promise<void> {
  try {
    const fh = await open(from, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      await fh.chmod(mode & 0o777);
    } finally {
      await fh.close();
    }
  } catch {
    // Left as it is kept (0444); the move is still tried.
  }
  await rename(from, to).catch(() => undefined);
}

