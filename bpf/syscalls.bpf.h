/* Part of sentinel.bpf.c (one object, one compilation unit): syscall latency, slow syscalls and the main thread's loop state (docs/EBPF.md#stalls). */
#pragma once

static __always_inline int is_wait(__s64 nr) {
#pragma unroll
  for (int i = 0; i < SENTINEL_WAIT_NRS; i++) {
    if (ro.wait_nrs[i] >= 0 && ro.wait_nrs[i] == nr) return 1;
  }
  return 0;
}

/* Bucket of a duration: 0 below 1 us, then floor(log2(us)) + 1, capped at the last bucket. */
static __always_inline __u32 bucket_of(__u64 ns) {
  __u64 us = ns / 1000;
  if (us == 0) return 0;
  __u32 log = 0;
  if (us >> 32) { us >>= 32; log += 32; }
  if (us >> 16) { us >>= 16; log += 16; }
  if (us >> 8) { us >>= 8; log += 8; }
  if (us >> 4) { us >>= 4; log += 4; }
  if (us >> 2) { us >>= 2; log += 2; }
  if (us >> 1) log += 1;
  __u32 b = log + 1;
  return b < SENTINEL_HIST_BUCKETS ? b : SENTINEL_HIST_BUCKETS - 1;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int sentinel_sys_enter(struct trace_event_raw_sys_enter *ctx) {
  __u64 id = current_pid_tgid();
  __u32 tgid = id >> 32, tid = (__u32)id;
  struct sentinel_watch *w = bpf_map_lookup_elem(&sn_watched, &tgid);
  if (!w || !(w->flags & SENTINEL_WATCH_SYSCALLS)) return 0;
  __u32 slot = w->slot;
  __u64 stall_ns = w->stall_ns;
  __s64 nr = ctx->id;
  __u64 now = bpf_ktime_get_ns();
  struct inflight in = {.start_ns = now, .nr = nr};
  bpf_map_update_elem(&sn_inflight, &tid, &in, BPF_ANY);
  if (tid != tgid) return 0;
  struct sentinel_slot_state *s = bpf_map_lookup_elem(&sn_slots, &slot);
  if (!s || s->tgid != tgid) return 0;
  s->sys_enter_ns = now;
  s->cur_nr = nr;
  if (!is_wait(nr)) return 0;
  if (s->armed && !s->in_wait) {
    __u64 busy = now - s->busy_since_ns;
    if (busy > s->max_busy_ns) s->max_busy_ns = busy;
    if (stall_ns != 0 && busy >= stall_ns) {
      struct sentinel_event *e = reserve(SENTINEL_EV_STALL_END, tgid, now);
      if (e) {
        e->stall.slot = slot;
        e->stall.nr = nr;
        e->stall.busy_ns = busy;
        bpf_ringbuf_submit(e, 0);
        count(SENTINEL_STAT_STALL_ENDS);
      }
    }
  }
  s->in_wait = 1;
  s->armed = 1;
  s->waits++;
  return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int sentinel_sys_exit(struct trace_event_raw_sys_exit *ctx) {
  __u64 id = current_pid_tgid();
  __u32 tgid = id >> 32, tid = (__u32)id;
  struct sentinel_watch *w = bpf_map_lookup_elem(&sn_watched, &tgid);
  if (!w || !(w->flags & SENTINEL_WATCH_SYSCALLS)) return 0;
  __u32 slot = w->slot;
  __u64 slow_ns = w->slow_ns;
  __u32 slow_per_sec = w->slow_per_sec;
  __u64 now = bpf_ktime_get_ns();
  __s64 nr = ctx->id;
  struct sentinel_slot_state *s = bpf_map_lookup_elem(&sn_slots, &slot);
  if (s && s->tgid != tgid) s = 0;
  struct inflight *in = bpf_map_lookup_elem(&sn_inflight, &tid);
  if (in) {
    __u64 dur = now - in->start_ns;
    nr = in->nr;
    bpf_map_delete_elem(&sn_inflight, &tid);
    if (!is_wait(nr)) {
      struct sentinel_hist *h = bpf_map_lookup_elem(&sn_hist, &slot);
      if (h) {
        __u32 b = bucket_of(dur);
        if (b < SENTINEL_HIST_BUCKETS) __sync_fetch_and_add(&h->buckets[b], 1);
      }
      if (s) __sync_fetch_and_add(&s->syscalls, 1);
      if (slow_ns != 0 && dur >= slow_ns && s) {
        __sync_fetch_and_add(&s->slow, 1);
        if (now - s->slow_window_ns >= 1000000000ull) {
          s->slow_window_ns = now;
          s->slow_in_window = 0;
        }
        if (s->slow_in_window >= slow_per_sec) {
          __sync_fetch_and_add(&s->slow_dropped, 1);
        } else {
          s->slow_in_window++;
          struct sentinel_event *e = reserve(SENTINEL_EV_SLOW, tgid, now);
          if (e) {
            e->slow.tid = tid;
            e->slow.slot = slot;
            e->slow.nr = nr;
            e->slow.dur_ns = dur;
            e->slow.ret = ctx->ret;
            bpf_ringbuf_submit(e, 0);
            count(SENTINEL_STAT_SLOW);
          } else {
            __sync_fetch_and_add(&s->slow_dropped, 1);
          }
        }
      }
    }
  }
  if (tid != tgid || !s) return 0;
  s->sys_enter_ns = 0;
  s->cur_nr = -1;
  if (is_wait(nr)) {
    /* Back from the loop's wait: busy from now on. Seen first here when the process was added
     * to the map while already waiting, which is why this arms the detector too. */
    s->busy_since_ns = now;
    s->in_wait = 0;
    s->armed = 1;
  }
  return 0;
}
