// Extended attributes for `vault verify`: the manifest lists none, so a tree entry (or one of the
// vault's own files) may carry only the labels the host's LSM puts on every file it creates
// (docs/SECURITY.md#what-verify-covers). inspect.c counts the others per entry without allocating;
// untoleratedXattrs names them for the few entries that have any.
#include "sentinel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

// Set by the kernel's LSMs and integrity subsystem on files the sentinel creates, so they are
// tolerated with any value: they label the file for the host's policy, not its content. A changed
// label can still change what running it grants (an SELinux entrypoint type); docs/SECURITY.md says
// what that leaves uncovered. src/core/tree-check.ts keeps the same list (test/adapters/tree-inspector.test.ts).
static const char *const TOLERATED[] = { "security.selinux", "security.SMACK64", "security.ima", "security.evm" };
#define NTOLERATED (sizeof TOLERATED / sizeof TOLERATED[0])

static int tolerated(const char *name) {
  for (size_t i = 0; i < NTOLERATED; i++) {
    if (strcmp(name, TOLERATED[i]) == 0) return 1;
  }
  return 0;
}

// The name list of fd (>= 0) or of path (not following a symlink) into a malloc'd *list; its length,
// or -errno. A filesystem without extended attributes has none (0).
static ssize_t name_list(int fd, const char *path, char **list) {
  *list = NULL;
  for (int tries = 0; tries < 4; tries++) {
    ssize_t n = fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(path, NULL, 0);
    if (n < 0) return errno == ENOTSUP ? 0 : -errno;
    if (n == 0) return 0;
    char *buf = malloc((size_t)n);
    if (buf == NULL) return -ENOMEM;
    ssize_t m = fd >= 0 ? flistxattr(fd, buf, (size_t)n) : llistxattr(path, buf, (size_t)n);
    if (m >= 0) {
      *list = buf;
      return m;
    }
    int e = errno;
    free(buf);
    if (e != ERANGE) return -e;  // ERANGE: the list grew in between; ask again
  }
  return -ERANGE;
}

int sn_untolerated_xattrs(int fd, const char *path) {
  // The common case (no attribute at all) costs one syscall and no allocation.
  ssize_t n = fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(path, NULL, 0);
  if (n < 0) return errno == ENOTSUP ? 0 : -errno;
  if (n == 0) return 0;
  char *list = NULL;
  ssize_t len = name_list(fd, path, &list);
  if (len <= 0) return (int)len;
  int count = 0;
  for (ssize_t at = 0; at < len; at += (ssize_t)strlen(list + at) + 1) {
    if (!tolerated(list + at)) count++;
  }
  free(list);
  return count;
}

// untoleratedXattrs(path): string[] — the names on path (not following a symlink) other than the
// tolerated LSM labels, in the kernel's order; throws a Node-style system error.
static napi_value untolerated_xattrs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[PATH_BUF];
  if (!sn_path_args(env, info, 1, argv, path, "path")) return NULL;
  char *list = NULL;
  ssize_t len = name_list(-1, path, &list);
  if (len < 0) {
    sn_throw_sys(env, (int)-len, "llistxattr", path);
    return NULL;
  }
  napi_value out;
  napi_create_array(env, &out);
  uint32_t k = 0;
  for (ssize_t at = 0; at < len; at += (ssize_t)strlen(list + at) + 1) {
    if (tolerated(list + at)) continue;
    napi_value s;
    napi_create_string_utf8(env, list + at, NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, out, k++, s);
  }
  free(list);
  return out;
}

// toleratedXattrs(): string[] — the list above, so the TypeScript side can be checked against it.
static napi_value tolerated_xattrs(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_create_array(env, &out);
  for (uint32_t i = 0; i < NTOLERATED; i++) {
    napi_value s;
    napi_create_string_utf8(env, TOLERATED[i], NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, out, i, s);
  }
  return out;
}

napi_status sn_register_xattr(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("untoleratedXattrs", untolerated_xattrs), SN_FN("toleratedXattrs", tolerated_xattrs) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
