// copyColdFileAsync: a copy that stays out of the page cache, for a file kept for a rainy day (the
// vault's stored bundle, read again only by heal) (docs/VAULT.md#deploy).
#include "sentinel.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define COLD_CHUNK (8 * 1024 * 1024)
#define COLD_ALIGN 4096

typedef struct {
  sn_job job;
  char *src;
  char *dest;
  const char *method;
  int err;
  const char *syscall;
  const char *where;
} cold_copy;

static void cold_copy_free(napi_env env, void *data) {
  (void)env;
  cold_copy *c = data;
  free(c->src);
  free(c->dest);
  free(c);
}

// O_DIRECT writes from an aligned buffer; the unaligned tail, or everything where the filesystem
// refuses O_DIRECT, through the page cache. 0 or -errno with c->syscall/where set.
static int copy_direct(cold_copy *c, int sfd, int dfd, int fl, off_t size) {
  unsigned char *buf = NULL;
  if (posix_memalign((void **)&buf, COLD_ALIGN, COLD_CHUNK) != 0) { c->syscall = "malloc"; return -ENOMEM; }
  off_t off = 0;
  int direct = 1;
  int r = 0;
  while (r == 0 && off < size) {
    size_t want = (size_t)(size - off) < COLD_CHUNK ? (size_t)(size - off) : COLD_CHUNK;
    size_t got = 0;
    while (got < want) {
      ssize_t n = pread(sfd, buf + got, want - got, off + (off_t)got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) { r = n < 0 ? -errno : -EIO; c->syscall = "read"; c->where = c->src; break; }
      got += (size_t)n;
    }
    if (r != 0) break;
    size_t aligned = direct ? got & ~(size_t)(COLD_ALIGN - 1) : 0;
    if (aligned > 0) {
      int w = sn_write_all_at(dfd, buf, aligned, off);
      if (w == -EINVAL) aligned = 0;  // the filesystem refused O_DIRECT after all: write buffered
      else if (w < 0) { r = w; c->syscall = "write"; break; }
    }
    if (aligned < got) {
      if (direct) { fcntl(dfd, F_SETFL, fl); direct = 0; }
      int w = sn_write_all_at(dfd, buf + aligned, got - aligned, off + (off_t)aligned);
      if (w < 0) { r = w; c->syscall = "write"; break; }
    }
    off += (off_t)got;
  }
  free(buf);
  if (r == 0) c->method = direct ? "direct" : "copy";
  return r;
}

// A reflink where the filesystem has them ("clone"), else O_DIRECT ("direct"), else an in-kernel
// copy ("copy"). 0 or -errno with c->syscall/where set.
static int cold_copy_fds(cold_copy *c, int sfd, int dfd, off_t size) {
  if (ioctl(dfd, FICLONE, sfd) == 0) { c->method = "clone"; return 0; }
  int fl = fcntl(dfd, F_GETFL);
  if (fl >= 0 && size >= COLD_ALIGN && fcntl(dfd, F_SETFL, fl | O_DIRECT) == 0) return copy_direct(c, sfd, dfd, fl, size);
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
  int sfd = open(c->src, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (sfd < 0) { c->err = errno; c->syscall = "open"; c->where = c->src; return; }
  struct stat st;
  int e = fstat(sfd, &st) != 0 ? errno : S_ISREG(st.st_mode) ? 0 : EINVAL;
  if (e != 0) {
    c->err = e;
    c->syscall = "fstat";
    c->where = c->src;
    close(sfd);
    return;
  }
  int dfd = open(c->dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (dfd < 0) { c->err = errno; c->syscall = "open"; close(sfd); return; }
  int r = cold_copy_fds(c, sfd, dfd, st.st_size);
  close(sfd);
  if (close(dfd) != 0 && r == 0) { r = -errno; c->syscall = "close"; }
  if (r < 0) { c->err = -r; unlink(c->dest); }
}

static void cold_copy_complete(napi_env env, napi_status status, void *data) {
  cold_copy *c = data;
  int end = sn_job_end(env, &c->job, status);
  if (end < 0) {
    napi_reject_deferred(env, c->job.deferred, sn_error(env, "copyColdFileAsync was cancelled"));
  } else if (c->err != 0) {
    napi_reject_deferred(env, c->job.deferred, sn_sys_error(env, c->err, c->syscall, c->where));
  } else {
    napi_value out;
    napi_create_string_utf8(env, c->method, NAPI_AUTO_LENGTH, &out);
    napi_resolve_deferred(env, c->job.deferred, out);
  }
  cold_copy_free(env, c);
}

// copyColdFileAsync(src, dest): Promise<'clone' | 'direct' | 'copy'> — dest is created (O_EXCL,
// 0600); on failure it is removed. Durability is the caller's (one fsync or syncfs afterwards).
static napi_value copy_cold_file_async(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char src[PATH_BUF], dest[PATH_BUF];
  if (!sn_path_args(env, info, 2, argv, src, "src") || !sn_get_string(env, argv[1], dest, sizeof dest, "dest")) return NULL;
  cold_copy *c = calloc(1, sizeof *c);
  if (c == NULL || (c->src = strdup(src)) == NULL || (c->dest = strdup(dest)) == NULL) {
    if (c != NULL) cold_copy_free(env, c);
    sn_throw_sys(env, ENOMEM, "malloc", src);
    return NULL;
  }
  return sn_job_start(env, &c->job, "sentinel:copyColdFileAsync", cold_copy_execute, cold_copy_complete, c, 1, cold_copy_free);
}

napi_status sn_register_cold_copy(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("copyColdFileAsync", copy_cold_file_async) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
