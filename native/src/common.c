// Helpers every file of the addon uses: Node-shaped system errors, argument readers and record
// writers (native/README.md#files).
#include "sentinel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *sn_errno_name(int e) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *n = strerrorname_np(e);
  if (n != NULL) return n;
#endif
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case EACCES: return "EACCES";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case ENOTTY: return "ENOTTY";
    case EROFS: return "EROFS";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    default: return "EUNKNOWN";
  }
}

napi_value sn_sys_error(napi_env env, int e, const char *syscall, const char *path) {
  char msg[PATH_BUF + 160];
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", sn_errno_name(e), strerror(e), syscall, path);
  napi_value code, message, err, v;
  napi_create_string_utf8(env, sn_errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &err);
  napi_create_int32(env, -e, &v);
  napi_set_named_property(env, err, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "syscall", v);
  napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "path", v);
  return err;
}

void sn_throw_sys(napi_env env, int e, const char *syscall, const char *path) {
  napi_throw(env, sn_sys_error(env, e, syscall, path));
}

napi_value sn_error(napi_env env, const char *message) {
  napi_value msg, err;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &err);
  return err;
}

// The whole string's length is asked first: Node-API never writes part of a multi-byte character, so a
// string too long for `buf` can come back up to 3 bytes short of its end and pass for a shorter one.
int sn_get_string(napi_env env, napi_value v, char *buf, size_t size, const char *what) {
  size_t full = 0, len = 0;
  char msg[128];
  if (napi_get_value_string_utf8(env, v, NULL, 0, &full) != napi_ok || napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) {
    snprintf(msg, sizeof msg, "%s must be a string", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return 0;
  }
  if (full >= size - 1 || len != full || strlen(buf) != len) {
    snprintf(msg, sizeof msg, "%s is too long or contains a NUL byte", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return 0;
  }
  return 1;
}

// Node-API's int32/uint32 readers wrap a number out of range to its low 32 bits and drop a fraction
// (2^32 + 3 reads as 3): these read the double and take only what it is exactly. The range is
// checked before the cast, so a NaN or an infinity is never converted.
int sn_get_fd(napi_env env, napi_value v, int *fd, const char *what) {
  double d = -1;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0 && d <= 2147483647.0) || d != (double)(int32_t)d) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be an open file descriptor", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return 0;
  }
  *fd = (int)d;
  return 1;
}

// One rule for every unsigned integer argument: not a number is a TypeError; NaN, an infinity, a fraction
// or a value above `max` (at most 2^53-1, so the integer is exactly the double) a RangeError naming the
// range. The range is checked before the cast, so nothing out of range (NaN included) is ever converted.
int sn_get_uint(napi_env env, napi_value v, double max, const char *range, uint64_t *out, const char *what) {
  double d = 0;
  char msg[96];
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    snprintf(msg, sizeof msg, "%s must be a number", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return 0;
  }
  if (!(d >= 0 && d <= max) || d != (double)(uint64_t)d) {
    snprintf(msg, sizeof msg, "%s must be an integer from 0 to %s", what, range);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return 0;
  }
  *out = (uint64_t)d;
  return 1;
}

int sn_get_u32(napi_env env, napi_value v, uint32_t *out, const char *what) {
  uint64_t u = 0;
  if (!sn_get_uint(env, v, 4294967295.0, "2^32-1", &u, what)) return 0;
  *out = (uint32_t)u;
  return 1;
}

int sn_path_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, char *path, const char *what) {
  size_t argc = n;
  // Arguments not passed are undefined, so a missing path is a TypeError like a wrong one.
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, NULL, "cannot read the arguments");
    return 0;
  }
  return sn_get_string(env, argv[0], path, PATH_BUF, what);
}

int sn_typed_array(napi_env env, napi_value v, napi_typedarray_type want, size_t n, void **data) {
  bool is_typed = false;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type t;
  size_t len = 0;
  if (napi_get_typedarray_info(env, v, &t, &len, data, NULL, NULL) != napi_ok) return 0;
  return t == want && len == n;
}

int sn_uint8_array(napi_env env, napi_value v, const unsigned char **data, size_t *len) {
  bool is_typed = false;
  napi_typedarray_type t;
  void *d = NULL;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed || napi_get_typedarray_info(env, v, &t, len, &d, NULL, NULL) != napi_ok ||
      t != napi_uint8_array)
    return 0;
  // An empty array may have no memory behind it; callers get a valid pointer all the same.
  *data = *len == 0 ? (const unsigned char *)"" : d;
  return 1;
}

int sn_get_nul_list(napi_env env, napi_value v, char **blob, uint32_t *count, const char *what) {
  size_t blen = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &blen) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a string", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return 0;
  }
  char *b = malloc(blen + 1);
  if (b == NULL) { sn_throw_sys(env, ENOMEM, "malloc", ""); return 0; }
  napi_get_value_string_utf8(env, v, b, blen + 1, &blen);
  // An empty string is no entries; otherwise one more entry than separators.
  uint32_t n = 0;
  if (blen > 0) {
    n = 1;
    for (size_t k = 0; k < blen; k++) if (b[k] == '\0') n++;
  }
  *blob = b;
  *count = n;
  return 1;
}

void sn_index_nul_list(char *blob, uint32_t count, char **ptrs) {
  char *p = blob;
  for (uint32_t k = 0; k < count; k++) {
    ptrs[k] = p;
    p += strlen(p) + 1;
  }
}

void sn_put_i32(unsigned char *p, int32_t v) { memcpy(p, &v, 4); }
void sn_put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
void sn_put_f64(unsigned char *p, double v) { memcpy(p, &v, 8); }

int sn_write_all_at(int fd, const unsigned char *buf, size_t len, int64_t off) {
  while (len > 0) {
    ssize_t w = pwrite(fd, buf, len, (off_t)off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    buf += w;
    len -= (size_t)w;
    off += w;
  }
  return 0;
}

// Maps `reader` over a string array: the value, or the errno name where reading failed, so a
// verify of 10,000 entries costs one call and still reports every failure.
napi_value sn_map_paths(napi_env env, napi_callback_info info, const char *usage, sn_path_reader reader) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_array = false;
  if (argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  uint32_t n = 0;
  napi_get_array_length(env, argv[0], &n);
  napi_value out;
  napi_create_array_with_length(env, n, &out);
  char path[PATH_BUF];
  for (uint32_t i = 0; i < n; i++) {
    napi_value item, v;
    napi_get_element(env, argv[0], i, &item);
    if (!sn_get_string(env, item, path, sizeof path, "paths[i]")) return NULL;
    const char *syscall = "";
    uint32_t value = 0;
    int r = reader(path, &value, &syscall);
    if (r < 0) napi_create_string_utf8(env, sn_errno_name(-r), NAPI_AUTO_LENGTH, &v);
    else napi_create_uint32(env, value, &v);
    napi_set_element(env, out, i, v);
  }
  return out;
}

napi_status sn_export(napi_env env, napi_value exports, const napi_property_descriptor *props, size_t count) {
  return napi_define_properties(env, exports, count, props);
}
