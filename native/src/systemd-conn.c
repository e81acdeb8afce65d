// The connection to systemd's manager that systemd-bus.c and systemd-unit.c share (systemd-conn.h).
// One per call, opened and closed on the pool thread that makes the call: sd-bus objects are not
// thread-safe, so no connection is shared between pool threads; and systemd sends every unit and job
// signal to every client of its private socket, so a connection kept open between calls (which nobody
// reads) would pile them up in PID 1's queue for that client.
#include "sentinel.h"

#ifdef SENTINEL_HAVE_LIBSYSTEMD
#include "systemd-conn.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PRIVATE_ADDRESS "unix:path=/run/systemd/private"
#define SYSTEM_ADDRESS "unix:path=/run/dbus/system_bus_socket"

uint64_t sn_now_usec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void sn_bus_drop(sd_bus *bus) {
  if (bus == NULL) return;
  sd.sd_bus_close(bus);
  sd.sd_bus_unref(bus);
}

// Drives the connection's handshake (SASL, and Hello on the system bus) until it is ready, at most
// until `deadline`: sd_bus_call would wait for it up to sd-bus's own 90 s authentication timeout,
// whatever the call's timeout. 0, or -errno (-ETIMEDOUT at the deadline).
static int wait_ready(sd_bus *bus, uint64_t deadline) {
  for (;;) {
    int r = sd.sd_bus_is_ready(bus);
    if (r != 0) return r < 0 ? r : 0;
    r = sd.sd_bus_process(bus, NULL);
    if (r < 0) return r;
    if (r > 0) continue;
    uint64_t now = sn_now_usec();
    if (now >= deadline) return -ETIMEDOUT;
    r = sd.sd_bus_wait(bus, deadline - now);
    if (r < 0) return r;
  }
}

// The private socket's peer must be root (or us), as systemctl checks: the socket is PID 1's.
static int peer_is_root(sd_bus *bus) {
  int fd = sd.sd_bus_get_fd(bus);
  if (fd < 0) return fd;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -errno;
  if (len != sizeof cred) return -EIO;
  return cred.uid == 0 || cred.uid == geteuid() ? 0 : -EPERM;
}

// 0 with *ret connected to `address` and ready (handshake done before `deadline`), or -errno with
// *step naming what failed (*ret NULL). `client`: a bus client (the system bus: Hello), else a direct
// connection (systemd's private socket, whose peer must then be root).
static int connect_bus(sd_bus **ret, const char *address, int client, uint64_t deadline, const char **step) {
  sd_bus *bus = NULL;
  *ret = NULL;
  int r = sd.sd_bus_new(&bus);
  if (r < 0) { *step = "sd_bus_new"; return r; }
  r = sd.sd_bus_set_address(bus, address);
  if (r < 0) { *step = "sd_bus_set_address"; sn_bus_drop(bus); return r; }
  r = sd.sd_bus_set_bus_client(bus, client);
  if (r < 0) { *step = "sd_bus_set_bus_client"; sn_bus_drop(bus); return r; }
  r = sd.sd_bus_start(bus);
  if (r < 0) { *step = "sd_bus_start"; sn_bus_drop(bus); return r; }
  r = wait_ready(bus, deadline);
  if (r < 0) { *step = "sd_bus_process"; sn_bus_drop(bus); return r; }
  if (!client) {
    r = peer_is_root(bus);
    if (r < 0) { *step = "getsockopt(SO_PEERCRED)"; sn_bus_drop(bus); return r; }
  }
  *ret = bus;
  return 0;
}

int sn_bus_open(sd_bus **ret, uint64_t deadline, sn_bus_opened *o) {
  o->bus = "private";
  int r = connect_bus(ret, PRIVATE_ADDRESS, 0, deadline, &o->step);
  if (r == 0) return 0;
  // Not root, or no private socket (a container's systemd is still starting): the system bus, where
  // dbus-daemon and polkit decide. When that fails too, the private socket's failure is reported.
  const char *address = secure_getenv("DBUS_SYSTEM_BUS_ADDRESS");
  int r2 = connect_bus(ret, address != NULL ? address : SYSTEM_ADDRESS, 1, deadline, &o->system_step);
  if (r2 < 0) {
    o->system_err = -r2;
    return r;
  }
  o->bus = "system";
  return 0;
}
#endif
