// Test factory for signed bundles: deterministic keys, manifests, bundles and tamper helpers, so
// every layer's tests build the same kinds of good and bad input the same way (sigstore/tuf style).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import nacl from 'tweetnacl';
import {
  buildManifest,
  encodeBundleHead,
  encodeManifest,
  encodeSignatures,
  isSentinelError,
  keyPairFromSeed,
  signManifest,
  type BundleSignature,
  type ErrorCode,
  type Manifest,
  type ManifestEntry,
  type PublicKey,
  type SecretKey,
  type TrustPolicy,
} from '../../src/core/index.js';

/** A reference time for tests: bundles built here are valid from T0 for one year. */
export const T0 = new Date('2026-01-01T00:00:00.000Z');
export const ONE_YEAR_LATER = new Date('2027-01-01T00:00:00.000Z');

/** A key pair whose seed is derived from a label, so tests get the same keys every run. */
export interface TestKey {
  secret: SecretKey;
  public: PublicKey;
}

// Fixed seeds from labels: SHA-512("omnimind-sentinel/test-seed/" + label), first 32 bytes.
export function testKey(label: string): TestKey {
  const seed = nacl.hash(new TextEncoder().encode(`omnimind-sentinel/test-seed/${label}`)).slice(0, 32);
  return keyPairFromSeed(seed, `test key ${label}`);
}

// A trust policy over the public halves of test keys.
export function policyOf(keys: TestKey[], threshold = 1): TrustPolicy {
  return { keys: keys.map((k) => k.public), threshold };
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A tree to put in a bundle: files with content, directories, symlinks. */
export type TreeSpec = (
  | { type: 'file'; path: string; content: Uint8Array | string; mode?: number }
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'symlink'; path: string; target: string }
)[];

/** A small Φ-engine-like tree used by default. */
export const SAMPLE_TREE: TreeSpec = [
  { type: 'dir', path: 'phi' },
  { type: 'file', path: 'phi/engine.py', content: 'def phi(x):\n    return x\n' },
  { type: 'file', path: 'phi/weights.bin', content: new Uint8Array([0, 1, 2, 3, 255]), mode: 0o600 },
  { type: 'dir', path: 'config', mode: 0o750 },
  { type: 'file', path: 'config/phi.json', content: '{"alpha":1}\n' },
  { type: 'symlink', path: 'current-engine', target: 'phi/engine.py' },
  { type: 'file', path: 'VERSION', content: '' },
];

function contentBytes(c: Uint8Array | string): Uint8Array {
  return typeof c === 'string' ? new TextEncoder().encode(c) : c;
}

// Manifest entries of a tree spec (sizes and SHA-256 computed from the contents).
export function entriesOf(tree: TreeSpec): ManifestEntry[] {
  return tree.map((e): ManifestEntry => {
    if (e.type === 'file') {
      const b = contentBytes(e.content);
      return { type: 'file', path: e.path, mode: e.mode ?? 0o644, size: b.length, sha256: sha256Hex(b) };
    }
    if (e.type === 'dir') return { type: 'dir', path: e.path, mode: e.mode ?? 0o755 };
    return e;
  });
}

export interface ManifestOptions {
  vaultId?: string;
  version?: number;
  created?: Date;
  expires?: Date;
  tree?: TreeSpec;
}

export function makeManifest(o: ManifestOptions = {}): Manifest {
  return buildManifest({
    vaultId: o.vaultId ?? 'phi-engine',
    version: o.version ?? 1,
    created: o.created ?? T0,
    expires: o.expires ?? ONE_YEAR_LATER,
    entries: entriesOf(o.tree ?? SAMPLE_TREE),
  });
}

/** Everything a test may want about one signed bundle. */
export interface TestBundle {
  manifest: Manifest;
  manifestBytes: Uint8Array;
  signatures: BundleSignature[];
  signatureBytes: Uint8Array;
  head: Uint8Array;
  payload: Uint8Array;
  /** head followed by payload: the whole bundle file. */
  bytes: Uint8Array;
}

// A complete bundle (head + payload in manifest order) signed by the given keys.
export function makeBundle(o: ManifestOptions & { signers?: TestKey[] } = {}): TestBundle {
  const tree = o.tree ?? SAMPLE_TREE;
  const manifest = makeManifest({ ...o, tree });
  const manifestBytes = encodeManifest(manifest);
  const signatures = (o.signers ?? [testKey('release')]).map((k) => signManifest(manifestBytes, k.secret));
  const signatureBytes = encodeSignatures(signatures);
  const head = encodeBundleHead(manifestBytes, signatureBytes);
  const byPath = new Map(tree.filter((e) => e.type === 'file').map((e) => [e.path, contentBytes(e.content)]));
  const parts = manifest.entries.filter((e) => e.type === 'file').map((e) => byPath.get(e.path)!);
  const payload = concat(parts);
  return { manifest, manifestBytes, signatures, signatureBytes, head, payload, bytes: concat([head, payload]) };
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// Tamper: a copy with one byte XOR-ed (default: flip the lowest bit).
export function flipByte(bytes: Uint8Array, index: number, xor = 1): Uint8Array {
  const out = bytes.slice();
  out[index] = out[index]! ^ xor;
  return out;
}

// Tamper: a copy with `text` replaced once (for hand-made non-canonical or altered manifests).
export function replaceText(bytes: Uint8Array, from: string, to: string): Uint8Array {
  const s = new TextDecoder().decode(bytes);
  assert.ok(s.includes(from), `replaceText: ${JSON.stringify(from)} not found`);
  return new TextEncoder().encode(s.replace(from, to));
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

// Asserts that fn throws a SentinelError with this code (tests assert codes, not message text).
export function throwsCode(fn: () => unknown, code: ErrorCode, where?: string | RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected SentinelError ${code}, but nothing was thrown`);
  assert.ok(isSentinelError(caught), `expected SentinelError ${code}, got ${inspect(caught)}`);
  assert.equal(caught.code, code, `expected code ${code}, got ${caught.code}: ${caught.message} (${caught.where})`);
  if (where instanceof RegExp) assert.match(`${caught.where} ${caught.message}`, where);
  else if (where !== undefined) assert.equal(caught.where, where);
}

// The code and where of the SentinelError a promise rejects with (fails if it resolves or throws something else).
export async function rejection(p: Promise<unknown>): Promise<{ code: string; where: string | undefined }> {
  try {
    await p;
  } catch (e) {
    assert.ok(isSentinelError(e), `expected a SentinelError, got ${String(e)}`);
    return { code: e.code, where: e.where };
  }
  assert.fail('expected a rejection');
}

/** Bytes of a file under test/fixtures/core (tests run from dist/test). */
export function coreFixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../../../test/fixtures/core/${name}`, import.meta.url)));
}

export function hexToBytes(hex: string): Uint8Array {
  const clean = hex.trim();
  assert.ok(/^([0-9a-f]{2})*$/.test(clean), 'hexToBytes: not lowercase hex');
  return Uint8Array.from(clean.match(/../g) ?? [], (h) => parseInt(h, 16));
}
