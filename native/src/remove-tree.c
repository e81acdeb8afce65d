// Deleting a tree that may hold +i/+a entries through directory fds only (docs/SECURITY.md): every
// entry is looked at by name in its parent's fd (never following a symlink), opened without
// following and checked to be the very inode looked at, on the parent's device and mount; its seal
// bits are cleared through that fd, and it is unlinked by name in the parent's fd. So a directory
// swapped for a symlink is unlinked, never followed, and one swapped between the look and the open
// is refused: no flag is ever lifted outside the tree.
#include "sentinel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Deeper than any release the bundle format admits; bounds the recursion (and the fds it holds).
#define SN_REMOVE_MAX_DEPTH 256

typedef struct {
  char path[PATH_BUF];  // the entry being removed, relative to the first dirfd (for the error)
  size_t len;
  const char *syscall;
} rm_walk;

typedef struct {
  dev_t dev;
  uint64_t mnt;  // mount id, or 0 where statx does not report it
} rm_where;

static int fail(rm_walk *w, const char *syscall, int e) {
  w->syscall = syscall;
  return -e;
}

// The mount id of an open fd (0 when the kernel does not report it): a bind mount of a live file
// or directory inside the tree is on the same device but another mount.
static uint64_t mount_of(int fd) {
#ifdef STATX_MNT_ID
  struct statx sx;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) == 0 && (sx.stx_mask & STATX_MNT_ID) != 0) return sx.stx_mnt_id;
#else
  (void)fd;
#endif
  return 0;
}

// Opens `name` in dfd as what fstatat found (st) and checks it is that inode on the parent's
// device and mount: ESTALE when it was swapped in between, EXDEV when it is another mount.
static int open_same(int dfd, const char *name, int flags, const struct stat *st, const rm_where *parent, rm_walk *w, rm_where *out, nlink_t *nlink) {
  int fd = openat(dfd, name, flags);
  if (fd < 0) return fail(w, "openat", errno);
  struct stat now;
  int e = 0;
  if (fstat(fd, &now) != 0) e = errno;
  else if (now.st_dev != st->st_dev || now.st_ino != st->st_ino || (now.st_mode & S_IFMT) != (st->st_mode & S_IFMT)) e = ESTALE;
  else if (now.st_dev != parent->dev) e = EXDEV;
  out->dev = now.st_dev;
  *nlink = now.st_nlink;
  out->mnt = e == 0 ? mount_of(fd) : 0;
  if (e == 0 && out->mnt != 0 && parent->mnt != 0 && out->mnt != parent->mnt) e = EXDEV;
  if (e != 0) {
    close(fd);
    return fail(w, "openat", e);
  }
  return fd;
}

static int remove_at(int dfd, const char *name, const rm_where *parent, int depth, rm_walk *w);

// Removes the contents of the directory fd (which it closes), its own seal bits already cleared.
static int empty_dir(int fd, const rm_where *self, int depth, rm_walk *w) {
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int e = errno;
    close(fd);
    return fail(w, "fdopendir", e);
  }
  int r = 0;
  for (;;) {
    errno = 0;
    struct dirent *ent = readdir(d);
    if (ent == NULL) {
      if (errno != 0) r = fail(w, "readdir", errno);
      break;
    }
    if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
    r = remove_at(dirfd(d), ent->d_name, self, depth + 1, w);
    if (r != 0) break;
  }
  closedir(d);
  return r;
}

static int remove_entry(int dfd, const char *name, const rm_where *parent, int depth, rm_walk *w) {
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT ? 0 : fail(w, "fstatat", errno);
  int is_dir = S_ISDIR(st.st_mode);
  if (is_dir || S_ISREG(st.st_mode)) {
    if (is_dir && depth >= SN_REMOVE_MAX_DEPTH) return fail(w, "openat", ELOOP);
    int flags = is_dir ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC : O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    rm_where self;
    nlink_t nlink = 0;
    int fd = open_same(dfd, name, flags, &st, parent, w, &self, &nlink);
    if (fd == -ENOENT) return 0;
    if (fd < 0) return fd;
    // A file with another name (a hard link made before its inode was sealed, perhaps to a live
    // file) keeps its flags: the unlink below then fails with EPERM if it is sealed.
    int r = !is_dir && nlink > 1 ? 0 : sn_fd_change_flag(fd, SN_SEAL_BITS, 0);
    // A filesystem without inode flags has none to clear; the unlink below says if one is stuck.
    if (r == -ENOTTY || r == -EOPNOTSUPP) r = 0;
    if (r < 0) {
      close(fd);
      return fail(w, "ioctl", -r);
    }
    if (is_dir) {
      r = empty_dir(fd, &self, depth, w);
      if (r != 0) return r;
    } else {
      close(fd);
    }
  }
  // A symlink is removed, never followed; a fifo, socket or device is never opened (an open may have
  // effects): a sealed one fails here with EPERM.
  if (unlinkat(dfd, name, is_dir ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT) return fail(w, "unlinkat", errno);
  return 0;
}

// Removes `name` in dfd; on failure w->path names the entry where it happened.
static int remove_at(int dfd, const char *name, const rm_where *parent, int depth, rm_walk *w) {
  size_t saved = w->len;
  size_t n = strlen(name);
  if (saved + (saved > 0 ? 1 : 0) + n + 1 > sizeof w->path) return fail(w, "openat", ENAMETOOLONG);
  if (saved > 0) w->path[w->len++] = '/';
  memcpy(w->path + w->len, name, n + 1);
  w->len += n;
  int r = remove_entry(dfd, name, parent, depth, w);
  if (r == 0) {
    w->len = saved;
    w->path[saved] = '\0';
  }
  return r;
}

typedef struct {
  int dfd;
  char name[PATH_BUF];
  int err;
  rm_walk walk;
  sn_job job;
} remove_tree_job;

static void remove_tree_free(napi_env env, void *data) {
  (void)env;
  free(data);
}

static void remove_tree_execute(napi_env env, void *data) {
  (void)env;
  remove_tree_job *s = data;
  s->walk.syscall = "";
  struct stat st;
  if (fstat(s->dfd, &st) != 0) {
    s->err = errno;
    s->walk.syscall = "fstat";
    return;
  }
  rm_where parent = { st.st_dev, mount_of(s->dfd) };
  s->err = -remove_at(s->dfd, s->name, &parent, 0, &s->walk);
}

static void remove_tree_complete(napi_env env, napi_status status, void *data) {
  remove_tree_job *s = data;
  if (sn_job_settle_void(env, &s->job, status, "removeTreeAtAsync was cancelled", s->err, s->walk.syscall, s->walk.path)) remove_tree_free(env, s);
}

// removeTreeAtAsync(dirfd, name): Promise<void> — removes `name` in dirfd (a file, symlink or whole
// tree) through fds as above, on one pool thread (dirfd must stay open until it settles). Missing
// is fine. Rejects with a Node-style error whose path is relative to dirfd.
static napi_value remove_tree_at_async(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  remove_tree_job *s = calloc(1, sizeof *s);
  if (s == NULL) {
    sn_throw_sys(env, ENOMEM, "malloc", "(removeTreeAtAsync)");
    return NULL;
  }
  if (argc < 2 || !sn_get_fd(env, argv[0], &s->dfd, "dirfd") || !sn_get_string(env, argv[1], s->name, sizeof s->name, "name")) {
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

napi_status sn_register_remove_tree(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
    SN_FN("removeTreeAtAsync", remove_tree_at_async),
  };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
