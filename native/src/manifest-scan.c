// The entries of a common manifest read in one pass over its bytes (src/core/manifest-plain.ts):
// the text the canonical encoder writes for paths and symlink targets of printable ASCII without a
// quote or backslash, and what the rules ask of each entry's own text. It only ever accepts: for
// anything else it answers null and the strict reader takes the whole text (docs/FORMAT.md).
#include "manifest-scan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

// The rules the scan enforces itself (src/core/limits.ts, docs/FORMAT.md).
#define MAX_NAME 255
#define MAX_TARGET 4095
#define MAX_MODE 0777
#define MAX_SAFE 9007199254740991.0
#define HEX_SHA256 64

#define LOW31 2147483648.0

// The fixed text `s` at the cursor, consumed.
static int lit(cursor *c, const char *s, size_t len) {
  if (c->n - c->p < len || memcmp(c->b + c->p, s, len) != 0) return 0;
  c->p += len;
  return 1;
}
#define LIT(c, s) lit((c), (s), sizeof(s) - 1)

// An integer as String(n) writes it (0, or digits without a leading zero) of at most `max`. Each
// partial value is at most max <= 2^53 - 1, so the double is exact.
static int integer(cursor *c, double max, double *out) {
  if (c->p >= c->n) return 0;
  unsigned char d = c->b[c->p];
  if (d == '0') {
    c->p++;
    *out = 0;
    return 1;
  }
  if (d < '1' || d > '9') return 0;
  double v = 0;
  while (c->p < c->n && (d = c->b[c->p]) >= '0' && d <= '9') {
    v = v * 10 + (d - '0');
    if (v > max) return 0;
    c->p++;
  }
  *out = v;
  return 1;
}

// What each byte may be: a symlink target's byte (printable ASCII other than '"' and '\\'), a name's
// (the same without '/'), a lowercase hex digit. One table lookup per byte.
enum { C_TARGET = 1, C_NAME = 2, C_HEX = 4 };
#define CLASS(ch)                                                                                   \
  ((((ch) >= 0x20 && (ch) <= 0x7e && (ch) != '"' && (ch) != '\\') ? C_TARGET : 0) |              \
   (((ch) >= 0x20 && (ch) <= 0x7e && (ch) != '"' && (ch) != '\\' && (ch) != '/') ? C_NAME : 0) | \
   ((((ch) >= '0' && (ch) <= '9') || ((ch) >= 'a' && (ch) <= 'f')) ? C_HEX : 0))
#define C4(i) CLASS(i), CLASS((i) + 1), CLASS((i) + 2), CLASS((i) + 3)
#define C16(i) C4(i), C4((i) + 4), C4((i) + 8), C4((i) + 12)
#define C64(i) C16(i), C16((i) + 16), C16((i) + 32), C16((i) + 48)
static const unsigned char classes[256] = { C64(0), C64(64), C64(128), C64(192) };

// A path up to its closing quote (not consumed): components of name bytes, none empty, "." or
// "..", none longer than NAME_MAX.
static int path(cursor *c) {
  const unsigned char *b = c->b;
  size_t n = c->n;
  size_t p = c->p;
  for (;;) {
    size_t name = p;
    while (p < n && (classes[b[p]] & C_NAME)) p++;
    size_t len = p - name;
    if (p >= n || len == 0 || len > MAX_NAME) return 0;
    if (b[name] == '.' && (len == 1 || (len == 2 && b[name + 1] == '.'))) return 0;
    if (b[p] == '"') {
      c->p = p;
      return 1;
    }
    if (b[p] != '/') return 0;
    p++;
  }
}

// A symlink target up to its closing quote (not consumed): target bytes, not empty, not absolute,
// at most the target limit.
static int target(cursor *c) {
  size_t from = c->p;
  if (c->p < c->n && c->b[c->p] == '/') return 0;
  while (c->p < c->n && (classes[c->b[c->p]] & C_TARGET)) c->p++;
  return c->p < c->n && c->b[c->p] == '"' && c->p > from && c->p - from <= MAX_TARGET;
}

// 64 lowercase hex digits (the next byte must then be the closing quote: the caller reads it).
static int sha256_hex(cursor *c) {
  if (c->n - c->p < HEX_SHA256) return 0;
  const unsigned char *h = c->b + c->p;
  for (size_t i = 0; i < HEX_SHA256; i++) {
    if (!(classes[h[i]] & C_HEX)) return 0;
  }
  c->p += HEX_SHA256;
  return 1;
}

// Whether bytes [a, a_end) sort strictly before [b, b_end) (bytewise; a prefix first).
int sn_manifest_before(const unsigned char *base, size_t a, size_t a_end, size_t b, size_t b_end) {
  size_t la = a_end - a;
  size_t lb = b_end - b;
  int r = memcmp(base + a, base + b, la < lb ? la : lb);
  return r < 0 || (r == 0 && la < lb);
}

int sn_manifest_entry(cursor *c, int32_t *f) {
  double mode = 0;
  double a = 0;
  double b = 0;
  double kind;
  size_t ps;
  size_t pe;
  if (LIT(c, "{\"mode\":")) {
    if (!integer(c, MAX_MODE, &mode) || !LIT(c, ",\"path\":\"")) return 0;
    ps = c->p;
    if (!path(c)) return 0;
    pe = c->p;
    if (LIT(c, "\",\"type\":\"dir\"}")) {
      kind = KIND_DIR;
    } else {
      if (!LIT(c, "\",\"sha256\":\"")) return 0;
      a = (double)c->p;
      if (!sha256_hex(c) || !LIT(c, "\",\"size\":") || !integer(c, MAX_SAFE, &b) || !LIT(c, ",\"type\":\"file\"}")) return 0;
      kind = KIND_FILE;
    }
  } else if (LIT(c, "{\"path\":\"")) {
    ps = c->p;
    if (!path(c)) return 0;
    pe = c->p;
    if (!LIT(c, "\",\"target\":\"")) return 0;
    a = (double)c->p;
    if (!target(c)) return 0;
    b = (double)c->p;
    if (!LIT(c, "\",\"type\":\"symlink\"}")) return 0;
    kind = KIND_SYMLINK;
  } else {
    return 0;
  }
  f[0] = (int32_t)kind;
  f[1] = (int32_t)mode;
  f[2] = (int32_t)ps;
  f[3] = (int32_t)pe;
  f[4] = (int32_t)a;
  if (kind == KIND_FILE) {
    double hi = (double)(uint64_t)(b / LOW31);
    f[5] = (int32_t)(b - hi * LOW31);
    f[6] = (int32_t)hi;
  } else {
    f[5] = (int32_t)b;
    f[6] = 0;
  }
  if (LIT(c, ",")) return 1;
  return LIT(c, "]") ? 2 : 0;
}

// scanManifestEntries(bytes: Uint8Array, start: number): Int32Array | null — the entries from
// `start` (the first '{' after `"entries":[`) through the ']' that closes them, FIELDS integers each
// in manifest order, then the offset after that ']'; null when they are not in the plain canonical
// form, break a rule the scan checks or are not in strictly increasing path order, or when bytes
// hold 2^31 or more (the offsets would not fit; a manifest is at most 64 MiB).
static napi_value scan_manifest_entries(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_value result = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  size_t len = 0;
  const unsigned char *data = NULL;
  if (argc < 2 || !sn_uint8_array(env, argv[0], &data, &len)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "scanManifestEntries(bytes: Uint8Array, start: number): bytes must be a Uint8Array");
    return NULL;
  }
  uint64_t start = 0;
  if (!sn_get_uint(env, argv[1], (double)len, "the length of bytes", &start, "start")) return NULL;
  if (napi_get_null(env, &result) != napi_ok) return NULL;
  if (len > INT32_MAX) return result;
  cursor c = { data, len, (size_t)start };
  size_t cap = 1024;
  size_t count = 0;
  int32_t *out = malloc(cap * FIELDS * sizeof *out);
  if (out == NULL) {
    sn_throw_sys(env, ENOMEM, "malloc", "");
    return NULL;
  }
  int more = 1;
  while (more == 1) {
    if (count == cap) {
      int32_t *grown = realloc(out, 2 * cap * FIELDS * sizeof *out);
      if (grown == NULL) {
        free(out);
        sn_throw_sys(env, ENOMEM, "realloc", "");
        return NULL;
      }
      out = grown;
      cap *= 2;
    }
    int32_t *f = out + count * FIELDS;
    more = sn_manifest_entry(&c, f);
    if (more == 0) break;
    // Strictly after the previous path: sorted, and no duplicate.
    if (count > 0) {
      const int32_t *g = f - FIELDS;
      if (!sn_manifest_before(c.b, (size_t)g[2], (size_t)g[3], (size_t)f[2], (size_t)f[3])) {
        more = 0;
        break;
      }
    }
    count++;
  }
  if (more == 0) {
    free(out);
    return result;
  }
  size_t n = count * FIELDS + 1;
  void *ab_data = NULL;
  napi_value ab;
  if (napi_create_arraybuffer(env, n * sizeof(int32_t), &ab_data, &ab) != napi_ok) {
    free(out);
    return NULL;
  }
  memcpy(ab_data, out, count * FIELDS * sizeof(int32_t));
  ((int32_t *)ab_data)[n - 1] = (int32_t)c.p;
  free(out);
  if (napi_create_typedarray(env, napi_int32_array, n, ab, 0, &result) != napi_ok) return NULL;
  return result;
}

napi_status sn_register_manifest_scan(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("scanManifestEntries", scan_manifest_entries) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
