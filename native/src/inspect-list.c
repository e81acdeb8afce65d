// The listing half of verify's tree pass: one thread walks the tree from the root's descriptor,
// each directory opened with openat(parent, name, O_NOFOLLOW|O_DIRECTORY) and read with getdents64,
// names sorted, entries numbered in pre-order. A directory's record comes from its open fd; a
// symlink or other entry's from statx in its parent's fd, never followed. Regular files are only
// noted here: the workers open them (inspect-tree.c).
#include "inspect-tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DENTS_BUFFER (64 * 1024)
// Deeper than any manifest path allows (3072 bytes); one descriptor held per level.
#define MAX_DEPTH 1600

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 1;
  size_t n = *cap < 1024 ? 1024 : *cap;
  while (n < need) n *= 2;
  void *q = realloc(*p, n * elem);
  if (q == NULL) return 0;
  *p = q;
  *cap = n;
  return 1;
}

int sn_tree_put_stat(unsigned char *rec, const struct statx *sx) {
  int type = S_ISREG(sx->stx_mode) ? 1 : S_ISDIR(sx->stx_mode) ? 2 : S_ISLNK(sx->stx_mode) ? 3 : 4;
  sn_put_i32(rec, type);
  sn_put_u32(rec + 4, sx->stx_mode & 07777);
  sn_put_f64(rec + 8, (double)sx->stx_size);
  sn_put_u32(rec + 64, sx->stx_nlink);
  sn_put_u32(rec + 72, sx->stx_uid);
  sn_put_u32(rec + 76, sx->stx_gid);
  return type;
}

// A new entry `name` in directory `parent`; its index, or -1 (ENOMEM).
static int64_t add_entry(tree_job *j, uint32_t parent, const char *name, size_t nlen) {
  size_t cap = j->cap;
  if (!grow((void **)&j->ents, &cap, (size_t)j->count + 1, sizeof *j->ents)) return -1;
  size_t ocap = j->cap;
  if (!grow((void **)&j->out, &ocap, (size_t)j->count + 1, TREE_RECORD)) return -1;
  if (cap != ocap) return -1;
  j->cap = (uint32_t)cap;
  const char *pp = parent == NO_PARENT ? "" : tree_path(j, parent);
  size_t pl = strlen(pp);
  if (!grow((void **)&j->paths, &j->pcap, j->plen + pl + 1 + nlen + 1, 1)) return -1;
  pp = parent == NO_PARENT ? "" : tree_path(j, parent);  // paths may have moved
  uint32_t i = j->count++;
  tree_entry *e = &j->ents[i];
  memset(e, 0, sizeof *e);
  e->parent = parent;
  e->path = (uint32_t)j->plen;
  if (pl > 0) {
    memmove(j->paths + j->plen, pp, pl);
    j->paths[j->plen + pl] = '/';
    pl++;
  }
  e->name = (uint32_t)(j->plen + pl);
  memcpy(j->paths + j->plen + pl, name, nlen);
  j->paths[j->plen + pl + nlen] = '\0';
  j->plen += pl + nlen + 1;
  unsigned char *rec = tree_rec(j, i);
  memset(rec, 0, TREE_RECORD);
  sn_put_i32(rec + 20, -1);
  return i;
}

static int xattrs_at(int dirfd, const char *name) {
  char p[PATH_BUF + 32];
  if ((size_t)snprintf(p, sizeof p, "/proc/self/fd/%d/%s", dirfd, name) >= sizeof p) return -ENAMETOOLONG;
  return sn_untolerated_xattrs(-1, p);  // the entry in our own directory fd, its last component not followed
}

void sn_tree_record_at(tree_job *j, uint32_t i, int dirfd, const char *name) {
  struct statx sx;
  unsigned char *rec = tree_rec(j, i);
  if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_WANT, &sx) != 0) {
    sn_put_i32(rec, -errno);
    sn_put_i32(rec + 16, -errno);
    return;
  }
  int type = sn_tree_put_stat(rec, &sx);
  sn_put_i32(rec + 68, xattrs_at(dirfd, name));
  int seal = type == 3 ? -ELOOP : type == 4 ? -EOPNOTSUPP : sn_seal_bits_of(&sx);
  sn_put_i32(rec + 16, seal == -ENODATA ? -ESTALE : seal);
  if (type != 3) return;
  char target[PATH_BUF];
  ssize_t n = readlinkat(dirfd, name, target, sizeof target);
  if (n < 0 || (size_t)n >= sizeof target) { sn_put_i32(rec + 84, n < 0 ? -errno : -ENAMETOOLONG); return; }
  // The listing runs on one thread; a worker only records a symlink where a file was listed, then
  // reads no target (the type alone is the finding).
  if (__atomic_load_n(&j->listed, __ATOMIC_ACQUIRE) || !grow((void **)&j->targets, &j->tcap, j->tlen + (size_t)n + 1, 1)) return;
  memcpy(j->targets + j->tlen, target, (size_t)n);
  j->targets[j->tlen + (size_t)n] = '\0';
  sn_put_i32(rec + 84, (int32_t)j->tlen + 1);
  j->tlen += (size_t)n + 1;
}

typedef struct { uint32_t off; unsigned char type; } dname;
static int by_name(const void *a, const void *b, void *base) {
  return strcmp((const char *)base + ((const dname *)a)->off, (const char *)base + ((const dname *)b)->off);
}

static int list_dir(tree_job *j, int fd, uint32_t self, int depth, char *dents);

// Opens directory entry i (`name` in pfd), records it from that fd and lists it.
static int open_dir(tree_job *j, int pfd, uint32_t i, int depth, char *dents) {
  char name[256];
  snprintf(name, sizeof name, "%s", tree_name(j, i));
  int fd = depth > MAX_DEPTH ? (errno = ELOOP, -1) : openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    sn_tree_record_at(j, i, pfd, name);  // a symlink or file there now shows as what it is
    unsigned char *rec = tree_rec(j, i);
    int32_t t = sn_get_i32(rec);
    if (t == 2 || t < 0) sn_put_i32(rec + 80, e);
    return 0;
  }
  struct statx sx;
  unsigned char *rec = tree_rec(j, i);
  if (statx(fd, "", AT_EMPTY_PATH, STATX_WANT, &sx) != 0) {
    sn_put_i32(rec, -errno);
    sn_put_i32(rec + 16, -errno);
    close(fd);
    return 0;
  }
  sn_tree_put_stat(rec, &sx);
  int seal = sn_seal_bits_of(&sx);
  if (seal == -ENODATA) {
    int flags = 0;
    int r = sn_fd_flags(fd, &flags);
    seal = r < 0 ? r : (flags & SN_SEAL_BITS);
  }
  sn_put_i32(rec + 16, seal);
  sn_put_i32(rec + 68, sn_untolerated_xattrs(fd, NULL));
  tree_entry *e = &j->ents[i];
  e->dev_major = sx.stx_dev_major;
  e->dev_minor = sx.stx_dev_minor;
  e->ino = sx.stx_ino;
  int r = list_dir(j, fd, i, depth + 1, dents);
  if (r == 0) sn_inspect_gate(tree_path(j, i));
  close(fd);
  return r;
}

// Lists open directory fd (entry `self`, NO_PARENT for the root) and everything below it.
static int list_dir(tree_job *j, int fd, uint32_t self, int depth, char *dents) {
  char *names = NULL;
  dname *list = NULL;
  size_t ncap = 0, lcap = 0, nlen = 0, count = 0;
  int err = 0;
  for (;;) {
    long n = syscall(SYS_getdents64, fd, dents, DENTS_BUFFER);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (n == 0) break;
    for (long at = 0; at < n;) {
      struct dirent64 *d = (struct dirent64 *)(dents + at);
      at += d->d_reclen;
      if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) continue;
      size_t l = strlen(d->d_name) + 1;
      if (!grow((void **)&names, &ncap, nlen + l, 1) || !grow((void **)&list, &lcap, count + 1, sizeof *list)) { err = ENOMEM; break; }
      memcpy(names + nlen, d->d_name, l);
      list[count++] = (dname){ (uint32_t)nlen, d->d_type };
      nlen += l;
    }
    if (err != 0) break;
  }
  if (err == ENOMEM) { free(names); free(list); return ENOMEM; }
  if (err != 0 && self != NO_PARENT) sn_put_i32(tree_rec(j, self) + 80, err);
  if (err != 0 && self == NO_PARENT) j->root_errno = err;
  if (count > 1) qsort_r(list, count, sizeof *list, by_name, names);
  // This directory's files go to the workers together, after its subdirectories' files.
  uint32_t *mine = NULL;
  size_t mcap = 0, nmine = 0;
  int r = 0;
  for (size_t k = 0; k < count && r == 0; k++) {
    const char *name = names + list[k].off;
    int64_t i = add_entry(j, self, name, strlen(name));
    if (i < 0) { r = ENOMEM; break; }
    unsigned char type = list[k].type;
    if (type == DT_UNKNOWN) {
      struct statx sx;
      type = statx(fd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, &sx) != 0 ? DT_UNKNOWN : S_ISDIR(sx.stx_mode) ? DT_DIR : S_ISREG(sx.stx_mode) ? DT_REG : DT_UNKNOWN;
    }
    if (type == DT_REG) {
      if (!grow((void **)&mine, &mcap, nmine + 1, sizeof *mine)) r = ENOMEM;
      else mine[nmine++] = (uint32_t)i;
    } else if (type == DT_DIR) {
      r = open_dir(j, fd, (uint32_t)i, depth, dents);
    } else sn_tree_record_at(j, (uint32_t)i, fd, name);
  }
  size_t fcap = j->fcap;
  if (r == 0 && !grow((void **)&j->files, &fcap, (size_t)j->nfiles + nmine, sizeof *j->files)) r = ENOMEM;
  if (r == 0) {
    j->fcap = (uint32_t)fcap;
    memcpy(j->files + j->nfiles, mine, nmine * sizeof *mine);
    j->nfiles += (uint32_t)nmine;
  }
  free(mine);
  free(names);
  free(list);
  return r;
}

int sn_tree_list(tree_job *j) {
  j->rootfd = open(j->root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (j->rootfd < 0) { j->root_errno = errno; return 0; }
  struct statx sx;
  if (statx(j->rootfd, "", AT_EMPTY_PATH, STATX_UID | STATX_GID | STATX_INO, &sx) != 0) { j->root_errno = errno; return 0; }
  j->root_id.dev_major = sx.stx_dev_major;
  j->root_id.dev_minor = sx.stx_dev_minor;
  j->root_id.ino = sx.stx_ino;
  j->root_uid = sx.stx_uid;
  j->root_gid = sx.stx_gid;
  char *dents = malloc(DENTS_BUFFER);
  if (dents == NULL) return ENOMEM;
  int r = list_dir(j, j->rootfd, NO_PARENT, 0, dents);
  free(dents);
  return r;
}
