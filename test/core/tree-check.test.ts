// The one tree comparison (docs/VAULT.md#tree-check): every kind of difference between a manifest
// and an observed tree gives its code at its path, in its group, whichever inspector observed it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { NO_XATTRS, checkTree, type ExpectedEntry, type ObservedEntry, type ObservedTree, type TreeProblem } from '../../src/core/tree-check.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

const MANIFEST: ExpectedEntry[] = [
  { type: 'file', path: 'VERSION', mode: 0o644, size: 3, sha256: sha('v1\n') },
  { type: 'dir', path: 'phi', mode: 0o755 },
  { type: 'file', path: 'phi/engine.py', mode: 0o755, size: 5, sha256: sha('code\n') },
  { type: 'symlink', path: 'current', target: 'phi/engine.py' },
];

/** The intact tree as an inspector reports it. */
function intact(): ObservedEntry[] {
  return [
    { path: 'VERSION', stat: { ok: true, value: { type: 'file', mode: 0o644, size: 3 } }, sealed: { ok: true, value: true }, digest: { ok: true, value: { sha256: sha('v1\n'), bytes: 3 } }, links: 1, xattrs: NO_XATTRS },
    { path: 'current', stat: { ok: true, value: { type: 'symlink', mode: 0o777, size: 13 } }, target: { ok: true, value: 'phi/engine.py' }, xattrs: NO_XATTRS },
    { path: 'phi', stat: { ok: true, value: { type: 'dir', mode: 0o755, size: 4096 } }, sealed: { ok: true, value: true }, xattrs: NO_XATTRS },
    { path: 'phi/engine.py', stat: { ok: true, value: { type: 'file', mode: 0o755, size: 5 } }, sealed: { ok: true, value: true }, digest: { ok: true, value: { sha256: sha('code\n'), bytes: 5 } }, links: 1, xattrs: NO_XATTRS },
  ];
}

function check(edit: (entries: ObservedEntry[]) => ObservedEntry[], unlisted: ObservedTree['unlisted'] = []): TreeProblem[] {
  return checkTree(MANIFEST, { entries: edit(intact()), unlisted }).problems;
}

const at = (entries: ObservedEntry[], path: string): ObservedEntry => entries.find((e) => e.path === path)!;

test('an intact tree has no problem and counts the files whose digest was compared', () => {
  const r = checkTree(MANIFEST, { entries: intact(), unlisted: [] });
  assert.deepEqual(r, { problems: [], checkedFiles: 2, checkedBytes: 8 });
});

test('missing, wrong type, unreadable entry: one tampered/io problem each, and nothing more about it', () => {
  assert.deepEqual(check((es) => es.filter((e) => e.path !== 'VERSION')), [{ code: 'tampered', path: 'VERSION', message: 'file is missing' }]);
  assert.deepEqual(
    check((es) => { at(es, 'phi').stat = { ok: true, value: { type: 'file', mode: 0o755, size: 1 } }; return es; }),
    [{ code: 'tampered', path: 'phi', message: 'expected a dir, found a file' }],
  );
  assert.deepEqual(
    check((es) => { at(es, 'VERSION').stat = { ok: true, value: { type: 'other', mode: 0o644, size: 0 } }; return es; }),
    [{ code: 'tampered', path: 'VERSION', message: 'expected a file, found a device, fifo or socket' }],
  );
  assert.deepEqual(check((es) => { at(es, 'VERSION').stat = { ok: false, error: 'EACCES' }; return es; }), [{ code: 'io', path: 'VERSION', message: 'cannot lstat: EACCES' }]);
});

test('mode, size and symlink target differences are tampered / size-mismatch', () => {
  assert.deepEqual(check((es) => { at(es, 'phi/engine.py').stat = { ok: true, value: { type: 'file', mode: 0o777, size: 5 } }; return es; }), [
    { code: 'tampered', path: 'phi/engine.py', message: 'mode 777, manifest says 755' },
  ]);
  const sized = check((es) => { at(es, 'VERSION').stat = { ok: true, value: { type: 'file', mode: 0o644, size: 4 } }; return es; });
  assert.deepEqual(sized, [{ code: 'size-mismatch', path: 'VERSION', message: 'size 4, manifest says 3' }], 'no digest problem for a file of the wrong size');
  assert.deepEqual(check((es) => { at(es, 'current').target = { ok: true, value: '/etc/passwd' }; return es; }), [
    { code: 'tampered', path: 'current', message: 'symlink points to /etc/passwd, manifest says phi/engine.py' },
  ]);
  assert.deepEqual(check((es) => { at(es, 'current').target = { ok: false, error: 'EACCES' }; return es; }).map((p) => p.code), ['io']);
});

test('extra entries of any type are tampered, after the problems of listed entries; one whose type could not be read is not named a device', () => {
  const problems = check((es) => [
    ...es,
    { path: 'phi/backdoor.py', stat: { ok: true, value: { type: 'file', mode: 0o644, size: 9 } } },
    { path: 'pipe', stat: { ok: true, value: { type: 'other', mode: 0o644, size: 0 } } },
    { path: 'gone', stat: { ok: false, error: 'ENOENT' } },
  ].map((e) => (e.path === 'VERSION' ? { ...e, stat: { ok: true, value: { type: 'file', mode: 0o600, size: 3 } } } : e)) as ObservedEntry[]);
  assert.deepEqual(problems, [
    { code: 'tampered', path: 'VERSION', message: 'mode 600, manifest says 644' },
    { code: 'tampered', path: 'phi/backdoor.py', message: 'extra file not in the manifest' },
    { code: 'tampered', path: 'pipe', message: 'extra device, fifo or socket not in the manifest' },
    { code: 'tampered', path: 'gone', message: 'extra entry not in the manifest (cannot lstat: ENOENT)' },
  ]);
});

test('seal: missing +i, an unreadable flag and a flag never read are all unsealed; symlinks carry none', () => {
  assert.deepEqual(check((es) => { at(es, 'phi').sealed = { ok: true, value: false }; return es; }), [{ code: 'unsealed', path: 'phi', message: 'not immutable (+i missing)' }]);
  assert.deepEqual(check((es) => { at(es, 'VERSION').sealed = { ok: false, error: 'ENOTTY' }; return es; }), [
    { code: 'unsealed', path: 'VERSION', message: 'cannot read the immutable flag: ENOTTY' },
  ]);
  assert.deepEqual(check((es) => { delete at(es, 'VERSION').sealed; return es; }).map((p) => p.code), ['unsealed'], 'fail-closed: no reading is no pass');
  assert.deepEqual(check((es) => { at(es, 'current').sealed = { ok: true, value: false }; return es; }), []);
});

test('digest: mismatch, short read, hash failure mapped through the errno map, never hashed', () => {
  assert.deepEqual(check((es) => { at(es, 'VERSION').digest = { ok: true, value: { sha256: sha('v2\n'), bytes: 3 } }; return es; }), [
    { code: 'hash-mismatch', path: 'VERSION', message: `SHA-256 ${sha('v2\n')}, manifest says ${sha('v1\n')}` },
  ]);
  assert.deepEqual(check((es) => { at(es, 'VERSION').digest = { ok: true, value: { sha256: sha('v1'), bytes: 2 } }; return es; }).map((p) => p.code), ['size-mismatch']);
  const failed = (errno: string) => check((es) => { at(es, 'VERSION').digest = { ok: false, error: errno }; return es; }).map((p) => p.code);
  assert.deepEqual(failed('EACCES'), ['not-permitted']);
  assert.deepEqual(failed('ELOOP'), ['bad-path'], 'swapped for a symlink while hashing');
  assert.deepEqual(failed('EOPNOTSUPP'), ['bad-path']);
  assert.deepEqual(failed('ENOENT'), ['not-found']);
  assert.deepEqual(failed('EIO'), ['io']);
  assert.deepEqual(check((es) => { delete at(es, 'VERSION').digest; return es; }), [{ code: 'io', path: 'VERSION', message: 'file was not hashed' }]);
});

test('problems come grouped: unlisted directories and structure, extras, seals, digests', () => {
  const problems = check(
    (es) => {
      at(es, 'VERSION').digest = { ok: true, value: { sha256: sha('x'), bytes: 3 } };
      at(es, 'VERSION').sealed = { ok: true, value: false };
      at(es, 'phi/engine.py').stat = { ok: true, value: { type: 'file', mode: 0o700, size: 5 } };
      return [...es, { path: 'extra', stat: { ok: true, value: { type: 'dir', mode: 0o755, size: 0 } } }];
    },
    [{ path: 'phi', error: 'EACCES' }],
  );
  assert.deepEqual(problems.map((p) => `${p.code}@${p.path}`), ['io@phi', 'tampered@phi/engine.py', 'tampered@extra', 'unsealed@VERSION', 'hash-mismatch@VERSION']);
});

test('extended attributes (capabilities and ACLs named as such), an unread or unreadable list, and a file with more than one link are problems', () => {
  assert.deepEqual(check((es) => { at(es, 'phi/engine.py').xattrs = { ok: true, value: ['security.capability'] }; return es; }), [
    { code: 'tampered', path: 'phi/engine.py', message: 'extended attribute(s) security.capability not in the manifest (file capabilities)' },
  ]);
  assert.deepEqual(check((es) => { at(es, 'phi').xattrs = { ok: true, value: ['system.posix_acl_default', 'user.x'] }; return es; }), [
    { code: 'tampered', path: 'phi', message: 'extended attribute(s) system.posix_acl_default, user.x not in the manifest (a POSIX ACL)' },
  ]);
  assert.deepEqual(check((es) => { at(es, 'current').xattrs = { ok: true, value: ['trusted.x'] }; return es; }).map((p) => `${p.code}@${p.path}`), ['tampered@current']);
  assert.deepEqual(check((es) => { at(es, 'phi').xattrs = { ok: false, error: 'EACCES' }; return es; }), [{ code: 'io', path: 'phi', message: 'cannot list the extended attributes: EACCES' }]);
  assert.deepEqual(check((es) => { delete at(es, 'current').xattrs; return es; }), [{ code: 'io', path: 'current', message: 'the extended attributes were not read' }]);
  assert.deepEqual(check((es) => { at(es, 'VERSION').links = 2; return es; }), [{ code: 'tampered', path: 'VERSION', message: '2 hard links: a name outside the manifest reaches this file' }]);
  assert.deepEqual(check((es) => { delete at(es, 'VERSION').links; return es; }), [{ code: 'io', path: 'VERSION', message: 'the link count was not read' }]);
});

test("owner: with the tree's owner given, an entry of another uid or gid is tampered and an unread owner a problem", () => {
  const owned = (): ObservedEntry[] => intact().map((e) => ({ ...e, owner: { uid: 0, gid: 0 } }));
  const checkOwned = (edit: (entries: ObservedEntry[]) => ObservedEntry[]): string[] => checkTree(MANIFEST, { entries: edit(owned()), unlisted: [], owner: { uid: 0, gid: 0 } }).problems.map((p) => `${p.code}@${p.path}: ${p.message}`);
  assert.deepEqual(checkOwned((es) => es), []);
  assert.deepEqual(checkOwned((es) => { at(es, 'VERSION').owner = { uid: 65534, gid: 0 }; at(es, 'phi').owner = { uid: 0, gid: 65534 }; return es; }), [
    'tampered@VERSION: owner 65534:0, the tree belongs to 0:0',
    'tampered@phi: owner 0:65534, the tree belongs to 0:0',
  ]);
  assert.deepEqual(checkOwned((es) => { delete at(es, 'current').owner; return es; }), ['io@current: the owner was not read']);
});

test('two observed entries under one path: a problem at that path whichever comes first, so neither can stand in for the other', () => {
  // An inspector that decodes two different on-disk names to one path (e.g. a name that is not
  // UTF-8 read as U+FFFD) must not let the later one shadow the earlier one.
  const decoy = (): ObservedEntry => ({ path: 'VERSION', stat: { ok: true, value: { type: 'file', mode: 0o644, size: 3 } }, sealed: { ok: true, value: true }, digest: { ok: true, value: { sha256: sha('v1\n'), bytes: 3 } }, links: 1, xattrs: NO_XATTRS });
  const evil = (): ObservedEntry => ({ ...decoy(), digest: { ok: true, value: { sha256: sha('EVIL'), bytes: 3 } } });
  const dup = { code: 'tampered', path: 'VERSION', message: 'two entries in the tree carry this name' };
  for (const order of [[evil(), decoy()], [decoy(), evil()]]) {
    const problems = check((es) => [...order, ...es.filter((e) => e.path !== 'VERSION')]);
    assert.ok(problems.some((p) => p.code === dup.code && p.path === dup.path && p.message === dup.message), JSON.stringify(problems));
  }
  // Identical duplicates too: one name can only be one entry.
  assert.deepEqual(check((es) => [decoy(), ...es]), [dup]);
});
