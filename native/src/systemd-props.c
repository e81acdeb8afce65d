// One Properties.GetAll of a unit's object, the properties the sentinel decides on picked from it
// (systemd-props.h), for systemd-unit.c.
#include "sentinel.h"

#ifdef SENTINEL_HAVE_LIBSYSTEMD
#include "systemd-conn.h"
#include "systemd-props.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The D-Bus error of a failed call, kept once (a failed copy leaves it NULL).
static void keep_error(const sd_bus_error *e, char **name, char **message) {
  if (!sd.sd_bus_error_is_set(e) || *name != NULL) return;
  *name = strdup(e->name);
  if (e->message != NULL) *message = strdup(e->message);
}

// One property's value from the reply's current variant, of signature `sig` (checked): "s" into a buffer
// of SN_UNIT_TEXT_BUF, "(uo)" its number, "ay" (16 bytes or none) as 32 hex digits, "u", "i", "t" as themselves.
static int read_value(sd_bus_message *reply, const char *sig, void *out) {
  int r = sd.sd_bus_message_enter_container(reply, 'v', sig);
  if (r <= 0) return r < 0 ? r : -EBADMSG;  // 0: not a variant of `sig`
  if (strcmp(sig, "s") == 0) {
    const char *s = NULL;
    r = sd.sd_bus_message_read(reply, "s", &s);
    if (r > 0) snprintf(out, SN_UNIT_TEXT_BUF, "%s", s);
  } else if (strcmp(sig, "(uo)") == 0) {
    const char *job_path = NULL;
    r = sd.sd_bus_message_read(reply, "(uo)", (uint32_t *)out, &job_path);
  } else if (strcmp(sig, "ay") == 0) {
    const void *bytes = NULL;
    size_t n = 0;
    r = sd.sd_bus_message_read_array(reply, 'y', &bytes, &n);
    char *hex = out;
    hex[0] = '\0';
    for (size_t i = 0; r >= 0 && n == 16 && i < n; i++) snprintf(hex + 2 * i, 3, "%02x", ((const unsigned char *)bytes)[i]);
    if (r >= 0) r = 1;
  } else {
    r = sd.sd_bus_message_read(reply, sig, out);
  }
  if (r == 0) r = -EBADMSG;
  if (r < 0) return r;
  return sd.sd_bus_message_exit_container(reply);
}

int sn_unit_read(sd_bus *bus, const char *path, uint64_t deadline, sn_unit_state *s, const char **step, char **dbus_name, char **dbus_message) {
  memset(s, 0, sizeof *s);
  const struct { const char *name, *sig; void *out; } props[] = {
    { "ActiveState", "s", s->active }, { "SubState", "s", s->sub }, { "Job", "(uo)", &s->job },
    { "InvocationID", "ay", s->invocation }, { "Result", "s", s->result }, { "MainPID", "u", &s->main_pid },
    { "NRestarts", "u", &s->n_restarts }, { "WatchdogSignal", "i", &s->watchdog_signal }, { "WatchdogUSec", "t", &s->watchdog_usec },
  };
  enum { NPROPS = sizeof props / sizeof props[0] };
  uint64_t now = sn_now_usec();
  if (now >= deadline) { *step = "sd_bus_call"; return -ETIMEDOUT; }
  sd_bus_message *m = NULL, *reply = NULL;
  sd_bus_error error = SD_BUS_ERROR_NULL;
  int seen[NPROPS] = { 0 };
  int r = sd.sd_bus_message_new_method_call(bus, &m, "org.freedesktop.systemd1", path, "org.freedesktop.DBus.Properties", "GetAll");
  if (r >= 0) r = sd.sd_bus_message_append(m, "s", "");
  if (r < 0) { *step = "sd_bus_message_new_method_call"; goto done; }
  r = sd.sd_bus_call(bus, m, deadline - now, &error, &reply);
  if (r < 0) { *step = "sd_bus_call"; keep_error(&error, dbus_name, dbus_message); goto done; }
  *step = "sd_bus_message_read";
  r = sd.sd_bus_message_enter_container(reply, 'a', "{sv}");
  if (r == 0) r = -EBADMSG;
  while (r >= 0 && (r = sd.sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
    const char *name = NULL;
    r = sd.sd_bus_message_read(reply, "s", &name);
    if (r <= 0) { r = r < 0 ? r : -EBADMSG; break; }
    size_t i = 0;
    while (i < NPROPS && strcmp(props[i].name, name) != 0) i++;
    if (i < NPROPS && !seen[i]) {
      seen[i] = 1;
      r = read_value(reply, props[i].sig, props[i].out);
    } else {
      r = sd.sd_bus_message_skip(reply, "v");
    }
    if (r >= 0) r = sd.sd_bus_message_exit_container(reply);
  }
  if (r >= 0) r = sd.sd_bus_message_exit_container(reply);
  // a unit that is not a service (no Service interface) or an older systemd without one of them: not read
  for (size_t i = 0; r >= 0 && i < NPROPS; i++) {
    if (!seen[i]) r = -ENOMSG;
  }
  if (r >= 0) {
    snprintf(s->key, sizeof s->key, "%s/%s/%s/%u/%u", s->active, s->sub, s->result, s->main_pid, s->job);
  }
done:
  sd.sd_bus_error_free(&error);
  sd.sd_bus_message_unref(reply);
  sd.sd_bus_message_unref(m);
  return r < 0 ? r : 0;
}
#endif
