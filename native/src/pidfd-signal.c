// signalIdentified: a signal to a process named by PID and start time, never to a process that took
// its PID since. The check and the signal go through one pidfd (pidfd_open(2), pidfd_send_signal(2)),
// opened before the check: a pidfd names the process it was opened on, so a process gone after the
// check cannot have the signal reach the one that reuses its PID (pidfd_send_signal fails with ESRCH);
// and a process that has the PID after the pidfd was opened and the expected start time is the one the
// pidfd names (a process holds its PID from its start until it is reaped, and any later holder of the
// PID started later).
#include "sentinel.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
// Kernel 6.9+: a pidfd of a thread (pidfd_open), and a signal through it to the whole thread group, as
// kill(2) of a thread id sends it (pidfd_send_signal).
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef PIDFD_SIGNAL_THREAD_GROUP
#define PIDFD_SIGNAL_THREAD_GROUP (1U << 1)
#endif

// Field 22 of /proc/PID/stat (starttime, clock ticks after boot), counted after the last ')' since
// comm may hold spaces and parentheses. 0, or a negative errno (-ENOENT: no such process).
static int read_start_ticks(int pid, unsigned long long *ticks) {
  char path[48];
  char buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return -errno;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  int e = errno;
  close(fd);
  if (n < 0) return e == ESRCH ? -ENOENT : -e;
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  if (p == NULL || p[1] != ' ') return -EINVAL;
  p += 2;  // field 3
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (p == NULL) return -EINVAL;
    p++;
  }
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(p, &end, 10);
  if (errno != 0 || end == p || (*end != ' ' && *end != '\n' && *end != '\0')) return -EINVAL;
  *ticks = v;
  return 0;
}

static napi_value result(napi_env env, const char *what) {
  napi_value s;
  if (napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &s) != napi_ok) return NULL;
  return s;
}

// signalIdentified(pid, startTicks, signal): 'sent' | 'gone' | 'other' — `signal` sent to `pid` only
// while it is the process that started at `startTicks`; 'gone' when no process has the PID (or it
// exited before the signal), 'other' when the PID names a process with another start time (nothing
// sent). Throws a system error for anything else (EPERM, ENOSYS on a kernel before 5.3, ...).
static napi_value signal_identified(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "signalIdentified(pid: number, startTicks: number, signal: number)");
    return NULL;
  }
  uint64_t pid = 0;
  uint64_t ticks = 0;
  uint64_t sig = 0;
  if (!sn_get_uint(env, argv[0], (double)INT_MAX, "2^31-1", &pid, "pid")) return NULL;
  if (!sn_get_uint(env, argv[1], 9007199254740991.0, "2^53-1", &ticks, "startTicks")) return NULL;
  if (!sn_get_uint(env, argv[2], 64.0, "64", &sig, "signal")) return NULL;
  if (pid == 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "pid must be an integer from 1 to 2^31-1");
    return NULL;
  }
  char where[32];
  snprintf(where, sizeof where, "pid %llu", (unsigned long long)pid);
  unsigned int send_flags = 0;
  int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0U);
  if (pidfd < 0 && (errno == ENOENT || errno == EINVAL)) {
    // Not a thread group's leader: a thread id (a pid file may name one). Before 6.9 this fails with
    // EINVAL too, which the caller takes as "no pidfd for it" and checks through /proc instead.
    pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, (unsigned int)PIDFD_THREAD);
    send_flags = PIDFD_SIGNAL_THREAD_GROUP;
  }
  if (pidfd < 0) {
    if (errno == ESRCH) return result(env, "gone");
    sn_throw_sys(env, errno, "pidfd_open", where);
    return NULL;
  }
  unsigned long long now = 0;
  int r = read_start_ticks((int)pid, &now);
  const char *outcome = NULL;
  int err = 0;
  const char *failed = NULL;
  if (r == -ENOENT) outcome = "gone";
  else if (r < 0) {
    err = -r;
    failed = "read /proc/PID/stat";
  } else if (now != ticks) outcome = "other";
  else if (syscall(SYS_pidfd_send_signal, pidfd, (int)sig, NULL, send_flags) == 0) outcome = "sent";
  else if (errno == ESRCH) outcome = "gone";
  else {
    err = errno;
    failed = "pidfd_send_signal";
  }
  close(pidfd);
  if (outcome == NULL) {
    sn_throw_sys(env, err, failed, where);
    return NULL;
  }
  return result(env, outcome);
}

napi_status sn_register_pidfd_signal(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("signalIdentified", signal_identified) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
