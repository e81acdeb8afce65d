// The two benchmark trees of the vault figures (20 files of 50 MiB, 10,000 files of ~9 KB in 100
// directories) and a page-cache warm-up, shared by hash-bench and cli-bench so both measure the same data.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runQuiet } from './hash-bench-util.js';

const MiB = 1024 * 1024;
export const LARGE_FILES = 20;
export const LARGE_SIZE = 50 * MiB;
export const SMALL_FILES = 10_000;
export const SMALL_DIRS = 100;

/** A built tree: every file (absolute), its size, every directory, and the bytes in all. */
export interface Tree {
  name: string;
  root: string;
  files: string[];
  /** Sizes as a manifest lists them: verify passes them so the largest files go first. */
  sizes: number[];
  dirs: string[];
  bytes: number;
}

// 20 × 50 MiB of random bytes (each file distinct).
export function buildLarge(root: string): Tree {
  mkdirSync(root);
  const base = randomBytes(LARGE_SIZE);
  const files: string[] = [];
  for (let i = 0; i < LARGE_FILES; i++) {
    base.writeUInt32BE(i, 0);
    const p = join(root, `blob-${String(i).padStart(2, '0')}.bin`);
    writeFileSync(p, base);
    files.push(p);
  }
  return { name: `${LARGE_FILES} x 50 MiB`, root, files, sizes: files.map(() => LARGE_SIZE), dirs: [root], bytes: LARGE_FILES * LARGE_SIZE };
}

// 10,000 files of 8–10 KiB in 100 directories.
export function buildSmall(root: string): Tree {
  mkdirSync(root);
  const pool = randomBytes(16 * MiB);
  const files: string[] = [];
  const sizes: number[] = [];
  const dirs = [root];
  let bytes = 0;
  let offset = 0;
  for (let d = 0; d < SMALL_DIRS; d++) {
    const dir = join(root, `d${String(d).padStart(3, '0')}`);
    mkdirSync(dir);
    dirs.push(dir);
    for (let f = 0; f < SMALL_FILES / SMALL_DIRS; f++) {
      const size = 8 * 1024 + Math.floor(Math.random() * 2048);
      if (offset + size > pool.length) offset = 0;
      const p = join(dir, `f${String(f).padStart(3, '0')}`);
      writeFileSync(p, pool.subarray(offset, offset + size));
      offset += size;
      bytes += size;
      files.push(p);
      sizes.push(size);
    }
  }
  return { name: `${SMALL_FILES} x ~9 KB`, root, files, sizes, dirs, bytes };
}

export function chunk<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

// Reads every file once so every tool measured afterwards starts from the same warm page cache.
export async function warm(files: string[]): Promise<void> {
  for (const part of chunk(files, 2000)) await runQuiet('cat', part);
}
