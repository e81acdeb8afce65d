#!/usr/bin/env bash
# Installs the system packages the tests and the demo use, only when missing (repeat runs are fast),
# and mounts tracefs for the eBPF engine (libbpf finds tracepoint ids there). Needs root; without root it only reports what is missing.
set -euo pipefail
need=()
command -v chattr >/dev/null || need+=(e2fsprogs)
# The verify tests set file capabilities, ACLs and extended attributes; getfattr is also the walk's
# way to read them where the native addon is not built.
command -v setcap >/dev/null || [ -x /usr/sbin/setcap ] || need+=(libcap2-bin)
command -v setfacl >/dev/null || need+=(acl)
command -v setfattr >/dev/null || need+=(attr)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
command -v aide >/dev/null || need+=(aide)
command -v python3 >/dev/null || need+=(python3)
# The deploy's flush-order test watches the deploy's own syscalls.
command -v strace >/dev/null || need+=(strace)
# The sample backend and the Python integration's tests run on Debian's FastAPI/Uvicorn (only
# /usr/bin/python3 imports Debian's python3-* packages).
/usr/bin/python3 -c 'import fastapi, uvicorn' 2>/dev/null || need+=(python3-fastapi python3-uvicorn)
# The metrics test runs a real Prometheus server and promtool (both in Debian's prometheus package).
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
# The audit log's flush-failure test mounts a FUSE filesystem whose fsync answers EIO (Debian's fusepy).
/usr/bin/python3 -c 'import fusepy' 2>/dev/null || need+=(python3-fusepy)
command -v make >/dev/null || need+=(make)
command -v g++ >/dev/null || need+=(g++)
command -v clang >/dev/null || need+=(clang)
command -v bpftool >/dev/null || [ -x /usr/sbin/bpftool ] || need+=(bpftool)
[ -r /usr/include/bpf/libbpf.h ] || need+=(libbpf-dev)
# The addon's restart of a unit over D-Bus (sd-bus), without a systemctl process.
[ -r /usr/include/systemd/sd-bus.h ] || need+=(libsystemd-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host: missing system packages (${need[*]}); run as root to install them" >&2
  else
    echo "setup-host: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
if [ "$(id -u)" -eq 0 ] && [ ! -e /sys/kernel/tracing/trace_pipe ] && [ -d /sys/kernel/tracing ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || echo "setup-host: could not mount tracefs" >&2
fi
