// Inode flags through FS_IOC_GETFLAGS/FS_IOC_SETFLAGS: no process per file, so sealing 10,000
// files and the live-unsealed window of a deploy stay short (native/README.md#api).
#include "sentinel.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

// The way e2fsprogs' fgetflags opens: lstat first, so a device is never opened (side effects).
int sn_open_for_flags(const char *path, const char **syscall) {
  struct stat st;
  if (lstat(path, &st) != 0) { *syscall = "lstat"; return -errno; }
  if (S_ISLNK(st.st_mode)) { *syscall = "open"; return -ELOOP; }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) { *syscall = "open"; return -EOPNOTSUPP; }
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) { *syscall = "open"; return -errno; }
  if (fstat(fd, &st) != 0 || (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))) {
    int e = errno != 0 ? errno : EOPNOTSUPP;
    close(fd);
    *syscall = "fstat";
    return -e;
  }
  return fd;
}

// The kernel reads and writes an int through this ioctl despite its `long` declaration.
int sn_fd_flags(int fd, int *flags) {
  int f = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &f) != 0) return -errno;
  *flags = f;
  return 0;
}

int sn_read_flags(const char *path, int *flags, const char **syscall) {
  int fd = sn_open_for_flags(path, syscall);
  if (fd < 0) return fd;
  int r = sn_fd_flags(fd, flags);
  close(fd);
  if (r < 0) *syscall = "ioctl";
  return r;
}

// Sets (on) or clears one flag; only issues FS_IOC_SETFLAGS when the flag actually changes.
// Returns 1 when changed, 0 when already so, -errno on failure.
int sn_fd_change_flag(int fd, int flag, int on) {
  int f = 0;
  int r = sn_fd_flags(fd, &f);
  if (r != 0) return r;
  int want = on ? (f | flag) : (f & ~flag);
  if (want == f) return 0;
  if (ioctl(fd, FS_IOC_SETFLAGS, &want) != 0) return -errno;
  return 1;
}

static int change_flag(const char *path, int flag, int on, const char **syscall) {
  int fd = sn_open_for_flags(path, syscall);
  if (fd < 0) return fd;
  int r = sn_fd_change_flag(fd, flag, on);
  close(fd);
  if (r < 0) *syscall = "ioctl";
  return r;
}

// getFlags(path): number
static napi_value get_flags(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[PATH_BUF];
  if (!sn_path_args(env, info, 1, argv, path, "path")) return NULL;
  const char *syscall = "";
  int flags = 0;
  int r = sn_read_flags(path, &flags, &syscall);
  if (r < 0) { sn_throw_sys(env, -r, syscall, path); return NULL; }
  napi_value out;
  napi_create_uint32(env, (uint32_t)flags, &out);
  return out;
}

// setFlags(path, flags): undefined — replaces the whole flag word.
static napi_value set_flags(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[PATH_BUF];
  if (!sn_path_args(env, info, 2, argv, path, "path")) return NULL;
  uint32_t flags = 0;
  if (!sn_get_u32(env, argv[1], &flags, "flags")) return NULL;
  const char *syscall = "";
  int fd = sn_open_for_flags(path, &syscall);
  if (fd < 0) { sn_throw_sys(env, -fd, syscall, path); return NULL; }
  int f = (int)flags;
  int e = ioctl(fd, FS_IOC_SETFLAGS, &f) != 0 ? errno : 0;
  close(fd);
  if (e != 0) sn_throw_sys(env, e, "ioctl", path);
  return NULL;
}

// setFlag(path, flag, on): boolean — true when the flag changed.
static napi_value set_flag(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_BUF];
  if (!sn_path_args(env, info, 3, argv, path, "path")) return NULL;
  uint32_t flag = 0;
  bool on = false;
  if (!sn_get_u32(env, argv[1], &flag, "flag")) return NULL;
  if (napi_get_value_bool(env, argv[2], &on) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setFlag(path: string, flag: number, on: boolean)");
    return NULL;
  }
  const char *syscall = "";
  int r = change_flag(path, (int)flag, on, &syscall);
  if (r < 0) { sn_throw_sys(env, -r, syscall, path); return NULL; }
  napi_value out;
  napi_get_boolean(env, r == 1, &out);
  return out;
}

// Reads (paths: string[], flag: number, on: boolean); throws a TypeError naming `usage` otherwise.
static int get_batch_args(napi_env env, napi_callback_info info, const char *usage, napi_value *paths, uint32_t *n, uint32_t *flag, bool *on) {
  size_t argc = 3;
  napi_value argv[3];
  bool is_array = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return 0;
  }
  if (!sn_get_u32(env, argv[1], flag, "flag")) return 0;
  if (napi_get_value_bool(env, argv[2], on) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return 0;
  }
  *paths = argv[0];
  napi_get_array_length(env, argv[0], n);
  return 1;
}

// setFlagMany(paths, flag, on): number of paths whose flag changed; throws on the first failure
// with that path (earlier paths keep their new flag, the caller decides how to roll back).
static napi_value set_flag_many(napi_env env, napi_callback_info info) {
  napi_value paths;
  uint32_t n = 0, flag = 0, changed = 0;
  bool on = false;
  if (!get_batch_args(env, info, "setFlagMany(paths: string[], flag: number, on: boolean)", &paths, &n, &flag, &on)) return NULL;
  char path[PATH_BUF];
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    napi_get_element(env, paths, i, &item);
    if (!sn_get_string(env, item, path, sizeof path, "paths[i]")) return NULL;
    const char *syscall = "";
    int r = change_flag(path, (int)flag, on, &syscall);
    if (r < 0) { sn_throw_sys(env, -r, syscall, path); return NULL; }
    changed += (uint32_t)r;
  }
  napi_value out;
  napi_create_uint32(env, changed, &out);
  return out;
}

// setFlagManyAsync: setFlagMany on one libuv pool thread, so sealing a large freshly written
// release (ext4 writes dirty data back before +i) never blocks the daemon's event loop.
typedef struct {
  sn_job job;
  char **paths;
  uint32_t count;
  int flag;
  int on;
  uint32_t changed;
  int err;
  const char *syscall;
  uint32_t failed_at;
} flag_batch;

static void flag_batch_free(napi_env env, void *data) {
  (void)env;
  flag_batch *b = data;
  if (b->paths != NULL) {
    for (uint32_t i = 0; i < b->count; i++) free(b->paths[i]);
    free(b->paths);
  }
  free(b);
}

static void flag_batch_execute(napi_env env, void *data) {
  (void)env;
  flag_batch *b = data;
  for (uint32_t i = 0; i < b->count; i++) {
    const char *syscall = "";
    int r = change_flag(b->paths[i], b->flag, b->on, &syscall);
    if (r < 0) { b->err = -r; b->syscall = syscall; b->failed_at = i; return; }
    b->changed += (uint32_t)r;
  }
}

static void flag_batch_complete(napi_env env, napi_status status, void *data) {
  flag_batch *b = data;
  int end = sn_job_end(env, &b->job, status);
  if (end < 0) {
    napi_reject_deferred(env, b->job.deferred, sn_error(env, "setFlagManyAsync was cancelled"));
  } else if (b->err != 0) {
    napi_reject_deferred(env, b->job.deferred, sn_sys_error(env, b->err, b->syscall, b->paths[b->failed_at]));
  } else {
    napi_value out;
    napi_create_uint32(env, b->changed, &out);
    napi_resolve_deferred(env, b->job.deferred, out);
  }
  flag_batch_free(env, b);
}

// setFlagManyAsync(paths, flag, on): Promise<number>
static napi_value set_flag_many_async(napi_env env, napi_callback_info info) {
  napi_value paths;
  uint32_t n = 0, flag = 0;
  bool on = false;
  if (!get_batch_args(env, info, "setFlagManyAsync(paths: string[], flag: number, on: boolean)", &paths, &n, &flag, &on)) return NULL;
  flag_batch *b = calloc(1, sizeof *b);
  if (b == NULL) { sn_throw_sys(env, ENOMEM, "malloc", ""); return NULL; }
  b->paths = calloc(n == 0 ? 1 : n, sizeof *b->paths);
  if (b->paths == NULL) { flag_batch_free(env, b); sn_throw_sys(env, ENOMEM, "malloc", ""); return NULL; }
  b->flag = (int)flag;
  b->on = on;
  char path[PATH_BUF];
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    napi_get_element(env, paths, i, &item);
    // count grows with each copied path, so flag_batch_free frees exactly what was copied.
    if (!sn_get_string(env, item, path, sizeof path, "paths[i]")) { flag_batch_free(env, b); return NULL; }
    if ((b->paths[i] = strdup(path)) == NULL) { flag_batch_free(env, b); sn_throw_sys(env, ENOMEM, "malloc", path); return NULL; }
    b->count = i + 1;
  }
  return sn_job_start(env, &b->job, "sentinel:setFlagManyAsync", flag_batch_execute, flag_batch_complete, b, 1, flag_batch_free);
}

static int read_flags_value(const char *path, uint32_t *out, const char **syscall) {
  int flags = 0;
  int r = sn_read_flags(path, &flags, syscall);
  if (r < 0) return r;
  *out = (uint32_t)flags;
  return 0;
}

// getFlagsMany(paths): (number | string)[] — the flags of each path, or the errno name.
static napi_value get_flags_many(napi_env env, napi_callback_info info) {
  return sn_map_paths(env, info, "getFlagsMany(paths: string[])", read_flags_value);
}

// setFlagFd(fd, flag, on): boolean — FS_IOC_SETFLAGS read-modify-write on an open fd (a file or
// directory reached through directory fds); true when the flag changed.
static napi_value set_flag_fd(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  uint32_t flag = 0;
  bool on = false;
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setFlagFd(fd: number, flag: number, on: boolean)");
    return NULL;
  }
  if (!sn_get_fd(env, argv[0], &fd, "fd") || !sn_get_u32(env, argv[1], &flag, "flag")) return NULL;
  if (napi_get_value_bool(env, argv[2], &on) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "on must be a boolean");
    return NULL;
  }
  int r = sn_fd_change_flag(fd, (int)flag, on);
  if (r < 0) { sn_throw_sys(env, -r, "ioctl", "(fd)"); return NULL; }
  napi_value out;
  napi_get_boolean(env, r == 1, &out);
  return out;
}

napi_status sn_register_flags(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
    SN_FN("getFlags", get_flags),
    SN_FN("setFlags", set_flags),
    SN_FN("setFlag", set_flag),
    SN_FN("setFlagMany", set_flag_many),
    SN_FN("setFlagManyAsync", set_flag_many_async),
    SN_FN("getFlagsMany", get_flags_many),
    SN_FN("setFlagFd", set_flag_fd),
  };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
