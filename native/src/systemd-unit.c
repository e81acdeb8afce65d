// unitStateAsync: a unit's state read from systemd's manager over D-Bus (sd-bus), on one libuv pool
// thread, instead of a `systemctl show` process per read: while the sentinel waits for a restarted
// unit's new main process, each process would compete with that process's start for the host's CPUs
// (docs/EBPF.md#the-unit-state-over-d-bus). The properties `systemctl show` gave the sentinel, from one
// Properties.GetAll of the unit's object as systemctl reads them (systemd-props.c); and, asked to, it
// waits (bounded) for systemd's next signal about the unit instead of the caller polling: on its private
// socket systemd sends every unit's PropertiesChanged and every JobNew/JobRemoved to every client,
// unasked. Over the system bus nothing is subscribed and any local client could send a signal: the wait
// there is a sleep to its bound, and the unit is read again.
#include "sentinel.h"

#ifdef SENTINEL_HAVE_LIBSYSTEMD
#include "systemd-conn.h"
#include "systemd-props.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UNIT_BUF 256
#define UNIT_CHARS "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:-_.\\@"

typedef struct {
  char unit[UNIT_BUF];
  char known[SN_UNIT_KEY_BUF];  // the caller's last key: the wait ends as soon as the state's key differs
  uint64_t timeout_usec, wait_usec;
  sn_unit_state st;
  int changed;          // st.key differs from `known`
  const char *bus;      // "private" | "system"
  int err;              // positive errno, 0 on success
  const char *syscall;  // the step that failed
  int system_err;
  const char *system_syscall;
  char *dbus_name, *dbus_message;  // the D-Bus error's name and message (malloc'd), when a call returned one
  sn_job work;
} unit_call;

static void unit_call_free(napi_env env, void *data) {
  (void)env;
  unit_call *u = data;
  free(u->dbus_name);
  free(u->dbus_message);
  free(u);
}

// The unit as it is now (systemd-props.c), and whether it is no longer in the state the caller knew.
static int read_state(unit_call *u, sd_bus *bus, const char *path, uint64_t deadline) {
  int r = sn_unit_read(bus, path, deadline, &u->st, &u->syscall, &u->dbus_name, &u->dbus_message);
  if (r >= 0) u->changed = strcmp(u->st.key, u->known) != 0;
  return r;
}

// A signal of systemd's about this unit: a change of its object's properties, or a job of it queued or done.
static int about_unit(sd_bus_message *m, const char *path, const char *unit) {
  const char *p = sd.sd_bus_message_get_path(m);
  if (sd.sd_bus_message_is_signal(m, "org.freedesktop.DBus.Properties", "PropertiesChanged") > 0) return p != NULL && strcmp(p, path) == 0;
  if (sd.sd_bus_message_is_signal(m, "org.freedesktop.systemd1.Manager", "JobNew") <= 0 && sd.sd_bus_message_is_signal(m, "org.freedesktop.systemd1.Manager", "JobRemoved") <= 0) return 0;
  uint32_t id = 0;
  const char *job = NULL, *name = NULL;
  return sd.sd_bus_message_read(m, "uos", &id, &job, &name) > 0 && name != NULL && strcmp(name, unit) == 0;
}

// Until a signal about the unit changes its key, or `wait_end`; then the unit as it is (read again at the
// end, in case a change came without a signal); every read by `deadline`. 0, or -errno with u->syscall set.
static int await_change(unit_call *u, sd_bus *bus, const char *path, uint64_t wait_end, uint64_t deadline) {
  for (;;) {
    uint64_t now = sn_now_usec();
    if (now >= wait_end) return read_state(u, bus, path, deadline);
    sd_bus_message *m = NULL;
    int r = sd.sd_bus_process(bus, &m);
    if (r < 0) { u->syscall = "sd_bus_process"; return r; }
    if (r == 0) {
      r = sd.sd_bus_wait(bus, wait_end - now);
      if (r < 0) { u->syscall = "sd_bus_wait"; return r; }
      continue;
    }
    int ours = m != NULL && about_unit(m, path, u->unit);
    sd.sd_bus_message_unref(m);
    if (!ours) continue;
    r = read_state(u, bus, path, deadline);
    if (r < 0 || u->changed) return r;
  }
}

static void unit_execute(napi_env env, void *data) {
  (void)env;
  unit_call *u = data;
  uint64_t deadline = sn_now_usec() + u->timeout_usec;
  sd_bus *bus = NULL;
  char *path = NULL;
  sn_bus_opened o = { 0 };
  int r = sn_bus_open(&bus, deadline, &o);
  u->bus = o.bus;
  if (r < 0) {
    u->err = -r;
    u->syscall = o.step;
    u->system_err = o.system_err;
    u->system_syscall = o.system_step;
    return;
  }
  r = sd.sd_bus_path_encode("/org/freedesktop/systemd1/unit", u->unit, &path);
  if (r < 0) u->syscall = "sd_bus_path_encode";
  if (r >= 0) r = read_state(u, bus, path, deadline);
  // a wait only from a state the caller already knows: a new one is news at once
  // the reads after it share one bound: the wait and timeoutMs, whatever systemd sends meanwhile. On the
  // system bus no signal is ours to wait for (nothing subscribes; any local client may send one to us):
  // the wait is a sleep there, and the unit is read at its end.
  if (r >= 0 && u->wait_usec > 0 && !u->changed) {
    uint64_t wait_end = sn_now_usec() + u->wait_usec;
    if (strcmp(u->bus, "private") == 0) {
      r = await_change(u, bus, path, wait_end, wait_end + u->timeout_usec);
    } else {
      struct timespec end = { (time_t)(wait_end / 1000000u), (long)(wait_end % 1000000u) * 1000 };
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) == EINTR) {
      }
      r = read_state(u, bus, path, wait_end + u->timeout_usec);
    }
  }
  if (r < 0) u->err = -r;
  free(path);
  sn_bus_drop(bus);
}

static void put_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  if (value != NULL && napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, key, v);
}

static void put_number(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  if (napi_create_double(env, value, &v) == napi_ok) napi_set_named_property(env, obj, key, v);
}

// A Node-shaped system error (code, errno, syscall, path: the unit), with dbusName/dbusMessage when
// systemd or the bus answered with a D-Bus error, bus, and systemBusCode/systemBusSyscall as restartUnitAsync's.
static napi_value unit_error(napi_env env, const unit_call *u) {
  napi_value err = sn_sys_error(env, u->err, u->syscall != NULL ? u->syscall : "sd_bus", u->unit);
  put_string(env, err, "dbusName", u->dbus_name);
  put_string(env, err, "dbusMessage", u->dbus_message);
  put_string(env, err, "bus", u->bus);
  if (u->system_err != 0) {
    put_string(env, err, "systemBusCode", sn_errno_name(u->system_err));
    put_string(env, err, "systemBusSyscall", u->system_syscall);
  }
  return err;
}

static void unit_complete(napi_env env, napi_status status, void *data) {
  unit_call *u = data;
  int end = sn_job_end(env, &u->work, status);
  if (end == 0) return;  // never: the job queues one work
  napi_value out;
  if (end < 0) {
    napi_reject_deferred(env, u->work.deferred, sn_error(env, "unitStateAsync was cancelled"));
  } else if (u->err != 0) {
    napi_reject_deferred(env, u->work.deferred, unit_error(env, u));
  } else if (napi_create_object(env, &out) != napi_ok) {
    napi_reject_deferred(env, u->work.deferred, sn_sys_error(env, ENOMEM, "napi_create_object", u->unit));
  } else {
    const sn_unit_state *s = &u->st;
    put_string(env, out, "activeState", s->active);
    put_string(env, out, "subState", s->sub);
    put_string(env, out, "result", s->result);
    put_number(env, out, "mainPid", s->main_pid);
    put_number(env, out, "job", s->job);
    put_number(env, out, "nRestarts", s->n_restarts);
    put_number(env, out, "watchdogSignal", s->watchdog_signal);
    put_number(env, out, "watchdogUsec", (double)s->watchdog_usec);  // UINT64_MAX (infinity) is no watchdog to the caller
    put_string(env, out, "invocationId", s->invocation);
    put_string(env, out, "key", s->key);
    put_string(env, out, "bus", u->bus);
    napi_value changed;
    if (napi_get_boolean(env, u->changed != 0, &changed) == napi_ok) napi_set_named_property(env, out, "changed", changed);
    napi_resolve_deferred(env, u->work.deferred, out);
  }
  unit_call_free(env, u);
}

// unitStateAsync(unit, timeoutMs, waitMs, known): Promise<{ activeState, subState, result, mainPid, job (0:
// none), nRestarts, watchdogSignal, watchdogUsec, invocationId, key, changed, bus }>. Reads the unit; when
// waitMs > 0 and its key is `known` (the key of the caller's last read), waits up to waitMs for systemd's
// signal of a change and answers with the unit as it then is. The connection and first read are bounded
// by timeoutMs, the wait and the reads after it by waitMs + timeoutMs. Rejects with a system error
// (dbusName/dbusMessage when systemd answered with an error).
static napi_value unit_state_async(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "unitStateAsync(unit: string, timeoutMs: number, waitMs: number, known: string)");
    return NULL;
  }
  const char *problem = sn_sd_loaded();
  if (problem != NULL) {
    sn_throw_sys(env, ELIBACC, "dlopen", problem);
    return NULL;
  }
  unit_call *u = calloc(1, sizeof *u);
  if (u == NULL) {
    sn_throw_sys(env, ENOMEM, "malloc", "unitStateAsync");
    return NULL;
  }
  uint32_t timeout_ms = 0, wait_ms = 0;
  if (!sn_get_string(env, argv[0], u->unit, sizeof u->unit, "unit") || !sn_get_u32(env, argv[1], &timeout_ms, "timeoutMs") ||
      !sn_get_u32(env, argv[2], &wait_ms, "waitMs") || !sn_get_string(env, argv[3], u->known, sizeof u->known, "known")) {
    free(u);
    return NULL;
  }
  // a unit name is made of these (systemd's unit_name_is_valid), so no text can name another object
  if (u->unit[0] == '\0' || strspn(u->unit, UNIT_CHARS) != strlen(u->unit) || timeout_ms == 0 || timeout_ms > 600000 || wait_ms > 600000) {
    free(u);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "unitStateAsync: a unit name, timeoutMs 1..600000, waitMs 0..600000");
    return NULL;
  }
  u->timeout_usec = (uint64_t)timeout_ms * 1000;
  u->wait_usec = (uint64_t)wait_ms * 1000;
  return sn_job_start(env, &u->work, "sentinel:unitStateAsync", unit_execute, unit_complete, u, 1, unit_call_free);
}

napi_status sn_register_systemd_unit(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("unitStateAsync", unit_state_async) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}

#else

napi_status sn_register_systemd_unit(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
  return napi_ok;  // systemd-bus.c exports systemdBusSupport: why neither is built in
}

#endif
