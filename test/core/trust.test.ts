// Trust policy: one test per failure, plus release ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import nacl from 'tweetnacl';
import {
  assertTrustPolicy,
  checkDeployable,
  encodeBundleHead,
  encodeSignatures,
  releaseIdOf,
  signManifest,
  toHex,
  verifyBundleHead,
  verifySignedManifest,
  type BundleSignature,
  type VerifiedManifest,
} from '../../src/core/index.js';
import { ONE_YEAR_LATER, T0, coreFixture, flipByte, makeBundle, policyOf, replaceText, testKey, throwsCode } from '../helpers/core-factory.js';

const alice = testKey('alice');
const bob = testKey('bob');
const carol = testKey('carol');
const mallory = testKey('mallory');

test('a bundle signed by a trusted key verifies to its manifest, bytes, signers and release id', () => {
  const b = makeBundle({ signers: [alice] });
  const v = verifySignedManifest(b.manifestBytes, b.signatures, policyOf([alice]));
  assert.deepEqual(v.manifest, b.manifest);
  assert.deepEqual(v.manifestBytes, b.manifestBytes);
  assert.deepEqual(v.signers, [alice.public.id]);
  assert.match(v.releaseId, /^r00000001-[0-9a-f]{12}$/);
  const viaHead = verifyBundleHead(b.bytes, policyOf([alice]));
  assert.equal(viaHead.payloadOffset, b.head.length);
  assert.equal(viaHead.releaseId, v.releaseId);
});

test('release id = r + 8-digit version + first 12 hex of SHA-512(manifest bytes); reference value', () => {
  const b = makeBundle({ version: 42 });
  assert.equal(releaseIdOf(b.manifest, b.manifestBytes), `r00000042-${toHex(nacl.hash(b.manifestBytes)).slice(0, 12)}`);
  const ref = JSON.parse(new TextDecoder().decode(coreFixture('reference.json'))) as { releaseId: string };
  const m = coreFixture('manifest-v1.canonical.json');
  assert.equal(releaseIdOf({ version: 7 }, m), ref.releaseId);
});

test('wrong key: signed only by an unknown key is untrusted-key, naming the signer', () => {
  const b = makeBundle({ signers: [mallory] });
  throwsCode(() => verifySignedManifest(b.manifestBytes, b.signatures, policyOf([alice])), 'untrusted-key', 'signatures');
  try {
    verifySignedManifest(b.manifestBytes, b.signatures, policyOf([alice]));
  } catch (e) {
    assert.ok(e instanceof Error && e.message.includes(mallory.public.id) && e.message.includes(alice.public.id));
  }
});

test('no signatures at all is untrusted-key', () => {
  const b = makeBundle({ signers: [] });
  throwsCode(() => verifySignedManifest(b.manifestBytes, [], policyOf([alice])), 'untrusted-key');
});

test('an unknown signature next to a valid trusted one is ignored', () => {
  const b = makeBundle({ signers: [alice, mallory] });
  assert.deepEqual(verifySignedManifest(b.manifestBytes, b.signatures, policyOf([alice])).signers, [alice.public.id]);
});

test('too few signatures for the threshold is threshold', () => {
  const b = makeBundle({ signers: [alice, mallory] });
  throwsCode(() => verifySignedManifest(b.manifestBytes, b.signatures, policyOf([alice, bob, carol], 2)), 'threshold', 'signatures');
  const ok = makeBundle({ signers: [alice, carol] });
  assert.deepEqual(verifySignedManifest(ok.manifestBytes, ok.signatures, policyOf([alice, bob, carol], 2)).signers, [alice.public.id, carol.public.id].sort());
});

test('the same key twice counts once (also when listed twice in the keyring)', () => {
  const b = makeBundle({ signers: [alice] });
  const twice = [b.signatures[0]!, b.signatures[0]!];
  throwsCode(() => verifySignedManifest(b.manifestBytes, twice, policyOf([alice, bob], 2)), 'threshold');
  // Through the real signature block too: a block may list the same signature twice, it still counts once.
  const head = encodeBundleHead(b.manifestBytes, encodeSignatures(twice));
  throwsCode(() => verifyBundleHead(head, policyOf([alice, bob], 2)), 'threshold');
  // A keyring with alice twice has one distinct key: threshold 2 is not a satisfiable policy.
  throwsCode(() => verifySignedManifest(b.manifestBytes, twice, { keys: [alice.public, alice.public], threshold: 2 }), 'usage', 'trust.threshold');
  assert.deepEqual(verifySignedManifest(b.manifestBytes, twice, { keys: [alice.public, { ...alice.public }], threshold: 1 }).signers, [alice.public.id]);
});

test('a bad signature from a trusted key is bad-signature, even when others would meet the threshold', () => {
  const b = makeBundle({ signers: [alice, bob] });
  const other = makeBundle({ signers: [alice], version: 2 });
  const forged: BundleSignature[] = b.signatures.map((s) => (s.keyId === alice.public.id ? other.signatures[0]! : s));
  throwsCode(() => verifySignedManifest(b.manifestBytes, forged, policyOf([alice, bob], 1)), 'bad-signature', `signature ${alice.public.id}`);
  const garbage = b.signatures.map((s) => ({ ...s, signature: 'AAAA' }));
  throwsCode(() => verifySignedManifest(b.manifestBytes, garbage, policyOf([alice])), 'bad-signature');
  // A signature by mallory labelled with alice's key id.
  const relabelled = [{ keyId: alice.public.id, signature: signManifest(b.manifestBytes, mallory.secret).signature }];
  throwsCode(() => verifySignedManifest(b.manifestBytes, relabelled, policyOf([alice])), 'bad-signature');
});

test('an altered manifest under a valid signature is bad-signature (checked before parsing)', () => {
  const b = makeBundle({ signers: [alice] });
  const altered = replaceText(b.manifestBytes, '"version":1', '"version":2');
  throwsCode(() => verifySignedManifest(altered, b.signatures, policyOf([alice])), 'bad-signature');
  const broken = replaceText(b.manifestBytes, '"version":1', '"version":x');
  throwsCode(() => verifySignedManifest(broken, b.signatures, policyOf([alice])), 'bad-signature');
});

test('a signature over the bare manifest (no context) is not accepted', () => {
  const b = makeBundle({ signers: [alice] });
  const bare = nacl.sign.detached(b.manifestBytes, alice.secret.secretKey);
  const sig = [{ keyId: alice.public.id, signature: Buffer.from(bare).toString('base64') }];
  throwsCode(() => verifySignedManifest(b.manifestBytes, sig, policyOf([alice])), 'bad-signature');
});

test('a non-canonical manifest signed by a trusted key is still refused (malformed-bundle)', () => {
  const b = makeBundle({ signers: [alice] });
  const spaced = replaceText(b.manifestBytes, '"version":1', '"version": 1');
  const sig = [signManifest(spaced, alice.secret)];
  throwsCode(() => verifySignedManifest(spaced, sig, policyOf([alice])), 'malformed-bundle');
});

test('trust policy: threshold must be 1..distinct keys, keys must be 32 bytes', () => {
  throwsCode(() => assertTrustPolicy(policyOf([alice], 0)), 'usage');
  throwsCode(() => assertTrustPolicy(policyOf([alice], 2)), 'usage');
  throwsCode(() => assertTrustPolicy(policyOf([alice, bob], 1.5)), 'usage');
  throwsCode(() => assertTrustPolicy(policyOf([], 1)), 'usage');
  throwsCode(() => assertTrustPolicy({ keys: [{ id: 'x', key: new Uint8Array(31) }], threshold: 1 }), 'usage');
  assertTrustPolicy(policyOf([alice, bob], 2));
});

test('a keyring entry whose id field lies is matched by its real key id', () => {
  const b = makeBundle({ signers: [alice] });
  const liar = { ...bob.public, id: alice.public.id };
  throwsCode(() => verifySignedManifest(b.manifestBytes, b.signatures, { keys: [liar], threshold: 1 }), 'untrusted-key');
});

function verified(o: Parameters<typeof makeBundle>[0] = {}): VerifiedManifest {
  const b = makeBundle({ signers: [alice], ...o });
  return verifySignedManifest(b.manifestBytes, b.signatures, policyOf([alice]));
}

test('deployable: right vault, newer version, before expiry', () => {
  checkDeployable(verified({ version: 5 }), { vaultId: 'phi-engine', highestVersion: 4, now: T0 });
  checkDeployable(verified({ version: 1 }), { vaultId: 'phi-engine', highestVersion: 0, now: new Date(ONE_YEAR_LATER.getTime() - 1) });
});

test('rollback: an equal version is refused', () => {
  throwsCode(() => checkDeployable(verified({ version: 5 }), { vaultId: 'phi-engine', highestVersion: 5, now: T0 }), 'rollback');
});

test('rollback: an older version is refused', () => {
  throwsCode(() => checkDeployable(verified({ version: 3 }), { vaultId: 'phi-engine', highestVersion: 5, now: T0 }), 'rollback');
});

test('expired: now at or after expires', () => {
  throwsCode(() => checkDeployable(verified(), { vaultId: 'phi-engine', highestVersion: 0, now: ONE_YEAR_LATER }), 'expired');
  throwsCode(() => checkDeployable(verified(), { vaultId: 'phi-engine', highestVersion: 0, now: new Date('2030-01-01T00:00:00.000Z') }), 'expired');
});

test('wrong vault: a bundle for vault A is refused by vault B', () => {
  throwsCode(() => checkDeployable(verified({ vaultId: 'vault-a' }), { vaultId: 'vault-b', highestVersion: 0, now: T0 }), 'wrong-vault');
});

test('verifyBundleHead: incomplete head is truncated; flipped manifest byte is refused', () => {
  const b = makeBundle({ signers: [alice] });
  throwsCode(() => verifyBundleHead(b.head.subarray(0, b.head.length - 1), policyOf([alice])), 'truncated');
  const at = 12 + b.manifestBytes.indexOf(0x31); // a '1' digit inside the manifest
  assert.throws(() => verifyBundleHead(flipByte(b.head, at), policyOf([alice])));
});

test('an injected Ed25519 primitive (node:crypto) gives the same verdicts; a throwing one fails closed', () => {
  const spkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');
  let calls = 0;
  const nodeVerify = (message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean => {
    calls++;
    return cryptoVerify(null, message, createPublicKey({ key: Buffer.concat([spkiPrefix, publicKey]), format: 'der', type: 'spki' }), signature);
  };
  const b = makeBundle({ signers: [alice, bob] });
  const v = verifySignedManifest(b.manifestBytes, b.signatures, policyOf([alice, bob], 2), undefined, { verify: nodeVerify });
  assert.deepEqual(v.signers, [alice.public.id, bob.public.id].sort());
  assert.equal(calls, 2);
  const altered = replaceText(b.manifestBytes, '"version":1', '"version":2');
  throwsCode(() => verifySignedManifest(altered, b.signatures, policyOf([alice]), undefined, { verify: nodeVerify }), 'bad-signature');
  const throwing = (): boolean => {
    throw new Error('backend failure');
  };
  throwsCode(() => verifyBundleHead(b.head, policyOf([alice]), undefined, { verify: throwing }), 'bad-signature');
});

test('a second, invalid signature by an already valid trusted key is bad-signature, whatever the order', () => {
  const b = makeBundle({ signers: [alice] });
  const good = b.signatures[0]!;
  const bad = { keyId: alice.public.id, signature: makeBundle({ signers: [alice], version: 9 }).signatures[0]!.signature };
  throwsCode(() => verifySignedManifest(b.manifestBytes, [good, bad], policyOf([alice])), 'bad-signature');
  throwsCode(() => verifySignedManifest(b.manifestBytes, [bad, good], policyOf([alice])), 'bad-signature');
  throwsCode(() => verifyBundleHead(encodeBundleHead(b.manifestBytes, encodeSignatures([good, bad])), policyOf([alice])), 'bad-signature');
});
