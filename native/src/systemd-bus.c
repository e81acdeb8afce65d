// restartUnitAsync: asks systemd's manager for a restart job over D-Bus (sd-bus from libsystemd), on
// one libuv pool thread, instead of spawning `systemctl`: no process to start while the backend
// starts (docs/EBPF.md#the-restart-job-over-d-bus). As systemctl does as root, it talks to systemd's
// private socket, else to the system bus, one connection per call (systemd-conn.c). Compiled in only
// with libsystemd-dev's headers; libsystemd itself is opened on the first call (systemd-lib.c).
// Without the headers the addon exports `systemdBusSupport` with the reason and no `restartUnitAsync`.
#include "sentinel.h"

#ifndef SENTINEL_HAVE_LIBSYSTEMD

napi_status sn_register_systemd_bus(napi_env env, napi_value exports) {
  napi_value why;
  napi_status s = napi_create_string_utf8(env, "the native addon was built without libsystemd-dev (sd-bus)", NAPI_AUTO_LENGTH, &why);
  if (s != napi_ok) return s;
  return napi_set_named_property(env, exports, "systemdBusSupport", why);
}

#else

#include "systemd-conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define UNIT_BUF 512

typedef struct {
  char method[16];  // RestartUnit | TryRestartUnit
  char mode[16];    // fail | replace
  char unit[UNIT_BUF];
  uint64_t timeout_usec;
  const char *bus;     // "private" | "system": the connection the call went over
  char *job;           // the job's object path (malloc'd), on success
  int err;             // positive errno, 0 on success
  const char *syscall; // the step that failed
  int system_err;      // when the system bus was tried after the private socket failed: its errno and step
  const char *system_syscall;
  char *dbus_name;     // the D-Bus error's name and message (malloc'd), when the call returned one
  char *dbus_message;
  int sent;            // the failure came in sd_bus_call: the method call may have reached systemd
  sn_job work;
} bus_call;

static void bus_call_free(napi_env env, void *data) {
  (void)env;
  bus_call *b = data;
  free(b->job);
  free(b->dbus_name);
  free(b->dbus_message);
  free(b);
}

// Keeps a copy of the D-Bus error's name and message (a failed copy leaves it NULL: the JS side then
// treats the failure as one of the transport and falls back to systemctl).
static void keep_dbus_error(bus_call *b, const sd_bus_error *e) {
  if (!sd.sd_bus_error_is_set(e)) return;
  b->dbus_name = strdup(e->name);
  if (e->message != NULL) b->dbus_message = strdup(e->message);
}

// The call on a ready connection, bounded by what is left until `deadline`; fills b (job or error).
static void call_manager(bus_call *b, sd_bus *bus, uint64_t deadline) {
  uint64_t now = sn_now_usec();
  if (now >= deadline) { b->err = ETIMEDOUT; b->syscall = "sd_bus_call"; return; }
  sd_bus_message *m = NULL, *reply = NULL;
  sd_bus_error error = SD_BUS_ERROR_NULL;
  int r = sd.sd_bus_message_new_method_call(bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", b->method);
  if (r >= 0) r = sd.sd_bus_message_append(m, "ss", b->unit, b->mode);
  if (r < 0) {
    b->err = -r;
    b->syscall = "sd_bus_message_new_method_call";
  } else if ((r = sd.sd_bus_call(bus, m, deadline - now, &error, &reply)) < 0) {
    b->err = -r;
    b->syscall = "sd_bus_call";
    b->sent = 1;
    keep_dbus_error(b, &error);
  } else {
    const char *path = NULL;
    r = sd.sd_bus_message_read(reply, "o", &path);
    if (r <= 0 || path == NULL) {
      b->err = r < 0 ? -r : EBADMSG;
      b->syscall = "sd_bus_message_read";
    } else if ((b->job = strdup(path)) == NULL) {
      b->err = ENOMEM;
      b->syscall = "strdup";
    }
  }
  sd.sd_bus_error_free(&error);
  sd.sd_bus_message_unref(reply);  // NULL-safe; `path` pointed into it and is not used after this
  sd.sd_bus_message_unref(m);
}

static void bus_execute(napi_env env, void *data) {
  (void)env;
  bus_call *b = data;
  uint64_t deadline = sn_now_usec() + b->timeout_usec;
  sd_bus *bus = NULL;
  sn_bus_opened o = { 0 };
  int r = sn_bus_open(&bus, deadline, &o);
  b->bus = o.bus;
  if (r < 0) {
    b->err = -r;
    b->syscall = o.step;
    b->system_err = o.system_err;
    b->system_syscall = o.system_step;
    return;
  }
  call_manager(b, bus, deadline);
  sn_bus_drop(bus);
}

static void set_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  if (value != NULL && napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, key, v);
}

// A Node-shaped system error (code, errno, syscall, path: the unit), plus dbusName/dbusMessage when
// systemd or the bus answered with a D-Bus error, bus: the connection it went over, and
// systemBusCode/systemBusSyscall: how the system bus failed after the private socket had.
static napi_value bus_error(napi_env env, const bus_call *b) {
  napi_value err = sn_sys_error(env, b->err, b->syscall, b->unit);
  set_string(env, err, "dbusName", b->dbus_name);
  set_string(env, err, "dbusMessage", b->dbus_message);
  set_string(env, err, "bus", b->bus);
  napi_value sent;
  if (napi_get_boolean(env, b->sent != 0, &sent) == napi_ok) napi_set_named_property(env, err, "sent", sent);
  if (b->system_err != 0) {
    set_string(env, err, "systemBusCode", sn_errno_name(b->system_err));
    set_string(env, err, "systemBusSyscall", b->system_syscall);
  }
  return err;
}

static void bus_complete(napi_env env, napi_status status, void *data) {
  bus_call *b = data;
  int end = sn_job_end(env, &b->work, status);
  if (end == 0) return;  // other works of the job still run (never: it queues one), and they use b
  if (end < 0) {
    napi_reject_deferred(env, b->work.deferred, sn_error(env, "restartUnitAsync was cancelled"));
  } else if (b->err != 0) {
    napi_reject_deferred(env, b->work.deferred, bus_error(env, b));
  } else {
    napi_value out;
    if (napi_create_object(env, &out) != napi_ok) {
      napi_reject_deferred(env, b->work.deferred, sn_sys_error(env, ENOMEM, "napi_create_object", b->unit));
    } else {
      set_string(env, out, "job", b->job);
      set_string(env, out, "bus", b->bus);
      napi_resolve_deferred(env, b->work.deferred, out);
    }
  }
  bus_call_free(env, b);
}

static int one_of(const char *s, const char *a, const char *b) {
  return strcmp(s, a) == 0 || strcmp(s, b) == 0;
}

// restartUnitAsync(method, unit, mode, timeoutMs): Promise<{ job, bus }> — Manager.RestartUnit or
// Manager.TryRestartUnit(unit, mode) with mode "fail" or "replace"; resolves with the queued job's
// object path once systemd has queued it (it does not wait for the job). Rejects with a system error
// whose dbusName/dbusMessage are systemd's answer when it refused (TransactionIsDestructive, NoSuchUnit,
// ...), and without them when the bus itself failed (no socket, disconnected, timed out).
static napi_value restart_unit_async(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "restartUnitAsync(method: string, unit: string, mode: string, timeoutMs: number)");
    return NULL;
  }
  const char *problem = sn_sd_loaded();
  if (problem != NULL) {
    sn_throw_sys(env, ELIBACC, "dlopen", problem);
    return NULL;
  }
  bus_call *b = calloc(1, sizeof *b);
  if (b == NULL) {
    sn_throw_sys(env, ENOMEM, "malloc", "restartUnitAsync");
    return NULL;
  }
  uint32_t ms = 0;
  if (!sn_get_string(env, argv[0], b->method, sizeof b->method, "method") || !sn_get_string(env, argv[1], b->unit, sizeof b->unit, "unit") ||
      !sn_get_string(env, argv[2], b->mode, sizeof b->mode, "mode") || !sn_get_u32(env, argv[3], &ms, "timeoutMs")) {
    free(b);
    return NULL;
  }
  if (!one_of(b->method, "RestartUnit", "TryRestartUnit") || !one_of(b->mode, "fail", "replace") || b->unit[0] == '\0' || ms == 0) {
    free(b);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "restartUnitAsync: method RestartUnit or TryRestartUnit, a unit name, mode fail or replace, timeoutMs > 0");
    return NULL;
  }
  b->timeout_usec = (uint64_t)ms * 1000;
  return sn_job_start(env, &b->work, "sentinel:restartUnitAsync", bus_execute, bus_complete, b, 1, bus_call_free);
}

napi_status sn_register_systemd_bus(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("restartUnitAsync", restart_unit_async) };
  napi_status s = sn_export(env, exports, props, sizeof props / sizeof props[0]);
  if (s != napi_ok) return s;
  napi_value none;
  s = napi_get_null(env, &none);
  if (s != napi_ok) return s;
  return napi_set_named_property(env, exports, "systemdBusSupport", none);
}

#endif
