// The common manifest's entry scanner (manifest-scan.c), shared with verify-tree.c, which reads
// the same entries to compare them with the tree pass's records. Not part of the addon's API.
#ifndef SENTINEL_MANIFEST_SCAN_H
#define SENTINEL_MANIFEST_SCAN_H

#include "sentinel.h"

#include <stddef.h>
#include <stdint.h>

// What each entry gives, as 32-bit integers (JavaScript reads them without allocating): kind, mode,
// path start and end, then for a file the digest's start and the size's low 31 bits and the rest,
// for a symlink the target's start and end and 0 (byte offsets into the manifest, below 2^31).
#define FIELDS 7
enum { KIND_FILE = 1, KIND_DIR = 2, KIND_SYMLINK = 3 };

typedef struct {
  const unsigned char *b;
  size_t n;
  size_t p;
} cursor;

// One entry and the ',' or ']' after it, into f[0..FIELDS); 1 more follow, 2 the last one, 0 not
// plain (the path's components, the digest's 64 lowercase hex digits, the integers' forms and the
// mode's range are checked; a size is at most 2^53 - 1).
int sn_manifest_entry(cursor *c, int32_t *f);
// Whether bytes [a, a_end) of base sort strictly before [b, b_end) (bytewise; a prefix first).
int sn_manifest_before(const unsigned char *base, size_t a, size_t a_end, size_t b, size_t b_end);

#endif
