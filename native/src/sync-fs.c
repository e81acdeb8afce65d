// syncFsAsync: one syncfs(2) of the filesystem holding a path, on the libuv pool, so a deploy makes
// a staged release durable with one call instead of an fsync per path or a `sync -f` process
// (docs/VAULT.md#durability). syncFsFdAsync: the same through a descriptor the caller holds, which
// reports every writeback error of the filesystem since that descriptor was opened (syncfs(2)
// compares the filesystem's error sequence with the one sampled at open), not only since the call.
#include "sentinel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  char *path;
  int fd;  // -1: open path; else syncfs(fd), the caller's descriptor, left open
  int err;
  const char *syscall;
  sn_job job;
} sync_fs_job;

static void sync_fs_free(napi_env env, void *data) {
  (void)env;
  sync_fs_job *s = data;
  free(s->path);
  free(s);
}

static void sync_fs_execute(napi_env env, void *data) {
  (void)env;
  sync_fs_job *s = data;
  if (s->fd >= 0) {
    if (syncfs(s->fd) != 0) { s->err = errno; s->syscall = "syncfs"; }
    return;
  }
  // O_RDONLY, not O_PATH: syncfs(2) refuses an O_PATH fd (EBADF).
  int fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) { s->err = errno; s->syscall = "open"; return; }
  if (syncfs(fd) != 0) { s->err = errno; s->syscall = "syncfs"; }
  close(fd);
}

static void sync_fs_complete(napi_env env, napi_status status, void *data) {
  sync_fs_job *s = data;
  if (sn_job_settle_void(env, &s->job, status, "syncFsAsync was cancelled", s->err, s->syscall, s->path)) sync_fs_free(env, s);
}

// syncFsAsync(path): Promise<void> — syncfs(2) of the filesystem `path` (not followed if a
// symlink) is on: every dirty inode and page of it written and its journal committed.
static napi_value sync_fs_async(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[PATH_BUF];
  if (!sn_path_args(env, info, 1, argv, path, "path")) return NULL;
  sync_fs_job *s = calloc(1, sizeof *s);
  if (s == NULL || (s->path = strdup(path)) == NULL) {
    free(s);
    sn_throw_sys(env, ENOMEM, "malloc", path);
    return NULL;
  }
  s->fd = -1;
  return sn_job_start(env, &s->job, "sentinel:syncFsAsync", sync_fs_execute, sync_fs_complete, s, 1, sync_fs_free);
}

// syncFsFdAsync(fd, where): Promise<void> — syncfs(2) through `fd`, which must stay open until the
// promise settles; `where` names it in an error. How a deploy flushes its staging filesystem through
// the staging/ descriptor it has held since before it wrote anything.
static napi_value sync_fs_fd_async(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  char where[PATH_BUF];
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "syncFsFdAsync(fd: number, where: string)");
    return NULL;
  }
  if (!sn_get_string(env, argv[1], where, sizeof where, "where")) return NULL;
  sync_fs_job *s = calloc(1, sizeof *s);
  if (s == NULL || (s->path = strdup(where)) == NULL) {
    free(s);
    sn_throw_sys(env, ENOMEM, "malloc", where);
    return NULL;
  }
  s->fd = fd;
  return sn_job_start(env, &s->job, "sentinel:syncFsFdAsync", sync_fs_execute, sync_fs_complete, s, 1, sync_fs_free);
}

napi_status sn_register_sync_fs(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("syncFsAsync", sync_fs_async), SN_FN("syncFsFdAsync", sync_fs_fd_async) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
