// What remove-tree.c (the binding, its job and test hook) and remove-walk.c (the walk) share.
#ifndef SENTINEL_REMOVE_TREE_H
#define SENTINEL_REMOVE_TREE_H

#include "sentinel.h"

#include <sys/stat.h>

// Most threads one removal uses (its pool thread and the helpers it starts).
#define SN_REMOVE_MAX_THREADS 16

// An open directory's device and mount id (0 where statx does not report it).
typedef struct {
  dev_t dev;
  uint64_t mnt;
} sn_remove_where;

// The mount id of an open fd (0 when the kernel does not report it).
uint64_t sn_mount_of(int fd);
// Opens `name` in dfd as what fstatat found (st) and checks it is that inode on the parent's device
// and mount: the fd, -ESTALE when it was swapped in between, -EXDEV when it is another mount, or
// -errno of the open. Fills *out and *nlink.
int sn_open_same(int dfd, const char *name, int flags, const struct stat *st, const sn_remove_where *parent, sn_remove_where *out, nlink_t *nlink);

// Where a removal stopped: errno (0: the whole tree is gone), the syscall and the entry's path
// relative to the first dirfd.
typedef struct {
  int err;
  const char *syscall;
  char path[PATH_BUF];
} sn_remove_result;

// Removes `name` in dfd (a file, symlink or whole tree) through fds with up to `threads` threads
// (this one and threads - 1 it starts; fewer if they cannot be started). Missing is fine. Fills *out.
void sn_remove_tree(int dfd, const char *name, unsigned threads, sn_remove_result *out);

// Test hook points (remove-tree.c): an entry looked at and about to be opened, a directory opened
// and its flags cleared, about to be listed.
enum { SN_REMOVE_GATE_OPEN = 0, SN_REMOVE_GATE_LIST = 1 };
// Nonzero when a test armed the gate (cheap: the walk builds a path only then).
int sn_remove_gate_armed(void);
// Waits there when (point, rel) is where a test armed the gate.
void sn_remove_gate(int point, const char *rel);

#endif
