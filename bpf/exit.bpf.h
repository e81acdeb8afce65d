/* Part of sentinel.bpf.c (one object, one compilation unit): whole-process exits of watched tgids. */
#pragma once

/* The tracepoint's group_dead (6.x); older kernels: the thread group's live count has reached 0. */
static __always_inline int group_dead(struct trace_event_raw_sched_process_exit *ctx) {
  if (bpf_core_field_exists(ctx->group_dead)) return BPF_CORE_READ(ctx, group_dead);
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  return BPF_CORE_READ(task, signal, live.counter) == 0;
}

SEC("tracepoint/sched/sched_process_exit")
int sentinel_exit(struct trace_event_raw_sched_process_exit *ctx) {
  __u64 id = current_pid_tgid();
  __u32 tgid = id >> 32;
  struct sentinel_watch *w = bpf_map_lookup_elem(&sn_watched, &tgid);
  if (!w || !(w->flags & SENTINEL_WATCH_EXIT)) return 0;
  if (!group_dead(ctx)) return 0;
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct sentinel_event *e = reserve(SENTINEL_EV_EXIT, tgid, bpf_ktime_get_ns());
  __u32 slot = w->slot;
  /* The process is gone: its PID may be reused by anyone, so it is no longer watched. */
  bpf_map_delete_elem(&sn_watched, &tgid);
  if (!e) return 0;
  e->exit.ppid = BPF_CORE_READ(task, real_parent, tgid);
  e->exit.exit_code = BPF_CORE_READ(task, exit_code);
  e->exit.slot = slot;
  e->exit.tid = (__u32)id;
  /* Exits are rare and start a recovery: wake the reader even when it has not caught up with the ring. */
  bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
  count(SENTINEL_STAT_EXITS);
  return 0;
}
