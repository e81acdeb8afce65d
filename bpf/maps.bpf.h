/* Part of sentinel.bpf.c (one object, one compilation unit): the maps, .rodata and the record helpers every program uses. */
#pragma once

const volatile struct sentinel_rodata ro = {};

/* bpf_get_current_pid_tgid() as the loader sees PIDs: in its own PID namespace when it runs in one. */
static __always_inline __u64 current_pid_tgid(void) {
  if (ro.pidns_ino == 0) return bpf_get_current_pid_tgid();
  struct bpf_pidns_info ns = {};
  if (bpf_get_ns_current_pid_tgid(ro.pidns_dev, ro.pidns_ino, &ns, sizeof ns) != 0) return 0;
  return ((__u64)ns.tgid << 32) | ns.pid;
}

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u32);
  __type(value, struct sentinel_watch);
} sn_watched SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, SENTINEL_MAX_SLOTS);
  __type(key, __u32);
  __type(value, struct sentinel_slot_state);
} sn_slots SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, SENTINEL_MAX_SLOTS);
  __type(key, __u32);
  __type(value, struct sentinel_hist);
} sn_hist SEC(".maps");

struct inflight {
  __u64 start_ns;
  __s64 nr;
};

/* Per-thread syscall in progress; LRU so threads that never return (exit) age out. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32);
  __type(value, struct inflight);
} sn_inflight SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, struct sentinel_port);
} sn_ports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct sentinel_config);
} sn_config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, SENTINEL_STAT_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} sn_stats SEC(".maps");

struct pending_ioctl {
  __u64 inode;  /* struct inode *, read again at exit */
  __u64 ino;
  __u32 dev;
  __u32 cmd;
  __u16 before;
  __u16 pad[3];
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 1024);
  __type(key, __u32);
  __type(value, struct pending_ioctl);
} sn_pending SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 256 * 1024);
} sn_events SEC(".maps");

static __always_inline void count(__u32 stat) {
  __u64 *v = bpf_map_lookup_elem(&sn_stats, &stat);
  if (v) __sync_fetch_and_add(v, 1);
}

static __always_inline struct sentinel_event *reserve(__u32 kind, __u32 tgid, __u64 ns) {
  struct sentinel_event *e = bpf_ringbuf_reserve(&sn_events, sizeof(*e), 0);
  if (!e) {
    count(SENTINEL_STAT_LOST);
    return 0;
  }
  __builtin_memset(e, 0, sizeof(*e));
  e->kind = kind;
  e->tgid = tgid;
  e->ns = ns;
  bpf_get_current_comm(e->comm, sizeof(e->comm));
  return e;
}
