// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* omnimind-sentinel's kernel side: one CO-RE object, tracepoints only (docs/EBPF.md).
 *   sched/sched_process_exit        whole-process exits of watched tgids
 *   raw_syscalls/sys_enter|sys_exit latency histogram, slow syscalls, main-thread loop state (stalls)
 *   tcp/tcp_retransmit_skb          retransmits per watched local port, counted here
 *   syscalls/sys_enter|exit_ioctl   who changed inode flags on the vault's filesystem
 * Every program first looks its subject up in a map the daemon fills at run time, so
 * unwatched processes cost one hash lookup and reach user space never. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "sentinel.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "maps.bpf.h"
#include "exit.bpf.h"
#include "syscalls.bpf.h"
#include "retransmit.bpf.h"
#include "flags.bpf.h"
