// The addon's entry point: each concern registers its own exports (native/README.md#files). A new
// native file adds one line to binding.gyp and one entry here.
#include "sentinel.h"

typedef napi_status (*sn_register_fn)(napi_env env, napi_value exports);

static const sn_register_fn PARTS[] = {
  sn_register_jobs,
  sn_register_flags,
  sn_register_seal_bits,
  sn_register_inspect,
  sn_register_inspect_gate,
  sn_register_stage,
  sn_register_cold_copy,
  sn_register_notify,
  sn_register_notify_listen,
  sn_register_bpf,
  sn_register_dir_fd,
  sn_register_lock,
  sn_register_sync_fs,
  sn_register_xattr,
  sn_register_remove_tree,
  sn_register_systemd_bus,
  sn_register_systemd_unit,
  sn_register_manifest_scan,
  sn_register_verify_tree,
  sn_register_pidfd_signal,
  sn_register_digest,
  sn_register_ed25519,
};

static napi_value init(napi_env env, napi_value exports) {
  for (size_t i = 0; i < sizeof PARTS / sizeof PARTS[0]; i++) {
    if (PARTS[i](env, exports) != napi_ok) {
      napi_throw_error(env, "ERR_SENTINEL_NATIVE_INIT", "sentinel_native: registering the exports failed");
      return NULL;
    }
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
