// omnimind-sentinel native addon: inode flags through FS_IOC_GETFLAGS/FS_IOC_SETFLAGS (no process
// per file, so sealing 10,000 files and the live-unsealed window of a deploy stay short) and one
// AF_UNIX datagram for systemd's NOTIFY_SOCKET (Node has no datagram unix sockets).
#include <node_api.h>
#include <openssl/evp.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/sendfile.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <stdint.h>

#define PATH_BUF 4096

// The errno name Node uses in `err.code` ('EPERM', 'ENOTTY', ...).
static const char *errno_name(int e) {
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
    default: return "EUNKNOWN";
  }
}

// Builds an Error shaped like Node's own system errors: code, errno (negative), syscall, path.
static napi_value make_sys_error(napi_env env, int e, const char *syscall, const char *path) {
  char msg[PATH_BUF + 160];
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", errno_name(e), strerror(e), syscall, path);
  napi_value code, message, err, v;
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &code);
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

static void throw_sys(napi_env env, int e, const char *syscall, const char *path) {
  napi_throw(env, make_sys_error(env, e, syscall, path));
}

// Reads a JS string argument into buf; throws a TypeError and returns 0 when it is not one.
static int get_string(napi_env env, napi_value v, char *buf, size_t size, const char *what) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a string", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return 0;
  }
  if (len >= size - 1 || strlen(buf) != len) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s is too long or contains a NUL byte", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return 0;
  }
  return 1;
}

// Opens a regular file or directory without following a symlink and without blocking on a FIFO,
// the way e2fsprogs' fgetflags does. Symlinks give ELOOP; devices, fifos and sockets EOPNOTSUPP
// (opening a device could have side effects). Returns the fd, or -errno with *syscall set.
static int open_for_flags(const char *path, const char **syscall) {
  struct stat st;
  if (lstat(path, &st) != 0) { *syscall = "lstat"; return -errno; }
  if (S_ISLNK(st.st_mode)) { *syscall = "open"; return -ELOOP; }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) { *syscall = "open"; return -EOPNOTSUPP; }
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
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
static int read_flags(const char *path, int *flags, const char **syscall) {
  int fd = open_for_flags(path, syscall);
  if (fd < 0) return fd;
  int f = 0;
  int r = ioctl(fd, FS_IOC_GETFLAGS, &f);
  int e = errno;
  close(fd);
  if (r != 0) { *syscall = "ioctl"; return -e; }
  *flags = f;
  return 0;
}

// Sets (on) or clears one flag; only issues FS_IOC_SETFLAGS when the flag actually changes.
// Returns 1 when changed, 0 when already so, -errno on failure.
static int change_flag(const char *path, int flag, int on, const char **syscall) {
  int fd = open_for_flags(path, syscall);
  if (fd < 0) return fd;
  int f = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &f) != 0) {
    int e = errno;
    close(fd);
    *syscall = "ioctl";
    return -e;
  }
  int want = on ? (f | flag) : (f & ~flag);
  if (want == f) { close(fd); return 0; }
  if (ioctl(fd, FS_IOC_SETFLAGS, &want) != 0) {
    int e = errno;
    close(fd);
    *syscall = "ioctl";
    return -e;
  }
  close(fd);
  return 1;
}

// getFlags(path): number
static napi_value get_flags(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF];
  if (!get_string(env, argv[0], path, sizeof path, "path")) return NULL;
  const char *syscall = "";
  int flags = 0;
  int r = read_flags(path, &flags, &syscall);
  if (r < 0) { throw_sys(env, -r, syscall, path); return NULL; }
  napi_value out;
  napi_create_uint32(env, (uint32_t)flags, &out);
  return out;
}

// setFlags(path, flags): undefined — replaces the whole flag word.
static napi_value set_flags(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF];
  if (!get_string(env, argv[0], path, sizeof path, "path")) return NULL;
  uint32_t flags = 0;
  if (napi_get_value_uint32(env, argv[1], &flags) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "flags must be a number");
    return NULL;
  }
  const char *syscall = "";
  int fd = open_for_flags(path, &syscall);
  if (fd < 0) { throw_sys(env, -fd, syscall, path); return NULL; }
  int f = (int)flags;
  if (ioctl(fd, FS_IOC_SETFLAGS, &f) != 0) {
    int e = errno;
    close(fd);
    throw_sys(env, e, "ioctl", path);
    return NULL;
  }
  close(fd);
  return NULL;
}

// setFlag(path, flag, on): boolean — true when the flag changed.
static napi_value set_flag(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF];
  if (!get_string(env, argv[0], path, sizeof path, "path")) return NULL;
  uint32_t flag = 0;
  bool on = false;
  if (napi_get_value_uint32(env, argv[1], &flag) != napi_ok || napi_get_value_bool(env, argv[2], &on) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setFlag(path: string, flag: number, on: boolean)");
    return NULL;
  }
  const char *syscall = "";
  int r = change_flag(path, (int)flag, on, &syscall);
  if (r < 0) { throw_sys(env, -r, syscall, path); return NULL; }
  napi_value out;
  napi_get_boolean(env, r == 1, &out);
  return out;
}

// setFlagMany(paths, flag, on): number of paths whose flag changed; throws on the first failure
// with that path (earlier paths keep their new flag, the caller decides how to roll back).
static napi_value set_flag_many(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_array = false;
  uint32_t flag = 0;
  bool on = false;
  if (argc < 3 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_value_uint32(env, argv[1], &flag) != napi_ok || napi_get_value_bool(env, argv[2], &on) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setFlagMany(paths: string[], flag: number, on: boolean)");
    return NULL;
  }
  uint32_t n = 0;
  napi_get_array_length(env, argv[0], &n);
  uint32_t changed = 0;
  char path[PATH_BUF];
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    napi_get_element(env, argv[0], i, &item);
    if (!get_string(env, item, path, sizeof path, "paths[i]")) return NULL;
    const char *syscall = "";
    int r = change_flag(path, (int)flag, on, &syscall);
    if (r < 0) { throw_sys(env, -r, syscall, path); return NULL; }
    changed += (uint32_t)r;
  }
  napi_value out;
  napi_create_uint32(env, changed, &out);
  return out;
}

// setFlagManyAsync(paths, flag, on): Promise<number> — setFlagMany on the libuv thread pool, so
// sealing a large freshly written release (ext4 writes dirty data back before +i) never blocks
// the daemon's event loop (and with it the systemd watchdog).
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char **paths;
  uint32_t count;
  int flag;
  int on;
  uint32_t changed;
  int err;
  const char *syscall;
  uint32_t failed_at;
} flag_batch;

static void flag_batch_free(flag_batch *b) {
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
  if (status != napi_ok) {
    napi_value msg, err;
    napi_create_string_utf8(env, "setFlagManyAsync was cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, b->deferred, err);
  } else if (b->err != 0) {
    napi_reject_deferred(env, b->deferred, make_sys_error(env, b->err, b->syscall, b->paths[b->failed_at]));
  } else {
    napi_value out;
    napi_create_uint32(env, b->changed, &out);
    napi_resolve_deferred(env, b->deferred, out);
  }
  napi_delete_async_work(env, b->work);
  flag_batch_free(b);
}

static napi_value set_flag_many_async(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_array = false;
  uint32_t flag = 0;
  bool on = false;
  if (argc < 3 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_value_uint32(env, argv[1], &flag) != napi_ok || napi_get_value_bool(env, argv[2], &on) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setFlagManyAsync(paths: string[], flag: number, on: boolean)");
    return NULL;
  }
  flag_batch *b = calloc(1, sizeof *b);
  if (b == NULL) { throw_sys(env, ENOMEM, "malloc", ""); return NULL; }
  napi_get_array_length(env, argv[0], &b->count);
  b->paths = calloc(b->count == 0 ? 1 : b->count, sizeof *b->paths);
  if (b->paths == NULL) { flag_batch_free(b); throw_sys(env, ENOMEM, "malloc", ""); return NULL; }
  b->flag = (int)flag;
  b->on = on;
  char path[PATH_BUF];
  for (uint32_t i = 0; i < b->count; i++) {
    napi_value item;
    napi_get_element(env, argv[0], i, &item);
    if (!get_string(env, item, path, sizeof path, "paths[i]")) { flag_batch_free(b); return NULL; }
    if ((b->paths[i] = strdup(path)) == NULL) { flag_batch_free(b); throw_sys(env, ENOMEM, "malloc", path); return NULL; }
  }
  napi_value promise, name;
  napi_create_promise(env, &b->deferred, &promise);
  napi_create_string_utf8(env, "sentinel:setFlagManyAsync", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, flag_batch_execute, flag_batch_complete, b, &b->work);
  napi_queue_async_work(env, b->work);
  return promise;
}

// The immutable and append bits of one path from statx(2): one syscall, no open. statx reports
// them with the same values as FS_IMMUTABLE_FL/FS_APPEND_FL. Where the filesystem does not report
// them (attributes_mask), falls back to FS_IOC_GETFLAGS. Returns the bits or -errno.
#define SEAL_BITS (FS_IMMUTABLE_FL | FS_APPEND_FL)
static int read_seal_bits(const char *path, const char **syscall) {
  struct statx sx;
  if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, &sx) != 0) {
    *syscall = "statx";
    return -errno;
  }
  if (S_ISLNK(sx.stx_mode)) { *syscall = "statx"; return -ELOOP; }
  if (!S_ISREG(sx.stx_mode) && !S_ISDIR(sx.stx_mode)) { *syscall = "statx"; return -EOPNOTSUPP; }
  if ((sx.stx_attributes_mask & SEAL_BITS) == SEAL_BITS) return (int)(sx.stx_attributes & SEAL_BITS);
  int flags = 0;
  int r = read_flags(path, &flags, syscall);
  return r < 0 ? r : (flags & SEAL_BITS);
}

// One reader per path: stores the value in *out and returns 0, or returns -errno.
typedef int (*path_reader)(const char *path, uint32_t *out, const char **syscall);

// Maps `reader` over a string array: the value, or the errno name where reading failed, so a
// verify of 10,000 entries costs one call and still reports every failure.
static napi_value map_paths(napi_env env, napi_callback_info info, const char *usage, path_reader reader) {
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
    if (!get_string(env, item, path, sizeof path, "paths[i]")) return NULL;
    const char *syscall = "";
    uint32_t value = 0;
    int r = reader(path, &value, &syscall);
    if (r < 0) napi_create_string_utf8(env, errno_name(-r), NAPI_AUTO_LENGTH, &v);
    else napi_create_uint32(env, value, &v);
    napi_set_element(env, out, i, v);
  }
  return out;
}

static int read_flags_value(const char *path, uint32_t *out, const char **syscall) {
  int flags = 0;
  int r = read_flags(path, &flags, syscall);
  if (r < 0) return r;
  *out = (uint32_t)flags;
  return 0;
}

static int read_seal_bits_value(const char *path, uint32_t *out, const char **syscall) {
  int r = read_seal_bits(path, syscall);
  if (r < 0) return r;
  *out = (uint32_t)r;
  return 0;
}

// getFlagsMany(paths): (number | string)[] — the flags of each path, or the errno name.
static napi_value get_flags_many(napi_env env, napi_callback_info info) {
  return map_paths(env, info, "getFlagsMany(paths: string[])", read_flags_value);
}

// getSealBitsMany(paths): (number | string)[] — FS_IMMUTABLE_FL|FS_APPEND_FL of each path, or the
// errno name; the cheap form of getFlagsMany for verify, which only asks "is it sealed?".
static napi_value get_seal_bits_many(napi_env env, napi_callback_info info) {
  return map_paths(env, info, "getSealBitsMany(paths: string[])", read_seal_bits_value);
}

// inspectFilesAsync(root, paths, expectedSizes, threads, hashAnyMax?, progress?): Promise<Buffer> — what `vault verify` needs
// of every tree entry in one pass, on `threads` libuv threads claiming entries from a shared
// counter: statx type/mode/size and the seal bits, and for each regular file whose size equals
// expectedSizes[i] (-1: do not hash) its SHA-256 (OpenSSL, the library Node itself uses). `paths`
// is one string of NUL-separated paths relative to `root`. The answer is one record per entry
// (INSPECT_RECORD bytes, little-endian): i32 type (1 file, 2 dir, 3 symlink, 4 other, -errno when
// statx failed), u32 mode & 07777, f64 size, i32 seal bits or -errno, i32 hash errno (0 ok, -1 not
// hashed), f64 bytes hashed, 32 bytes digest. expectedSizes[i] == -2 hashes any regular file of at
// most hashAnyMax bytes (verify starts before the manifest is checked); `progress`, a BigInt64Array,
// counts the bytes hashed so far for a progress bar. No JS object per entry, no event-loop round trip.
#define INSPECT_RECORD 64
#define INSPECT_MAX_THREADS 16
typedef struct {
  char *root;
  char *blob;      // the NUL-separated relative paths
  char **paths;    // pointers into blob
  double *expected;
  uint32_t count;
  uint32_t next;   // claimed with __atomic_fetch_add
  int pending;     // works still running
  unsigned char *out;
  size_t buffer_bytes;
  double hash_any_max;  // expected == -2: hash any regular file up to this size
  int64_t *progress;    // bytes hashed so far (a BigInt64Array of the caller), or NULL
  napi_ref progress_ref;
  napi_deferred deferred;
  napi_async_work works[INSPECT_MAX_THREADS];
  int nworks;
} inspect_job;

static void inspect_job_free(inspect_job *j) {
  free(j->root);
  free(j->blob);
  free(j->paths);
  free(j->expected);
  free(j->out);
  free(j);
}

static void put_i32(unsigned char *p, int32_t v) { memcpy(p, &v, 4); }
static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_f64(unsigned char *p, double v) { memcpy(p, &v, 8); }

// SHA-256 of one regular file (never follows a symlink, never blocks on a FIFO). Returns 0 or errno.
static int hash_file(const char *path, unsigned char *buf, size_t bufsize, EVP_MD_CTX *ctx, unsigned char digest[32], double *hashed) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  if (fstat(fd, &st) != 0) { int e = errno; close(fd); return e; }
  if (!S_ISREG(st.st_mode)) { close(fd); return EOPNOTSUPP; }
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) { close(fd); return EIO; }
  double total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, bufsize);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      return e;
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx, buf, (size_t)n);
    total += (double)n;
    // A short read of a regular file at its known size is its end: saves one read() per small file.
    if ((size_t)n < bufsize && total >= (double)st.st_size) break;
  }
  close(fd);
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, digest, &len) != 1 || len != 32) return EIO;
  *hashed = total;
  return 0;
}

static void inspect_execute(napi_env env, void *data) {
  (void)env;
  inspect_job *j = data;
  unsigned char *buf = malloc(j->buffer_bytes);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  size_t rootlen = strlen(j->root);
  char path[PATH_BUF];
  for (;;) {
    uint32_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
    if (i >= j->count) break;
    unsigned char *rec = j->out + (size_t)i * INSPECT_RECORD;
    memset(rec, 0, INSPECT_RECORD);
    put_i32(rec + 20, -1);
    size_t rl = strlen(j->paths[i]);
    if (rootlen + 1 + rl + 1 > sizeof path) { put_i32(rec, -ENAMETOOLONG); put_i32(rec + 16, -ENAMETOOLONG); continue; }
    memcpy(path, j->root, rootlen);
    path[rootlen] = '/';
    memcpy(path + rootlen + 1, j->paths[i], rl + 1);
    struct statx sx;
    if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE | STATX_MODE | STATX_SIZE, &sx) != 0) {
      put_i32(rec, -errno);
      put_i32(rec + 16, -errno);
      continue;
    }
    int type = S_ISREG(sx.stx_mode) ? 1 : S_ISDIR(sx.stx_mode) ? 2 : S_ISLNK(sx.stx_mode) ? 3 : 4;
    put_i32(rec, type);
    put_u32(rec + 4, sx.stx_mode & 07777);
    put_f64(rec + 8, (double)sx.stx_size);
    int seal;
    if (type == 3) seal = -ELOOP;
    else if (type == 4) seal = -EOPNOTSUPP;
    else if ((sx.stx_attributes_mask & SEAL_BITS) == SEAL_BITS) seal = (int)(sx.stx_attributes & SEAL_BITS);
    else {
      const char *syscall = "";
      int flags = 0;
      int r = read_flags(path, &flags, &syscall);
      seal = r < 0 ? r : (flags & SEAL_BITS);
    }
    put_i32(rec + 16, seal);
    double want = j->expected[i];
    int hash_it = want >= 0 ? (double)sx.stx_size == want : want == -2 && (double)sx.stx_size <= j->hash_any_max;
    if (type == 1 && hash_it) {
      if (buf == NULL || ctx == NULL) { put_i32(rec + 20, ENOMEM); continue; }
      double hashed = 0;
      int e = hash_file(path, buf, j->buffer_bytes, ctx, rec + 32, &hashed);
      put_i32(rec + 20, e);
      put_f64(rec + 24, hashed);
      if (j->progress != NULL) __atomic_fetch_add(j->progress, (int64_t)hashed, __ATOMIC_RELAXED);
    }
  }
  EVP_MD_CTX_free(ctx);
  free(buf);
}

static void inspect_complete(napi_env env, napi_status status, void *data) {
  inspect_job *j = data;
  j->pending -= 1;
  if (j->pending > 0) return;
  int cancelled = status != napi_ok;
  for (int k = 0; k < j->nworks; k++) napi_delete_async_work(env, j->works[k]);
  if (j->progress_ref != NULL) napi_delete_reference(env, j->progress_ref);
  if (cancelled) {
    napi_value msg, err;
    napi_create_string_utf8(env, "inspectFilesAsync was cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, j->deferred, err);
  } else {
    napi_value out;
    void *copy = NULL;
    napi_create_buffer_copy(env, (size_t)j->count * INSPECT_RECORD, j->count == 0 ? "" : (const char *)j->out, &copy, &out);
    napi_resolve_deferred(env, j->deferred, out);
  }
  inspect_job_free(j);
}

static napi_value inspect_files_async(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_typed = false;
  uint32_t threads = 1;
  double hash_any_max = -1;
  if (argc >= 5 && napi_get_value_double(env, argv[4], &hash_any_max) != napi_ok) hash_any_max = -1;
  int64_t *progress = NULL;
  bool progress_typed = false;
  if (argc >= 6 && napi_is_typedarray(env, argv[5], &progress_typed) == napi_ok && progress_typed) {
    napi_typedarray_type pt;
    size_t pl = 0;
    void *pd = NULL;
    napi_get_typedarray_info(env, argv[5], &pt, &pl, &pd, NULL, NULL);
    if (pt == napi_bigint64_array && pl >= 1) progress = pd;
  }
  if (argc < 4 || napi_is_typedarray(env, argv[2], &is_typed) != napi_ok || !is_typed || napi_get_value_uint32(env, argv[3], &threads) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "inspectFilesAsync(root: string, paths: string, expectedSizes: Float64Array, threads: number)");
    return NULL;
  }
  inspect_job *j = calloc(1, sizeof *j);
  if (j == NULL) { throw_sys(env, ENOMEM, "malloc", ""); return NULL; }
  char root[PATH_BUF];
  if (!get_string(env, argv[0], root, sizeof root, "root")) { free(j); return NULL; }
  j->root = strdup(root);
  size_t blen = 0;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &blen) != napi_ok) {
    inspect_job_free(j);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "paths must be a string");
    return NULL;
  }
  j->blob = malloc(blen + 1);
  napi_typedarray_type ttype;
  size_t tlen = 0;
  void *tdata = NULL;
  napi_get_typedarray_info(env, argv[2], &ttype, &tlen, &tdata, NULL, NULL);
  if (j->root == NULL || j->blob == NULL || ttype != napi_float64_array) {
    inspect_job_free(j);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expectedSizes must be a Float64Array");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[1], j->blob, blen + 1, &blen);
  // An empty string is no paths; otherwise one more path than separators.
  uint32_t n = 0;
  if (blen > 0) {
    n = 1;
    for (size_t k = 0; k < blen; k++) if (j->blob[k] == '\0') n++;
  }
  if (n != tlen) {
    inspect_job_free(j);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "expectedSizes must have one entry per path");
    return NULL;
  }
  j->count = n;
  j->paths = calloc(n == 0 ? 1 : n, sizeof *j->paths);
  j->expected = malloc((n == 0 ? 1 : n) * sizeof(double));
  j->out = malloc((n == 0 ? 1 : (size_t)n) * INSPECT_RECORD);
  if (j->paths == NULL || j->expected == NULL || j->out == NULL) { inspect_job_free(j); throw_sys(env, ENOMEM, "malloc", ""); return NULL; }
  if (n > 0) memcpy(j->expected, tdata, n * sizeof(double));
  char *p = j->blob;
  for (uint32_t k = 0; k < n; k++) {
    j->paths[k] = p;
    p += strlen(p) + 1;
  }
  j->buffer_bytes = 1024 * 1024;
  j->hash_any_max = hash_any_max;
  if (progress != NULL) {
    j->progress = progress;
    napi_create_reference(env, argv[5], 1, &j->progress_ref);
  }
  if (threads < 1) threads = 1;
  if (threads > INSPECT_MAX_THREADS) threads = INSPECT_MAX_THREADS;
  if (threads > n && n > 0) threads = n;
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "sentinel:inspectFilesAsync", NAPI_AUTO_LENGTH, &name);
  j->nworks = (int)threads;
  j->pending = (int)threads;
  for (uint32_t k = 0; k < threads; k++) napi_create_async_work(env, NULL, name, inspect_execute, inspect_complete, j, &j->works[k]);
  for (uint32_t k = 0; k < threads; k++) napi_queue_async_work(env, j->works[k]);
  return promise;
}

// copyColdFileAsync(src, dest): Promise<string> — a copy that stays out of the page cache, for a
// file kept for a rainy day (the vault's stored bundle, read again only by heal): a reflink where
// the filesystem has them ("clone"), else O_DIRECT writes from an aligned buffer ("direct"; no
// gigabyte of fresh page cache to allocate and flush, so it neither slows nor lengthens the sync
// of the staged release), else an in-kernel copy ("copy"). dest is created (O_EXCL, 0600); on
// failure it is removed. Durability is the caller's (one fsync or syncfs afterwards).
#define COLD_CHUNK (8 * 1024 * 1024)
#define COLD_ALIGN 4096
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *src;
  char *dest;
  const char *method;
  int err;
  const char *syscall;
  const char *where;
} cold_copy;

static int write_all_at(int fd, const unsigned char *buf, size_t len, off_t off) {
  while (len > 0) {
    ssize_t w = pwrite(fd, buf, len, off);
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

static int cold_copy_fds(cold_copy *c, int sfd, int dfd, off_t size) {
  if (ioctl(dfd, FICLONE, sfd) == 0) { c->method = "clone"; return 0; }
  int fl = fcntl(dfd, F_GETFL);
  if (fl >= 0 && size >= COLD_ALIGN && fcntl(dfd, F_SETFL, fl | O_DIRECT) == 0) {
    unsigned char *buf = NULL;
    if (posix_memalign((void **)&buf, COLD_ALIGN, COLD_CHUNK) != 0) { c->syscall = "malloc"; return -ENOMEM; }
    off_t off = 0;
    int direct = 1;
    while (off < size) {
      size_t want = (size_t)(size - off) < COLD_CHUNK ? (size_t)(size - off) : COLD_CHUNK;
      size_t got = 0;
      while (got < want) {
        ssize_t n = pread(sfd, buf + got, want - got, off + (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { int e = n < 0 ? errno : EIO; free(buf); c->syscall = "read"; c->where = c->src; return -e; }
        got += (size_t)n;
      }
      size_t aligned = direct ? got & ~(size_t)(COLD_ALIGN - 1) : 0;
      if (aligned > 0) {
        int r = write_all_at(dfd, buf, aligned, off);
        if (r == -EINVAL) aligned = 0;  // the filesystem refused O_DIRECT after all: write buffered
        else if (r < 0) { free(buf); c->syscall = "write"; return r; }
      }
      if (aligned < got) {
        // The unaligned tail (or everything, if O_DIRECT was refused) goes through the page cache.
        if (direct) { fcntl(dfd, F_SETFL, fl); direct = 0; }
        int r = write_all_at(dfd, buf + aligned, got - aligned, off + (off_t)aligned);
        if (r < 0) { free(buf); c->syscall = "write"; return r; }
      }
      off += (off_t)got;
    }
    free(buf);
    c->method = direct ? "direct" : "copy";
    return 0;
  }
  off_t off = 0;
  while (off < size) {
    ssize_t n = copy_file_range(sfd, &off, dfd, NULL, (size_t)(size - off), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
      n = sendfile(dfd, sfd, &off, (size_t)(size - off));
      if (n < 0 && errno == EINTR) continue;
    }
    if (n <= 0) { c->syscall = "copy_file_range"; return n < 0 ? -errno : -EIO; }
  }
  c->method = "copy";
  return 0;
}

static void cold_copy_execute(napi_env env, void *data) {
  (void)env;
  cold_copy *c = data;
  c->where = c->dest;
  int sfd = open(c->src, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (sfd < 0) { c->err = errno; c->syscall = "open"; c->where = c->src; return; }
  struct stat st;
  if (fstat(sfd, &st) != 0 || !S_ISREG(st.st_mode)) {
    c->err = errno != 0 ? errno : EINVAL;
    c->syscall = "fstat";
    c->where = c->src;
    close(sfd);
    return;
  }
  int dfd = open(c->dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (dfd < 0) { c->err = errno; c->syscall = "open"; close(sfd); return; }
  int r = cold_copy_fds(c, sfd, dfd, st.st_size);
  close(sfd);
  if (close(dfd) != 0 && r == 0) { r = -errno; c->syscall = "close"; }
  if (r < 0) { c->err = -r; unlink(c->dest); }
}

static void cold_copy_complete(napi_env env, napi_status status, void *data) {
  cold_copy *c = data;
  if (status != napi_ok) {
    napi_value msg, err;
    napi_create_string_utf8(env, "copyColdFileAsync was cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, c->deferred, err);
  } else if (c->err != 0) {
    napi_reject_deferred(env, c->deferred, make_sys_error(env, c->err, c->syscall, c->where));
  } else {
    napi_value out;
    napi_create_string_utf8(env, c->method, NAPI_AUTO_LENGTH, &out);
    napi_resolve_deferred(env, c->deferred, out);
  }
  napi_delete_async_work(env, c->work);
  free(c->src);
  free(c->dest);
  free(c);
}

static napi_value copy_cold_file_async(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char src[PATH_BUF], dest[PATH_BUF];
  if (argc < 2 || !get_string(env, argv[0], src, sizeof src, "src") || !get_string(env, argv[1], dest, sizeof dest, "dest")) return NULL;
  cold_copy *c = calloc(1, sizeof *c);
  if (c == NULL || (c->src = strdup(src)) == NULL || (c->dest = strdup(dest)) == NULL) {
    if (c != NULL) { free(c->src); free(c); }
    throw_sys(env, ENOMEM, "malloc", src);
    return NULL;
  }
  napi_value promise, name;
  napi_create_promise(env, &c->deferred, &promise);
  napi_create_string_utf8(env, "sentinel:copyColdFileAsync", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, cold_copy_execute, cold_copy_complete, c, &c->work);
  napi_queue_async_work(env, c->work);
  return promise;
}

// stageFilesAsync(bundleFd, dests, offsets, sizes, modes, threads): Promise<Buffer> — writes each
// payload file of a bundle into staging on `threads` libuv threads (files claimed from a shared
// counter), hashing the very bytes it writes with OpenSSL's SHA-256. dests are NUL-separated;
// each file is created O_EXCL|O_NOFOLLOW 0600, then given its mode. One record per file
// (STAGE_RECORD bytes): i32 errno (0 ok, -1 not reached: another file failed first, ENODATA: the
// bundle ended early), i32 reserved, f64 bytes written, 32 bytes SHA-256. The caller compares the
// digests with the signed manifest before anything is sealed or moved.
#define STAGE_RECORD 48
#define STAGE_CHUNK (4 * 1024 * 1024)
typedef struct {
  int fd;
  char *blob;
  char **dests;
  double *offsets;
  double *sizes;
  uint32_t *modes;
  uint32_t count;
  uint32_t next;
  int failed;
  int pending;
  unsigned char *out;
  napi_deferred deferred;
  napi_async_work works[INSPECT_MAX_THREADS];
  int nworks;
} stage_job;

static void stage_job_free(stage_job *j) {
  free(j->blob);
  free(j->dests);
  free(j->offsets);
  free(j->sizes);
  free(j->modes);
  free(j->out);
  free(j);
}

static int stage_one(stage_job *j, uint32_t i, unsigned char *buf, EVP_MD_CTX *ctx, unsigned char *rec) {
  int out = open(j->dests[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) return errno;
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) { close(out); return EIO; }
  off_t off = (off_t)j->offsets[i];
  double left = j->sizes[i];
  double written = 0;
  while (left > 0) {
    size_t want = left < STAGE_CHUNK ? (size_t)left : STAGE_CHUNK;
    ssize_t n = pread(j->fd, buf, want, off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { int e = errno; close(out); return e; }
    if (n == 0) { close(out); return ENODATA; }
    EVP_DigestUpdate(ctx, buf, (size_t)n);
    int r = write_all_at(out, buf, (size_t)n, (off_t)written);
    if (r < 0) { close(out); return -r; }
    off += n;
    left -= (double)n;
    written += (double)n;
  }
  put_f64(rec + 8, written);
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, rec + 16, &len) != 1 || len != 32) { close(out); return EIO; }
  if (fchmod(out, (mode_t)j->modes[i]) != 0) { int e = errno; close(out); return e; }
  if (close(out) != 0) return errno;
  return 0;
}

static void stage_execute(napi_env env, void *data) {
  (void)env;
  stage_job *j = data;
  unsigned char *buf = malloc(STAGE_CHUNK);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  for (;;) {
    if (__atomic_load_n(&j->failed, __ATOMIC_RELAXED)) break;
    uint32_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
    if (i >= j->count) break;
    unsigned char *rec = j->out + (size_t)i * STAGE_RECORD;
    int e = buf == NULL || ctx == NULL ? ENOMEM : stage_one(j, i, buf, ctx, rec);
    put_i32(rec, e);
    if (e != 0) __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
  }
  EVP_MD_CTX_free(ctx);
  free(buf);
}

static void stage_complete(napi_env env, napi_status status, void *data) {
  stage_job *j = data;
  j->pending -= 1;
  if (j->pending > 0) return;
  for (int k = 0; k < j->nworks; k++) napi_delete_async_work(env, j->works[k]);
  if (status != napi_ok) {
    napi_value msg, err;
    napi_create_string_utf8(env, "stageFilesAsync was cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, j->deferred, err);
  } else {
    napi_value out;
    void *copy = NULL;
    napi_create_buffer_copy(env, (size_t)j->count * STAGE_RECORD, j->count == 0 ? "" : (const char *)j->out, &copy, &out);
    napi_resolve_deferred(env, j->deferred, out);
  }
  stage_job_free(j);
}

static int typed_info(napi_env env, napi_value v, napi_typedarray_type want, size_t n, void **data) {
  bool is_typed = false;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type t;
  size_t len = 0;
  napi_get_typedarray_info(env, v, &t, &len, data, NULL, NULL);
  return t == want && len == n;
}

static napi_value stage_files_async(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const char *usage = "stageFilesAsync(bundleFd: number, dests: string, offsets: Float64Array, sizes: Float64Array, modes: Uint32Array, threads: number)";
  int32_t fd = -1;
  uint32_t threads = 1;
  size_t blen = 0;
  if (argc < 6 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 || napi_get_value_uint32(env, argv[5], &threads) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], NULL, 0, &blen) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  stage_job *j = calloc(1, sizeof *j);
  if (j == NULL || (j->blob = malloc(blen + 1)) == NULL) { free(j); throw_sys(env, ENOMEM, "malloc", ""); return NULL; }
  j->fd = fd;
  napi_get_value_string_utf8(env, argv[1], j->blob, blen + 1, &blen);
  uint32_t n = 0;
  if (blen > 0) {
    n = 1;
    for (size_t k = 0; k < blen; k++) if (j->blob[k] == '\0') n++;
  }
  void *offs = NULL, *sizes = NULL, *modes = NULL;
  if (!typed_info(env, argv[2], napi_float64_array, n, &offs) || !typed_info(env, argv[3], napi_float64_array, n, &sizes) ||
      !typed_info(env, argv[4], napi_uint32_array, n, &modes)) {
    stage_job_free(j);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", usage);
    return NULL;
  }
  size_t m = n == 0 ? 1 : n;
  j->count = n;
  j->dests = calloc(m, sizeof *j->dests);
  j->offsets = malloc(m * sizeof(double));
  j->sizes = malloc(m * sizeof(double));
  j->modes = malloc(m * sizeof(uint32_t));
  j->out = calloc(m, STAGE_RECORD);
  if (j->dests == NULL || j->offsets == NULL || j->sizes == NULL || j->modes == NULL || j->out == NULL) {
    stage_job_free(j);
    throw_sys(env, ENOMEM, "malloc", "");
    return NULL;
  }
  if (n > 0) {
    memcpy(j->offsets, offs, n * sizeof(double));
    memcpy(j->sizes, sizes, n * sizeof(double));
    memcpy(j->modes, modes, n * sizeof(uint32_t));
  }
  char *p = j->blob;
  for (uint32_t k = 0; k < n; k++) {
    j->dests[k] = p;
    p += strlen(p) + 1;
    put_i32(j->out + (size_t)k * STAGE_RECORD, -1);
  }
  if (threads < 1) threads = 1;
  if (threads > INSPECT_MAX_THREADS) threads = INSPECT_MAX_THREADS;
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "sentinel:stageFilesAsync", NAPI_AUTO_LENGTH, &name);
  j->nworks = (int)threads;
  j->pending = (int)threads;
  for (uint32_t k = 0; k < threads; k++) napi_create_async_work(env, NULL, name, stage_execute, stage_complete, j, &j->works[k]);
  for (uint32_t k = 0; k < threads; k++) napi_queue_async_work(env, j->works[k]);
  return promise;
}

// notify(address, message): one AF_UNIX SOCK_DGRAM datagram, as sd_notify(3) sends it.
// An address starting with '@' is in the abstract namespace.
static napi_value notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char address[PATH_BUF];
  if (!get_string(env, argv[0], address, sizeof address, "address")) return NULL;
  size_t mlen = 0;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &mlen) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "message must be a string");
    return NULL;
  }
  char *message = malloc(mlen + 1);
  if (message == NULL) { throw_sys(env, ENOMEM, "malloc", address); return NULL; }
  napi_get_value_string_utf8(env, argv[1], message, mlen + 1, &mlen);

  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t alen = strlen(address);
  socklen_t salen;
  if (alen == 0 || alen >= sizeof sa.sun_path) {
    free(message);
    throw_sys(env, alen == 0 ? EINVAL : ENAMETOOLONG, "connect", address);
    return NULL;
  }
  if (address[0] == '@') {
    // Abstract: a leading NUL, then the name; the length counts exactly those bytes.
    memcpy(sa.sun_path + 1, address + 1, alen - 1);
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + alen);
  } else {
    memcpy(sa.sun_path, address, alen);
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + alen + 1);
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) { int e = errno; free(message); throw_sys(env, e, "socket", address); return NULL; }
  ssize_t sent = sendto(fd, message, mlen, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  int e = errno;
  close(fd);
  free(message);
  if (sent < 0) { throw_sys(env, e, "sendto", address); return NULL; }
  if ((size_t)sent != mlen) { throw_sys(env, EMSGSIZE, "sendto", address); return NULL; }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"getFlags", NULL, get_flags, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setFlags", NULL, set_flags, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setFlag", NULL, set_flag, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setFlagMany", NULL, set_flag_many, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setFlagManyAsync", NULL, set_flag_many_async, NULL, NULL, NULL, napi_enumerable, NULL},
    {"getFlagsMany", NULL, get_flags_many, NULL, NULL, NULL, napi_enumerable, NULL},
    {"getSealBitsMany", NULL, get_seal_bits_many, NULL, NULL, NULL, napi_enumerable, NULL},
    {"inspectFilesAsync", NULL, inspect_files_async, NULL, NULL, NULL, napi_enumerable, NULL},
    {"copyColdFileAsync", NULL, copy_cold_file_async, NULL, NULL, NULL, napi_enumerable, NULL},
    {"stageFilesAsync", NULL, stage_files_async, NULL, NULL, NULL, napi_enumerable, NULL},
    {"notify", NULL, notify, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
