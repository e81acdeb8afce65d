// Verify's intact answer straight from the signed manifest's bytes and the tree pass's records
// (the native reading's checkSigned, native/src/verify-tree.c), held to the full route on real
// sealed trees: the manifest parsed (parseManifest) and core's checkTree over the same reading. It
// may say "intact" only where the full route finds nothing wrong, with the same counts, version and
// vault id; it must say it for the common intact tree; everything else is null and the full route
// names the problems. Generated trees and manifests with every kind of problem, every single-byte
// change of a manifest, random limits, and each way the records can disagree.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, linkSync, mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_LIMITS, buildManifest, encodeManifest, isSentinelError, parseManifest } from '../../src/core/index.js';
import type { BundleLimits, ManifestEntry } from '../../src/core/index.js';
import { checkTree } from '../../src/core/tree-check.js';
import { FS_IMMUTABLE_FL, ioctlFlagStore, sealTree, unsealTree } from '../../src/adapters/flags.js';
import { loadNative } from '../../src/adapters/native.js';
import { nativeTreeInspector } from '../../src/adapters/tree-inspector-native.js';
import type { TreeReading } from '../../src/adapters/tree-inspector.js';
import { inspectTree } from '../../src/adapters/tree-records.js';
import { isRoot, needs } from '../helpers/env.js';
import { runs } from '../helpers/properties.js';
import { ONE_YEAR_LATER, T0 } from '../helpers/core-factory.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';

const addon = loadNative();
const PASS = { maxFileBytes: DEFAULT_LIMITS.maxFileBytes };
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
after(() => removeTempDirs());

function ready(t: TestContext): boolean {
  if (needs(t, isRoot(), 'root (CAP_LINUX_IMMUTABLE)')) return false;
  return !needs(t, typeof addon?.verifyManifestTree === 'function' && ioctlFlagStore() !== null, 'the native addon with verifyManifestTree');
}

type Kind = 'file' | 'dir' | 'symlink';
interface Spec {
  path: string;
  kind: Kind;
  mode: number;
  body: string;
}

/** A tree on disk and the manifest entries describing it (before any change). */
function writeTree(root: string, specs: Spec[]): ManifestEntry[] {
  mkdirSync(root);
  const entries: ManifestEntry[] = [];
  for (const s of [...specs].sort((a, b) => a.path.split('/').length - b.path.split('/').length)) {
    const abs = join(root, s.path);
    if (s.kind === 'dir') {
      mkdirSync(abs);
      chmodSync(abs, s.mode);
      entries.push({ type: 'dir', path: s.path, mode: s.mode });
    } else if (s.kind === 'file') {
      writeFileSync(abs, s.body);
      chmodSync(abs, s.mode);
      entries.push({ type: 'file', path: s.path, mode: s.mode, size: Buffer.byteLength(s.body), sha256: sha(s.body) });
    } else {
      symlinkSync(s.body, abs);
      entries.push({ type: 'symlink', path: s.path, target: s.body });
    }
  }
  return entries;
}

/** Mostly names the one-pass reader reads (some sorting before '/'), a few it does not (a quote, non-ASCII). */
const name = fc.oneof({ weight: 12, arbitrary: fc.constantFrom('a', 'b', 'a b', 'a.b', 'a-b', 'b0', 'c') }, { weight: 1, arbitrary: fc.constantFrom('q"x', 'é') });

const specsArb = fc
  .tuple(
    fc.array(fc.array(name, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 10 }),
    fc.array(fc.record({ kind: fc.constantFrom<Kind>('file', 'file', 'file', 'dir', 'symlink'), mode: fc.constantFrom(0o644, 0o600, 0o755, 0o700), body: fc.constantFrom('', 'a', 'hello\n', 'w'.repeat(5000)) }), { minLength: 10, maxLength: 10 }),
  )
  .map(([leaves, kinds]) => {
    const dirs = new Set<string>();
    for (const l of leaves) for (let i = 1; i < l.length; i++) dirs.add(l.slice(0, i).join('/'));
    const specs = new Map<string, Spec>();
    for (const d of dirs) specs.set(d, { path: d, kind: 'dir', mode: 0o755, body: '' });
    leaves.forEach((l, i) => {
      const path = l.join('/');
      if (specs.has(path)) return;
      const k = kinds[i]!;
      // A symlink to a name in its own directory: inside the release whether or not it exists.
      specs.set(path, { path, kind: k.kind, mode: k.kind === 'dir' ? (k.mode | 0o100) : k.mode, body: k.kind === 'symlink' ? 'missing-x' : k.body });
    });
    return [...specs.values()];
  });

type Change = (root: string, entries: ManifestEntry[], at: number) => void | Promise<void>;
const pick = <T extends ManifestEntry['type']>(entries: ManifestEntry[], type: T, at: number): Extract<ManifestEntry, { type: T }> | undefined => {
  const of = entries.filter((e): e is Extract<ManifestEntry, { type: T }> => e.type === type);
  return of.length === 0 ? undefined : of[at % of.length];
};
const store = ioctlFlagStore();
/** Changes of the tree made before it is sealed, and the seal changes made after. */
const CHANGES: Record<string, { sealed?: true; run: Change }> = {
  none: { run: () => undefined },
  'same-size rewrite': { run: (r, es, at) => { const f = pick(es, 'file', at); if (f !== undefined && f.size > 0) writeFileSync(join(r, f.path), 'Z'.repeat(f.size)); } },
  'other size': { run: (r, es, at) => { const f = pick(es, 'file', at); if (f !== undefined) writeFileSync(join(r, f.path), 'zz'.repeat(f.size + 1)); } },
  'file mode': { run: (r, es, at) => { const f = pick(es, 'file', at); if (f !== undefined) chmodSync(join(r, f.path), f.mode ^ 0o004); } },
  'directory mode': { run: (r, es, at) => { const d = pick(es, 'dir', at); if (d !== undefined) chmodSync(join(r, d.path), d.mode ^ 0o001); } },
  missing: { run: (r, es) => { const e = es[es.length - 1]; if (e !== undefined) rmSync(join(r, e.path), { recursive: true }); } },
  extra: { run: (r, es, at) => { const d = pick(es, 'dir', at); writeFileSync(join(r, d?.path ?? '', 'zz'), ''); } },
  'extra sorting before /': { run: (r, es, at) => { const d = pick(es, 'dir', at); if (d !== undefined) writeFileSync(join(r, `${d.path}.x`), ''); } },
  'file replaced by a directory': { run: (r, es, at) => { const f = pick(es, 'file', at); if (f !== undefined) { unlinkSync(join(r, f.path)); mkdirSync(join(r, f.path)); } } },
  'file replaced by a symlink': { run: (r, es, at) => { const f = pick(es, 'file', at); if (f !== undefined) { unlinkSync(join(r, f.path)); symlinkSync('a', join(r, f.path)); } } },
  'symlink retargeted': { run: (r, es, at) => { const l = pick(es, 'symlink', at); if (l !== undefined) { unlinkSync(join(r, l.path)); symlinkSync('missing-y', join(r, l.path)); } } },
  'hard link': { run: (r, es, at) => { const f = pick(es, 'file', at); if (f !== undefined) linkSync(join(r, f.path), join(r, '..', `outside-${at}`)); } },
  'extended attribute': { run: (r, es, at) => { const e = es[at % es.length]; if (e !== undefined && e.type !== 'symlink') spawnSync('setfattr', ['-n', 'user.note', '-v', 'x', join(r, e.path)]); } },
  'given to another user': { run: (r, es, at) => { const e = es[at % es.length]; if (e !== undefined && e.type !== 'symlink') chownSync(join(r, e.path), 65534, 0); } },
  'file unsealed': { sealed: true, run: async (r, es, at) => { const f = pick(es, 'file', at); if (f !== undefined) await store!.setFlag(join(r, f.path), FS_IMMUTABLE_FL, false); } },
  'directory unsealed': { sealed: true, run: async (r, es, at) => { const d = pick(es, 'dir', at); if (d !== undefined) await store!.setFlag(join(r, d.path), FS_IMMUTABLE_FL, false); } },
};
/** Changes of the manifest's side instead: it says another digest, size or mode than the tree has. */
const MANIFEST_CHANGES: Record<string, (e: ManifestEntry) => ManifestEntry> = {
  none: (e) => e,
  digest: (e) => (e.type === 'file' ? { ...e, sha256: `${e.sha256.slice(0, 63)}${e.sha256.endsWith('0') ? '1' : '0'}` } : e),
  size: (e) => (e.type === 'file' ? { ...e, size: e.size + 1 } : e),
  mode: (e) => (e.type === 'symlink' ? e : { ...e, mode: e.mode ^ 0o020 }),
};

/** What the one-pass reader and the addon read, in the listing's order: no symlink, plain names, the path order the pass lists in. */
function commonShape(entries: readonly ManifestEntry[]): boolean {
  const plain = entries.every((e) => e.type !== 'symlink' && /^[\x20-\x7e]+$/.test(e.path) && !/["\\]/.test(e.path));
  const bytes = (s: string): Buffer => Buffer.from(s);
  const preOrder = [...entries].sort((a, b) => {
    const x = a.path.split('/');
    const y = b.path.split('/');
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const c = Buffer.compare(bytes(x[i]!), bytes(y[i]!));
      if (c !== 0) return c;
    }
    return x.length - y.length;
  });
  return plain && preOrder.every((e, i) => e === entries[i]);
}

/** The full route's answer for `bytes` on this reading, or the error that parsing them throws. */
async function fullRoute(reading: TreeReading, bytes: Uint8Array, limits: BundleLimits): Promise<{ version: number; vaultId: string; check: Awaited<ReturnType<TreeReading['check']>> } | { code: string }> {
  let m;
  try {
    m = parseManifest(bytes, limits);
  } catch (e) {
    if (!isSentinelError(e)) throw e;
    return { code: e.code };
  }
  const check = await reading.check(m.entries);
  assert.deepEqual(check, checkTree(m.entries, await reading.finish(m.entries)), 'check() is checkTree over the reading');
  return { version: m.version, vaultId: m.vaultId, check };
}

/** checkSigned's answer held to the full route's: intact only where it is, the same values. */
async function holds(reading: TreeReading, bytes: Uint8Array, limits: BundleLimits, mustAnswer: boolean): Promise<'intact' | 'null'> {
  const quick = await reading.checkSigned!(bytes, limits);
  const full = await fullRoute(reading, bytes, limits);
  if (quick !== null) {
    assert.ok('check' in full, `the addon said intact where the manifest does not parse (${JSON.stringify(full)})`);
    assert.deepEqual(full.check.problems, [], 'the addon said intact where the full route finds problems');
    assert.deepEqual(quick, full);
    return 'intact';
  }
  assert.ok(!mustAnswer || !('check' in full) || full.check.problems.length > 0, 'an intact tree in the common shape must be answered by the addon');
  return 'null';
}

async function sealed(root: string, specs: Spec[], change: { sealed?: true; run: Change }, at: number): Promise<ManifestEntry[]> {
  const entries = writeTree(root, specs);
  if (change.sealed !== true) await change.run(root, entries, at);
  await sealTree(store!, root);
  if (change.sealed === true) await change.run(root, entries, at);
  return entries;
}

const manifestOf = (entries: ManifestEntry[]): Uint8Array => encodeManifest(buildManifest({ vaultId: 'tv', version: 7, created: T0, expires: ONE_YEAR_LATER, entries }));

/** A tree in the common shape (files, nested directories, an empty file). */
const INTACT_SPECS: Spec[] = [
  { path: 'VERSION', kind: 'file', mode: 0o644, body: 'v1\n' },
  { path: 'a', kind: 'dir', mode: 0o755, body: '' },
  { path: 'a/b', kind: 'dir', mode: 0o700, body: '' },
  { path: 'a/b/c', kind: 'file', mode: 0o600, body: 'w'.repeat(5000) },
  { path: 'a/e', kind: 'file', mode: 0o755, body: '' },
  { path: 'z', kind: 'file', mode: 0o644, body: 'zz' },
];

describe('checkSigned: the addon says intact only where the full route does', () => {
  test('property: generated trees, a change of the tree or of the manifest, both ways of starting the pass', async (t) => {
    if (!ready(t)) return;
    const seen = { intact: 0, null: 0 };
    await fc.assert(
      fc.asyncProperty(specsArb, fc.constantFrom(...Object.keys(CHANGES)), fc.constantFrom(...Object.keys(MANIFEST_CHANGES)), fc.nat(), fc.boolean(), async (specs, change, mchange, at, early) => {
        const root = join(makeTempDir('signed'), 'tree');
        try {
          const entries = await sealed(root, specs, CHANGES[change]!, at);
          const claimed = entries.map((e, i) => (i === at % entries.length ? MANIFEST_CHANGES[mchange]!(e) : e));
          const bytes = manifestOf(claimed);
          const reading = nativeTreeInspector(addon!).start(root, early ? undefined : claimed, PASS);
          try {
            seen[await holds(reading, bytes, DEFAULT_LIMITS, commonShape(parseManifest(bytes).entries))]++;
          } finally {
            await reading.abandon();
          }
        } finally {
          await unsealTree(store!, root).catch(() => undefined);
        }
      }),
      // Random draws meet the unchanged tree and manifest in only a few per cent of the runs; these examples
      // make sure both answers are met in every run (without them about one run in ten saw no intact one).
      {
        numRuns: runs(150),
        examples: [
          [INTACT_SPECS, 'none', 'none', 0, true],
          [INTACT_SPECS, 'none', 'none', 0, false],
          [INTACT_SPECS, 'same-size rewrite', 'none', 0, false],
          [INTACT_SPECS, 'none', 'digest', 0, true],
        ],
      },
    );
    assert.ok(seen.intact > 0 && seen.null > 0, `both answers were seen: ${JSON.stringify(seen)}`);
  });

  /** One intact tree in the common shape, sealed, read once; `fn` gets its reading and manifest. */
  async function onIntact(fn: (reading: TreeReading, bytes: Uint8Array) => Promise<void>): Promise<void> {
    const root = join(makeTempDir('signed'), 'tree');
    const entries = await sealed(root, INTACT_SPECS, CHANGES.none!, 0);
    const reading = nativeTreeInspector(addon!).start(root, undefined, PASS);
    try {
      await fn(reading, manifestOf(entries));
    } finally {
      await reading.abandon();
      await unsealTree(store!, root);
    }
  }

  test('every single-byte change of the manifest of an intact tree: intact only where the changed manifest parses and still matches', async (t) => {
    if (!ready(t)) return;
    await onIntact(async (reading, bytes) => {
      assert.equal(await holds(reading, bytes, DEFAULT_LIMITS, true), 'intact');
      const seen = { intact: 0, null: 0 };
      for (let i = 0; i < bytes.length; i++) {
        for (const b of [0x20, 0x22, 0x2f, 0x30, 0x31, 0x5c, 0x5d, 0x61, 0x66, 0x7b, 0xc3, bytes[i]! + 1]) {
          if (b === bytes[i]) continue;
          const changed = Uint8Array.from(bytes);
          changed[i] = b & 0xff;
          seen[await holds(reading, changed, DEFAULT_LIMITS, false)]++;
        }
        seen[await holds(reading, Uint8Array.from([...bytes.subarray(0, i), ...bytes.subarray(i + 1)]), DEFAULT_LIMITS, false)]++;
      }
      // A change of created/expires within the rules or of a digest nobody compares stays intact; most do not.
      assert.ok(seen.null > seen.intact, JSON.stringify(seen));
    });
  });

  test('property: random limits, the manifest refused or read exactly as the full route does', async (t) => {
    if (!ready(t)) return;
    await onIntact(async (reading, bytes) => {
      const seen = { intact: 0, null: 0 };
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 6000 }), fc.integer({ min: 0, max: 12000 }), fc.integer({ min: 0, max: 8 }), async (path, file, total, n) => {
          const limits = { ...DEFAULT_LIMITS, maxPathBytes: path, maxFileBytes: file, maxTotalBytes: total, maxEntries: n };
          seen[await holds(reading, bytes, limits, true)]++;
        }),
        { numRuns: runs(200), examples: [[7, 5000, 5005, 6], [6, 5000, 5005, 6], [7, 4999, 5005, 6], [7, 5000, 5004, 6], [7, 5000, 5005, 5]] },
      );
      assert.ok(seen.intact > 0 && seen.null > 0, `both answers were seen: ${JSON.stringify(seen)}`);
    });
  });
});

describe('checkSigned over changed records: intact only where checkTree over the same records finds nothing', () => {
  test('property: fields of the header and of any record overwritten, the manifest changed or not', async (t) => {
    if (!ready(t)) return;
    const specs: Spec[] = [
      { path: 'a', kind: 'dir', mode: 0o755, body: '' },
      { path: 'a/b', kind: 'dir', mode: 0o700, body: '' },
      { path: 'a/b/c', kind: 'file', mode: 0o600, body: 'w'.repeat(5000) },
      { path: 'a/e', kind: 'file', mode: 0o755, body: '' },
      { path: 'z', kind: 'file', mode: 0o644, body: 'zz' },
    ];
    const root = join(makeTempDir('signed'), 'tree');
    const entries = await sealed(root, specs, CHANGES.none!, 0);
    const bytes = manifestOf(entries);
    const records = (await inspectTree(addon!, root, 1, { hashAnyMax: PASS.maxFileBytes }))!.buffer;
    const fields = [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 60, 64, 68, 72, 76, 80, 84];
    const value = fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, -1, -2, -13, -116, 0x10, 0x30, 0o755, 0o644, 0o600, 5000, 2, 65534), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));
    const edit = fc.record({ record: fc.integer({ min: -1, max: entries.length - 1 }), field: fc.constantFrom(...fields), value, double: fc.boolean() });
    const seen = { intact: 0, null: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { maxLength: 3 }), fc.option(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }))), async (edits, byte) => {
        const r = Buffer.from(records);
        for (const e of edits) {
          // Record -1 is the header: its root errno, uid or gid (a count or length beyond the buffer: the cases below).
          const at = e.record < 0 ? 4 * (1 + (e.field % 3)) : 24 + e.record * 88 + e.field;
          if (e.double && at % 8 === 0 && at + 8 <= r.length) r.writeDoubleLE(e.value, at);
          else r.writeInt32LE(e.value, at - (at % 4));
        }
        const m = Uint8Array.from(bytes);
        if (byte !== null) m[byte[0] % m.length] = byte[1];
        // The same records through the native reading's own code: an addon whose pass answers with them.
        const fake = { ...addon!, inspectTreeAsync: () => Promise.resolve(r) };
        const reading = nativeTreeInspector(fake).start(root, undefined, PASS);
        seen[await holds(reading, m, DEFAULT_LIMITS, false)]++;
      }),
      { numRuns: runs(400) },
    );
    assert.ok(seen.intact > 0 && seen.null > 0, JSON.stringify(seen));
    await unsealTree(store!, root);
  });
});

describe('verifyManifestTree: each way the records or the arguments disagree is null or a TypeError', () => {
  test('records changed field by field, shortened, lengthened; arguments of the wrong type', async (t) => {
    if (!ready(t)) return;
    const specs: Spec[] = [
      { path: 'a', kind: 'dir', mode: 0o755, body: '' },
      { path: 'a/f', kind: 'file', mode: 0o644, body: 'hello\n' },
    ];
    const root = join(makeTempDir('signed'), 'tree');
    const entries = await sealed(root, specs, CHANGES.none!, 0);
    const bytes = manifestOf(entries);
    const records = (await inspectTree(addon!, root, 1, { hashAnyMax: PASS.maxFileBytes }))!.buffer;
    const { maxPathBytes: p, maxFileBytes: f, maxTotalBytes: tb, maxEntries: n } = DEFAULT_LIMITS;
    const run = (m: Uint8Array, r: Uint8Array): Float64Array | null | undefined => addon!.verifyManifestTree?.(m, r, p, f, tb, n);
    assert.deepEqual([...run(bytes, records)!], [bytes.indexOf(0x22, 12), bytes.lastIndexOf(0x5d) + 1, 2, 1, 6]);
    const edited = (at: number, write: (b: Buffer) => void): Buffer => {
      const b = Buffer.from(records);
      write(b.subarray(at));
      return b;
    };
    const REC = 24;
    const cases: [string, Uint8Array][] = [
      ['shorter than the header', records.subarray(0, 20)],
      ['one record more than the buffer holds', edited(0, (b) => b.writeUInt32LE(3))],
      ['one record fewer', edited(0, (b) => b.writeUInt32LE(1))],
      ['the root not opened', edited(4, (b) => b.writeInt32LE(13))],
      ['another root owner', edited(8, (b) => b.writeUInt32LE(1))],
      ['paths longer than the buffer', edited(16, (b) => b.writeUInt32LE(records.readUInt32LE(16) + 1))],
      ['a path byte changed', edited(REC + 2 * 88, (b) => (b[0] = 0x62))],
      ['the directory not listed', edited(REC + 80, (b) => b.writeInt32LE(116))],
      ['the directory of another type', edited(REC, (b) => b.writeInt32LE(1))],
      ['the file not stat-ed', edited(REC + 88, (b) => b.writeInt32LE(-13))],
      ['an extended attribute', edited(REC + 88 + 68, (b) => b.writeInt32LE(1))],
      ['its seal bits unread', edited(REC + 88 + 16, (b) => b.writeInt32LE(-61))],
      ['two links', edited(REC + 88 + 64, (b) => b.writeUInt32LE(2))],
      ['a hash error', edited(REC + 88 + 20, (b) => b.writeInt32LE(5))],
      ['not hashed', edited(REC + 88 + 20, (b) => b.writeInt32LE(-1))],
      ['other bytes hashed', edited(REC + 88 + 24, (b) => b.writeDoubleLE(5))],
      ['another size', edited(REC + 88 + 8, (b) => b.writeDoubleLE(7))],
      ['a digest byte changed', edited(REC + 88 + 63, (b) => (b[0] = b[0]! ^ 1))],
      ['another mode', edited(REC + 88 + 4, (b) => b.writeUInt32LE(0o640))],
      ['another group', edited(REC + 88 + 76, (b) => b.writeUInt32LE(1))],
    ];
    for (const [what, r] of cases) assert.equal(run(bytes, r), null, what);
    const longer = Buffer.concat([records, Buffer.from([0x78])]);
    longer.writeUInt32LE(records.readUInt32LE(16) + 1, 16);
    assert.equal(run(bytes, longer), null, 'a path more than the records');
    // No entry, no record: intact (the full route agrees: checkTree of nothing against nothing).
    const none = manifestOf([]);
    assert.deepEqual([...run(none, Buffer.alloc(24))!], [none.indexOf(0x22, 12), none.indexOf(0x5d) + 1, 0, 0, 0]);
    assert.equal(run(none, records), null, 'no entry against records of two');
    assert.equal(addon!.verifyManifestTree?.(bytes, records, p, f, tb, 1), null, 'more entries than the limit');
    assert.notEqual(addon!.verifyManifestTree?.(bytes, records, p, f, tb, 2), null, 'as many entries as the limit');
    // A manifest without the directory 'a' against records of 'a/f' alone: the parent rule refuses it.
    const orphan = new TextEncoder().encode(new TextDecoder().decode(bytes).replace('{"mode":493,"path":"a","type":"dir"},', ''));
    const one = Buffer.concat([records.subarray(0, 24), records.subarray(24 + 88, 24 + 176), Buffer.from('a/f\0')]);
    one.writeUInt32LE(1, 0);
    one.writeUInt32LE(4, 16);
    one.writeUInt32LE(0, 20);
    assert.throws(() => parseManifest(orphan), (e: unknown) => isSentinelError(e));
    assert.equal(run(orphan, one), null, 'a path whose parent is not listed');
    for (const [what, m] of [['non-ASCII', Buffer.from(none).fill(0xc3, 14, 15)], ['a backslash', Buffer.from(none).fill(0x5c, 14, 15)], ['no head', none.subarray(1)], ['an unclosed created', none.subarray(0, 20)], ['empty', new Uint8Array(0)]] as const) {
      assert.equal(run(m, Buffer.alloc(24)), null, what);
    }
    // Entries in the pass's own order ('a', 'a/f', 'a b': pre-order) are not sorted: refused though they match record for record.
    const root2 = join(makeTempDir('signed'), 'tree');
    const entries2 = await sealed(root2, [...specs, { path: 'a b', kind: 'file', mode: 0o644, body: '' }, { path: 'l', kind: 'symlink', mode: 0, body: 'missing-x' }], CHANGES.none!, 0);
    const records2 = (await inspectTree(addon!, root2, 1, { hashAnyMax: PASS.maxFileBytes }))!.buffer;
    const withoutLink = entries2.filter((e) => e.type !== 'symlink');
    const sorted = new TextDecoder().decode(manifestOf(withoutLink));
    const [head, rest] = sorted.split('"entries":[{');
    const [list, tail] = rest!.split('}],"expires"');
    const items = list!.split('},{');
    const preOrder = (['a', 'a/f', 'a b'] as const).map((path) => items.find((i) => i.includes(`"path":"${path}"`))!);
    const unsorted = new TextEncoder().encode(`${head!}"entries":[{${preOrder.join('},{')}}],"expires"${tail!}`);
    const noLink = Buffer.concat([records2.subarray(0, 24 + 3 * 88), Buffer.from('a\0a/f\0a b\0')]);
    noLink.writeUInt32LE(3, 0);
    noLink.writeUInt32LE(Buffer.byteLength('a\0a/f\0a b\0'), 16);
    noLink.writeUInt32LE(0, 20);
    assert.throws(() => parseManifest(unsorted), (e: unknown) => isSentinelError(e));
    assert.equal(run(unsorted, noLink), null, 'entries in the listing order, not sorted');
    // A symlink is never answered here, even where its record's mode matches what the manifest's scan gives a symlink (0).
    const retargeted = manifestOf(entries2.map((e) => (e.type === 'symlink' ? { ...e, target: 'missing-y' } : e)));
    const zeroMode = Buffer.from(records2);
    zeroMode.writeUInt32LE(0, 24 + 3 * 88 + 4);
    assert.equal(run(retargeted, zeroMode), null, 'a symlink entry');
    await unsealTree(store!, root2);
    assert.throws(() => addon!.verifyManifestTree?.('x' as unknown as Uint8Array, records, p, f, tb, n), TypeError);
    assert.throws(() => addon!.verifyManifestTree?.(bytes, new Uint16Array(4) as unknown as Uint8Array, p, f, tb, n), TypeError);
    assert.throws(() => addon!.verifyManifestTree?.(bytes, records, -1, f, tb, n), TypeError);
    assert.throws(() => (addon!.verifyManifestTree as unknown as (...a: unknown[]) => unknown)(bytes, records, p, f, tb), TypeError);
    await unsealTree(store!, root);
  });

  test("a file's digest: any other digit at any place of the manifest's, any other bit of the record's, is null", async (t) => {
    if (!ready(t)) return;
    const root = join(makeTempDir('signed'), 'tree');
    const entries = await sealed(root, [{ path: 'f', kind: 'file', mode: 0o644, body: 'hello\n' }], CHANGES.none!, 0);
    const bytes = manifestOf(entries);
    const records = (await inspectTree(addon!, root, 1, { hashAnyMax: PASS.maxFileBytes }))!.buffer;
    const { maxPathBytes: p, maxFileBytes: f, maxTotalBytes: tb, maxEntries: n } = DEFAULT_LIMITS;
    const run = (m: Uint8Array, r: Uint8Array): Float64Array | null | undefined => addon!.verifyManifestTree?.(m, r, p, f, tb, n);
    assert.notEqual(run(bytes, records), null, 'the intact file');
    const hex = (entries[0] as { sha256: string }).sha256;
    const at = Buffer.from(bytes).indexOf(hex);
    assert.ok(at > 0);
    // Every digit's every other value, lowercase and uppercase (the same byte value written otherwise).
    for (let i = 0; i < 64; i++) {
      for (const d of '0123456789abcdefABCDEF') {
        if (d === hex[i]) continue;
        const m = Uint8Array.from(bytes);
        m[at + i] = d.charCodeAt(0);
        assert.equal(run(m, records), null, `digit ${i} ${hex[i]!} -> ${d}`);
      }
    }
    // The record's 32 digest bytes (at offset 32 of the file's record, after the 24-byte header), each bit.
    for (let i = 0; i < 32; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const r = Buffer.from(records);
        r[24 + 32 + i] = r[24 + 32 + i]! ^ (1 << bit);
        assert.equal(run(bytes, r), null, `record byte ${i} bit ${bit}`);
      }
    }
    await unsealTree(store!, root);
  });
});
