// Deleting a tree that may hold +i/+a entries through directory fds only (docs/SECURITY.md), on a
// few threads at once. Every entry is looked at by name in its parent's fd (never following a
// symlink), opened without following and checked to be the very inode looked at, on the parent's
// device and mount; its seal bits are cleared through that fd, and it is unlinked by name in the
// parent's fd. So a directory swapped for a symlink is unlinked, never followed, and one swapped
// between the look and the open is refused: no flag is ever lifted outside the tree.
//
// Why threads: on a busy ext4 each unlink that frees blocks may wait for another writer's journal
// commit; one thread adds those waits up, several overlap them (BENCHMARKS.md, Deploy). The threads
// share one stack of entries to remove (newest first, so a subtree is finished before its siblings
// are opened and few directories are open at once). A directory's entries are removed in its own
// open fd, which it keeps until the last of them is settled; that one's thread then closes it and
// removes the directory by name in its parent's fd. The first failure stops the walk: no thread
// starts another act, what is queued is dropped, nothing more is removed, and the failure (errno,
// syscall, the entry's path) is what the removal reports.
#include "remove-tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Deeper than any release the bundle format admits; bounds the open directories along one path.
#define SN_REMOVE_MAX_DEPTH 256
// The helpers' stacks: the walk does not recurse (one PATH_BUF buffer at most on the stack).
#define HELPER_STACK (256 * 1024)
// Entries listed before they are handed to the other threads (one lock per batch).
#define LIST_BATCH 16

typedef struct rm_node rm_node;
struct rm_node {
  rm_node *parent;   // the directory it is in; NULL: the job's dirfd
  rm_node *next;     // in the stack of entries to remove
  DIR *dir;          // a directory being emptied: its stream, whose fd its entries are removed in
  int fd;            // dirfd(dir), or -1
  sn_remove_where where;    // a directory's device and mount
  uint32_t pending;  // a directory: its entries not yet settled, plus one while it is listed
  uint32_t depth;
  size_t plen;       // length of its path relative to the job's dirfd
  size_t nlen;
  char name[];
};

typedef struct {
  int dfd;
  sn_remove_where top;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  rm_node *stack;  // entries to remove (under mu)
  int done;        // the first entry is settled (under mu)
  int stop;        // a failure was recorded: no act starts after it
  sn_remove_result *out;
} rm_tree;

// The entry's path relative to the job's dirfd, into buf (PATH_BUF bytes; plen < PATH_BUF).
static void path_of(const rm_node *n, char *buf) {
  buf[n->plen] = '\0';
  for (const rm_node *p = n; p != NULL; p = p->parent) {
    size_t at = p->plen - p->nlen;
    memcpy(buf + at, p->name, p->nlen);
    if (at > 0) buf[at - 1] = '/';
  }
}

static int stopped(rm_tree *t) {
  return __atomic_load_n(&t->stop, __ATOMIC_ACQUIRE);
}

// Records the first failure, at n (its path), and stops the walk.
static void fail(rm_tree *t, const rm_node *n, const char *syscall, int e) {
  pthread_mutex_lock(&t->mu);
  if (t->out->err == 0) {
    t->out->err = e;
    t->out->syscall = syscall;
    path_of(n, t->out->path);
  }
  __atomic_store_n(&t->stop, 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&t->mu);
}

static void gate(const rm_node *n, int point) {
  if (!sn_remove_gate_armed()) return;
  char rel[PATH_BUF];
  path_of(n, rel);
  sn_remove_gate(point, rel);
}

static int parent_fd(const rm_tree *t, const rm_node *n) {
  return n->parent != NULL ? n->parent->fd : t->dfd;
}

static const sn_remove_where *parent_where(const rm_tree *t, const rm_node *n) {
  return n->parent != NULL ? &n->parent->where : &t->top;
}

// Pushes a batch (linked through next, `last` its end) onto the stack and wakes the threads.
static void push(rm_tree *t, rm_node *first, rm_node *last) {
  pthread_mutex_lock(&t->mu);
  last->next = t->stack;
  t->stack = first;
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
}

// Lists the directory n (fd: opened and checked, its seal bits cleared) and hands its entries to
// the threads. 1: n is settled now (listed and every entry already settled, or it failed), 0: the
// last of its entries settles it.
static int list_dir(rm_tree *t, rm_node *n, int fd) {
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int e = errno;
    close(fd);
    fail(t, n, "fdopendir", e);
    return 1;
  }
  n->dir = d;
  n->fd = fd;
  n->pending = 1;
  gate(n, SN_REMOVE_GATE_LIST);
  rm_node *first = NULL, *last = NULL;
  int batched = 0;
  while (!stopped(t)) {
    errno = 0;
    struct dirent *ent = readdir(d);
    if (ent == NULL) {
      if (errno != 0) fail(t, n, "readdir", errno);
      break;
    }
    if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
    size_t len = strlen(ent->d_name);
    if (n->plen + 1 + len + 1 > PATH_BUF) {
      fail(t, n, "openat", ENAMETOOLONG);
      break;
    }
    rm_node *c = calloc(1, sizeof *c + len + 1);
    if (c == NULL) {
      fail(t, n, "malloc", ENOMEM);
      break;
    }
    c->parent = n;
    c->fd = -1;
    c->depth = n->depth + 1;
    c->nlen = len;
    c->plen = n->plen + 1 + len;
    memcpy(c->name, ent->d_name, len + 1);
    __atomic_add_fetch(&n->pending, 1, __ATOMIC_ACQ_REL);
    if (first == NULL) last = c;
    c->next = first;
    first = c;
    if (++batched == LIST_BATCH) {
      push(t, first, last);
      first = last = NULL;
      batched = 0;
    }
  }
  if (first != NULL) push(t, first, last);
  return __atomic_sub_fetch(&n->pending, 1, __ATOMIC_ACQ_REL) == 0;
}

// Acts on one entry: 1 when it is settled (removed, missing, failed or dropped after a failure),
// 0 when it is a directory whose entries the threads now remove.
static int remove_entry(rm_tree *t, rm_node *n) {
  if (stopped(t)) return 1;
  int pfd = parent_fd(t, n);
  struct stat st;
  if (fstatat(pfd, n->name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) fail(t, n, "fstatat", errno);
    return 1;
  }
  int is_dir = S_ISDIR(st.st_mode);
  if (is_dir || S_ISREG(st.st_mode)) {
    if (is_dir && n->depth >= SN_REMOVE_MAX_DEPTH) {
      fail(t, n, "openat", ELOOP);
      return 1;
    }
    gate(n, SN_REMOVE_GATE_OPEN);
    int flags = is_dir ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC : O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    nlink_t nlink = 0;
    int fd = sn_open_same(pfd, n->name, flags, &st, parent_where(t, n), &n->where, &nlink);
    if (fd == -ENOENT) return 1;
    if (fd < 0) {
      fail(t, n, "openat", -fd);
      return 1;
    }
    // A file with another name (a hard link made before its inode was sealed, perhaps to a live
    // file) keeps its flags: the unlink below then fails with EPERM if it is sealed.
    int r = !is_dir && nlink > 1 ? 0 : sn_fd_change_flag(fd, SN_SEAL_BITS, 0);
    // A filesystem without inode flags has none to clear; the unlink says if one is stuck.
    if (r == -ENOTTY || r == -EOPNOTSUPP) r = 0;
    if (r < 0) {
      close(fd);
      fail(t, n, "ioctl", -r);
      return 1;
    }
    if (is_dir) return list_dir(t, n, fd);
    close(fd);
  }
  // A symlink is removed, never followed; a fifo, socket or device is never opened (an open may have
  // effects): a sealed one fails here with EPERM.
  if (!stopped(t) && unlinkat(pfd, n->name, 0) != 0 && errno != ENOENT) fail(t, n, "unlinkat", errno);
  return 1;
}

// n is settled. A directory that was listed is closed and, unless the walk stopped, removed by name
// in its parent's fd; then its parent is told, which may settle it in turn, up to the first entry.
static void settle(rm_tree *t, rm_node *n) {
  for (;;) {
    if (n->dir != NULL) {
      closedir(n->dir);
      if (!stopped(t) && unlinkat(parent_fd(t, n), n->name, AT_REMOVEDIR) != 0 && errno != ENOENT) fail(t, n, "unlinkat", errno);
    }
    rm_node *p = n->parent;
    free(n);
    if (p == NULL) {
      pthread_mutex_lock(&t->mu);
      t->done = 1;
      pthread_cond_broadcast(&t->cv);
      pthread_mutex_unlock(&t->mu);
      return;
    }
    if (__atomic_sub_fetch(&p->pending, 1, __ATOMIC_ACQ_REL) != 0) return;
    n = p;
  }
}

static void *worker(void *arg) {
  rm_tree *t = arg;
  pthread_mutex_lock(&t->mu);
  for (;;) {
    while (t->stack == NULL && !t->done) pthread_cond_wait(&t->cv, &t->mu);
    // Settled only once every entry is: nothing is left on the stack then.
    if (t->stack == NULL) break;
    rm_node *n = t->stack;
    t->stack = n->next;
    n->next = NULL;
    pthread_mutex_unlock(&t->mu);
    if (remove_entry(t, n)) settle(t, n);
    pthread_mutex_lock(&t->mu);
  }
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

void sn_remove_tree(int dfd, const char *name, unsigned threads, sn_remove_result *out) {
  memset(out, 0, sizeof *out);
  out->syscall = "";
  struct stat st;
  if (fstat(dfd, &st) != 0) {
    out->err = errno;
    out->syscall = "fstat";
    return;
  }
  size_t len = strlen(name);
  rm_node *root = calloc(1, sizeof *root + len + 1);
  if (root == NULL) {
    out->err = ENOMEM;
    out->syscall = "malloc";
    return;
  }
  root->fd = -1;
  root->nlen = root->plen = len;
  memcpy(root->name, name, len + 1);
  rm_tree t = { .dfd = dfd, .top = { st.st_dev, sn_mount_of(dfd) }, .stack = root, .out = out };
  pthread_mutex_init(&t.mu, NULL);
  pthread_cond_init(&t.cv, NULL);
  // Helpers only for a directory: this look decides nothing else (the walk looks again). They take
  // no signal (the process's handlers run on its own threads) and are joined before this returns.
  pthread_t helpers[SN_REMOVE_MAX_THREADS];
  unsigned started = 0;
  struct stat rs;
  if (threads > 1 && fstatat(dfd, name, &rs, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(rs.st_mode)) {
    pthread_attr_t attr;
    int attr_ok = pthread_attr_init(&attr) == 0;
    if (attr_ok) pthread_attr_setstacksize(&attr, HELPER_STACK);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (started + 1 < threads && started + 1 < SN_REMOVE_MAX_THREADS && pthread_create(&helpers[started], attr_ok ? &attr : NULL, worker, &t) == 0) started++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (attr_ok) pthread_attr_destroy(&attr);
  }
  worker(&t);
  for (unsigned i = 0; i < started; i++) pthread_join(helpers[i], NULL);
  pthread_mutex_destroy(&t.mu);
  pthread_cond_destroy(&t.cv);
}
