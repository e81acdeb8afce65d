// Directory-fd calls for the vault (docs/VAULT.md#staging-through-directory-fds): Node has no
// openat/mkdirat/renameat, so a path swapped underneath the vault could redirect a write made by
// name. Every call here works relative to a directory fd the caller opened and checked (the vault's
// lock is in lock.c, setFlagFd in flags.c); a multi-component path is resolved with openat2's
// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (or component by component with O_NOFOLLOW where the
// kernel has no openat2), so no symlink and no `..` is ever followed.
#include "sentinel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

// A name inside one directory: non-empty, no '/', not "." or "..".
static int is_single_name(const char *name) {
  return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

// openat(2) below dirfd without following any symlink or leaving the directory: openat2 where the
// kernel has it, else one component at a time with O_NOFOLLOW (O_DIRECTORY for the parents).
int sn_open_beneath(int dirfd, const char *path, int flags, unsigned int mode) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  if (fd >= 0) return (int)fd;
  if (errno != ENOSYS) return -errno;
  // No openat2: walk the components; an absolute path, "." or ".." is refused like RESOLVE_BENEATH does.
  if (path[0] == '/' || path[0] == '\0') return -EXDEV;
  char buf[PATH_BUF];
  if (strlen(path) >= sizeof buf) return -ENAMETOOLONG;
  strcpy(buf, path);
  int cur = dirfd;
  char *save = NULL;
  char *comp = strtok_r(buf, "/", &save);
  while (comp != NULL) {
    char *next = strtok_r(NULL, "/", &save);
    if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
      if (cur != dirfd) close(cur);
      return -EXDEV;
    }
    int f = next == NULL ? openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode) : openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    if (cur != dirfd) close(cur);
    if (f < 0) return -e;
    cur = f;
    comp = next;
  }
  return cur;
}

// openAt(dirfd, path, flags, mode): number — a new fd below dirfd (see sn_open_beneath).
static napi_value open_at(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int dirfd;
  uint32_t flags = 0, mode = 0;
  char path[PATH_BUF];
  if (argc < 4 || !sn_get_fd(env, argv[0], &dirfd, "dirfd") || !sn_get_string(env, argv[1], path, sizeof path, "path") ||
      !sn_get_u32(env, argv[2], &flags, "flags") || !sn_get_u32(env, argv[3], &mode, "mode")) return NULL;
  int fd = sn_open_beneath(dirfd, path, (int)flags, (mode_t)mode);
  if (fd < 0) { sn_throw_sys(env, -fd, "openat", path); return NULL; }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

// mkdirAt(dirfd, name, mode): undefined
static napi_value mkdir_at(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int dirfd;
  uint32_t mode = 0;
  char name[PATH_BUF];
  if (argc < 3 || !sn_get_fd(env, argv[0], &dirfd, "dirfd") || !sn_get_string(env, argv[1], name, sizeof name, "name") || !sn_get_u32(env, argv[2], &mode, "mode")) return NULL;
  if (!is_single_name(name)) { sn_throw_sys(env, EINVAL, "mkdirat", name); return NULL; }
  if (mkdirat(dirfd, name, (mode_t)mode) != 0) { sn_throw_sys(env, errno, "mkdirat", name); return NULL; }
  return NULL;
}

// symlinkAt(target, dirfd, name): undefined
static napi_value symlink_at(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int dirfd;
  // One byte more than PATH_BUF: a target of the format's largest size (4095 bytes, PATH_MAX - 1)
  // must fit with its NUL and still be told apart from a truncated longer one.
  char target[PATH_BUF + 1], name[PATH_BUF];
  if (argc < 3 || !sn_get_string(env, argv[0], target, sizeof target, "target") || !sn_get_fd(env, argv[1], &dirfd, "dirfd") ||
      !sn_get_string(env, argv[2], name, sizeof name, "name")) return NULL;
  if (!is_single_name(name)) { sn_throw_sys(env, EINVAL, "symlinkat", name); return NULL; }
  if (symlinkat(target, dirfd, name) != 0) { sn_throw_sys(env, errno, "symlinkat", name); return NULL; }
  return NULL;
}

// renameAt(olddirfd, oldname, newdirfd, newname, noReplace): undefined — renameat2 with
// RENAME_NOREPLACE when asked (the target must not exist; EEXIST otherwise).
static napi_value rename_at(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int oldfd, newfd;
  bool noreplace = false;
  char oldname[PATH_BUF], newname[PATH_BUF];
  if (argc < 5) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "renameAt(olddirfd, oldname, newdirfd, newname, noReplace)"); return NULL; }
  if (!sn_get_fd(env, argv[0], &oldfd, "olddirfd") || !sn_get_string(env, argv[1], oldname, sizeof oldname, "oldname") ||
      !sn_get_fd(env, argv[2], &newfd, "newdirfd") || !sn_get_string(env, argv[3], newname, sizeof newname, "newname")) return NULL;
  if (napi_get_value_bool(env, argv[4], &noreplace) != napi_ok) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "noReplace must be a boolean"); return NULL; }
  if (!is_single_name(oldname) || !is_single_name(newname)) { sn_throw_sys(env, EINVAL, "renameat2", oldname); return NULL; }
  if (syscall(SYS_renameat2, oldfd, oldname, newfd, newname, noreplace ? RENAME_NOREPLACE : 0) != 0) {
    sn_throw_sys(env, errno, "renameat2", newname);
    return NULL;
  }
  return NULL;
}

// unlinkAt(dirfd, name, isDir): undefined
static napi_value unlink_at(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int dirfd;
  bool is_dir = false;
  char name[PATH_BUF];
  if (argc < 3 || !sn_get_fd(env, argv[0], &dirfd, "dirfd") || !sn_get_string(env, argv[1], name, sizeof name, "name") ||
      napi_get_value_bool(env, argv[2], &is_dir) != napi_ok) return NULL;
  if (!is_single_name(name)) { sn_throw_sys(env, EINVAL, "unlinkat", name); return NULL; }
  if (unlinkat(dirfd, name, is_dir ? AT_REMOVEDIR : 0) != 0) { sn_throw_sys(env, errno, "unlinkat", name); return NULL; }
  return NULL;
}

static void set_num(napi_env env, napi_value obj, const char *key, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, key, n);
}

// statAt(dirfd, name): { mode, uid, gid, nlink, size, dev, ino } — fstatat with
// AT_SYMLINK_NOFOLLOW (a symlink is described, never followed); name "" describes dirfd itself.
static napi_value stat_at(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int dirfd;
  char name[PATH_BUF];
  if (argc < 2 || !sn_get_fd(env, argv[0], &dirfd, "dirfd") || !sn_get_string(env, argv[1], name, sizeof name, "name")) return NULL;
  if (name[0] != '\0' && !is_single_name(name)) { sn_throw_sys(env, EINVAL, "fstatat", name); return NULL; }
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW | (name[0] == '\0' ? AT_EMPTY_PATH : 0)) != 0) {
    sn_throw_sys(env, errno, "fstatat", name);
    return NULL;
  }
  napi_value out;
  napi_create_object(env, &out);
  set_num(env, out, "mode", (double)st.st_mode);
  set_num(env, out, "uid", (double)st.st_uid);
  set_num(env, out, "gid", (double)st.st_gid);
  set_num(env, out, "nlink", (double)st.st_nlink);
  set_num(env, out, "size", (double)st.st_size);
  set_num(env, out, "dev", (double)st.st_dev);
  set_num(env, out, "ino", (double)st.st_ino);
  return out;
}

// readDirFd(dirfd): Buffer[] — the raw names in the directory (no "." or ".."), read through a
// duplicate of dirfd so the caller's fd and its offset stay as they were.
static napi_value read_dir_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int dirfd;
  if (argc < 1 || !sn_get_fd(env, argv[0], &dirfd, "dirfd")) return NULL;
  int dup_fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup_fd < 0) { sn_throw_sys(env, errno, "openat", "."); return NULL; }
  DIR *d = fdopendir(dup_fd);
  if (d == NULL) { int e = errno; close(dup_fd); sn_throw_sys(env, e, "fdopendir", "."); return NULL; }
  napi_value out;
  napi_create_array(env, &out);
  uint32_t i = 0;
  for (;;) {
    errno = 0;
    struct dirent *ent = readdir(d);
    if (ent == NULL) {
      int e = errno;
      closedir(d);
      if (e != 0) { sn_throw_sys(env, e, "readdir", "."); return NULL; }
      break;
    }
    if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
    // The raw bytes: a name that is not UTF-8 must be refused by the caller, not silently replaced.
    napi_value b;
    void *copy = NULL;
    napi_create_buffer_copy(env, strlen(ent->d_name), ent->d_name, &copy, &b);
    napi_set_element(env, out, i++, b);
  }
  return out;
}

// readlinkAt(dirfd, name): Buffer — the raw target of the symlink `name` in dirfd.
static napi_value readlink_at(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int dirfd;
  char name[PATH_BUF];
  if (argc < 2 || !sn_get_fd(env, argv[0], &dirfd, "dirfd") || !sn_get_string(env, argv[1], name, sizeof name, "name")) return NULL;
  if (!is_single_name(name)) { sn_throw_sys(env, EINVAL, "readlinkat", name); return NULL; }
  char target[PATH_BUF];
  ssize_t n = readlinkat(dirfd, name, target, sizeof target);
  if (n < 0) { sn_throw_sys(env, errno, "readlinkat", name); return NULL; }
  if ((size_t)n >= sizeof target) { sn_throw_sys(env, ENAMETOOLONG, "readlinkat", name); return NULL; }
  napi_value out;
  void *copy = NULL;
  napi_create_buffer_copy(env, (size_t)n, target, &copy, &out);
  return out;
}

napi_status sn_register_dir_fd(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
    SN_FN("openAt", open_at),
    SN_FN("mkdirAt", mkdir_at),
    SN_FN("symlinkAt", symlink_at),
    SN_FN("renameAt", rename_at),
    SN_FN("unlinkAt", unlink_at),
    SN_FN("statAt", stat_at),
    SN_FN("readDirFd", read_dir_fd),
    SN_FN("readlinkAt", readlink_at),
  };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
