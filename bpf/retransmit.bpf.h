/* Part of sentinel.bpf.c (one object, one compilation unit): retransmits counted per watched local port. */
#pragma once

/* tcp_retransmit_skb's context before 6.x shared a class with other tcp events. */
struct trace_event_raw_tcp_event_sk_skb___old {
  const void *skbaddr;
  const void *skaddr;
  int state;
  __u16 sport;
  __u16 dport;
  __u16 family;
} __attribute__((preserve_access_index));

/* Kernels that also fire it for a retransmit that was not sent (-EBUSY while the original is still in
 * the host queue, no route, a local netfilter drop) pass the error; older ones fire it only once sent. */
struct trace_event_raw_tcp_retransmit_skb___err {
  int err;
} __attribute__((preserve_access_index));

SEC("tracepoint/tcp/tcp_retransmit_skb")
int sentinel_retransmit(void *ctx) {
  __u32 port;
  __u32 family;
  __u32 state;
  if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb)) {
    struct trace_event_raw_tcp_retransmit_skb *c = ctx;
    /* Only what left the host counts, the same on every kernel. */
    struct trace_event_raw_tcp_retransmit_skb___err *e = ctx;
    if (bpf_core_field_exists(e->err) && BPF_CORE_READ(e, err) != 0) return 0;
    port = BPF_CORE_READ(c, sport);
    family = BPF_CORE_READ(c, family);
    state = BPF_CORE_READ(c, state);
  } else {
    struct trace_event_raw_tcp_event_sk_skb___old *c = ctx;
    port = BPF_CORE_READ(c, sport);
    family = BPF_CORE_READ(c, family);
    state = BPF_CORE_READ(c, state);
  }
  struct sentinel_port *p = bpf_map_lookup_elem(&sn_ports, &port);
  if (!p) return 0;
  __sync_fetch_and_add(&p->count, 1);
  count(SENTINEL_STAT_RETRANSMITS);
  __u64 now = bpf_ktime_get_ns();
  if (now - p->last_emit_ns < p->gap_ns) return 0;
  p->last_emit_ns = now;
  struct sentinel_event *e = reserve(SENTINEL_EV_RETRANSMIT, current_pid_tgid() >> 32, now);
  if (!e) return 0;
  e->retransmit.port = port;
  e->retransmit.family = family;
  e->retransmit.state = state;
  e->retransmit.count = p->count;
  bpf_ringbuf_submit(e, 0);
  return 0;
}
