// A unit's state as the sentinel decides on it, read from systemd's manager (systemd-props.c) for
// systemd-unit.c: the properties `systemctl show` gave it, from one Properties.GetAll.
#ifndef SENTINEL_SYSTEMD_PROPS_H
#define SENTINEL_SYSTEMD_PROPS_H
#include "systemd-lib.h"

#include <stdint.h>

#define SN_UNIT_TEXT_BUF 64
#define SN_UNIT_KEY_BUF (4 * SN_UNIT_TEXT_BUF)

typedef struct {
  char active[SN_UNIT_TEXT_BUF], sub[SN_UNIT_TEXT_BUF], result[SN_UNIT_TEXT_BUF];
  uint32_t main_pid, job, n_restarts;  // job: the queued job's id, 0 for none
  int32_t watchdog_signal;
  uint64_t watchdog_usec;
  char invocation[33];  // 32 hex digits, or "" when the unit has none
  char key[SN_UNIT_KEY_BUF];  // what changes when anything the sentinel decides on changes
} sn_unit_state;

// Every property the sentinel decides on, from one Properties.GetAll("") of the unit's object at `path`:
// one reply holds all its interfaces, so they are one moment's state (as `systemctl show` reads them), not
// a mix of reads before and after a change. Bounded by `deadline` (CLOCK_MONOTONIC µs). 0, or -errno with
// *step naming what failed and, when systemd answered with a D-Bus error, *dbus_name/*dbus_message
// (malloc'd, set once: left alone when already set). -ENOMSG: the unit lacks one of the properties (not a service).
int sn_unit_read(sd_bus *bus, const char *path, uint64_t deadline, sn_unit_state *s, const char **step, char **dbus_name, char **dbus_message);

#endif
