// Encodings of edwards25519 points that Ed25519 verification must refuse (docs/FORMAT.md#55-weak-keys):
// a public key or a signature's R that is not canonical (y >= p) or of small order (the eight torsion
// points, whatever the sign bit) lets a signature verify for any message. RFC 8032 verifiers such as
// tweetnacl and OpenSSL accept them; libsodium refuses them, and so does every check in this project.

/** 2^255 - 19, the field prime. */
const P = (1n << 255n) - 19n;
/** The curve constant d = -121665/121666 mod p. */
const D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;

/** The y coordinates (sign bit cleared) of the eight small-order points, as little-endian bytes. */
const SMALL_ORDER_Y: readonly Uint8Array[] = [
  // identity (order 1): y = 1
  yBytes(1n),
  // order 2: y = p - 1
  yBytes(P - 1n),
  // order 4: y = 0
  yBytes(0n),
  // order 8: the two y values, each with both signs of x
  hexBytes('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'),
  hexBytes('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'),
];

function yBytes(y: bigint): Uint8Array {
  const out = new Uint8Array(32);
  let v = y;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The y coordinate of an encoding (bit 255, the sign of x, cleared). */
function yOf(enc: Uint8Array): bigint {
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(i === 31 ? enc[i]! & 0x7f : enc[i]!);
  return y;
}

function sameY(enc: Uint8Array, y: Uint8Array): boolean {
  for (let i = 0; i < 31; i++) if (enc[i] !== y[i]) return false;
  return (enc[31]! & 0x7f) === y[31];
}

function powMod(base: bigint, exp: bigint): bigint {
  let r = 1n;
  let b = base % P;
  let e = exp;
  while (e > 0n) {
    if ((e & 1n) === 1n) r = (r * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return r;
}

/** Why a 32-byte point encoding must not be used as a key or as R, or null: the cheap byte-level checks. */
export type PointProblem = 'not 32 bytes' | 'non-canonical encoding (y >= 2^255-19)' | 'small-order point' | 'not a point on the curve';

// Byte-level checks used on every signature check (both the public key and R): canonical y and not one
// of the small-order points. Constant per call, no field arithmetic.
export function weakPointProblem(enc: Uint8Array): PointProblem | null {
  if (enc.length !== 32) return 'not 32 bytes';
  // y >= p: bytes 1..30 are 0xff, byte 31 (sign cleared) is 0x7f and byte 0 >= 0xed (libsodium's ge25519_is_canonical).
  let high = (enc[31]! & 0x7f) === 0x7f;
  for (let i = 30; i > 0 && high; i--) high = enc[i] === 0xff;
  if (high && enc[0]! >= 0xed) return 'non-canonical encoding (y >= 2^255-19)';
  for (const y of SMALL_ORDER_Y) if (sameY(enc, y)) return 'small-order point';
  return null;
}

/** Answers of publicKeyProblem by the key's 32 bytes (as one character each). */
const curveAnswers = new Map<string, PointProblem | null>();
const MAX_CURVE_ANSWERS = 256;

// The full check of a public key as it is read from a file or a policy: the byte-level checks, then
// RFC 8032 5.1.3 decoding (x^2 = (y^2 - 1) / (d y^2 + 1) must have a square root). A process reads
// the same key more than once (`vault verify --trust K`: vault.json when the vault is opened and
// again when verify compares it, and K), and the decoding's two exponentiations over BigInt cost
// about 4M instructions each time in cold code, so its answer is kept by the key's bytes.
export function publicKeyProblem(key: Uint8Array): PointProblem | null {
  const weak = weakPointProblem(key);
  if (weak !== null) return weak;
  let id = '';
  for (const b of key) id += String.fromCharCode(b);
  const known = curveAnswers.get(id);
  if (known !== undefined) return known;
  const answer = curveProblem(key);
  if (curveAnswers.size >= MAX_CURVE_ANSWERS) curveAnswers.clear();
  curveAnswers.set(id, answer);
  return answer;
}

/**
 * The same decoding test done elsewhere (the vault injects OpenSSL's, native/src/ed25519.c): true for
 * a point, false for none, null when it cannot answer (then the BigInt arithmetic below does).
 */
export type CurveCheck = (key: Uint8Array) => boolean | null;
let injectedCurveCheck: CurveCheck | null = null;

// Why: the decoding's two exponentiations over BigInt run in cold code, about 1 ms a key in a fresh
// process (a third of what `vault status` spends on its own work beyond Node's start); OpenSSL's big
// numbers take about 0.1 ms. test/vault/ed25519-native.test.ts holds the two to the same answers.
export function useCurveCheck(check: CurveCheck | null): void {
  injectedCurveCheck = check;
}

/** Whether a 32-byte encoding that passed the byte-level checks decodes to a point. */
function curveProblem(key: Uint8Array): PointProblem | null {
  let injected: boolean | null = null;
  try {
    injected = injectedCurveCheck?.(key) ?? null;
  } catch {
    // could not answer: the arithmetic below does
  }
  if (injected !== null) return injected ? null : 'not a point on the curve';
  return curveProblemOverBigInt(key);
}

/** curveProblem over BigInt: what runs without an injected check, and its reference in the tests. */
export function curveProblemOverBigInt(key: Uint8Array): PointProblem | null {
  const y = yOf(key);
  const y2 = (y * y) % P;
  const u = (y2 - 1n + P) % P;
  const v = (D * y2 + 1n) % P;
  // u / v is a square iff (u v^-1)^((p-1)/2) is 1 (u = 0 only for y = +-1, small order and refused above).
  const w = (u * powMod(v, P - 2n)) % P;
  if (w === 0n || powMod(w, (P - 1n) / 2n) !== 1n) return 'not a point on the curve';
  return null;
}
