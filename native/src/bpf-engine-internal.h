// Internals shared by the engine's C files (bpf-engine.c: lifecycle, ring buffer, attach;
// bpf-maps.c: map reads and writes). Built only with libbpf (SENTINEL_HAVE_LIBBPF).
#ifndef SENTINEL_BPF_ENGINE_INTERNAL_H
#define SENTINEL_BPF_ENGINE_INTERNAL_H
#include <node_api.h>
#include <bpf/libbpf.h>
#include <stdint.h>
#include <uv.h>

#define GROUP_COUNT 4

typedef struct {
  struct bpf_object *obj;
  struct ring_buffer *rb;
  struct bpf_link *links[GROUP_COUNT][2];
  int loaded[GROUP_COUNT];
  int fd_watched, fd_slots, fd_hist, fd_ports, fd_config, fd_stats;
  uv_poll_t poll;
  int polling;        // uv_poll started and not yet stopped
  int handle_open;    // uv handle initialised and not yet closed
  int finalized;      // the JS object is gone
  int closed;         // close() ran (bpf resources released)
  napi_env env;
  napi_ref callback;  // onRecords(buffer): a batch of records
  napi_ref on_exit;   // onExit(pid, exitCode, ns, ppid, tid, slot, comm), or NULL: exits go in the batch
  napi_async_context async;
  unsigned char *batch;
  size_t batch_len, batch_cap;
} engine_t;


// The program groups (name, then its programs) and the index of a group name (-1 with a TypeError pending).
extern const char *const bpf_groups[GROUP_COUNT][3];
int bpf_group_index(napi_env env, napi_value v);
// Captures libbpf's warnings for error messages between begin and end.
libbpf_print_fn_t bpf_log_begin(void);
void bpf_log_end(libbpf_print_fn_t previous);

// Lifecycle (bpf-engine.c), used by the constructor (bpf-load.c).
void bpf_release(engine_t *g);
void bpf_free_engine(engine_t *g);
void bpf_on_readable(uv_poll_t *handle, int status, int events);
int bpf_on_record(void *ctx, void *data, size_t size);
void bpf_finalize(napi_env env, void *data, void *hint);
void bpf_env_cleanup(void *arg);
napi_value bpf_engine_new(napi_env env, napi_callback_info info);

// Throws an Error with code = errno name, errno, syscall = the step, and libbpf's own words.
void bpf_throw(napi_env env, int e, const char *step, const char *what);
// The engine behind `this`, or NULL with an exception pending (wrong object, closed engine).
engine_t *bpf_unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv);
// Integer arguments; 0 with a RangeError pending when out of range.
int bpf_get_u32(napi_env env, napi_value v, uint32_t *out, const char *what);
int bpf_get_u64(napi_env env, napi_value v, uint64_t *out, const char *what);

// Map methods (bpf-maps.c).
napi_value engine_watch(napi_env env, napi_callback_info info);
napi_value engine_unwatch(napi_env env, napi_callback_info info);
napi_value engine_is_watched(napi_env env, napi_callback_info info);
napi_value engine_read_slot(napi_env env, napi_callback_info info);
napi_value engine_read_hist(napi_env env, napi_callback_info info);
napi_value engine_reset_slot(napi_env env, napi_callback_info info);
napi_value engine_watch_port(napi_env env, napi_callback_info info);
napi_value engine_unwatch_port(napi_env env, napi_callback_info info);
napi_value engine_read_port(napi_env env, napi_callback_info info);
napi_value engine_set_flag_device(napi_env env, napi_callback_info info);
napi_value engine_read_stats(napi_env env, napi_callback_info info);

#endif
