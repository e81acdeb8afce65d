// notify: one AF_UNIX datagram for systemd's NOTIFY_SOCKET, sent from this process's own PID
// (Node has no datagram Unix sockets; NotifyAccess=main needs our PID) (docs/DAEMON.md#systemd-watchdog).
#include "sentinel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

// notify(address, message): undefined — one SOCK_DGRAM datagram, as sd_notify(3) sends it. An
// address starting with '@' is in the abstract namespace.
static napi_value notify(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char address[PATH_BUF];
  if (!sn_path_args(env, info, 2, argv, address, "address")) return NULL;
  size_t mlen = 0;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &mlen) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "message must be a string");
    return NULL;
  }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t alen = strlen(address);
  if (alen == 0 || alen >= sizeof sa.sun_path) {
    sn_throw_sys(env, alen == 0 ? EINVAL : ENAMETOOLONG, "connect", address);
    return NULL;
  }
  socklen_t salen;
  if (address[0] == '@') {
    // Abstract: a leading NUL, then the name; the length counts exactly those bytes.
    memcpy(sa.sun_path + 1, address + 1, alen - 1);
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + alen);
  } else {
    memcpy(sa.sun_path, address, alen);
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + alen + 1);
  }
  char *message = malloc(mlen + 1);
  if (message == NULL) { sn_throw_sys(env, ENOMEM, "malloc", address); return NULL; }
  napi_get_value_string_utf8(env, argv[1], message, mlen + 1, &mlen);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) { int e = errno; free(message); sn_throw_sys(env, e, "socket", address); return NULL; }
  ssize_t sent = sendto(fd, message, mlen, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  int e = errno;
  close(fd);
  free(message);
  if (sent < 0) sn_throw_sys(env, e, "sendto", address);
  else if ((size_t)sent != mlen) sn_throw_sys(env, EMSGSIZE, "sendto", address);
  return NULL;
}

napi_status sn_register_notify(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("notify", notify) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
