#!/usr/bin/env bash
# Builds the sentinel's BPF object: vmlinux.h from this machine's BTF (bpftool), then
# bpf/sentinel.bpf.c with clang -target bpf (CO-RE) into bpf/build/sentinel.bpf.o, and the
# minimal BTF of the types the object relocates against (bpftool gen min_core_btf) with a
# fingerprint of the kernel BTF it was cut from: loading against it takes ~15 ms instead of
# ~100 ms of parsing the whole kernel BTF, and the loader uses it only while the running
# kernel's BTF has the same fingerprint (docs/EBPF.md#build). No output is committed. A host without clang, bpftool or BTF gets no object and the
# daemon polls /proc instead (docs/EBPF.md#fallback); that is a warning, not a build failure,
# unless SENTINEL_REQUIRE_BPF=1.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bpf/build
btf=${SENTINEL_BTF:-/sys/kernel/btf/vmlinux}
skip() {
  echo "sentinel: BPF object not built: $1; the daemon will poll /proc (docs/EBPF.md#fallback)" >&2
  if [ "${SENTINEL_REQUIRE_BPF:-0}" = 1 ]; then exit 1; fi
  exit 0
}
command -v clang >/dev/null || skip "clang not found (apt-get install clang)"
bpftool=$(command -v bpftool || echo /usr/sbin/bpftool)
[ -x "$bpftool" ] || skip "bpftool not found (apt-get install bpftool)"
[ -r "$btf" ] || skip "no kernel BTF at $btf"
[ -r /usr/include/bpf/bpf_helpers.h ] || skip "libbpf headers not found (apt-get install libbpf-dev)"
case "$(uname -m)" in
  x86_64) arch=x86 ;;
  aarch64) arch=arm64 ;;
  *) skip "unsupported architecture $(uname -m)" ;;
esac
mkdir -p "$out"
"$bpftool" btf dump file "$btf" format c > "$out/vmlinux.h.tmp"
mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"
clang -g -O2 -Wall -Werror -target bpf "-D__TARGET_ARCH_$arch" -I"$out" -Ibpf \
  -c bpf/sentinel.bpf.c -o "$out/sentinel.bpf.o.tmp"
"$bpftool" gen min_core_btf "$btf" "$out/sentinel.min.btf.tmp" "$out/sentinel.bpf.o.tmp"
# size, then SHA-256 of the first, middle and last 64 KiB (src/adapters/bpf-build.ts computes the same).
node -e '
const fs = require("node:fs"), { createHash } = require("node:crypto");
const fd = fs.openSync(process.argv[1], "r"), size = fs.fstatSync(fd).size, h = createHash("sha256"), chunk = 65536;
for (const at of [0, Math.max(0, Math.floor(size / 2) - chunk / 2), Math.max(0, size - chunk)]) {
  const b = Buffer.alloc(Math.min(chunk, size)); fs.readSync(fd, b, 0, b.length, at); h.update(b);
}
process.stdout.write(`${size} ${h.digest("hex")}\n`);' "$btf" > "$out/sentinel.min.btf.source.tmp"
# Syscall names of this architecture for `sentinel trace` and the audit log.
clang -dM -E -include sys/syscall.h - </dev/null | sed -n 's/^#define __NR_\([a-z0-9_]*\) \([0-9][0-9]*\)$/\1 \2/p' |
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const o = {}; for (const l of s.trim().split("\n")) { const [n, v] = l.split(" "); o[n] = Number(v); }
    process.stdout.write(JSON.stringify(o) + "\n"); });' > "$out/syscalls.json.tmp"
mv "$out/syscalls.json.tmp" "$out/syscalls.json"
mv "$out/sentinel.bpf.o.tmp" "$out/sentinel.bpf.o"
mv "$out/sentinel.min.btf.tmp" "$out/sentinel.min.btf"
mv "$out/sentinel.min.btf.source.tmp" "$out/sentinel.min.btf.source"
echo "sentinel: built $out/sentinel.bpf.o"
