// inspectTreeAsync: `vault verify`'s one pass over a release tree through directory descriptors
// only (docs/SECURITY.md#what-verify-covers). The first pool thread opens the root (O_NOFOLLOW) and
// lists the tree (inspect-list.c); then every thread claims regular files, opens each with
// openat(its directory's fd, name, O_NOFOLLOW|O_NONBLOCK), takes the record from that fd and hashes
// it. A worker reopens a directory below the root fd with no symlink allowed on the way and requires
// the inode the listing saw; at the end every directory is looked up again and must still be that
// inode, so a directory replaced (by a symlink or anything else) while the pass read it is reported
// at that directory, and nothing is ever read through a symlink.
#include "inspect-tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HASH_BUFFER (1024 * 1024)

// SHA-256 of an open regular file of `size` bytes, read to its end. 0 or an errno. `md` is fetched
// once per thread: EVP_sha256() here would look the implementation up again (a lock and a hash
// lookup) for every file, about 8 % of hashing 10,000 files of 9 KB.
static int hash_fd(int fd, double size, unsigned char *buf, EVP_MD_CTX *ctx, const EVP_MD *md, unsigned char digest[32], double *hashed) {
  if (EVP_DigestInit_ex(ctx, md, NULL) != 1) return EIO;
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

static void tree_job_free(napi_env env, void *data) {
  tree_job *j = data;
  if (j->progress_ref != NULL) napi_delete_reference(env, j->progress_ref);
  if (j->rootfd >= 0) close(j->rootfd);
  pthread_mutex_destroy(&j->mu);
  pthread_cond_destroy(&j->cv);
  free(j->root);
  free(j->ents);
  free(j->out);
  free(j->paths);
  free(j->targets);
  free(j->files);
  free(j);
}

// A worker's open directory: the one its last file was in.
typedef struct {
  uint32_t dir;
  int fd;  // or -errno
} dir_cache;

static int same_dir(const tree_entry *e, const struct statx *sx) {
  return S_ISDIR(sx->stx_mode) && sx->stx_ino == e->ino && sx->stx_dev_major == e->dev_major && sx->stx_dev_minor == e->dev_minor;
}

// The fd of directory entry d, reopened below the root without following any symlink and required
// to be the inode the listing saw (ESTALE otherwise); -errno when it cannot be.
static int dir_fd(tree_job *j, dir_cache *c, uint32_t d) {
  if (c->dir == d) return c->fd;
  if (c->dir != NO_PARENT && c->fd >= 0) close(c->fd);
  c->dir = d;
  if (d == NO_PARENT) return c->fd = j->rootfd;
  int fd = j->ents[d].ino == 0 ? -ESTALE : sn_open_beneath(j->rootfd, tree_path(j, d), O_RDONLY | O_DIRECTORY, 0);
  struct statx sx;
  if (fd >= 0 && (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_INO, &sx) != 0 || !same_dir(&j->ents[d], &sx))) {
    close(fd);
    fd = -ESTALE;
  }
  if (fd < 0) __atomic_store_n(&j->ents[d].changed, -fd, __ATOMIC_RELAXED);
  return c->fd = fd;
}

// One regular file as listed: opened in its directory's fd without following it; the record's
// type, mode, size, owner, seal bits and attributes come from that fd, and its digest too.
static void inspect_file(tree_job *j, uint32_t i, dir_cache *c, unsigned char *buf, EVP_MD_CTX *ctx, const EVP_MD *md) {
  unsigned char *rec = tree_rec(j, i);
  uint32_t parent = j->ents[i].parent;
  int dirfd = dir_fd(j, c, parent);
  if (dirfd < 0) {
    sn_put_i32(rec, dirfd);
    sn_put_i32(rec + 16, dirfd);
    return;
  }
  const char *name = tree_name(j, i);
  // The name is looked at first, so only a regular file is opened: a device, FIFO or socket renamed
  // in since the listing is recorded, never opened (the open could have side effects), unless it is
  // swapped in between this statx and the open; then O_NONBLOCK|O_NOCTTY apply and the record shows it.
  struct statx sx;
  int fd = -1, e = 0;
  if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, &sx) != 0) e = errno;
  else if (!S_ISREG(sx.stx_mode)) e = EOPNOTSUPP;
  else if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)) < 0) e = errno;
  if (fd < 0) {
    sn_tree_record_at(j, i, dirfd, name);
    if (sn_get_i32(rec) == 1) sn_put_i32(rec + 20, e);
    return;
  }
  if (statx(fd, "", AT_EMPTY_PATH, STATX_WANT, &sx) != 0) {
    sn_put_i32(rec, -errno);
    sn_put_i32(rec + 16, -errno);
    close(fd);
    return;
  }
  int type = sn_tree_put_stat(rec, &sx);
  sn_put_i32(rec + 68, sn_untolerated_xattrs(fd, NULL));
  int seal = type == 4 ? -EOPNOTSUPP : sn_seal_bits_of(&sx);
  if (seal == -ENODATA) {
    int flags = 0;
    int r = sn_fd_flags(fd, &flags);
    seal = r < 0 ? r : (flags & SN_SEAL_BITS);
  }
  sn_put_i32(rec + 16, seal);
  if (type == 1 && (double)sx.stx_size <= j->hash_any_max) {
    double hashed = 0;
    int e = buf == NULL || ctx == NULL ? ENOMEM : hash_fd(fd, (double)sx.stx_size, buf, ctx, md, rec + 32, &hashed);
    sn_put_i32(rec + 20, e);
    sn_put_f64(rec + 24, hashed);
    if (j->progress != NULL) __atomic_fetch_add(j->progress, (int64_t)hashed, __ATOMIC_RELAXED);
  }
  close(fd);
}

// After every file was read: each listed directory is looked up again by its path below the root
// and must be the inode that was listed and read through. One replaced, or one a worker could not
// reopen, is recorded as what is there now (a symlink, a file) or, still a directory, as ESTALE;
// what is below it is not looked at again (it was read through the original, or not at all).
static void recheck(tree_job *j) {
  sn_inspect_gate(".");
  for (uint32_t i = 0; i < j->count; i++) {
    tree_entry *e = &j->ents[i];
    if (e->parent != NO_PARENT && j->ents[e->parent].changed != 0) {
      if (e->ino != 0) e->changed = ESTALE;  // below a replaced directory: skipped, and so are its own
      continue;
    }
    if (e->ino == 0) continue;
    struct statx sx;
    int r = statx(j->rootfd, tree_path(j, i), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_WANT, &sx);
    if (r == 0 && same_dir(e, &sx) && e->changed == 0) continue;
    unsigned char *rec = tree_rec(j, i);
    if (e->changed == 0) e->changed = ESTALE;
    if (r == 0 && !S_ISDIR(sx.stx_mode)) sn_tree_record_at(j, i, j->rootfd, tree_path(j, i));
    else {
      // Gone, another directory (ESTALE), or the same one a worker could not reopen (its errno).
      int err = r != 0 ? errno : !same_dir(e, &sx) || e->changed == ELOOP ? ESTALE : e->changed;
      sn_put_i32(rec, -err);
      sn_put_i32(rec + 16, -err);
    }
  }
  // The root itself, by the path it was opened with: a tree swapped whole while it was read is not
  // the tree at that path any more (ESTALE: reported as the tree not listed).
  struct statx rs;
  if (statx(AT_FDCWD, j->root, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE | STATX_INO, &rs) != 0) j->root_errno = errno;
  else if (!same_dir(&j->root_id, &rs)) j->root_errno = ESTALE;
}

static void tree_execute(napi_env env, void *data) {
  (void)env;
  tree_job *j = data;
  __atomic_fetch_add(&j->started, 1, __ATOMIC_ACQ_REL);
  if (!__atomic_exchange_n(&j->list_claimed, 1, __ATOMIC_ACQ_REL)) {
    int r = sn_tree_list(j);
    pthread_mutex_lock(&j->mu);
    j->fail = r;
    __atomic_store_n(&j->listed, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
  } else {
    pthread_mutex_lock(&j->mu);
    while (!__atomic_load_n(&j->listed, __ATOMIC_ACQUIRE)) pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
  }
  if (j->fail == 0 && j->rootfd >= 0) {
    unsigned char *buf = malloc(HASH_BUFFER);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_MD *fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
    const EVP_MD *md = fetched != NULL ? fetched : EVP_sha256();
    dir_cache c = { NO_PARENT, j->rootfd };
    for (;;) {
      uint32_t k = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
      if (k >= j->nfiles) break;
      inspect_file(j, j->files[k], &c, buf, ctx, md);
    }
    if (c.dir != NO_PARENT && c.fd >= 0) close(c.fd);
    EVP_MD_free(fetched);
    EVP_MD_CTX_free(ctx);
    free(buf);
  }
  // The last work to end (of those that started) checks the directories again, once.
  if (__atomic_add_fetch(&j->finished, 1, __ATOMIC_ACQ_REL) == __atomic_load_n(&j->started, __ATOMIC_ACQUIRE) && j->fail == 0 && j->rootfd >= 0 &&
      !__atomic_exchange_n(&j->recheck_claimed, 1, __ATOMIC_ACQ_REL)) recheck(j);
}

static void free_records(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

// The answer laid out in the records' own allocation (the header moved in before them, the paths and
// targets after them; it has room for those in most trees) and handed to JavaScript without a copy:
// for 10,000 entries a fresh 1.2 MB buffer and its page faults fewer on the main thread, after the
// pass, when the other core is idle. Where external buffers are not allowed, a copy as before.
static napi_value records_buffer(napi_env env, tree_job *j) {
  size_t rl = (size_t)j->count * TREE_RECORD;
  size_t len = TREE_HEADER + rl + j->plen + j->tlen;
  unsigned char *p = j->out;
  if (p == NULL || len > (size_t)j->cap * TREE_RECORD) {
    p = realloc(j->out, len);
    if (p == NULL) return NULL;
    j->out = p;
  }
  if (rl > 0) memmove(p + TREE_HEADER, p, rl);
  sn_put_u32(p, j->count);
  sn_put_i32(p + 4, j->root_errno);
  sn_put_u32(p + 8, j->root_uid);
  sn_put_u32(p + 12, j->root_gid);
  sn_put_u32(p + 16, (uint32_t)j->plen);
  sn_put_u32(p + 20, (uint32_t)j->tlen);
  if (j->plen > 0) memcpy(p + TREE_HEADER + rl, j->paths, j->plen);
  if (j->tlen > 0) memcpy(p + TREE_HEADER + rl + j->plen, j->targets, j->tlen);
  napi_value out;
  if (napi_create_external_buffer(env, len, p, free_records, NULL, &out) == napi_ok) {
    j->out = NULL;  // the buffer's now: freed when it is collected
    return out;
  }
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  return napi_create_buffer_copy(env, len, p, NULL, &out) == napi_ok ? out : NULL;
}

static void tree_complete(napi_env env, napi_status status, void *data) {
  tree_job *j = data;
  int end = sn_job_end(env, &j->job, status);
  if (end == 0) return;
  if (end < 0) napi_reject_deferred(env, j->job.deferred, sn_error(env, "inspectTreeAsync was cancelled"));
  else if (j->fail != 0) napi_reject_deferred(env, j->job.deferred, sn_sys_error(env, j->fail, "inspectTreeAsync", j->root));
  else {
    napi_value out = records_buffer(env, j);
    if (out == NULL) napi_reject_deferred(env, j->job.deferred, sn_sys_error(env, ENOMEM, "napi_create_buffer", ""));
    else napi_resolve_deferred(env, j->job.deferred, out);
  }
  tree_job_free(env, j);
}

// inspectTreeAsync(root, threads, hashAnyMax, progress?): Promise<Buffer> — header (u32 count, i32
// root errno, u32 root uid, u32 root gid, u32 paths bytes, u32 targets bytes), the records, the
// NUL-terminated relative paths in pre-order (names sorted bytewise), the symlink targets. Every
// regular file of at most hashAnyMax bytes is hashed; `progress`, a BigInt64Array, counts bytes hashed.
static napi_value inspect_tree_async(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t threads = 1;
  double hash_any_max = -1;
  char root[PATH_BUF];
  if (argc < 3 || napi_get_value_uint32(env, argv[1], &threads) != napi_ok || napi_get_value_double(env, argv[2], &hash_any_max) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "inspectTreeAsync(root: string, threads: number, hashAnyMax: number, progress?: BigInt64Array)");
    return NULL;
  }
  if (!sn_get_string(env, argv[0], root, sizeof root, "root")) return NULL;
  tree_job *j = calloc(1, sizeof *j);
  if (j == NULL || (j->root = strdup(root)) == NULL) { free(j); sn_throw_sys(env, ENOMEM, "malloc", ""); return NULL; }
  j->rootfd = -1;
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->cv, NULL);
  j->hash_any_max = hash_any_max;
  void *pdata = NULL;
  if (argc >= 4 && sn_typed_array(env, argv[3], napi_bigint64_array, 1, &pdata)) {
    if (napi_create_reference(env, argv[3], 1, &j->progress_ref) != napi_ok) { tree_job_free(env, j); sn_throw_sys(env, ENOMEM, "napi_create_reference", ""); return NULL; }
    j->progress = pdata;
  }
  if (threads < 1) threads = 1;
  if (threads > SN_MAX_THREADS) threads = SN_MAX_THREADS;
  return sn_job_start(env, &j->job, "sentinel:inspectTreeAsync", tree_execute, tree_complete, j, threads, tree_job_free);
}

napi_status sn_register_inspect(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("inspectTreeAsync", inspect_tree_async) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
