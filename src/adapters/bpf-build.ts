// What scripts/build-bpf.sh left in bpf/build/ and whether this kernel can use it: the CO-RE object,
// the minimal BTF cut from the build machine's kernel (used only while the running kernel's BTF has
// the same fingerprint), and the syscall names of this architecture. docs/EBPF.md#build.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { packageRoot } from './package-root.js';
import { messageOf } from '../core/errors.js';

/** The kernel's own BTF, which CO-RE relocates against. */
export const KERNEL_BTF = '/sys/kernel/btf/vmlinux';
const FINGERPRINT_CHUNK = 65_536;

export interface BpfBuild {
  objectPath: string;
  minimalBtfPath: string;
  fingerprintPath: string;
  syscallsPath: string;
}

// Why: the build writes beside the sources, in a checkout and in an installed package alike.
export function bpfBuild(root = packageRoot()): BpfBuild {
  const dir = join(root, 'bpf', 'build');
  return {
    objectPath: join(dir, 'sentinel.bpf.o'),
    minimalBtfPath: join(dir, 'sentinel.min.btf'),
    fingerprintPath: join(dir, 'sentinel.min.btf.source'),
    syscallsPath: join(dir, 'syscalls.json'),
  };
}

// Why: reading the whole 5 MB kernel BTF from sysfs costs 35-120 ms, as much as the parse it saves;
// size plus three sampled chunks tells builds of different kernels apart (scripts/build-bpf.sh does the same).
export function btfFingerprint(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const h = createHash('sha256');
    const len = Math.min(FINGERPRINT_CHUNK, size);
    for (const at of [0, Math.max(0, Math.floor(size / 2) - FINGERPRINT_CHUNK / 2), Math.max(0, size - FINGERPRINT_CHUNK)]) {
      const b = Buffer.alloc(len);
      readSync(fd, b, 0, len, at);
      h.update(b);
    }
    return `${size} ${h.digest('hex')}`;
  } finally {
    closeSync(fd);
  }
}

/**
 * The BTF to relocate against: the minimal one when it was cut from this very kernel's BTF, else
 * null (libbpf then parses the kernel's own, ~100 ms). `why` says which, for logs and doctor.
 */
export function chooseBtf(build: BpfBuild, kernelBtf = KERNEL_BTF): { path: string | null; why: string } {
  if (!existsSync(build.minimalBtfPath) || !existsSync(build.fingerprintPath)) return { path: null, why: 'no minimal BTF in the build; using the kernel BTF' };
  let built: string;
  let running: string;
  try {
    built = readFileSync(build.fingerprintPath, 'utf8').trim();
    running = btfFingerprint(kernelBtf);
  } catch (e) {
    return { path: null, why: `kernel BTF fingerprint unreadable (${messageOf(e)}); using the kernel BTF` };
  }
  if (built !== running) return { path: null, why: 'the running kernel is not the one the object was built on; using the kernel BTF' };
  return { path: build.minimalBtfPath, why: 'minimal BTF of this kernel' };
}

let names: Map<number, string> | null | undefined;

// Why: `sentinel trace` and the audit log say "futex", not "202"; numbers when the table is missing.
export function syscallName(nr: number, build = bpfBuild()): string {
  if (names === undefined) {
    try {
      const parsed = JSON.parse(readFileSync(build.syscallsPath, 'utf8')) as Record<string, unknown>;
      names = new Map(Object.entries(parsed).filter((e): e is [string, number] => typeof e[1] === 'number').map(([n, v]) => [v, n]));
    } catch {
      names = null;
    }
  }
  return names?.get(nr) ?? `syscall ${nr}`;
}
