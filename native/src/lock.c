// The kernel lock for the vault (docs/VAULT.md#locking): Node has no flock, and a lock file by
// name would outlive a holder killed by SIGKILL.
#include "sentinel.h"

#include <errno.h>
#include <sys/file.h>

// flockFd(fd, op): boolean — flock(2) with LOCK_NB: op 1 shared, 2 exclusive, 8 unlock; false when
// another open file description holds a conflicting lock. The lock belongs to the open file
// description and dies with it: a holder killed by SIGKILL releases it at once.
static napi_value flock_fd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  uint32_t op = 0;
  if (argc < 2 || !sn_get_fd(env, argv[0], &fd, "fd") || !sn_get_u32(env, argv[1], &op, "op")) return NULL;
  if (op != LOCK_SH && op != LOCK_EX && op != LOCK_UN) { napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "op must be 1 (shared), 2 (exclusive) or 8 (unlock)"); return NULL; }
  int r;
  do r = flock(fd, (int)op | LOCK_NB); while (r != 0 && errno == EINTR);
  napi_value out;
  if (r != 0 && errno != EWOULDBLOCK) { sn_throw_sys(env, errno, "flock", "(fd)"); return NULL; }
  napi_get_boolean(env, r == 0, &out);
  return out;
}

napi_status sn_register_lock(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
    SN_FN("flockFd", flock_fd),
  };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
