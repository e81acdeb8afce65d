// Thread-pool jobs: the one place async works are created and queued, so every job's promise
// settles, whatever Node-API answers (native/README.md#threads).
#include "sentinel.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

// Test hook: the index of the work whose queueing the next job treats as failed (-1: none). Real
// failures of napi_create_async_work/napi_queue_async_work cannot be provoked from a test; this
// proves that the path handling them settles the promise.
static int fail_queue_at = -1;

// Creates and queues up to `count` works; a work that cannot be created or queued is deleted and
// none after it is tried. Returns how many were queued.
static uint32_t queue_works(napi_env env, sn_job *job, const char *name, napi_async_execute_callback execute,
                            napi_async_complete_callback complete, void *data, uint32_t count) {
  int fail_at = fail_queue_at;
  fail_queue_at = -1;
  napi_value resource_name;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name) != napi_ok) return 0;
  uint32_t queued = 0;
  for (uint32_t k = 0; k < count && k < SN_MAX_THREADS; k++) {
    if (napi_create_async_work(env, NULL, resource_name, execute, complete, data, &job->works[k]) != napi_ok) break;
    if ((int)k == fail_at || napi_queue_async_work(env, job->works[k]) != napi_ok) {
      napi_delete_async_work(env, job->works[k]);
      break;
    }
    queued++;
  }
  return queued;
}

napi_value sn_job_start(napi_env env, sn_job *job, const char *name, napi_async_execute_callback execute,
                        napi_async_complete_callback complete, void *data, uint32_t count, void (*free_data)(napi_env env, void *data)) {
  napi_value promise;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    free_data(env, data);
    sn_throw_sys(env, ENOMEM, "napi_create_promise", "");
    return NULL;
  }
  job->nworks = job->pending = queue_works(env, job, name, execute, complete, data, count);
  if (job->nworks == 0) {
    napi_reject_deferred(env, job->deferred, sn_sys_error(env, EAGAIN, "napi_queue_async_work", ""));
    free_data(env, data);
  }
  return promise;
}

int sn_job_end(napi_env env, sn_job *job, napi_status status) {
  if (status != napi_ok) job->cancelled++;
  if (--job->pending > 0) return 0;
  for (uint32_t k = 0; k < job->nworks; k++) napi_delete_async_work(env, job->works[k]);
  return job->cancelled == job->nworks ? -1 : 1;
}

void sn_job_resolve_buffer(napi_env env, sn_job *job, const void *bytes, size_t len) {
  napi_value out;
  void *copy = NULL;
  if (napi_create_buffer_copy(env, len, len == 0 ? "" : bytes, &copy, &out) != napi_ok) {
    napi_reject_deferred(env, job->deferred, sn_sys_error(env, ENOMEM, "napi_create_buffer_copy", ""));
    return;
  }
  napi_resolve_deferred(env, job->deferred, out);
}

int sn_job_settle_void(napi_env env, sn_job *job, napi_status status, const char *cancelled, int err, const char *syscall, const char *path) {
  int end = sn_job_end(env, job, status);
  // Other works of the job still run: settling now would resolve before them, and their own complete
  // callbacks would settle the freed deferred again.
  if (end == 0) return 0;
  if (end < 0) {
    napi_reject_deferred(env, job->deferred, sn_error(env, cancelled));
  } else if (err != 0) {
    napi_reject_deferred(env, job->deferred, sn_sys_error(env, err, syscall, path));
  } else {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, job->deferred, undef);
  }
  return 1;
}

// _failQueueAt(index): the next job treats queueing its work number `index` as failed (test hook).
static napi_value fail_queue_at_fn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t k = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &k) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "_failQueueAt(index: number)");
    return NULL;
  }
  fail_queue_at = k;
  return NULL;
}

// Test hook: a job of several works settled through sn_job_settle_void. The first work to run returns at
// once; every other one waits until _settleProbeStep(true) releases it, so a test can look at the
// promise while works of the job still run.
typedef struct {
  sn_job job;
  uint32_t claimed;
} settle_probe;
static int probe_released;
static uint32_t probe_completed;

static void settle_probe_execute(napi_env env, void *data) {
  (void)env;
  settle_probe *p = data;
  if (__atomic_fetch_add(&p->claimed, 1, __ATOMIC_SEQ_CST) == 0) return;
  while (!__atomic_load_n(&probe_released, __ATOMIC_SEQ_CST)) {
    struct timespec ts = { 0, 1000000 };
    nanosleep(&ts, NULL);
  }
}

static void settle_probe_free(napi_env env, void *data) {
  (void)env;
  free(data);
}

static void settle_probe_complete(napi_env env, napi_status status, void *data) {
  settle_probe *p = data;
  probe_completed++;
  if (sn_job_settle_void(env, &p->job, status, "_settleProbe was cancelled", 0, "", "")) settle_probe_free(env, p);
}

// _settleProbe(works): Promise<void> — the job above, of `works` works (1..SN_MAX_THREADS).
static napi_value settle_probe_fn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  uint32_t works = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !sn_get_u32(env, argv[0], &works, "works")) return NULL;
  if (works < 1 || works > SN_MAX_THREADS) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "works must be from 1 to 16");
    return NULL;
  }
  settle_probe *p = calloc(1, sizeof *p);
  if (p == NULL) { sn_throw_sys(env, ENOMEM, "malloc", "(_settleProbe)"); return NULL; }
  __atomic_store_n(&probe_released, 0, __ATOMIC_SEQ_CST);
  probe_completed = 0;
  return sn_job_start(env, &p->job, "sentinel:_settleProbe", settle_probe_execute, settle_probe_complete, p, works, settle_probe_free);
}

// _settleProbeStep(release): number — how many of the probe's works have completed (their complete
// callback ran); with release true, the works held in execute go on first.
static napi_value settle_probe_step_fn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool release = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_bool(env, argv[0], &release) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "_settleProbeStep(release: boolean)");
    return NULL;
  }
  if (release) __atomic_store_n(&probe_released, 1, __ATOMIC_SEQ_CST);
  napi_value out;
  napi_create_uint32(env, probe_completed, &out);
  return out;
}

napi_status sn_register_jobs(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("_failQueueAt", fail_queue_at_fn), SN_FN("_settleProbe", settle_probe_fn), SN_FN("_settleProbeStep", settle_probe_step_fn) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
