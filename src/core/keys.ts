// Ed25519 keys and their text files (docs/FORMAT.md): a key id binds every signature to one
// public key, and the text formats let operators move keys around as ordinary one-line files.
import nacl from 'tweetnacl';
import { SentinelError } from './errors.js';
import { publicKeyProblem } from './ed25519-points.js';

/** A trusted public key. `id` is always `keyIdOf(key)`. */
export interface PublicKey {
  id: string /* 16 lowercase hex */;
  key: Uint8Array /* 32 bytes */;
  comment?: string;
}

/** A signing key in tweetnacl's 64-byte form (seed followed by the public key). */
export interface SecretKey {
  id: string;
  secretKey: Uint8Array /* 64 bytes, tweetnacl form */;
  publicKey: Uint8Array;
  comment?: string;
}

/** First word of a public key file in the project's own format. */
export const PUBLIC_KEY_HEADER = 'omnimind-sentinel-ed25519-public-v1';
/** First word of a secret key file in the project's own format. */
export const SECRET_KEY_HEADER = 'omnimind-sentinel-ed25519-secret-v1';
/** Domain separation for key ids: no other hash in the product can collide with one. */
export const KEY_ID_CONTEXT = 'omnimind-sentinel/key-id/v1\0';

const KEY_ID_RE = /^[0-9a-f]{16}$/;
/** Ed25519 sizes (RFC 8032; tweetnacl's nacl.sign.publicKeyLength and signatureLength). */
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 } BIT STRING }.
const SPKI_ED25519_PREFIX = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

// Bytes of an ASCII string (contexts, headers); anything else is a bug in the caller.
export function asciiBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) throw new SentinelError('internal', 'asciiBytes called with a non-ASCII string');
    out[i] = c;
  }
  return out;
}

// Concatenation without Node's Buffer (core is pure).
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// Constant-shape byte comparison for canonical-encoding checks.
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

const HEX = '0123456789abcdef';

// Lowercase hex, the form of key ids, release ids and manifest hashes.
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += HEX[b >> 4]! + HEX[b & 15]!;
  return s;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Map<string, number>([...B64].map((c, i) => [c, i]));

// Standard base64 with padding (RFC 4648 section 4).
export function encodeBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i]!;
    const b = bytes[i + 1];
    const c = bytes[i + 2];
    s += B64[a >> 2]! + B64[((a & 3) << 4) | ((b ?? 0) >> 4)]!;
    s += b === undefined ? '=' : B64[((b & 15) << 2) | ((c ?? 0) >> 6)]!;
    s += c === undefined ? '=' : B64[c & 63]!;
  }
  return s;
}

// Strict base64: padded, standard alphabet, zero spare bits, so each byte string has exactly one text form; null if not.
export function decodeBase64(s: string): Uint8Array | null {
  if (s.length % 4 !== 0) return null;
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const body = s.length - pad;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < body; i++) {
    const v = B64_INDEX.get(s[i]!);
    if (v === undefined) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) return null;
  return o === out.length ? out : null;
}

// SHA-512 of key ids: tweetnacl's, until the platform installs a native one computing the same
// function (src/vault/ed25519.ts): a command parses its keys while its code is still cold, where
// tweetnacl's SHA-512 runs in V8's interpreter (a few milliseconds per start-up).
// (A call, not tweetnacl's function itself: the CLI's bundle loads tweetnacl on its first use.)
let keyIdSha512: (bytes: Uint8Array) => Uint8Array = (bytes) => nacl.hash(bytes);
export function useSha512ForKeyIds(sha512: (bytes: Uint8Array) => Uint8Array): void {
  keyIdSha512 = sha512;
}

// Key id = first 16 hex of SHA-512(context || public key): short enough to read, long enough to be unambiguous in a keyring.
export function keyIdOf(publicKey: Uint8Array): string {
  if (publicKey.length !== PUBLIC_KEY_BYTES) throw new SentinelError('usage', `an Ed25519 public key is 32 bytes, got ${publicKey.length}`);
  return toHex(keyIdSha512(concatBytes(asciiBytes(KEY_ID_CONTEXT), publicKey))).slice(0, 16);
}

// The caller supplies the 32 random bytes, so the core stays deterministic and testable with RFC 8032 seeds.
export function keyPairFromSeed(seed: Uint8Array, comment?: string): { secret: SecretKey; public: PublicKey } {
  if (seed.length !== nacl.sign.seedLength) throw new SentinelError('usage', `an Ed25519 seed is 32 bytes, got ${seed.length}`);
  if (comment !== undefined) assertComment(comment, 'comment');
  const kp = nacl.sign.keyPair.fromSeed(seed);
  const id = keyIdOf(kp.publicKey);
  const withComment = comment === undefined ? {} : { comment };
  return {
    secret: { id, secretKey: kp.secretKey, publicKey: kp.publicKey, ...withComment },
    public: { id, key: kp.publicKey, ...withComment },
  };
}

function assertComment(comment: string, where: string): void {
  // Comments share a line with the key: no control characters, so the file stays one line.
  if ([...comment].some((ch) => ch.charCodeAt(0) < 0x20 || ch === '\u007f')) throw new SentinelError('usage', 'a key comment must not contain control characters or newlines', { where });
  if (comment !== comment.trim()) throw new SentinelError('usage', 'a key comment must not start or end with whitespace', { where });
}

// Public key file: `omnimind-sentinel-ed25519-public-v1 <keyid> <base64 key> [comment]` and a newline.
export function encodePublicKey(k: PublicKey): string {
  if (k.key.length !== 32 || keyIdOf(k.key) !== k.id) throw new SentinelError('usage', 'public key id does not match its key', { where: k.id });
  if (k.comment !== undefined && k.comment !== '') assertComment(k.comment, k.id);
  return `${PUBLIC_KEY_HEADER} ${k.id} ${encodeBase64(k.key)}${k.comment ? ` ${k.comment}` : ''}\n`;
}

// Secret key file: same shape with the 32-byte seed; the file itself must be kept at mode 0600 by the writer.
export function encodeSecretKey(k: SecretKey): string {
  assertSecretConsistent(k.secretKey, k.publicKey, k.id, k.id);
  if (k.comment !== undefined && k.comment !== '') assertComment(k.comment, k.id);
  return `${SECRET_KEY_HEADER} ${k.id} ${encodeBase64(k.secretKey.subarray(0, 32))}${k.comment ? ` ${k.comment}` : ''}\n`;
}

function assertSecretConsistent(secretKey: Uint8Array, publicKey: Uint8Array, id: string, where: string): void {
  if (secretKey.length !== 64 || publicKey.length !== 32) throw new SentinelError('usage', 'secret key has the wrong length (expected 64 bytes, tweetnacl form)', { where });
  const derived = nacl.sign.keyPair.fromSeed(secretKey.subarray(0, 32)).publicKey;
  if (!bytesEqual(derived, publicKey) || !bytesEqual(secretKey.subarray(32), publicKey)) throw new SentinelError('usage', 'secret key does not match its public key', { where });
  if (keyIdOf(publicKey) !== id) throw new SentinelError('usage', 'secret key id does not match its key', { where });
}

/** The meaningful lines of a key file: blank lines and `#` comment lines are ignored. */
function keyLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** What a key text looks like, judged without ever echoing it (it may be a secret). */
type KeyTextKind = 'own-public' | 'own-secret' | 'ssh-public' | 'pem-public' | 'pem-secret' | 'ssh-secret' | 'raw32' | 'raw64' | 'unknown';

function classify(text: string): KeyTextKind {
  if (/-----BEGIN OPENSSH PRIVATE KEY-----/.test(text)) return 'ssh-secret';
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) return 'pem-secret';
  if (/-----BEGIN PUBLIC KEY-----/.test(text)) return 'pem-public';
  const lines = keyLines(text);
  const first = lines[0]?.split(/[ \t]+/)[0];
  if (first === PUBLIC_KEY_HEADER) return 'own-public';
  if (first === SECRET_KEY_HEADER) return 'own-secret';
  if (first === 'ssh-ed25519') return 'ssh-public';
  if (lines.length === 1) {
    const raw = decodeBase64(lines[0]!);
    if (raw?.length === 32) return 'raw32';
    if (raw?.length === 64) return 'raw64';
  }
  return 'unknown';
}

function ownKeyLine(text: string, header: string, where: string): { id: string; b64: string; comment?: string } {
  const lines = keyLines(text);
  if (lines.length !== 1) throw new SentinelError('usage', `key file must hold exactly one key line, found ${lines.length}`, { where });
  const m = /^(\S+)[ \t]+(\S+)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(lines[0]!);
  if (m === null || m[1] !== header) throw new SentinelError('usage', `key line must be "${header} <key id> <base64 key> [comment]"`, { where });
  if (!KEY_ID_RE.test(m[2]!)) throw new SentinelError('usage', 'key id must be 16 lowercase hex characters', { where });
  const comment = m[4];
  if (comment !== undefined) assertComment(comment, where);
  return { id: m[2]!, b64: m[3]!, ...(comment === undefined ? {} : { comment }) };
}

// A small-order or non-canonical key would let anyone sign as it (docs/FORMAT.md#55-weak-keys); refused wherever a key is read.
function publicKeyFrom(key: Uint8Array, comment: string | undefined, where: string): PublicKey {
  const problem = publicKeyProblem(key);
  if (problem !== null) throw new SentinelError('usage', `unusable Ed25519 public key: ${problem}`, { where });
  const id = keyIdOf(key);
  return comment === undefined || comment === '' ? { id, key } : { id, key, comment };
}

function parseSshEd25519(text: string, where: string): PublicKey {
  const lines = keyLines(text);
  const m = lines.length === 1 ? /^ssh-ed25519[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(lines[0]!) : null;
  const blob = m ? decodeBase64(m[1]!) : null;
  // SSH wire form: string "ssh-ed25519" (4-byte length + 11 bytes), string key (4-byte length + 32 bytes) = 51 bytes.
  const name = asciiBytes('ssh-ed25519');
  const ok =
    blob !== null &&
    blob.length === 51 &&
    bytesEqual(blob.subarray(0, 4), new Uint8Array([0, 0, 0, 11])) &&
    bytesEqual(blob.subarray(4, 15), name) &&
    bytesEqual(blob.subarray(15, 19), new Uint8Array([0, 0, 0, 32]));
  if (!ok) throw new SentinelError('usage', 'not a valid OpenSSH ssh-ed25519 public key line', { where });
  const comment = m?.[2]?.trim();
  if (comment !== undefined && comment !== '') assertComment(comment, where);
  return publicKeyFrom(blob.slice(19), comment, where);
}

function parsePemPublic(text: string, where: string): PublicKey {
  const m = /-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]*)-----END PUBLIC KEY-----/.exec(text);
  const der = m ? decodeBase64(m[1]!.replace(/\s+/g, '')) : null;
  if (der === null || der.length !== 44 || !bytesEqual(der.subarray(0, 12), new Uint8Array(SPKI_ED25519_PREFIX))) {
    throw new SentinelError('usage', 'PEM public key is not an Ed25519 SubjectPublicKeyInfo (RFC 8410)', { where });
  }
  return publicKeyFrom(der.slice(12), undefined, where);
}

// Trust anchors come from files an operator copied around: accept the own format, a raw 32-byte key in base64,
// an OpenSSH `ssh-ed25519` line or a PEM SPKI; refuse a secret key with a message that never repeats its text.
export function parsePublicKey(text: string, where: string): PublicKey {
  const kind = classify(text);
  switch (kind) {
    case 'own-public': {
      const line = ownKeyLine(text, PUBLIC_KEY_HEADER, where);
      const key = decodeBase64(line.b64);
      if (key?.length !== 32) throw new SentinelError('usage', 'public key must be 32 bytes in base64', { where });
      if (keyIdOf(key) !== line.id) throw new SentinelError('usage', 'key id does not match the key (file edited or corrupted)', { where });
      return publicKeyFrom(key, line.comment, where);
    }
    case 'raw32':
      return publicKeyFrom(decodeBase64(keyLines(text)[0]!)!, undefined, where);
    case 'ssh-public':
      return parseSshEd25519(text, where);
    case 'pem-public':
      return parsePemPublic(text, where);
    case 'own-secret':
    case 'pem-secret':
    case 'ssh-secret':
    case 'raw64':
      throw new SentinelError('usage', 'this is a secret key, but a public key is expected here (give the .pub file)', { where });
    case 'unknown':
      throw new SentinelError('usage', `not a public key: expected "${PUBLIC_KEY_HEADER} <key id> <base64>", a raw 32-byte Ed25519 key in base64, an ssh-ed25519 line or a PEM public key`, { where });
  }
}

// Signing keys are only ever read in the project's own format; the message never contains any of the text.
export function parseSecretKey(text: string, where: string): SecretKey {
  const kind = classify(text);
  if (kind === 'own-public' || kind === 'ssh-public' || kind === 'pem-public' || kind === 'raw32') {
    throw new SentinelError('usage', 'this is a public key, but a secret key is expected here (give the .key file)', { where });
  }
  if (kind !== 'own-secret') throw new SentinelError('usage', `not a secret key file: expected "${SECRET_KEY_HEADER} <key id> <base64 seed> [comment]"`, { where });
  const line = ownKeyLine(text, SECRET_KEY_HEADER, where);
  const raw = decodeBase64(line.b64);
  if (raw === null || (raw.length !== 32 && raw.length !== 64)) throw new SentinelError('usage', 'secret key must be a 32-byte seed (or 64-byte key) in base64', { where });
  const kp = nacl.sign.keyPair.fromSeed(raw.subarray(0, 32));
  if (raw.length === 64 && !bytesEqual(raw.subarray(32), kp.publicKey)) throw new SentinelError('usage', 'secret key halves do not match (file corrupted)', { where });
  if (keyIdOf(kp.publicKey) !== line.id) throw new SentinelError('usage', 'key id does not match the key (file edited or corrupted)', { where });
  raw.fill(0);
  const base = { id: line.id, secretKey: kp.secretKey, publicKey: kp.publicKey };
  return line.comment === undefined ? base : { ...base, comment: line.comment };
}
