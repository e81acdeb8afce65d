// Test hook for verify's tree pass: holds the pass at one directory so a test can swap it for a
// symlink at a known point (test/vault/verify-swap.test.ts). Set from JS only, for one pass.
#include "sentinel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char gate_dir[PATH_BUF];
static char gate_file[PATH_BUF];
static int gate_armed;

void sn_gate_wait(const char *file) {
  char reached[PATH_BUF + 16];
  snprintf(reached, sizeof reached, "%s.reached", file);
  int fd = open(reached, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) close(fd);
  for (int i = 0; i < 10000 && access(file, F_OK) != 0; i++) {
    struct timespec ms = { 0, 1000000 };
    nanosleep(&ms, NULL);
  }
}

void sn_inspect_gate(const char *rel) {
  if (!__atomic_load_n(&gate_armed, __ATOMIC_ACQUIRE) || strcmp(rel, gate_dir) != 0) return;
  if (!__atomic_exchange_n(&gate_armed, 0, __ATOMIC_ACQ_REL)) return;
  sn_gate_wait(gate_file);
}

// _inspectGate(dir, file): the next tree pass, once it has listed directory `dir` (relative to its
// root) and before it opens any file in it, or with `dir` ".", once it has read every file and
// before it looks each directory up again, creates `file`.reached and waits until `file` exists.
static napi_value inspect_gate(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || !sn_get_string(env, argv[0], gate_dir, sizeof gate_dir, "dir") || !sn_get_string(env, argv[1], gate_file, sizeof gate_file, "file")) return NULL;
  __atomic_store_n(&gate_armed, 1, __ATOMIC_RELEASE);
  return NULL;
}

napi_status sn_register_inspect_gate(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("_inspectGate", inspect_gate) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
