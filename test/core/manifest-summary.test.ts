// The manifest's top-level fields read from its head and tail (manifest-summary.ts), held to the
// strict reader: on valid manifests the same values; on every single-byte change of the head and the
// tail, either a refusal or, when it accepts, exactly what the strict reader accepts; the
// manifest-level rules refuse with the strict reader's own message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS, MANIFEST_FORMAT, canonicalJson, isSentinelError, parseManifest, type ManifestEntry } from '../../src/core/index.js';
import { readManifestSummary } from '../../src/core/manifest-summary.js';
import { ONE_YEAR_LATER, T0 } from '../helpers/core-factory.js';

const H = 'ab'.repeat(32);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function manifestText(entries: ManifestEntry[], over: Record<string, unknown> = {}): string {
  return canonicalJson({ format: MANIFEST_FORMAT, vaultId: 'v-1.x', version: 7, created: T0.toISOString(), expires: ONE_YEAR_LATER.toISOString(), entries, ...over });
}

const SAMPLES = [
  manifestText([]),
  manifestText([{ type: 'dir', path: 'a', mode: 0o755 }, { type: 'file', path: 'a/b', mode: 0o644, size: 3, sha256: H }, { type: 'symlink', path: 'l', target: 'a/b' }]),
  // Non-ASCII and escaped characters right before the tail: the tail is found from the end, not after them.
  manifestText([{ type: 'file', path: 'x"],"expires":"é\u{1D711}', mode: 0o600, size: 0, sha256: H }]),
  manifestText([{ type: 'symlink', path: 'z', target: '],"expires":"2027-01-01T00:00:00.000Z","format":"x","vaultId":"y","version":9}' }]),
  manifestText([], { vaultId: `a${'z'.repeat(63)}`, version: Number.MAX_SAFE_INTEGER }),
];

function strictTop(bytes: Uint8Array): Record<string, unknown> | null {
  try {
    const { entries: _entries, ...top } = parseManifest(bytes);
    return top;
  } catch (e) {
    if (!isSentinelError(e)) throw e;
    return null;
  }
}

test('valid manifests: the same top-level values as the strict reader', () => {
  for (const text of SAMPLES) {
    const bytes = enc(text);
    assert.notEqual(strictTop(bytes), null, text);
    assert.deepEqual({ ...readManifestSummary(bytes) }, strictTop(bytes));
  }
});

test('every single-byte change of the head and the tail: refused, or exactly what the strict reader accepts', () => {
  const replacements = [0x00, 0x20, 0x22, 0x2c, 0x30, 0x31, 0x39, 0x3a, 0x5c, 0x5d, 0x5b, 0x61, 0x7b, 0x7d, 0x80, 0xff];
  let accepted = 0;
  for (const text of SAMPLES) {
    const bytes = enc(text);
    const positions = new Set<number>();
    for (let i = 0; i < Math.min(64, bytes.length); i++) positions.add(i);
    for (let i = Math.max(0, bytes.length - 256); i < bytes.length; i++) positions.add(i);
    for (const i of positions) {
      for (const r of replacements) {
        if (bytes[i] === r) continue;
        const changed = bytes.slice();
        changed[i] = r;
        let summary: Record<string, unknown> | null = null;
        try {
          summary = { ...readManifestSummary(changed) };
        } catch (e) {
          assert.ok(isSentinelError(e), String(e));
          continue;
        }
        const top = strictTop(changed);
        // Only a change inside the entries (which the summary does not read) may pass without the strict reader.
        if (top === null) continue;
        assert.deepEqual(summary, top, `byte ${i} -> ${r} in ${text.slice(0, 80)}`);
        accepted++;
      }
    }
  }
  assert.ok(accepted > 0, 'some changes (a digit of a time or the version) are valid manifests');
});

test('a change of a top-level value is read as that value or refused, with the strict reader\'s message', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ version: 0 }, 'manifest.version must be an integer >= 1'],
    [{ format: 'omnimind-sentinel/manifest/v2' }, `manifest.format must be "${MANIFEST_FORMAT}"`],
    [{ vaultId: 'Upper' }, 'manifest.vaultId must match [a-z0-9][a-z0-9._-]{0,63}'],
    [{ expires: T0.toISOString() }, 'manifest.expires must be later than created'],
    [{ created: '2026-02-30T00:00:00.000Z' }, 'manifest.created is not a real calendar time'],
  ];
  for (const [over, message] of cases) {
    const bytes = enc(manifestText([], over));
    for (const read of [readManifestSummary, parseManifest]) {
      assert.throws(() => read(bytes), (e) => isSentinelError(e, 'malformed-bundle') && `${e.where ?? ''} ${e.message}` === message, `${read.name} ${JSON.stringify(over)}`);
    }
  }
  assert.throws(() => readManifestSummary(enc(SAMPLES[1]!.slice(0, -1))), (e) => isSentinelError(e, 'malformed-bundle') && /tail is not in canonical form/.test(e.message));
  assert.throws(() => readManifestSummary(enc(` ${SAMPLES[1]!}`)), (e) => isSentinelError(e, 'malformed-bundle') && /head is not in canonical form/.test(e.message));
  assert.throws(() => readManifestSummary(enc(SAMPLES[0]!), { ...DEFAULT_LIMITS, maxManifestBytes: 10 }), (e) => isSentinelError(e, 'too-large'));
});
