// libsystemd's sd-bus functions for systemd-bus.c and systemd-unit.c, opened with dlopen on the first restart instead of
// linked: a host without libsystemd.so.0 (or with one older than 240) loses the D-Bus restart only,
// never the rest of the addon (its fd-based vault paths).
#ifndef SENTINEL_SYSTEMD_LIB_H
#define SENTINEL_SYSTEMD_LIB_H
#include <systemd/sd-bus.h>

#define SD_FUNCS(X) X(sd_bus_new) X(sd_bus_set_address) X(sd_bus_set_bus_client) X(sd_bus_start) X(sd_bus_is_ready) \
  X(sd_bus_process) X(sd_bus_wait) X(sd_bus_get_fd) X(sd_bus_close) X(sd_bus_unref) X(sd_bus_error_is_set)        \
  X(sd_bus_error_free) X(sd_bus_message_new_method_call) X(sd_bus_message_append) X(sd_bus_call)                 \
  X(sd_bus_message_read) X(sd_bus_message_unref) X(sd_bus_message_enter_container) X(sd_bus_message_exit_container)    \
  X(sd_bus_message_read_array) X(sd_bus_message_is_signal) X(sd_bus_message_get_path) X(sd_bus_path_encode) \
  X(sd_bus_message_skip)
#define SD_DECLARE(f) __typeof__(f) *f;
typedef struct { SD_FUNCS(SD_DECLARE) } sn_sd_funcs;

// The functions, filled by the first sn_sd_loaded() that succeeds; read only after it returned NULL.
extern sn_sd_funcs sd;
// NULL once libsystemd's functions are in `sd` (the first call loads them, once per process, from
// any thread), else why not (dlerror's text, or the function it lacks).
const char *sn_sd_loaded(void);

#endif
