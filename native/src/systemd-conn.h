// One connection to systemd's manager for systemd-bus.c (restart jobs) and systemd-unit.c (a unit's
// state): its private socket /run/systemd/private as systemctl uses it as root (no dbus-daemon, no
// polkit), else the system bus; the handshake and every wait bounded by one deadline.
#ifndef SENTINEL_SYSTEMD_CONN_H
#define SENTINEL_SYSTEMD_CONN_H
#include "systemd-lib.h"

#include <stdint.h>

// CLOCK_MONOTONIC in µs: every deadline of these files.
uint64_t sn_now_usec(void);

// Closes without flushing (sd_bus_flush would wait without bound for a peer that never reads); NULL-safe.
void sn_bus_drop(sd_bus *bus);

// How sn_bus_open went: the connection it made ("private" | "system"), or why neither could be made.
typedef struct {
  const char *bus;
  const char *step;          // the step of the private socket's connection that failed
  int system_err;            // when the system bus was tried after the private socket failed: its errno and step
  const char *system_step;
} sn_bus_opened;

// 0 with *ret connected and ready (handshake done before `deadline`, CLOCK_MONOTONIC µs), the private
// socket's peer checked to be root; else -errno of the private socket (*ret NULL) with o->step,
// o->system_err and o->system_step saying how each connection failed.
int sn_bus_open(sd_bus **ret, uint64_t deadline, sn_bus_opened *o);

#endif
