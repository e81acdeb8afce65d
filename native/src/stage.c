// stageFilesAsync: a deploy's payload files written from the already verified bundle fd into
// staging on several pool threads, each hashed as it is written (docs/VAULT.md#deploy). With a kept
// fd (stageFilesKeptAtAsync) every chunk that was hashed is also written, from the same buffer, at
// its own offset into the kept copy of the bundle: the copy is the hashed bytes, the source is never
// read again for it.
#include "sentinel.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// One record per file: i32 errno (0 ok, -1 not reached: another file failed first, ENODATA: the
// bundle ended early) | i32 1 when the errno is the kept copy's write, else 0 | f64 bytes written |
// 32 bytes SHA-256 of the bytes written.
// adapters/native.ts reads this layout.
#define STAGE_RECORD 48
#define STAGE_CHUNK (4 * 1024 * 1024)

typedef struct {
  int fd;
  int rootfd;  // -1: dests are paths; else relative to rootfd, resolved beneath it (sn_open_beneath)
  int keptfd;  // -1: none; else the kept bundle copy, each hashed chunk written at its bundle offset
  char *blob;
  char **dests;
  double *offsets;
  double *sizes;
  uint32_t *modes;
  uint32_t count;
  uint32_t next;
  int failed;
  unsigned char *out;
  sn_job job;
} stage_job;

static void stage_job_free(napi_env env, void *data) {
  (void)env;
  stage_job *j = data;
  free(j->blob);
  free(j->dests);
  free(j->offsets);
  free(j->sizes);
  free(j->modes);
  free(j->out);
  free(j);
}

// Creates dests[i] (O_EXCL|O_NOFOLLOW, 0600 until every byte is written and hashed), copies its
// bytes from the bundle, then gives it its manifest mode. 0 or an errno; a file left behind on
// failure is removed with the staging directory by the caller.
static int stage_one(stage_job *j, uint32_t i, unsigned char *buf, EVP_MD_CTX *ctx, unsigned char *rec) {
  int out;
  if (j->rootfd >= 0) {
    // Below the held staged tree: no symlink followed at any component, never leaving it.
    out = sn_open_beneath(j->rootfd, j->dests[i], O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY, 0600);
    if (out < 0) return -out;
  } else {
    out = open(j->dests[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (out < 0) return errno;
  }
  int e = 0;
  int64_t off = (int64_t)j->offsets[i];
  double left = j->sizes[i];
  double written = 0;
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) e = EIO;
  while (e == 0 && left > 0) {
    size_t want = left < STAGE_CHUNK ? (size_t)left : STAGE_CHUNK;
    ssize_t n = pread(j->fd, buf, want, (off_t)off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { e = errno; break; }
    if (n == 0) { e = ENODATA; break; }
    if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) { e = EIO; break; }
    int r = sn_write_all_at(out, buf, (size_t)n, (int64_t)written);
    if (r < 0) { e = -r; break; }
    if (j->keptfd >= 0 && (r = sn_write_all_at(j->keptfd, buf, (size_t)n, off)) < 0) {
      e = -r;
      sn_put_i32(rec + 4, 1);
      break;
    }
    off += n;
    left -= (double)n;
    written += (double)n;
  }
  unsigned int len = 0;
  if (e == 0 && (EVP_DigestFinal_ex(ctx, rec + 16, &len) != 1 || len != 32)) e = EIO;
  if (e == 0 && fchmod(out, (mode_t)j->modes[i]) != 0) e = errno;
  if (close(out) != 0 && e == 0) e = errno;
  if (e == 0) sn_put_f64(rec + 8, written);
  return e;
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
    sn_put_i32(rec, e);
    if (e != 0) __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
  }
  EVP_MD_CTX_free(ctx);
  free(buf);
}

static void stage_complete(napi_env env, napi_status status, void *data) {
  stage_job *j = data;
  int end = sn_job_end(env, &j->job, status);
  if (end == 0) return;
  // Files no work reached keep their -1 record: the caller refuses the staging as incomplete.
  if (end < 0) napi_reject_deferred(env, j->job.deferred, sn_error(env, "stageFilesAsync was cancelled"));
  else sn_job_resolve_buffer(env, &j->job, j->out, (size_t)j->count * STAGE_RECORD);
  stage_job_free(env, j);
}

// stageFilesAsync(bundleFd, dests, offsets, sizes, modes, threads): Promise<Buffer> — dests are
// NUL-separated; offsets/sizes (Float64Array) place each file in the bundle; modes (Uint32Array)
// are applied after the bytes. The caller compares the digests with the signed manifest before
// anything is sealed or moved.
static napi_value stage_files(napi_env env, napi_value *argv, int32_t rootfd, int32_t keptfd, const char *usage) {
  int32_t fd = -1;
  uint32_t threads = 1;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 || napi_get_value_uint32(env, argv[5], &threads) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  stage_job *j = calloc(1, sizeof *j);
  if (j == NULL) { sn_throw_sys(env, ENOMEM, "malloc", ""); return NULL; }
  j->fd = fd;
  j->rootfd = rootfd;
  j->keptfd = keptfd;
  uint32_t n = 0;
  if (!sn_get_nul_list(env, argv[1], &j->blob, &n, "dests")) { stage_job_free(env, j); return NULL; }
  void *offs = NULL, *sizes = NULL, *modes = NULL;
  if (!sn_typed_array(env, argv[2], napi_float64_array, n, &offs) || !sn_typed_array(env, argv[3], napi_float64_array, n, &sizes) ||
      !sn_typed_array(env, argv[4], napi_uint32_array, n, &modes)) {
    stage_job_free(env, j);
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
    stage_job_free(env, j);
    sn_throw_sys(env, ENOMEM, "malloc", "");
    return NULL;
  }
  if (n > 0) {
    memcpy(j->offsets, offs, n * sizeof(double));
    memcpy(j->sizes, sizes, n * sizeof(double));
    memcpy(j->modes, modes, n * sizeof(uint32_t));
  }
  sn_index_nul_list(j->blob, n, j->dests);
  for (uint32_t k = 0; k < n; k++) sn_put_i32(j->out + (size_t)k * STAGE_RECORD, -1);
  if (threads < 1) threads = 1;
  if (threads > SN_MAX_THREADS) threads = SN_MAX_THREADS;
  return sn_job_start(env, &j->job, "sentinel:stageFilesAsync", stage_execute, stage_complete, j, threads, stage_job_free);
}

static napi_value stage_files_async(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const char *usage = "stageFilesAsync(bundleFd: number, dests: string, offsets: Float64Array, sizes: Float64Array, modes: Uint32Array, threads: number)";
  if (argc < 6) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage); return NULL; }
  return stage_files(env, argv, -1, -1, usage);
}

// stageFilesAtAsync(bundleFd, rootFd, dests, offsets, sizes, modes, threads): the same, with dests
// relative to the directory rootFd and each opened beneath it (openat2 RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS, or O_NOFOLLOW per component), so a staged tree swapped or changed underneath
// cannot redirect a write (docs/VAULT.md#staging-through-directory-fds).
static napi_value stage_files_at_async(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const char *usage = "stageFilesAtAsync(bundleFd: number, rootFd: number, dests: string, offsets: Float64Array, sizes: Float64Array, modes: Uint32Array, threads: number)";
  int32_t rootfd = -1;
  if (argc < 7 || napi_get_value_int32(env, argv[1], &rootfd) != napi_ok || rootfd < 0) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage); return NULL; }
  napi_value rest[6] = { argv[0], argv[2], argv[3], argv[4], argv[5], argv[6] };
  return stage_files(env, rest, rootfd, -1, usage);
}

// stageFilesKeptAtAsync(bundleFd, rootFd, keptFd, dests, offsets, sizes, modes, threads): the same
// as stageFilesAtAsync, and every chunk hashed is also written at its bundle offset into keptFd (a
// file the caller created and wrote the verified head into): the copy of the bundle kept for heal
// holds exactly the bytes whose digests the caller then compares with the signed manifest. A
// failed write there is the file's errno with the record's second field 1.
static napi_value stage_files_kept_at_async(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const char *usage = "stageFilesKeptAtAsync(bundleFd: number, rootFd: number, keptFd: number, dests: string, offsets: Float64Array, sizes: Float64Array, modes: Uint32Array, threads: number)";
  int32_t rootfd = -1, keptfd = -1;
  if (argc < 8 || napi_get_value_int32(env, argv[1], &rootfd) != napi_ok || rootfd < 0 || napi_get_value_int32(env, argv[2], &keptfd) != napi_ok || keptfd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  napi_value rest[6] = { argv[0], argv[3], argv[4], argv[5], argv[6], argv[7] };
  return stage_files(env, rest, rootfd, keptfd, usage);
}

napi_status sn_register_stage(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
    SN_FN("stageFilesAsync", stage_files_async),
    SN_FN("stageFilesAtAsync", stage_files_at_async),
    SN_FN("stageFilesKeptAtAsync", stage_files_kept_at_async),
  };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
