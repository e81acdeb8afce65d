// The one comparison of a release tree with its signed manifest (docs/VAULT.md#tree-check): pure,
// over what an inspection observed, whichever way it was read (the addon's one native pass or the
// lstat walk with the hashing workers). Each property is one check in ENTRY_CHECKS (type, target,
// seal, mode, size, extended attributes — ACLs and file capabilities are ones —, link count,
// digest); a new property is a new optional field of ObservedEntry and one more check, not a second
// comparison.
import { codeForErrno } from './errno.js';
import type { ErrorCode } from './errors.js';
import type { ManifestEntry } from './manifest.js';

/** What a tree entry must be: the signed manifest's entry. */
export type ExpectedEntry = ManifestEntry;

/** lstat's answer: a release may hold only files, directories and symlinks; 'other' is a device, fifo or socket. */
export type ObservedType = 'file' | 'dir' | 'symlink' | 'other';

/** A fact that was read, or why it could not be (an errno name or a one-line reason). */
export type Reading<T> = { ok: true; value: T } | { ok: false; error: string };

/** One entry found in the tree. Optional facts are absent when the inspector did not read them. */
export interface ObservedEntry {
  /** Relative to the tree root, '/'-separated, never empty. */
  path: string;
  /** Type, permission bits (mode & 0o7777) and size in bytes (0 for a directory), from lstat/statx. */
  stat: Reading<{ type: ObservedType; mode: number; size: number }>;
  /** A symlink's target; read for every symlink the manifest lists. */
  target?: Reading<string>;
  /** Whether FS_IMMUTABLE_FL is set; read for every file and directory the manifest lists. */
  sealed?: Reading<boolean>;
  /** SHA-256 and the bytes read, of a file whose size is the manifest's; read from the same open file as its stat where the inspector can. */
  digest?: Reading<{ sha256: string; bytes: number }>;
  /** A regular file's link count (st_nlink); read for every regular file found. */
  links?: number;
  /** Names of its extended attributes other than TOLERATED_XATTRS (an ACL is system.posix_acl_*); read for every entry found. */
  xattrs?: Reading<readonly string[]>;
  /** Owner uid and gid (lstat/statx); read for every entry found. */
  owner?: Owner;
}

/** A uid and a gid. */
export interface Owner {
  uid: number;
  gid: number;
}

/**
 * Extended attributes a tree entry may carry although the manifest lists none: the labels the
 * host's LSM and integrity subsystem put on every file created (SELinux, Smack, IMA, EVM). They
 * label the file for the host's policy; they do not change its bytes, but they can change what
 * running it grants (an SELinux entrypoint type), which verify therefore does not see
 * (docs/SECURITY.md#what-verify-covers). native/src/xattr.c keeps the same list.
 */
export const TOLERATED_XATTRS: readonly string[] = ['security.selinux', 'security.SMACK64', 'security.ima', 'security.evm'];

/** The common answer "no extended attribute", shared so that reading it allocates nothing per entry. */
export const NO_XATTRS: Reading<readonly string[]> = Object.freeze({ ok: true, value: Object.freeze([]) });

/** One line naming untolerated extended attributes, saying which are capabilities or ACLs. */
export function describeXattrs(names: readonly string[]): string {
  const kinds: string[] = [];
  if (names.includes('security.capability')) kinds.push('file capabilities');
  if (names.some((n) => n.startsWith('system.posix_acl_'))) kinds.push('a POSIX ACL');
  return `extended attribute(s) ${names.join(', ')} not in the manifest${kinds.length > 0 ? ` (${kinds.join(', ')})` : ''}`;
}

/** The inspection of one tree: every entry found, and the directories that could not be listed. */
export interface ObservedTree {
  entries: readonly ObservedEntry[];
  /**
   * The owner every entry must have: the tree root's, as the inspector read it (verify checks the
   * root's own uid against the vault's). The manifest names no owner, so an entry given to another
   * user or group (who could then read a 0600 file) differs from its siblings.
   */
  owner?: Owner;
  /** '' is the tree root. */
  unlisted: readonly { path: string; error: string }[];
}

/** One finding; `path` is relative to the tree root ('' for the root). */
export interface TreeProblem {
  code: ErrorCode;
  path: string;
  message: string;
}

/** What checking one tree found. */
export interface TreeCheck {
  problems: TreeProblem[];
  /** Files of the manifest's size whose digest was compared, and their manifest bytes. */
  checkedFiles: number;
  checkedBytes: number;
}

type Stat = { type: ObservedType; mode: number; size: number };
type Sink = (code: ErrorCode, message: string) => void;

/**
 * One property of an entry whose type matched the manifest. Checks run in this order, each
 * reporting through `sink` into its own group (structure, seal, digest), so a report lists what
 * changed before what could not be hashed, as readers expect.
 */
interface EntryCheck {
  group: 'structure' | 'seal' | 'digest';
  run(want: ExpectedEntry, got: ObservedEntry, stat: Stat, sink: Sink, owner: Owner | undefined): void;
}

const describeType = (t: ObservedType): string => (t === 'other' ? 'device, fifo or socket' : t);

const ENTRY_CHECKS: readonly EntryCheck[] = [
  {
    group: 'structure',
    run(want, got, _stat, sink) {
      if (want.type !== 'symlink') return;
      const t = got.target;
      if (t === undefined) sink('internal', 'the symlink target was not read');
      else if (!t.ok) sink('io', `cannot read the symlink: ${t.error}`);
      else if (t.value !== want.target) sink('tampered', `symlink points to ${t.value}, manifest says ${want.target}`);
    },
  },
  {
    group: 'seal',
    run(want, got, _stat, sink) {
      if (want.type === 'symlink') return; // symlinks carry no inode flags
      const s = got.sealed;
      if (s === undefined) sink('unsealed', 'the immutable flag was not read');
      else if (!s.ok) sink('unsealed', `cannot read the immutable flag: ${s.error}`);
      else if (!s.value) sink('unsealed', 'not immutable (+i missing)');
    },
  },
  {
    group: 'structure',
    run(want, _got, stat, sink) {
      if (want.type !== 'symlink' && stat.mode !== want.mode) sink('tampered', `mode ${stat.mode.toString(8)}, manifest says ${want.mode.toString(8)}`);
    },
  },
  {
    group: 'structure',
    run(want, _got, stat, sink) {
      if (want.type === 'file' && stat.size !== want.size) sink('size-mismatch', `size ${stat.size}, manifest says ${want.size}`);
    },
  },
  {
    group: 'structure',
    run(_want, got, _stat, sink) {
      const x = got.xattrs;
      if (x === undefined) sink('io', 'the extended attributes were not read');
      else if (!x.ok) sink('io', `cannot list the extended attributes: ${x.error}`);
      else if (x.value.length > 0) sink('tampered', describeXattrs(x.value));
    },
  },
  {
    group: 'structure',
    run(_want, got, _stat, sink, owner) {
      if (owner === undefined) return;
      const o = got.owner;
      if (o === undefined) sink('io', 'the owner was not read');
      else if (o.uid !== owner.uid || o.gid !== owner.gid) sink('tampered', `owner ${o.uid}:${o.gid}, the tree belongs to ${owner.uid}:${owner.gid}`);
    },
  },
  {
    group: 'structure',
    run(want, got, _stat, sink) {
      if (want.type !== 'file') return;
      if (got.links === undefined) sink('io', 'the link count was not read');
      else if (got.links !== 1) sink('tampered', `${got.links} hard links: a name outside the manifest reaches this file`);
    },
  },
  {
    group: 'digest',
    run(want, got, stat, sink) {
      if (want.type !== 'file' || stat.size !== want.size) return;
      const d = got.digest;
      if (d === undefined) sink('io', 'file was not hashed');
      else if (!d.ok) sink(codeForErrno(d.error, 'tree-entry'), `file could not be hashed (${d.error})`);
      else if (d.value.bytes !== want.size) sink('size-mismatch', `size ${d.value.bytes} while hashing, manifest says ${want.size}`);
      else if (d.value.sha256 !== want.sha256) sink('hash-mismatch', `SHA-256 ${d.value.sha256}, manifest says ${want.sha256}`);
    },
  },
];

// Why: invariant 5 (docs/VAULT.md#invariants) — the tree equals its manifest exactly: every entry
// present with its type, mode, size, SHA-256 or target and +i, no extended attribute, one link per
// regular file, nothing extra, nothing unreadable
// passed over. Problems come grouped: structure, extras, seals, digests.
export function checkTree(expected: readonly ExpectedEntry[], observed: ObservedTree): TreeCheck {
  const structure: TreeProblem[] = [];
  const seals: TreeProblem[] = [];
  const digests: TreeProblem[] = [];
  for (const u of observed.unlisted) structure.push({ code: 'io', path: u.path, message: `cannot list directory: ${u.error}` });
  const found = new Map<string, ObservedEntry>();
  for (const o of observed.entries) {
    // One name is one entry: a second entry under a path (two on-disk names an inspector decoded
    // alike) would otherwise shadow the first, whichever of them the manifest describes.
    if (found.has(o.path)) structure.push({ code: 'tampered', path: o.path, message: 'two entries in the tree carry this name' });
    else found.set(o.path, o);
  }
  const listed = new Set<string>();
  let checkedFiles = 0;
  let checkedBytes = 0;
  // One sink per group for the whole tree, reporting at the entry being checked: no closure per
  // entry and check (10,000 entries are checked once, in cold code, by `vault verify`).
  let path = '';
  const sinks: Record<EntryCheck['group'], Sink> = {
    structure: (code, message) => structure.push({ code, path, message }),
    seal: (code, message) => seals.push({ code, path, message }),
    digest: (code, message) => digests.push({ code, path, message }),
  };
  for (const want of expected) {
    path = want.path;
    listed.add(path);
    const got = found.get(path);
    if (got === undefined) {
      sinks.structure('tampered', `${want.type} is missing`);
      continue;
    }
    if (!got.stat.ok) {
      sinks.structure('io', `cannot lstat: ${got.stat.error}`);
      continue;
    }
    const stat = got.stat.value;
    if (stat.type !== want.type) {
      sinks.structure('tampered', `expected a ${want.type}, found a ${describeType(stat.type)}`);
      continue;
    }
    for (const check of ENTRY_CHECKS) check.run(want, got, stat, sinks[check.group], observed.owner);
    if (want.type === 'file' && stat.size === want.size) {
      checkedFiles += 1;
      checkedBytes += want.size;
    }
  }
  const extras: TreeProblem[] = [];
  for (const o of observed.entries) {
    if (listed.has(o.path)) continue;
    // An entry whose type could not be read (e.g. a name that is not UTF-8, EILSEQ) is named as such.
    const what = o.stat.ok ? `extra ${describeType(o.stat.value.type)} not in the manifest` : `extra entry not in the manifest (cannot lstat: ${o.stat.error})`;
    extras.push({ code: 'tampered', path: o.path, message: what });
  }
  return { problems: [...structure, ...extras, ...seals, ...digests], checkedFiles, checkedBytes };
}
