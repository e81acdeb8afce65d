// The eBPF engine's map methods: each is one or a few bpf(2) map calls on the engine's maps
// (layouts in bpf/sentinel.h, docs/EBPF.md#engine). Built only with libbpf.
#ifdef SENTINEL_HAVE_LIBBPF
#include <bpf/bpf.h>
#include <linux/types.h>

#include <errno.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "../../bpf/sentinel.h"
#include "bpf-engine-internal.h"

static napi_value map_error(napi_env env, const char *what) {
  bpf_throw(env, errno, "bpf map", what);
  return NULL;
}

// watch(tgid, slot, flags, slowNs, stallNs, slowPerSec)
napi_value engine_watch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  engine_t *g = bpf_unwrap(env, info, &argc, argv);
  if (g == NULL) return NULL;
  uint32_t tgid;
  struct sentinel_watch w;
  memset(&w, 0, sizeof w);
  uint64_t slow_ns, stall_ns;
  if (argc < 6 || !bpf_get_u32(env, argv[0], &tgid, "tgid") || !bpf_get_u32(env, argv[1], &w.slot, "slot") || !bpf_get_u32(env, argv[2], &w.flags, "flags") ||
      !bpf_get_u64(env, argv[3], &slow_ns, "slowNs") || !bpf_get_u64(env, argv[4], &stall_ns, "stallNs") || !bpf_get_u32(env, argv[5], &w.slow_per_sec, "slowPerSec"))
    return NULL;
  if (w.slot >= SENTINEL_MAX_SLOTS) { napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "slot out of range"); return NULL; }
  w.slow_ns = slow_ns;
  w.stall_ns = stall_ns;
  if (bpf_map_update_elem(g->fd_watched, &tgid, &w, BPF_ANY) != 0) return map_error(env, "sn_watched");
  return NULL;
}

// unwatch(tgid): true when it was watched.
napi_value engine_unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], r;
  engine_t *g = bpf_unwrap(env, info, &argc, argv);
  uint32_t tgid;
  if (g == NULL || !bpf_get_u32(env, argv[0], &tgid, "tgid")) return NULL;
  int rc = bpf_map_delete_elem(g->fd_watched, &tgid);
  if (rc != 0 && errno != ENOENT) return map_error(env, "sn_watched");
  napi_get_boolean(env, rc == 0, &r);
  return r;
}

// isWatched(tgid): the kernel drops a tgid from the map when the process exits.
napi_value engine_is_watched(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], r;
  engine_t *g = bpf_unwrap(env, info, &argc, argv);
  uint32_t tgid;
  if (g == NULL || !bpf_get_u32(env, argv[0], &tgid, "tgid")) return NULL;
  struct sentinel_watch w;
  int rc = bpf_map_lookup_elem(g->fd_watched, &tgid, &w);
  if (rc != 0 && errno != ENOENT) return map_error(env, "sn_watched");
  napi_get_boolean(env, rc == 0, &r);
  return r;
}

static napi_value read_array(napi_env env, napi_callback_info info, int which) {
  size_t argc = 1;
  napi_value argv[1], buf;
  engine_t *g = bpf_unwrap(env, info, &argc, argv);
  uint32_t key;
  if (g == NULL || !bpf_get_u32(env, argv[0], &key, "slot")) return NULL;
  int fd = which == 0 ? g->fd_slots : g->fd_hist;
  size_t size = which == 0 ? sizeof(struct sentinel_slot_state) : sizeof(struct sentinel_hist);
  void *data;
  if (napi_create_buffer(env, size, &data, &buf) != napi_ok) return NULL;
  if (bpf_map_lookup_elem(fd, &key, data) != 0) return map_error(env, which == 0 ? "sn_slots" : "sn_hist");
  return buf;
}

// readSlot(slot): the raw struct sentinel_slot_state.
napi_value engine_read_slot(napi_env env, napi_callback_info info) { return read_array(env, info, 0); }
// readHist(slot): the raw struct sentinel_hist.
napi_value engine_read_hist(napi_env env, napi_callback_info info) { return read_array(env, info, 1); }

// resetSlot(slot, tgid, clearHist): a new process in the slot starts with a fresh loop state.
napi_value engine_reset_slot(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  engine_t *g = bpf_unwrap(env, info, &argc, argv);
  uint32_t slot, tgid;
  bool clear_hist = false;
  if (g == NULL || argc < 3 || !bpf_get_u32(env, argv[0], &slot, "slot") || !bpf_get_u32(env, argv[1], &tgid, "tgid")) return NULL;
  napi_get_value_bool(env, argv[2], &clear_hist);
  struct sentinel_slot_state s;
  memset(&s, 0, sizeof s);
  s.tgid = tgid;
  s.cur_nr = -1;
  if (bpf_map_update_elem(g->fd_slots, &slot, &s, BPF_ANY) != 0) return map_error(env, "sn_slots");
  if (clear_hist) {
    struct sentinel_hist h;
    memset(&h, 0, sizeof h);
    if (bpf_map_update_elem(g->fd_hist, &slot, &h, BPF_ANY) != 0) return map_error(env, "sn_hist");
  }
  return NULL;
}

// watchPort(port, gapNs): counts retransmits from this local port (count starts at 0).
napi_value engine_watch_port(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  engine_t *g = bpf_unwrap(env, info, &argc, argv);
  uint32_t port;
  uint64_t gap_ns;
  struct sentinel_port p;
  memset(&p, 0, sizeof p);
  if (g == NULL || argc < 2 || !bpf_get_u32(env, argv[0], &port, "port") || !bpf_get_u64(env, argv[1], &gap_ns, "gapNs")) return NULL;
  if (port == 0 || port > 65535) { napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "port must be 1-65535"); return NULL; }
  p.gap_ns = gap_ns;
  if (bpf_map_update_elem(g->fd_ports, &port, &p, BPF_ANY) != 0) return map_error(env, "sn_ports");
  return NULL;
}

// unwatchPort(port)
napi_value engine_unwatch_port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  engine_t *g = bpf_unwrap(env, info, &argc, argv);
  uint32_t port;
  if (g == NULL || !bpf_get_u32(env, argv[0], &port, "port")) return NULL;
  if (bpf_map_delete_elem(g->fd_ports, &port) != 0 && errno != ENOENT) return map_error(env, "sn_ports");
  return NULL;
}

// readPort(port): retransmits counted since watchPort, or -1 when the port is not watched.
napi_value engine_read_port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], r;
  engine_t *g = bpf_unwrap(env, info, &argc, argv);
  uint32_t port;
  if (g == NULL || !bpf_get_u32(env, argv[0], &port, "port")) return NULL;
  struct sentinel_port p;
  if (bpf_map_lookup_elem(g->fd_ports, &port, &p) != 0) {
    if (errno != ENOENT) return map_error(env, "sn_ports");
    napi_create_double(env, -1, &r);
    return r;
  }
  napi_create_double(env, (double)p.count, &r);
  return r;
}

// setFlagDevice(stDev, on): report flag-changing ioctls on the filesystem whose stat() st_dev this is.
napi_value engine_set_flag_device(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  engine_t *g = bpf_unwrap(env, info, &argc, argv);
  uint64_t st_dev;
  bool on = false;
  if (g == NULL || argc < 2 || !bpf_get_u64(env, argv[0], &st_dev, "stDev")) return NULL;
  napi_get_value_bool(env, argv[1], &on);
  struct sentinel_config c;
  memset(&c, 0, sizeof c);
  c.flag_dev = (uint32_t)((major((dev_t)st_dev) << 20) | minor((dev_t)st_dev));
  c.flags_on = on ? 1 : 0;
  uint32_t zero = 0;
  if (bpf_map_update_elem(g->fd_config, &zero, &c, BPF_ANY) != 0) return map_error(env, "sn_config");
  return NULL;
}

// readStats(): SENTINEL_STAT_COUNT u64 counters.
napi_value engine_read_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value buf;
  engine_t *g = bpf_unwrap(env, info, &argc, NULL);
  if (g == NULL) return NULL;
  uint64_t *data;
  if (napi_create_buffer(env, SENTINEL_STAT_COUNT * sizeof(uint64_t), (void **)&data, &buf) != napi_ok) return NULL;
  for (uint32_t i = 0; i < SENTINEL_STAT_COUNT; i++) {
    if (bpf_map_lookup_elem(g->fd_stats, &i, &data[i]) != 0) return map_error(env, "sn_stats");
  }
  return buf;
}

#endif
