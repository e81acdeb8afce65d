// The format's length and depth limits (docs/FORMAT.md, section 2.5) through the CLI: what the kernel
// would refuse later (ELOOP, ENAMETOOLONG) is refused when the manifest is parsed (`bad-path`, vault
// unchanged), and what the limits allow deploys, verifies and opens through the live path, on a vault
// whose own path has the longest length `vault init` accepts.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { canonicalJson, comparePaths, encodeBundleHead, encodeSignatures, signManifest } from '../../src/core/index.js';
import type { ManifestEntry } from '../../src/core/index.js';
import { MAX_ENTRY_PATH_BYTES, MAX_SYMLINK_DEPTH, MAX_SYMLINK_TARGET_BYTES, MAX_VAULT_PATH_BYTES } from '../../src/core/limits.js';
import { ONE_YEAR_LATER, T0, concat, sha256Hex, testKey, utf8 } from '../helpers/core-factory.js';
import { cleanupAll, liveTree, snapshot, tempDir } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { assertFails, assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';

const key = testKey('format-limits');
const VAULT_ID = 'format-limits';
let base = '';
let vault = '';
let version = 1;

type Craft = ManifestEntry | { type: 'file'; path: string; mode: number; content: string };

// A bundle signed by the trusted key whose manifest is written directly as canonical JSON, so the
// limits under test are checked by the deploying side only.
function craft(name: string, entries: Craft[]): string {
  const files = entries.filter((e): e is { type: 'file'; path: string; mode: number; content: string } => e.type === 'file' && 'content' in e);
  const listed = entries
    .map((e): ManifestEntry => ('content' in e ? { type: 'file', path: e.path, mode: e.mode, size: Buffer.byteLength(e.content), sha256: sha256Hex(e.content) } : e))
    .sort((a, b) => comparePaths(a.path, b.path));
  const manifestBytes = utf8(canonicalJson({ format: 'omnimind-sentinel/manifest/v1', vaultId: VAULT_ID, version: version++, created: T0.toISOString(), expires: ONE_YEAR_LATER.toISOString(), entries: listed }));
  const payload = listed.filter((e) => e.type === 'file').map((e) => utf8(files.find((f) => f.path === e.path)!.content));
  const out = join(base, `${name}.bundle`);
  writeFileSync(out, concat([encodeBundleHead(manifestBytes, encodeSignatures([signManifest(manifestBytes, key.secret)])), ...payload]));
  return out;
}

async function refused(bundle: string): Promise<void> {
  const before = snapshot(vault);
  assertFails(await sentinel(['deploy', bundle, '--vault', vault]), 'bad-path');
  assert.deepEqual(snapshot(vault), before, 'a refused bundle changes nothing');
}

async function deployed(bundle: string): Promise<void> {
  assertOk(await sentinel(['deploy', bundle, '--vault', vault]));
  assertOk(await sentinel(['vault', 'verify', vault]));
}

/** A chain of `n` links l00 -> l01 -> ... -> l(n-1) -> f. */
function chain(n: number): Craft[] {
  const out: Craft[] = [{ type: 'file', path: 'f', mode: 0o644, content: 'end of chain\n' }];
  const name = (i: number) => `l${String(i).padStart(2, '0')}`;
  for (let i = 0; i < n; i++) out.push({ type: 'symlink', path: name(i), target: i === n - 1 ? 'f' : name(i + 1) });
  return out;
}

describe('format limits: refused at parse time, and the largest allowed values work', { concurrency: false }, () => {
  before(async () => {
    if (!isRoot()) return;
    base = tempDir('limits');
    const keys = writeKeyFiles(base, 'k', key);
    // The vault path is exactly the longest one `vault init` accepts.
    let dir = join(base, 'v');
    while (Buffer.byteLength(dir) + 201 < MAX_VAULT_PATH_BYTES) dir = join(dir, 'd'.repeat(200));
    vault = join(dir, 'x'.repeat(MAX_VAULT_PATH_BYTES - Buffer.byteLength(dir) - 1));
    assert.equal(Buffer.byteLength(vault), MAX_VAULT_PATH_BYTES);
    mkdirSync(dir, { recursive: true });
    const tooLong = `${vault}y`;
    assertFails(await sentinel(['vault', 'init', tooLong, '--trust', keys.pub]), 'usage');
    assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', VAULT_ID]));
  });
  after(() => cleanupAll());

  it(`symlink chains: ${MAX_SYMLINK_DEPTH} links deploy and open through VAULT/current; ${MAX_SYMLINK_DEPTH + 1} and 41 are refused`, async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    await refused(craft('chain-41', chain(41)));
    await refused(craft('chain-over', chain(MAX_SYMLINK_DEPTH + 1)));
    await deployed(craft('chain-max', chain(MAX_SYMLINK_DEPTH)));
    assert.equal(readFileSync(join(liveTree(vault), 'l00'), 'utf8'), 'end of chain\n', 'the kernel resolves the longest allowed chain');
  });

  it(`symlink targets: ${MAX_SYMLINK_TARGET_BYTES} bytes deploy, ${MAX_SYMLINK_TARGET_BYTES + 1} bytes are refused`, async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const target = (n: number) => `${'./'.repeat((n - 1) / 2)}f`;
    assert.equal(target(MAX_SYMLINK_TARGET_BYTES).length, MAX_SYMLINK_TARGET_BYTES);
    const file: Craft = { type: 'file', path: 'f', mode: 0o644, content: 'target\n' };
    await refused(craft('target-over', [file, { type: 'symlink', path: 'l', target: `${target(MAX_SYMLINK_TARGET_BYTES)}/` }]));
    await deployed(craft('target-max', [file, { type: 'symlink', path: 'l', target: target(MAX_SYMLINK_TARGET_BYTES) }]));
    assert.equal(readlinkSync(join(liveTree(vault), 'l')).length, MAX_SYMLINK_TARGET_BYTES);
  });

  it(`entry paths: ${MAX_ENTRY_PATH_BYTES} bytes deploy and open by their full path; one byte more is refused`, async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const dirs: string[] = [];
    let p = '';
    while (Buffer.byteLength(p) + 251 < MAX_ENTRY_PATH_BYTES) {
      p = p === '' ? 'a'.repeat(250) : `${p}/${'a'.repeat(250)}`;
      dirs.push(p);
    }
    const leaf = (n: number) => `${p}/${'f'.repeat(n - Buffer.byteLength(p) - 1)}`;
    const tree = (n: number): Craft[] => [...dirs.map((d): Craft => ({ type: 'dir', path: d, mode: 0o755 })), { type: 'file', path: leaf(n), mode: 0o644, content: 'deep\n' }];
    await refused(craft('path-over', tree(MAX_ENTRY_PATH_BYTES + 1)));
    await deployed(craft('path-max', tree(MAX_ENTRY_PATH_BYTES)));
    const full = join(vault, 'releases', readlinkSync(join(vault, 'current')).split('/')[1]!, 'tree', leaf(MAX_ENTRY_PATH_BYTES));
    assert.ok(Buffer.byteLength(full) < 4096, `${Buffer.byteLength(full)} bytes fit PATH_MAX`);
    assert.equal(readFileSync(full, 'utf8'), 'deep\n');
  });
});
