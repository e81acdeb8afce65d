// Shared pieces of the eBPF engine's C files: the program-group table, libbpf's messages captured
// for error text, coded errors, and argument checks. Built only with libbpf (SENTINEL_HAVE_LIBBPF).
#ifdef SENTINEL_HAVE_LIBBPF
#include <bpf/libbpf.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bpf-engine-internal.h"
#include "sentinel.h"

// Program groups: what the caller asks to load and attach, and the programs in each.
const char *const bpf_groups[GROUP_COUNT][3] = {
  {"exit", "sentinel_exit", NULL},
  {"syscalls", "sentinel_sys_enter", "sentinel_sys_exit"},
  {"retransmit", "sentinel_retransmit", NULL},
  {"flags", "sentinel_ioctl_enter", "sentinel_ioctl_exit"},
};

// libbpf's messages of the current open/load (warnings and info), kept for the error message.
static char libbpf_log[8192];
static size_t libbpf_log_len;

static int capture_print(enum libbpf_print_level level, const char *fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  if (libbpf_log_len >= sizeof libbpf_log - 1) return 0;
  int n = vsnprintf(libbpf_log + libbpf_log_len, sizeof libbpf_log - libbpf_log_len, fmt, args);
  if (n > 0) libbpf_log_len += (size_t)n < sizeof libbpf_log - libbpf_log_len ? (size_t)n : sizeof libbpf_log - 1 - libbpf_log_len;
  return 0;
}

// The last `libbpf:` lines of the captured log, joined by "; " (the verifier dump is skipped).
static void log_summary(char *out, size_t cap) {
  out[0] = '\0';
  const char *lines[4] = {0};
  size_t lens[4] = {0};
  int n = 0;
  const char *p = libbpf_log;
  while (*p != '\0') {
    const char *nl = strchr(p, '\n');
    size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
    if (len > 8 && strncmp(p, "libbpf: ", 8) == 0) {
      if (n == 4) {
        memmove(lines, lines + 1, 3 * sizeof lines[0]);
        memmove(lens, lens + 1, 3 * sizeof lens[0]);
        n = 3;
      }
      lines[n] = p + 8;
      lens[n] = len - 8;
      n++;
    }
    if (nl == NULL) break;
    p = nl + 1;
  }
  size_t used = 0;
  for (int i = 0; i < n && used + 3 < cap; i++) {
    int w = snprintf(out + used, cap - used, "%s%.*s", i == 0 ? "" : "; ", (int)lens[i], lines[i]);
    if (w < 0) break;
    used += (size_t)w < cap - used ? (size_t)w : cap - used - 1;
  }
}

// Throws an Error with code = errno name, errno, syscall = the step, and libbpf's own words.
void bpf_throw(napi_env env, int e, const char *step, const char *what) {
  char summary[1024];
  log_summary(summary, sizeof summary);
  char msg[1600];
  const char *name = sn_errno_name(e);
  snprintf(msg, sizeof msg, "%s: %s, %s %s%s%s", name != NULL ? name : "EUNKNOWN", strerror(e), step, what,
           summary[0] != '\0' ? " (libbpf: " : "", summary[0] != '\0' ? summary : "");
  if (summary[0] != '\0') strncat(msg, ")", sizeof msg - strlen(msg) - 1);
  napi_value code, message, err, v;
  napi_create_string_utf8(env, name != NULL ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &err);
  napi_create_int32(env, -e, &v);
  napi_set_named_property(env, err, "errno", v);
  napi_create_string_utf8(env, step, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "syscall", v);
  napi_throw(env, err);
}

engine_t *bpf_unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  engine_t *g = NULL;
  if (napi_unwrap(env, self, (void **)&g) != napi_ok || g == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_THIS", "not a BpfEngine");
    return NULL;
  }
  if (g->closed) {
    napi_throw_error(env, "ERR_CLOSED", "the BPF engine is closed");
    return NULL;
  }
  return g;
}

// The engine's integer arguments are read as the addon's others are (sn_get_uint in common.c).
int bpf_get_u32(napi_env env, napi_value v, uint32_t *out, const char *what) {
  return sn_get_u32(env, v, out, what);
}

// Up to 2^53-1: every integer above it is not exactly a double's value, so it could not be what was meant.
int bpf_get_u64(napi_env env, napi_value v, uint64_t *out, const char *what) {
  return sn_get_uint(env, v, 9007199254740991.0, "2^53-1", out, what);
}

int bpf_group_index(napi_env env, napi_value v) {
  char name[32];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, name, sizeof name, &len) == napi_ok) {
    for (size_t i = 0; i < GROUP_COUNT; i++) if (strcmp(name, bpf_groups[i][0]) == 0) return (int)i;
  }
  napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "group must be one of exit, syscalls, retransmit, flags");
  return -1;
}


libbpf_print_fn_t bpf_log_begin(void) {
  libbpf_log_len = 0;
  libbpf_log[0] = '\0';
  return libbpf_set_print(capture_print);
}

void bpf_log_end(libbpf_print_fn_t previous) {
  libbpf_set_print(previous);
}

#endif
