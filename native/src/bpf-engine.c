// The in-process eBPF engine: opens the CO-RE object bpf/build/sentinel.bpf.o with libbpf, loads
// the program groups asked for, attaches them on demand, and reads the ring buffer from the libuv
// loop (uv_poll on the ring buffer's epoll fd), handing each exit record decoded to a JS callback of
// its own and the 64-byte records between exits to another as one Buffer. This file: the engine's
// lifecycle, the ring buffer and attaching; opening is in bpf-load.c, map methods in bpf-maps.c. Layouts: bpf/sentinel.h, decoded in src/core/bpf-records.ts.
// docs/EBPF.md#engine.
#include "sentinel.h"

#ifndef SENTINEL_HAVE_LIBBPF

napi_status sn_register_bpf(napi_env env, napi_value exports) {
  napi_value why;
  napi_status s = napi_create_string_utf8(env, "the native addon was built without libbpf (apt-get install libbpf-dev, then npm rebuild)", NAPI_AUTO_LENGTH, &why);
  if (s != napi_ok) return s;
  return napi_set_named_property(env, exports, "bpfEngineSupport", why);
}

#else

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <uv.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../bpf/sentinel.h"
#include "bpf-engine-internal.h"
#include "js-poll.h"

void bpf_release(engine_t *g) {
  for (size_t i = 0; i < GROUP_COUNT; i++) {
    for (int j = 0; j < 2; j++) {
      if (g->links[i][j] != NULL) bpf_link__destroy(g->links[i][j]);
      g->links[i][j] = NULL;
    }
  }
  if (g->rb != NULL) ring_buffer__free(g->rb);
  g->rb = NULL;
  if (g->obj != NULL) bpf_object__close(g->obj);
  g->obj = NULL;
}

void bpf_free_engine(engine_t *g) {
  free(g->batch);
  free(g);
}

static void on_handle_closed(uv_handle_t *h) {
  engine_t *g = h->data;
  g->handle_open = 0;
  if (g->finalized) bpf_free_engine(g);
}

// Stops reading, detaches and unloads everything; the uv handle closes asynchronously.
static void close_engine(engine_t *g) {
  if (g->closed) return;
  g->closed = 1;
  if (g->polling) uv_poll_stop(&g->poll);
  g->polling = 0;
  bpf_release(g);
  sn_js_poll_release(g->env, &g->callback, &g->async, &g->poll, g->handle_open, on_handle_closed);
  if (g->on_exit != NULL) napi_delete_reference(g->env, g->on_exit);
  g->on_exit = NULL;
}

void bpf_env_cleanup(void *arg) {
  engine_t *g = arg;
  close_engine(g);
}

void bpf_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  engine_t *g = data;
  napi_remove_env_cleanup_hook(env, bpf_env_cleanup, g);
  close_engine(g);
  g->finalized = 1;
  if (!g->handle_open) bpf_free_engine(g);
}

int bpf_on_record(void *ctx, void *data, size_t size) {
  engine_t *g = ctx;
  if (size != SENTINEL_EVENT_BYTES) return 0;  // not ours: ignore rather than stop consuming
  if (g->batch_len + size > g->batch_cap) {
    size_t cap = g->batch_cap == 0 ? 64 * SENTINEL_EVENT_BYTES : g->batch_cap * 2;
    unsigned char *b = realloc(g->batch, cap);
    if (b == NULL) return -ENOMEM;  // stop here; the rest stays in the ring for the next wake-up
    g->batch = b;
    g->batch_cap = cap;
  }
  memcpy(g->batch + g->batch_len, data, size);
  g->batch_len += size;
  return 0;
}

// Records [from, to) of the batch as one Buffer to onRecords.
static void deliver_batch(engine_t *g, size_t from, size_t to) {
  napi_value buf;
  void *copy;
  if (napi_create_buffer_copy(g->env, to - from, g->batch + from, &copy, &buf) == napi_ok) sn_js_poll_call(g->env, g->callback, g->async, 1, &buf);
}

// One exit record to onExit as plain values: no Buffer, nothing for JS to decode before it acts.
static void deliver_exit(engine_t *g, const struct sentinel_event *e) {
  napi_env env = g->env;
  napi_value args[7];
  size_t comm_len = strnlen(e->comm, sizeof e->comm);
  if (napi_create_uint32(env, e->tgid, &args[0]) != napi_ok || napi_create_int32(env, e->exit.exit_code, &args[1]) != napi_ok ||
      napi_create_bigint_uint64(env, e->ns, &args[2]) != napi_ok || napi_create_uint32(env, e->exit.ppid, &args[3]) != napi_ok ||
      napi_create_uint32(env, e->exit.tid, &args[4]) != napi_ok || napi_create_uint32(env, e->exit.slot, &args[5]) != napi_ok ||
      napi_create_string_latin1(env, e->comm, comm_len, &args[6]) != napi_ok) {
    return;
  }
  sn_js_poll_call(env, g->on_exit, g->async, 7, args);
}

// The ring buffer is readable: drain it and hand it to JS in ring order: each exit record on its own
// to onExit (when given), the records between exits as one batch to onRecords.
void bpf_on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  engine_t *g = handle->data;
  if (g->closed || status < 0) return;
  g->batch_len = 0;
  ring_buffer__consume(g->rb);
  if (g->batch_len == 0) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(g->env, &scope) != napi_ok) return;
  size_t from = 0;
  for (size_t at = 0; at + SENTINEL_EVENT_BYTES <= g->batch_len && !g->closed; at += SENTINEL_EVENT_BYTES) {
    const struct sentinel_event *e = (const struct sentinel_event *)(g->batch + at);
    if (e->kind != SENTINEL_EV_EXIT || g->on_exit == NULL) continue;
    if (at > from) deliver_batch(g, from, at);
    // a callback may have closed the engine (the batch stays allocated until the handle is closed)
    if (!g->closed) deliver_exit(g, e);
    from = at + SENTINEL_EVENT_BYTES;
  }
  if (!g->closed && g->batch_len > from) deliver_batch(g, from, g->batch_len);
  napi_close_handle_scope(g->env, scope);
}

// attach(group): attaches each program of a loaded group (idempotent).
static napi_value engine_attach(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  engine_t *g = bpf_unwrap(env, info, &argc, argv);
  if (g == NULL) return NULL;
  int gi = bpf_group_index(env, argv[0]);
  if (gi < 0) return NULL;
  if (!g->loaded[gi]) { bpf_throw(env, ENOENT, "attach (group not loaded)", bpf_groups[gi][0]); return NULL; }
  libbpf_print_fn_t old = bpf_log_begin();
  for (int j = 1; j < 3 && bpf_groups[gi][j] != NULL; j++) {
    if (g->links[gi][j - 1] != NULL) continue;
    struct bpf_program *p = bpf_object__find_program_by_name(g->obj, bpf_groups[gi][j]);
    struct bpf_link *l = p != NULL ? bpf_program__attach(p) : NULL;
    if (l == NULL) {
      int e = p == NULL ? ENOENT : errno;
      bpf_log_end(old);
      bpf_throw(env, e, "attach", bpf_groups[gi][j]);
      return NULL;
    }
    g->links[gi][j - 1] = l;
  }
  bpf_log_end(old);
  return NULL;
}

// detach(group)
static napi_value engine_detach(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  engine_t *g = bpf_unwrap(env, info, &argc, argv);
  if (g == NULL) return NULL;
  int gi = bpf_group_index(env, argv[0]);
  if (gi < 0) return NULL;
  for (int j = 0; j < 2; j++) {
    if (g->links[gi][j] != NULL) bpf_link__destroy(g->links[gi][j]);
    g->links[gi][j] = NULL;
  }
  return NULL;
}

// ref()/unref(): whether the ring buffer's poll keeps the event loop alive (default: it does).
static napi_value engine_ref(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  engine_t *g = bpf_unwrap(env, info, &argc, argv);
  bool on = true;
  if (g == NULL) return NULL;
  if (argc >= 1) napi_get_value_bool(env, argv[0], &on);
  if (on) uv_ref((uv_handle_t *)&g->poll);
  else uv_unref((uv_handle_t *)&g->poll);
  return NULL;
}

// close(): detach, unload, stop reading. Idempotent.
static napi_value engine_close(napi_env env, napi_callback_info info) {
  napi_value self;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  engine_t *g = NULL;
  if (napi_unwrap(env, self, (void **)&g) == napi_ok && g != NULL) close_engine(g);
  return NULL;
}

napi_status sn_register_bpf(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
    {"attach", NULL, engine_attach, NULL, NULL, NULL, napi_default_method, NULL},
    {"detach", NULL, engine_detach, NULL, NULL, NULL, napi_default_method, NULL},
    {"watch", NULL, engine_watch, NULL, NULL, NULL, napi_default_method, NULL},
    {"unwatch", NULL, engine_unwatch, NULL, NULL, NULL, napi_default_method, NULL},
    {"isWatched", NULL, engine_is_watched, NULL, NULL, NULL, napi_default_method, NULL},
    {"readSlot", NULL, engine_read_slot, NULL, NULL, NULL, napi_default_method, NULL},
    {"readHist", NULL, engine_read_hist, NULL, NULL, NULL, napi_default_method, NULL},
    {"resetSlot", NULL, engine_reset_slot, NULL, NULL, NULL, napi_default_method, NULL},
    {"watchPort", NULL, engine_watch_port, NULL, NULL, NULL, napi_default_method, NULL},
    {"unwatchPort", NULL, engine_unwatch_port, NULL, NULL, NULL, napi_default_method, NULL},
    {"readPort", NULL, engine_read_port, NULL, NULL, NULL, napi_default_method, NULL},
    {"setFlagDevice", NULL, engine_set_flag_device, NULL, NULL, NULL, napi_default_method, NULL},
    {"readStats", NULL, engine_read_stats, NULL, NULL, NULL, napi_default_method, NULL},
    {"ref", NULL, engine_ref, NULL, NULL, NULL, napi_default_method, NULL},
    {"close", NULL, engine_close, NULL, NULL, NULL, napi_default_method, NULL},
  };
  napi_value cls, none;
  napi_status s = napi_define_class(env, "BpfEngine", NAPI_AUTO_LENGTH, bpf_engine_new, NULL, sizeof methods / sizeof methods[0], methods, &cls);
  if (s != napi_ok) return s;
  if ((s = napi_set_named_property(env, exports, "BpfEngine", cls)) != napi_ok) return s;
  if ((s = napi_get_null(env, &none)) != napi_ok) return s;
  return napi_set_named_property(env, exports, "bpfEngineSupport", none);
}

#endif
