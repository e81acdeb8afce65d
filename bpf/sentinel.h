/* Layouts shared by the BPF programs (sentinel.bpf.c), the native loader (native/src/bpf-engine.c)
 * and the TypeScript decoder (src/core/bpf-records.ts). Change all three together; docs/EBPF.md#records. */
#ifndef SENTINEL_BPF_H
#define SENTINEL_BPF_H

/* Targets traced at once (slots of the per-target arrays). */
#define SENTINEL_MAX_SLOTS 64
/* Latency histogram buckets: 0 = under 1 us, n = [2^(n-1), 2^n) us, the last one open-ended. */
#define SENTINEL_HIST_BUCKETS 32
/* Syscall numbers that count as the event loop's wait (epoll_wait, poll, select, ...). */
#define SENTINEL_WAIT_NRS 8

/* sentinel_watch.flags */
#define SENTINEL_WATCH_EXIT 1u
#define SENTINEL_WATCH_SYSCALLS 2u

/* Every ring-buffer record is SENTINEL_EVENT_BYTES long and starts with kind, tgid, ns. */
#define SENTINEL_EVENT_BYTES 64
#define SENTINEL_EV_EXIT 1u
#define SENTINEL_EV_SLOW 2u
#define SENTINEL_EV_STALL_END 3u
#define SENTINEL_EV_RETRANSMIT 4u
#define SENTINEL_EV_FLAGS 5u

/* Counters in the `stats` array. */
#define SENTINEL_STAT_LOST 0        /* records not sent: ring buffer full */
#define SENTINEL_STAT_EXITS 1
#define SENTINEL_STAT_SLOW 2
#define SENTINEL_STAT_STALL_ENDS 3
#define SENTINEL_STAT_RETRANSMITS 4 /* retransmitted skbs on watched ports */
#define SENTINEL_STAT_FLAGS 5
#define SENTINEL_STAT_COUNT 8

/* Value of the `watched` hash (key: tgid). */
struct sentinel_watch {
  __u32 slot;
  __u32 flags;
  __u64 slow_ns;      /* a syscall at least this long is a slow-syscall record (0: none) */
  __u64 stall_ns;     /* a busy stretch at least this long gets a stall-end record (0: none) */
  __u32 slow_per_sec; /* at most this many slow-syscall records a second for this slot */
  __u32 pad;
};

/* Value of the `slot_state` array: the main thread's loop state and per-target counters. */
struct sentinel_slot_state {
  __u64 busy_since_ns; /* the main thread left its last wait syscall at */
  __u64 sys_enter_ns;  /* the main thread's current syscall began at (0: not in one) */
  __u64 max_busy_ns;   /* longest busy stretch that ended */
  __u64 waits;         /* wait syscalls the main thread entered */
  __u64 syscalls;      /* syscalls that returned (every thread, waits excluded) */
  __u64 slow;          /* of those, at least slow_ns long */
  __u64 slow_dropped;  /* slow-syscall records not sent (rate limit or ring full) */
  __u64 slow_window_ns;
  __u32 slow_in_window;
  __u32 tgid;          /* the process this slot belongs to; others are ignored */
  __u32 in_wait;       /* the main thread is inside a wait syscall */
  __u32 armed;         /* the main thread has been seen in a wait syscall at least once */
  __s32 cur_nr;        /* the main thread's current syscall, -1 when none */
  __u32 pad;
};

/* Value of the `hist` array (key: slot). */
struct sentinel_hist {
  __u64 buckets[SENTINEL_HIST_BUCKETS];
};

/* Value of the `ports` hash (key: local TCP port, host order). */
struct sentinel_port {
  __u64 count;        /* retransmitted skbs from this local port since it was added */
  __u64 last_emit_ns;
  __u64 gap_ns;       /* at most one record per gap_ns */
};

/* Value of the one-entry `config` array: run-time settings. */
struct sentinel_config {
  __u32 flag_dev;     /* kernel dev_t (major << 20 | minor) of the vault's filesystem */
  __u32 flags_on;     /* report flag-changing ioctls on flag_dev */
};

/* Set before load (.rodata). */
struct sentinel_rodata {
  __u32 self_tgid;    /* the loader's own flag changes are not reported */
  __s32 wait_nrs[SENTINEL_WAIT_NRS]; /* -1: unused */
  __u32 pad;
  /* The loader's PID namespace (stat of /proc/self/ns/pid) when it is not the host's: PIDs in maps and
   * records are then the loader's, not the kernel's global ones (a daemon in a container). 0: the host's. */
  __u64 pidns_dev;
  __u64 pidns_ino;
};

struct sentinel_event {
  __u32 kind;
  __u32 tgid;
  __u64 ns;           /* CLOCK_MONOTONIC */
  char comm[16];
  union {
    struct { __u32 ppid; __s32 exit_code; __u32 slot; __u32 tid; __u64 pad[2]; } exit;
    struct { __u32 tid; __u32 slot; __s32 nr; __u32 pad; __u64 dur_ns; __s64 ret; } slow;
    struct { __u32 slot; __s32 nr; __u64 busy_ns; __u64 pad[2]; } stall;
    struct { __u32 port; __u32 family; __u64 count; __u32 state; __u32 pad; __u64 pad2; } retransmit;
    struct { __u32 tid; __u32 uid; __u32 cmd; __s32 ret; __u64 ino; __u32 dev; __u16 before; __u16 after; } flags;
  };
};

#endif
