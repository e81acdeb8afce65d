// Opening the engine: open the CO-RE object, fill .rodata (our PID, this architecture's wait
// syscalls), load the program groups asked for, create the ring buffer and start polling it on the
// libuv loop. Built only with libbpf (SENTINEL_HAVE_LIBBPF). docs/EBPF.md#engine.
#ifdef SENTINEL_HAVE_LIBBPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <uv.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "../../bpf/sentinel.h"
#include "bpf-engine-internal.h"

// The syscalls that are an event loop's wait on this architecture.
static void fill_wait_nrs(struct sentinel_rodata *ro) {
  int i = 0;
  for (int j = 0; j < SENTINEL_WAIT_NRS; j++) ro->wait_nrs[j] = -1;
#ifdef __NR_epoll_wait
  ro->wait_nrs[i++] = __NR_epoll_wait;
#endif
#ifdef __NR_epoll_pwait
  ro->wait_nrs[i++] = __NR_epoll_pwait;
#endif
#ifdef __NR_epoll_pwait2
  ro->wait_nrs[i++] = __NR_epoll_pwait2;
#endif
#ifdef __NR_poll
  ro->wait_nrs[i++] = __NR_poll;
#endif
#ifdef __NR_ppoll
  ro->wait_nrs[i++] = __NR_ppoll;
#endif
#ifdef __NR_select
  ro->wait_nrs[i++] = __NR_select;
#endif
#ifdef __NR_pselect6
  ro->wait_nrs[i++] = __NR_pselect6;
#endif
  (void)i;
}

static int map_fd(napi_env env, engine_t *g, const char *name) {
  int fd = bpf_object__find_map_fd_by_name(g->obj, name);
  if (fd < 0) bpf_throw(env, ENOENT, "find map", name);
  return fd;
}

// Reads options.groups into want[]; false with a pending exception when invalid.
static int read_groups(napi_env env, napi_value options, int want[GROUP_COUNT]) {
  napi_value groups;
  bool is_array = false;
  if (napi_get_named_property(env, options, "groups", &groups) != napi_ok || napi_is_array(env, groups, &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "options.groups must be an array of group names");
    return 0;
  }
  uint32_t n = 0;
  napi_get_array_length(env, groups, &n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    napi_get_element(env, groups, i, &v);
    int gi = bpf_group_index(env, v);
    if (gi < 0) return 0;
    want[gi] = 1;
  }
  return 1;
}

// new BpfEngine(objectPath, { selfPid, groups, btfPath? }, onRecords(buffer), onExit?): open, set .rodata,
// load the groups. btfPath: a BTF file for CO-RE relocation instead of the kernel's (docs/EBPF.md#build).
// onExit(pid, exitCode, ns, ppid, tid, slot, comm): exit records one by one, already decoded, so the
// recovery they start runs no decoding first; without it they come in the batch like the others.
napi_value bpf_engine_new(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], self, v;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  char path[4096], btf_path[4096];
  size_t plen = 0;
  uint32_t self_pid;
  napi_valuetype t1, t2, t3 = napi_undefined, tb;
  if (argc < 3 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok ||
      napi_typeof(env, argv[1], &t1) != napi_ok || t1 != napi_object || napi_typeof(env, argv[2], &t2) != napi_ok || t2 != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "usage: new BpfEngine(objectPath, { selfPid, groups, btfPath }, onRecords, onExit?)");
    return NULL;
  }
  if (argc >= 4 && (napi_typeof(env, argv[3], &t3) != napi_ok || (t3 != napi_function && t3 != napi_undefined))) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "onExit must be a function");
    return NULL;
  }
  if (napi_get_named_property(env, argv[1], "selfPid", &v) != napi_ok || !bpf_get_u32(env, v, &self_pid, "options.selfPid")) return NULL;
  int want[GROUP_COUNT] = {0};
  if (!read_groups(env, argv[1], want)) return NULL;
  btf_path[0] = '\0';
  if (napi_get_named_property(env, argv[1], "btfPath", &v) == napi_ok && napi_typeof(env, v, &tb) == napi_ok && tb == napi_string) {
    napi_get_value_string_utf8(env, v, btf_path, sizeof btf_path, &plen);
  }

  engine_t *g = calloc(1, sizeof *g);
  if (g == NULL) { bpf_throw(env, ENOMEM, "calloc", "engine"); return NULL; }
  g->env = env;
  libbpf_print_fn_t old = bpf_log_begin();
  int err = 0;
  const char *step = "open";
  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .btf_custom_path = btf_path[0] != '\0' ? btf_path : NULL);
  g->obj = bpf_object__open_file(path, &open_opts);
  if (g->obj == NULL) { err = errno; goto fail; }
  step = "configure";
  struct bpf_map *map;
  struct sentinel_rodata ro;
  memset(&ro, 0, sizeof ro);
  ro.self_tgid = self_pid;
  fill_wait_nrs(&ro);
  // In a PID namespace of its own (a container) the loader's PIDs are not the kernel's: the programs
  // translate (bpf_get_ns_current_pid_tgid). The host's namespace has the fixed inode 0xEFFFFFFC.
  struct stat ns_st;
  if (stat("/proc/self/ns/pid", &ns_st) == 0 && ns_st.st_ino != 0xEFFFFFFCu) {
    ro.pidns_dev = ns_st.st_dev;
    ro.pidns_ino = ns_st.st_ino;
  }
  int ro_set = 0;
  bpf_object__for_each_map(map, g->obj) {
    const char *name = bpf_map__name(map);
    size_t nl = strlen(name);
    if (bpf_map__is_internal(map) && nl >= 7 && strcmp(name + nl - 7, ".rodata") == 0) {
      size_t size = 0;
      const void *initial = bpf_map__initial_value(map, &size);
      if (initial == NULL || size < sizeof ro || size > 4096) { err = EINVAL; goto fail; }
      unsigned char data[4096];
      memcpy(data, initial, size);
      memcpy(data, &ro, sizeof ro);
      if (bpf_map__set_initial_value(map, data, size) != 0) { err = errno; goto fail; }
      ro_set = 1;
    }
  }
  if (!ro_set) { err = ENOENT; goto fail; }
  for (size_t i = 0; i < GROUP_COUNT; i++) {
    for (int j = 1; j < 3 && bpf_groups[i][j] != NULL; j++) {
      struct bpf_program *p = bpf_object__find_program_by_name(g->obj, bpf_groups[i][j]);
      if (p == NULL) { err = ENOENT; goto fail; }
      bpf_program__set_autoload(p, want[i] != 0);
    }
    g->loaded[i] = want[i];
  }
  step = "load";
  if (bpf_object__load(g->obj) != 0) { err = errno != 0 ? errno : EINVAL; goto fail; }
  bpf_log_end(old);
  if ((g->fd_watched = map_fd(env, g, "sn_watched")) < 0 || (g->fd_slots = map_fd(env, g, "sn_slots")) < 0 ||
      (g->fd_hist = map_fd(env, g, "sn_hist")) < 0 || (g->fd_ports = map_fd(env, g, "sn_ports")) < 0 ||
      (g->fd_config = map_fd(env, g, "sn_config")) < 0 || (g->fd_stats = map_fd(env, g, "sn_stats")) < 0) {
    bpf_release(g);
    bpf_free_engine(g);
    return NULL;
  }
  int events_fd = bpf_object__find_map_fd_by_name(g->obj, "sn_events");
  g->rb = ring_buffer__new(events_fd, bpf_on_record, g, NULL);
  if (g->rb == NULL) {
    err = errno;
    bpf_release(g);
    bpf_free_engine(g);
    bpf_throw(env, err, "ring_buffer__new", path);
    return NULL;
  }
  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  if (uv_poll_init(loop, &g->poll, ring_buffer__epoll_fd(g->rb)) != 0) {
    bpf_release(g);
    bpf_free_engine(g);
    bpf_throw(env, EIO, "uv_poll_init", path);
    return NULL;
  }
  g->poll.data = g;
  g->handle_open = 1;
  uv_poll_start(&g->poll, UV_READABLE, bpf_on_readable);
  g->polling = 1;
  napi_create_reference(env, argv[2], 1, &g->callback);
  if (t3 == napi_function) napi_create_reference(env, argv[3], 1, &g->on_exit);
  napi_value res_name;
  napi_create_string_utf8(env, "sentinel:bpf-engine", NAPI_AUTO_LENGTH, &res_name);
  napi_async_init(env, NULL, res_name, &g->async);
  napi_wrap(env, self, g, bpf_finalize, NULL, NULL);
  napi_add_env_cleanup_hook(env, bpf_env_cleanup, g);
  return self;

fail:
  bpf_log_end(old);
  bpf_release(g);
  bpf_free_engine(g);
  bpf_throw(env, err != 0 ? err : EINVAL, step, path);
  return NULL;
}

#endif
