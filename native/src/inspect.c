// inspectFilesAsync: what `vault verify` needs of every tree entry in one pass on the libuv pool —
// type, mode, size, seal bits and the SHA-256 of regular files — with no JS object per entry
// (docs/VAULT.md#verify-fail-closed-invariants-5-and-6, native/README.md#api).
#include "sentinel.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// One record per entry (little-endian): i32 type (1 file, 2 dir, 3 symlink, 4 other, -errno when
// statx failed) | u32 mode & 07777 | f64 size | i32 seal bits or -errno | i32 hash errno (0 ok,
// -1 not hashed) | f64 bytes hashed | 32 bytes SHA-256 | u32 link count | i32 extended attributes
// other than the tolerated LSM labels (a count, or -errno) | u32 owner uid | u32 owner gid.
// adapters/tree-inspector-native.ts reads this layout.
#define INSPECT_RECORD 80
#define HASH_BUFFER (1024 * 1024)
#define STATX_WANT (STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_NLINK | STATX_UID | STATX_GID)

typedef struct {
  char *root;
  char *blob;      // the NUL-separated relative paths
  char **paths;    // pointers into blob
  double *expected;
  uint32_t count;
  uint32_t next;   // claimed with __atomic_fetch_add
  unsigned char *out;
  double hash_any_max;  // expected == -2: hash any regular file up to this size
  int64_t *progress;    // bytes hashed so far (a BigInt64Array of the caller), or NULL
  napi_ref progress_ref;
  sn_job job;
} inspect_job;

static void inspect_job_free(napi_env env, void *data) {
  inspect_job *j = data;
  if (j->progress_ref != NULL) napi_delete_reference(env, j->progress_ref);
  free(j->root);
  free(j->blob);
  free(j->paths);
  free(j->expected);
  free(j->out);
  free(j);
}

static int wants_hash(const inspect_job *j, uint32_t i, const struct statx *sx) {
  if (!S_ISREG(sx->stx_mode)) return 0;
  double want = j->expected[i];
  double size = (double)sx->stx_size;
  return want >= 0 ? size == want : want == -2 && size <= j->hash_any_max;
}

// SHA-256 of an open regular file of `size` bytes, read to its end. 0 or an errno.
static int hash_fd(int fd, double size, unsigned char *buf, EVP_MD_CTX *ctx, unsigned char digest[32], double *hashed) {
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) return EIO;
  double total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, HASH_BUFFER);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) break;
    if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) return EIO;
    total += (double)n;
    // A short read of a regular file at its known size is its end: saves one read() per small file.
    if ((size_t)n < HASH_BUFFER && total >= size) break;
  }
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, digest, &len) != 1 || len != 32) return EIO;
  *hashed = total;
  return 0;
}

// One entry. A regular file to be hashed is opened (O_NOFOLLOW, never a symlink) and its record's
// type, mode, size and seal bits are then taken from that open fd, and its digest read from the
// same fd: the record describes one inode even if the path is swapped while the pass runs.
static void inspect_one(inspect_job *j, uint32_t i, const char *path, unsigned char *buf, EVP_MD_CTX *ctx) {
  unsigned char *rec = j->out + (size_t)i * INSPECT_RECORD;
  memset(rec, 0, INSPECT_RECORD);
  sn_put_i32(rec + 20, -1);
  struct statx sx;
  if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_WANT, &sx) != 0) {
    sn_put_i32(rec, -errno);
    sn_put_i32(rec + 16, -errno);
    return;
  }
  int fd = -1;
  if (wants_hash(j, i, &sx)) {
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) sn_put_i32(rec + 20, errno);
    else if (statx(fd, "", AT_EMPTY_PATH, STATX_WANT, &sx) != 0) {
      sn_put_i32(rec + 20, errno);
      close(fd);
      fd = -1;
    }
  }
  int type = S_ISREG(sx.stx_mode) ? 1 : S_ISDIR(sx.stx_mode) ? 2 : S_ISLNK(sx.stx_mode) ? 3 : 4;
  sn_put_i32(rec, type);
  sn_put_u32(rec + 4, sx.stx_mode & 07777);
  sn_put_f64(rec + 8, (double)sx.stx_size);
  sn_put_u32(rec + 64, sx.stx_nlink);
  sn_put_u32(rec + 72, sx.stx_uid);
  sn_put_u32(rec + 76, sx.stx_gid);
  // From the hashed fd where there is one (the same inode as its digest), else the path itself.
  sn_put_i32(rec + 68, sn_untolerated_xattrs(fd, path));
  int seal;
  if (type == 3) seal = -ELOOP;
  else if (type == 4) seal = -EOPNOTSUPP;
  else if ((seal = sn_seal_bits_of(&sx)) == -ENODATA) {
    int flags = 0;
    const char *syscall = "";
    int r = fd >= 0 ? sn_fd_flags(fd, &flags) : sn_read_flags(path, &flags, &syscall);
    seal = r < 0 ? r : (flags & SN_SEAL_BITS);
  }
  sn_put_i32(rec + 16, seal);
  if (fd < 0) return;
  // The open inode may differ from what the path showed: hash it only if it still qualifies.
  if (wants_hash(j, i, &sx)) {
    double hashed = 0;
    int e = buf == NULL || ctx == NULL ? ENOMEM : hash_fd(fd, (double)sx.stx_size, buf, ctx, rec + 32, &hashed);
    sn_put_i32(rec + 20, e);
    sn_put_f64(rec + 24, hashed);
    if (j->progress != NULL) __atomic_fetch_add(j->progress, (int64_t)hashed, __ATOMIC_RELAXED);
  }
  close(fd);
}

static void inspect_execute(napi_env env, void *data) {
  (void)env;
  inspect_job *j = data;
  unsigned char *buf = malloc(HASH_BUFFER);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  size_t rootlen = strlen(j->root);
  char path[PATH_BUF];
  for (;;) {
    uint32_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
    if (i >= j->count) break;
    size_t rl = strlen(j->paths[i]);
    if (rootlen + 1 + rl + 1 > sizeof path) {
      unsigned char *rec = j->out + (size_t)i * INSPECT_RECORD;
      memset(rec, 0, INSPECT_RECORD);
      sn_put_i32(rec, -ENAMETOOLONG);
      sn_put_i32(rec + 16, -ENAMETOOLONG);
      sn_put_i32(rec + 20, -1);
      sn_put_i32(rec + 68, -ENAMETOOLONG);
      continue;
    }
    memcpy(path, j->root, rootlen);
    path[rootlen] = '/';
    memcpy(path + rootlen + 1, j->paths[i], rl + 1);
    inspect_one(j, i, path, buf, ctx);
  }
  EVP_MD_CTX_free(ctx);
  free(buf);
}

static void inspect_complete(napi_env env, napi_status status, void *data) {
  inspect_job *j = data;
  // A work that runs claims entries until none is left, so entries lack a record only when every
  // work was cancelled (never by this addon; at most at shutdown).
  int end = sn_job_end(env, &j->job, status);
  if (end == 0) return;
  if (end < 0) napi_reject_deferred(env, j->job.deferred, sn_error(env, "inspectFilesAsync was cancelled"));
  else sn_job_resolve_buffer(env, &j->job, j->out, (size_t)j->count * INSPECT_RECORD);
  inspect_job_free(env, j);
}

// inspectFilesAsync(root, paths, expectedSizes, threads, hashAnyMax?, progress?): Promise<Buffer>
// `paths` is one string of NUL-separated paths relative to `root`. expectedSizes[i] >= 0 hashes a
// regular file of exactly that size, -1 hashes nothing, -2 any regular file of at most hashAnyMax
// bytes (verify starts before the manifest is checked); `progress`, a BigInt64Array, counts the
// bytes hashed so far. Runs on `threads` pool threads (at most SN_MAX_THREADS) claiming entries
// from a shared counter.
static napi_value inspect_files_async(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const char *usage = "inspectFilesAsync(root: string, paths: string, expectedSizes: Float64Array, threads: number, hashAnyMax?: number, progress?: BigInt64Array)";
  uint32_t threads = 1;
  bool is_typed = false;
  if (argc < 4 || napi_is_typedarray(env, argv[2], &is_typed) != napi_ok || !is_typed || napi_get_value_uint32(env, argv[3], &threads) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  double hash_any_max = -1;
  if (argc >= 5 && napi_get_value_double(env, argv[4], &hash_any_max) != napi_ok) hash_any_max = -1;
  int64_t *progress = NULL;
  void *pdata = NULL;
  if (argc >= 6 && sn_typed_array(env, argv[5], napi_bigint64_array, 1, &pdata)) progress = pdata;
  char root[PATH_BUF];
  if (!sn_get_string(env, argv[0], root, sizeof root, "root")) return NULL;
  inspect_job *j = calloc(1, sizeof *j);
  if (j == NULL || (j->root = strdup(root)) == NULL) { free(j); sn_throw_sys(env, ENOMEM, "malloc", ""); return NULL; }
  uint32_t n = 0;
  if (!sn_get_nul_list(env, argv[1], &j->blob, &n, "paths")) { inspect_job_free(env, j); return NULL; }
  void *tdata = NULL;
  if (!sn_typed_array(env, argv[2], napi_float64_array, n, &tdata)) {
    inspect_job_free(env, j);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "expectedSizes must be a Float64Array with one entry per path");
    return NULL;
  }
  size_t m = n == 0 ? 1 : n;
  j->count = n;
  j->paths = calloc(m, sizeof *j->paths);
  j->expected = malloc(m * sizeof(double));
  j->out = malloc(m * INSPECT_RECORD);
  if (j->paths == NULL || j->expected == NULL || j->out == NULL) { inspect_job_free(env, j); sn_throw_sys(env, ENOMEM, "malloc", ""); return NULL; }
  if (n > 0) memcpy(j->expected, tdata, n * sizeof(double));
  sn_index_nul_list(j->blob, n, j->paths);
  j->hash_any_max = hash_any_max;
  if (progress != NULL) {
    if (napi_create_reference(env, argv[5], 1, &j->progress_ref) != napi_ok) { inspect_job_free(env, j); sn_throw_sys(env, ENOMEM, "napi_create_reference", ""); return NULL; }
    j->progress = progress;
  }
  if (threads < 1) threads = 1;
  if (threads > SN_MAX_THREADS) threads = SN_MAX_THREADS;
  if (threads > n && n > 0) threads = n;
  return sn_job_start(env, &j->job, "sentinel:inspectFilesAsync", inspect_execute, inspect_complete, j, threads, inspect_job_free);
}

napi_status sn_register_inspect(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("inspectFilesAsync", inspect_files_async) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
