// verify's tree pass through directory descriptors (inspect-tree.c runs it, inspect-list.c lists):
// what its files share. Not part of the addon's API.
#ifndef SENTINEL_INSPECT_TREE_H
#define SENTINEL_INSPECT_TREE_H

#include "sentinel.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <sys/stat.h>

// One record per entry (little-endian), the layout of inspect.c's records and two fields more:
// i32 type (1 file, 2 dir, 3 symlink, 4 other, -errno) | u32 mode & 07777 | f64 size | i32 seal
// bits or -errno | i32 hash errno (0 ok, -1 not hashed) | f64 bytes hashed | 32 bytes SHA-256 |
// u32 link count | i32 untolerated xattrs or -errno | u32 uid | u32 gid | i32 a directory's listing:
// 0 listed, else the errno (ESTALE: replaced while the pass read it) | i32 a symlink's target: its
// offset in the targets + 1, or -errno, or 0. adapters/tree-walk-native.ts reads this layout.
#define TREE_RECORD 88
#define TREE_HEADER 24
#define NO_PARENT UINT32_MAX
#define STATX_WANT (STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_NLINK | STATX_UID | STATX_GID | STATX_INO)

typedef struct {
  uint32_t parent;  // index of the directory holding it, NO_PARENT for the root
  uint32_t path;    // offset of its relative path in paths
  uint32_t name;    // offset of its last component in paths
  int changed;      // a directory the workers could not reopen as listed: the errno
  uint32_t dev_major, dev_minor;
  uint64_t ino;     // a listed directory's inode (0: not listed)
} tree_entry;

typedef struct {
  char *root;
  int rootfd;
  int root_errno;
  uint32_t root_uid, root_gid;
  tree_entry root_id;  // the root's device and inode as opened, looked up again at the end
  tree_entry *ents;
  unsigned char *out;  // one TREE_RECORD per entry, grown with ents while listing
  uint32_t count, cap;
  char *paths;         // "relative/path\0" per entry
  size_t plen, pcap;
  char *targets;       // "target\0" per symlink read
  size_t tlen, tcap;
  uint32_t *files;     // entries the workers open, grouped by directory
  uint32_t nfiles, fcap;
  uint32_t next;       // the next of files to claim
  int fail;            // an errno that ends the pass (ENOMEM while listing)
  int list_claimed, listed, started, finished, recheck_claimed;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  double hash_any_max;
  int64_t *progress;
  napi_ref progress_ref;
  sn_job job;
} tree_job;

static inline int32_t sn_get_i32(const unsigned char *p) { return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24); }
static inline unsigned char *tree_rec(tree_job *j, uint32_t i) { return j->out + (size_t)i * TREE_RECORD; }
static inline const char *tree_path(const tree_job *j, uint32_t i) { return j->paths + j->ents[i].path; }
static inline const char *tree_name(const tree_job *j, uint32_t i) { return j->paths + j->ents[i].name; }

// inspect-list.c: lists the tree below j->rootfd into ents/paths/files and records every entry the
// workers do not open (directories, symlinks, others). 0, or an errno that ends the pass.
int sn_tree_list(tree_job *j);
// inspect-list.c: an entry's record from statx of `name` in dirfd, not following it (and, for a
// symlink, its target read with readlinkat).
void sn_tree_record_at(tree_job *j, uint32_t i, int dirfd, const char *name);
// inspect-list.c: type, mode, size, links, owner of a statx into a record; the type (1-4).
int sn_tree_put_stat(unsigned char *rec, const struct statx *sx);


#endif
