// removeTreeAtAsync: deleting a tree that may hold +i/+a entries through directory fds only
// (docs/SECURITY.md), on one pool thread and the few helper threads it starts (the walk:
// remove-walk.c); the check every entry the walk opens passes; the test hook `_removeGate`.
#include "remove-tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

// ---- the check every entry the walk opens passes ----
// The mount id of an open fd (0 when the kernel does not report it): a bind mount of a live file
// or directory inside the tree is on the same device but another mount.
uint64_t sn_mount_of(int fd) {
#ifdef STATX_MNT_ID
  struct statx sx;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) == 0 && (sx.stx_mask & STATX_MNT_ID) != 0) return sx.stx_mnt_id;
#else
  (void)fd;
#endif
  return 0;
}

// Opens `name` in dfd as what fstatat found (st) and checks it is that inode on the parent's
// device and mount: -ESTALE when it was swapped in between, -EXDEV when it is another mount.
int sn_open_same(int dfd, const char *name, int flags, const struct stat *st, const sn_remove_where *parent, sn_remove_where *out, nlink_t *nlink) {
  int fd = openat(dfd, name, flags);
  if (fd < 0) return -errno;
  struct stat now;
  int e = 0;
  if (fstat(fd, &now) != 0) e = errno;
  else if (now.st_dev != st->st_dev || now.st_ino != st->st_ino || (now.st_mode & S_IFMT) != (st->st_mode & S_IFMT)) e = ESTALE;
  else if (now.st_dev != parent->dev) e = EXDEV;
  out->dev = now.st_dev;
  *nlink = now.st_nlink;
  out->mnt = e == 0 ? sn_mount_of(fd) : 0;
  if (e == 0 && out->mnt != 0 && parent->mnt != 0 && out->mnt != parent->mnt) e = EXDEV;
  if (e != 0) {
    close(fd);
    return -e;
  }
  return fd;
}

// ---- the binding ----
typedef struct {
  int dfd;
  uint32_t threads;
  char name[PATH_BUF];
  sn_remove_result res;
  sn_job job;
} remove_tree_job;

static void remove_tree_free(napi_env env, void *data) {
  (void)env;
  free(data);
}

static void remove_tree_execute(napi_env env, void *data) {
  (void)env;
  remove_tree_job *s = data;
  sn_remove_tree(s->dfd, s->name, s->threads, &s->res);
}

static void remove_tree_complete(napi_env env, napi_status status, void *data) {
  remove_tree_job *s = data;
  if (sn_job_settle_void(env, &s->job, status, "removeTreeAtAsync was cancelled", s->res.err, s->res.syscall, s->res.path)) remove_tree_free(env, s);
}

// removeTreeAtAsync(dirfd, name, threads = 1): Promise<void> — removes `name` in dirfd (a file,
// symlink or whole tree) through fds as remove-walk.c says, with up to `threads` threads (1..16: its
// pool thread and helpers it starts; dirfd must stay open until it settles). Missing is fine.
// Rejects with a Node-style error whose path is relative to dirfd.
static napi_value remove_tree_at_async(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  remove_tree_job *s = calloc(1, sizeof *s);
  if (s == NULL) {
    sn_throw_sys(env, ENOMEM, "malloc", "(removeTreeAtAsync)");
    return NULL;
  }
  s->threads = 1;
  napi_valuetype tt = napi_undefined;
  if (argc >= 3 && napi_typeof(env, argv[2], &tt) != napi_ok) tt = napi_undefined;
  if (argc < 2 || !sn_get_fd(env, argv[0], &s->dfd, "dirfd") || !sn_get_string(env, argv[1], s->name, sizeof s->name, "name") ||
      (argc >= 3 && tt != napi_undefined && !sn_get_u32(env, argv[2], &s->threads, "threads"))) {
    free(s);
    return NULL;
  }
  if (s->threads < 1 || s->threads > SN_REMOVE_MAX_THREADS) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "threads must be from 1 to 16");
    free(s);
    return NULL;
  }
  if (s->name[0] == '\0' || strchr(s->name, '/') != NULL || strcmp(s->name, ".") == 0 || strcmp(s->name, "..") == 0) {
    sn_throw_sys(env, EINVAL, "unlinkat", s->name);
    free(s);
    return NULL;
  }
  return sn_job_start(env, &s->job, "sentinel:removeTreeAtAsync", remove_tree_execute, remove_tree_complete, s, 1, remove_tree_free);
}

// ---- test hook: holds one removal at one entry, so a test can swap it at a known point ----
static char gate_rel[PATH_BUF];
static char gate_file[PATH_BUF];
static int gate_point;
static int gate_armed;

int sn_remove_gate_armed(void) {
  return __atomic_load_n(&gate_armed, __ATOMIC_ACQUIRE);
}

void sn_remove_gate(int point, const char *rel) {
  if (!sn_remove_gate_armed() || point != gate_point || strcmp(rel, gate_rel) != 0) return;
  if (!__atomic_exchange_n(&gate_armed, 0, __ATOMIC_ACQ_REL)) return;
  sn_gate_wait(gate_file);
}

// _removeGate(rel, file, point): the next removal, at entry `rel` (relative to its dirfd), creates
// `file`.reached and waits until `file` exists: point 'open' once the entry is looked at and before
// it is opened, 'list' once a directory is opened and its flags cleared and before it is listed.
static napi_value remove_gate(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char point[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || !sn_get_string(env, argv[0], gate_rel, sizeof gate_rel, "rel") || !sn_get_string(env, argv[1], gate_file, sizeof gate_file, "file") ||
      !sn_get_string(env, argv[2], point, sizeof point, "point")) return NULL;
  if (strcmp(point, "open") != 0 && strcmp(point, "list") != 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "point must be 'open' or 'list'");
    return NULL;
  }
  gate_point = strcmp(point, "open") == 0 ? SN_REMOVE_GATE_OPEN : SN_REMOVE_GATE_LIST;
  __atomic_store_n(&gate_armed, 1, __ATOMIC_RELEASE);
  return NULL;
}

napi_status sn_register_remove_tree(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
    SN_FN("removeTreeAtAsync", remove_tree_at_async),
    SN_FN("_removeGate", remove_gate),
  };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
