// `vault verify`'s common answer, an intact tree, from the signed manifest's bytes and the tree
// pass's records (inspect-tree.h), compared here entry by entry: no entry object, path or digest
// string is built in JavaScript (src/adapters/tree-inspector-native.ts). It only ever accepts: the
// manifest must be one the one-pass reader (src/core/manifest-plain.ts, with this addon's scan)
// accepts entry by entry, and the tree must be what core's checkTree finds nothing wrong with,
// property by property as src/adapters/tree-intact.ts reads the records; for anything else (a
// symlink listed, a listing in another order, any difference) the answer is null and the caller
// takes the full route, which parses the manifest, compares every entry and names every problem.
#include "inspect-tree.h"
#include "manifest-scan.h"

#include <errno.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>

// Byte offsets of a record's fields (inspect-tree.h's layout; src/adapters/tree-records.ts WORD, F64).
enum { R_TYPE = 0, R_MODE = 4, R_SIZE = 8, R_SEAL = 16, R_HASH_ERRNO = 20, R_HASHED = 24, R_SHA256 = 32, R_LINKS = 64, R_XATTRS = 68, R_UID = 72, R_GID = 76, R_LISTED = 80 };
#define LOW31 2147483648.0

static int32_t i32_at(const unsigned char *p) {
  int32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static uint32_t u32_at(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static double f64_at(const unsigned char *p) {
  double v;
  memcpy(&v, p, sizeof v);
  return v;
}

// The limits of src/core/limits.ts the one-pass reader applies to the entries.
typedef struct {
  double max_path, max_file, max_total, max_entries;
} scan_limits;

// An entry already read: its path's offsets and its kind, for the parent look-up.
typedef struct {
  uint32_t ps, pe;
  int32_t kind;
} seen_entry;

// Whether bytes [a, a_end) are the path of a directory among the n entries read so far (sorted).
static int is_listed_dir(const unsigned char *b, const seen_entry *s, size_t n, size_t a, size_t a_end) {
  size_t lo = 0;
  size_t hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (sn_manifest_before(b, s[mid].ps, s[mid].pe, a, a_end)) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && s[lo].pe - s[lo].ps == a_end - a && memcmp(b + s[lo].ps, b + a, a_end - a) == 0 && s[lo].kind == KIND_DIR;
}

// Whether the 64 bytes at hex are the 32 bytes at raw written in lowercase hex (the scan accepts no
// other form). The raw bytes are written out and compared, with no branch on a digit's value: decoding
// the digits with one ('0'-'9' or 'a'-'f') mispredicted about half of them, some 4 ms of the main
// thread's CPU on 10,000 files, after the pass, while the other core had nothing to do.
static int digest_equals(const unsigned char *hex, const unsigned char *raw) {
  static const char digits[] = "0123456789abcdef";
  unsigned char want[64];
  for (size_t i = 0; i < 32; i++) {
    want[2 * i] = (unsigned char)digits[raw[i] >> 4];
    want[2 * i + 1] = (unsigned char)digits[raw[i] & 15];
  }
  return memcmp(want, hex, sizeof want) == 0;
}

// The record of a file or directory entry f against the manifest: checkTree's checks of that type.
static int record_intact(const unsigned char *m, const int32_t *f, const unsigned char *rec, uint32_t uid, uint32_t gid, double size) {
  if (i32_at(rec + R_TYPE) != f[0] || i32_at(rec + R_XATTRS) != 0 || u32_at(rec + R_UID) != uid || u32_at(rec + R_GID) != gid) return 0;
  int32_t seal = i32_at(rec + R_SEAL);
  if (u32_at(rec + R_MODE) != (uint32_t)f[1] || seal < 0 || (seal & FS_IMMUTABLE_FL) == 0) return 0;
  // A directory the pass could not list (or saw replaced) is a problem of its own.
  if (f[0] == KIND_DIR) return i32_at(rec + R_LISTED) == 0;
  return f64_at(rec + R_SIZE) == size && u32_at(rec + R_LINKS) == 1 && i32_at(rec + R_HASH_ERRNO) == 0 && f64_at(rec + R_HASHED) == size &&
         digest_equals(m + f[4], rec + R_SHA256);
}

// 1 and out = {end of created, offset after the entries' ']', entries, files checked, their bytes}
// when the manifest's head and entries are plain and valid and the tree intact; 0 otherwise; -1
// out of memory.
static int compare(const unsigned char *m, size_t mlen, const unsigned char *r, size_t rlen, const scan_limits *lim, double out[5]) {
  // The one-pass reader reads only ASCII text without a backslash: the high bits ORed a word at a
  // time, the backslash found by memchr (a byte-by-byte loop with both tests cost 5 instructions a byte).
  uint64_t high = 0;
  size_t i = 0;
  for (; i + 8 <= mlen; i += 8) {
    uint64_t w;
    memcpy(&w, m + i, sizeof w);
    high |= w;
  }
  for (; i < mlen; i++) high |= m[i];
  if ((high & 0x8080808080808080ull) != 0 || (mlen > 0 && memchr(m, '\\', mlen) != NULL)) return 0;
  static const char head[] = "{\"created\":\"";
  static const char open[] = "\",\"entries\":[";
  if (mlen < sizeof head - 1 || memcmp(m, head, sizeof head - 1) != 0) return 0;
  const unsigned char *quote = memchr(m + sizeof head - 1, '"', mlen - (sizeof head - 1));
  if (quote == NULL) return 0;
  size_t created_end = (size_t)(quote - m);
  if (mlen - created_end < sizeof open - 1 || memcmp(quote, open, sizeof open - 1) != 0) return 0;
  cursor c = { m, mlen, created_end + sizeof open - 1 };

  // The records: every entry found, the root listed, its owner every entry's.
  if (rlen < TREE_HEADER) return 0;
  uint32_t rcount = u32_at(r);
  uint32_t uid = u32_at(r + 8);
  uint32_t gid = u32_at(r + 12);
  size_t at = TREE_HEADER + (size_t)rcount * TREE_RECORD;
  size_t pbytes = u32_at(r + 16);
  if (i32_at(r + 4) != 0 || at > rlen || pbytes > rlen - at) return 0;
  size_t pp = at;
  size_t pend = at + pbytes;

  size_t count = 0;
  double total = 0;
  double files = 0;
  double bytes = 0;
  if (c.p < mlen && m[c.p] == ']') {
    c.p++;
  } else {
    seen_entry *seen = malloc((size_t)rcount * sizeof *seen + 1);
    if (seen == NULL) return -1;
    // The last parent looked up (siblings are adjacent) and whether it is a listed directory.
    size_t parent = 0, parent_end = 0;
    int parent_ok = 0;
    int ok = 0;
    for (;;) {
      int32_t f[FIELDS];
      int more = sn_manifest_entry(&c, f);
      if (more == 0 || f[0] == KIND_SYMLINK || count >= rcount) break;
      size_t ps = (size_t)f[2];
      size_t pe = (size_t)f[3];
      if (count > 0 && !sn_manifest_before(m, seen[count - 1].ps, seen[count - 1].pe, ps, pe)) break;
      if ((double)(pe - ps) > lim->max_path) break;
      double size = 0;
      if (f[0] == KIND_FILE) {
        size = (double)f[6] * LOW31 + (double)f[5];
        if (size > lim->max_file) break;
        total += size;
      }
      const unsigned char *slash = memrchr(m + ps, '/', pe - ps);
      if (slash != NULL) {
        size_t cut = (size_t)(slash - m);
        if (cut - ps != parent_end - parent || memcmp(m + parent, m + ps, cut - ps) != 0) {
          parent = ps;
          parent_end = cut;
          parent_ok = is_listed_dir(m, seen, count, ps, cut);
        }
        if (!parent_ok) break;
      }
      // The record of the same index: the same path (the listing in the manifest's order), intact.
      const unsigned char *nul = memchr(r + pp, 0, pend - pp);
      if (nul == NULL || (size_t)(nul - (r + pp)) != pe - ps || memcmp(r + pp, m + ps, pe - ps) != 0) break;
      pp = (size_t)(nul - r) + 1;
      if (!record_intact(m, f, r + TREE_HEADER + count * TREE_RECORD, uid, gid, size)) break;
      if (f[0] == KIND_FILE) {
        files += 1;
        bytes += size;
      }
      seen[count].ps = (uint32_t)ps;
      seen[count].pe = (uint32_t)pe;
      seen[count].kind = f[0];
      count++;
      if (more == 2) {
        ok = 1;
        break;
      }
    }
    free(seen);
    if (!ok || pp != pend) return 0;
  }
  if (count != rcount || (double)count > lim->max_entries || total > lim->max_total) return 0;
  out[0] = (double)created_end;
  out[1] = (double)c.p;
  out[2] = (double)count;
  out[3] = files;
  out[4] = bytes;
  return 1;
}

// verifyManifestTree(manifest: Uint8Array, records: Uint8Array, maxPathBytes, maxFileBytes,
// maxTotalBytes, maxEntries): Float64Array | null — [end of created, offset after the entries'
// ']', entries, files checked, their bytes] when the manifest's entries are plain and valid and the
// tree pass's records (inspectTreeAsync's buffer) show the tree intact; null otherwise. The caller
// still checks the manifest's head and tail values (src/core/manifest-plain.ts).
static napi_value verify_manifest_tree(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_value result = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  const unsigned char *m = NULL;
  const unsigned char *r = NULL;
  size_t mlen = 0;
  size_t rlen = 0;
  double l[4];
  int args_ok = argc >= 6 && sn_uint8_array(env, argv[0], &m, &mlen) && sn_uint8_array(env, argv[1], &r, &rlen);
  for (size_t i = 0; args_ok && i < 4; i++) args_ok = napi_get_value_double(env, argv[2 + i], &l[i]) == napi_ok && l[i] >= 0;
  if (!args_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "verifyManifestTree(manifest: Uint8Array, records: Uint8Array, maxPathBytes, maxFileBytes, maxTotalBytes, maxEntries: numbers >= 0)");
    return NULL;
  }
  if (napi_get_null(env, &result) != napi_ok) return NULL;
  // Offsets are handed back as int32 by the scan.
  if (mlen > INT32_MAX) return result;
  scan_limits lim = { l[0], l[1], l[2], l[3] };
  double out[5];
  int got = compare(m, mlen, r, rlen, &lim, out);
  if (got < 0) {
    sn_throw_sys(env, ENOMEM, "malloc", "");
    return NULL;
  }
  if (got == 0) return result;
  void *data = NULL;
  napi_value ab;
  if (napi_create_arraybuffer(env, sizeof out, &data, &ab) != napi_ok) return NULL;
  memcpy(data, out, sizeof out);
  if (napi_create_typedarray(env, napi_float64_array, 5, ab, 0, &result) != napi_ok) return NULL;
  return result;
}

napi_status sn_register_verify_tree(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("verifyManifestTree", verify_manifest_tree) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
