// Reading and writing key files for the CLI: the key formats live in core/keys, the file
// handling (0600, O_EXCL, one clear error per bad file) lives here.
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { SentinelError } from '../core/errors.js';
import { errnoOf, ioError } from '../core/errno.js';
import { MAX_KEY_FILE_BYTES, readSmallFile } from '../adapters/small-file.js';
import { encodePublicKey, encodeSecretKey, keyPairFromSeed, parsePublicKey, parseSecretKey } from '../core/keys.js';
import type { PublicKey, SecretKey } from '../core/keys.js';
import { assertTrustPolicy } from '../core/trust.js';
import type { TrustPolicy } from '../core/trust.js';

function readText(path: string, what: string): Promise<string> {
  return readSmallFile(path, { what, maxBytes: MAX_KEY_FILE_BYTES });
}

// A trusted public key from a file (own format or raw 32-byte base64, as core/keys accepts).
export async function readPublicKeyFile(path: string): Promise<PublicKey> {
  return parsePublicKey(await readText(path, 'public key'), path);
}

// A signing key from a file; refuses a file other users can read (a leaked key is a forged release).
export async function readSecretKeyFile(path: string): Promise<SecretKey> {
  const key = parseSecretKey(await readText(path, 'secret key'), path);
  const st = await fs.stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new SentinelError('not-permitted', `secret key is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`, { where: path });
  }
  return key;
}

// The signing keys named by repeated `--key`; the same key given twice is a usage error.
export async function readSecretKeyFiles(paths: string[]): Promise<SecretKey[]> {
  if (paths.length === 0) throw new SentinelError('usage', 'at least one --key is required');
  const keys: SecretKey[] = [];
  for (const p of paths) {
    const k = await readSecretKeyFile(p);
    if (keys.some((o) => o.id === k.id)) throw new SentinelError('usage', `key ${k.id} given twice`, { where: p });
    keys.push(k);
  }
  return keys;
}

// A trust policy from `--trust` files and `--threshold` (default 1), checked by core/trust.
export async function readTrustPolicy(paths: string[], threshold = 1): Promise<TrustPolicy> {
  if (paths.length === 0) throw new SentinelError('usage', 'at least one --trust public key is required');
  const keys: PublicKey[] = [];
  for (const p of paths) keys.push(await readPublicKeyFile(p));
  const policy: TrustPolicy = { keys, threshold };
  assertTrustPolicy(policy);
  return policy;
}

// `keygen`: fresh randomness from the OS, secret key created 0600 with O_EXCL; never overwrites.
export async function generateKeyFiles(prefix: string, comment?: string): Promise<{ keyPath: string; pubPath: string; keyId: string }> {
  await assertKeyPrefix(prefix);
  const keyPath = `${prefix}.key`;
  const pubPath = `${prefix}.pub`;
  for (const p of [keyPath, pubPath]) {
    const exists = await fs.lstat(p).then(
      () => true,
      () => false,
    );
    if (exists) throw new SentinelError('exists', 'refusing to overwrite an existing key file', { where: p });
  }
  const pair = keyPairFromSeed(new Uint8Array(randomBytes(32)), comment);
  await writeExclusive(keyPath, encodeSecretKey(pair.secret), 0o600);
  try {
    await writeExclusive(pubPath, encodePublicKey(pair.public), 0o644);
  } catch (e) {
    await fs.rm(keyPath, { force: true });
    throw e;
  }
  return { keyPath, pubPath, keyId: pair.public.id };
}

// Why: `--out DIR/` would write the hidden DIR/.key and DIR/.pub, and `--out DIR` a key pair next to the
// directory meant to hold it (the host's /media instead of the mounted medium).
async function assertKeyPrefix(prefix: string): Promise<void> {
  const last = prefix.slice(prefix.lastIndexOf('/') + 1);
  const isDir = ['', '.', '..'].includes(last) || (await fs.stat(prefix).then((st) => st.isDirectory(), () => false));
  if (isDir) throw new SentinelError('usage', `--out ${prefix} is a directory, but a path prefix is expected: give e.g. ${prefix.replace(/\/+$/, '')}/release for release.key and release.pub in it`, { where: '--out' });
}

async function writeExclusive(path: string, text: string, mode: number): Promise<void> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  } catch (e) {
    const errno = errnoOf(e);
    const what = errno === 'EEXIST' ? 'refusing to overwrite an existing key file' : errno === 'ENOENT' ? 'the directory for the key file does not exist' : 'cannot create the key file';
    throw ioError(e, what, path);
  }
  try {
    await handle.chmod(mode);
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } catch (e) {
    // A half-written key file would block the next keygen (O_EXCL) and hold no usable key: remove it.
    await handle.close().catch(() => undefined);
    await fs.rm(path, { force: true });
    const errno = (e as NodeJS.ErrnoException).code;
    throw new SentinelError('io', `cannot write the key file: ${errno ?? (e as Error).message}`, { where: path, cause: e });
  }
  await handle.close();
}
