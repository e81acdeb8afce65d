// notify-listen: the receiving end of the sd_notify protocol, for the sentinel's own `command`
// targets. Node has no AF_UNIX datagram sockets; this binds one with SO_PASSCRED, reads it from the
// libuv loop (uv_poll) and hands each datagram to JS with the sender's PID from SCM_CREDENTIALS,
// the way systemd tells a main process's READY=1/WATCHDOG=1 from anyone else's
// (docs/EBPF.md#notify-socket-of-command-targets).
#include "sentinel.h"
#include "js-poll.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

// systemd's own limit for one notification (NOTIFY_BUFFER_MAX is PIPE_BUF).
#define NL_MAX_MESSAGE 4096
// Datagrams handled per wake-up; the rest wait for the next one, so a flood cannot starve the loop.
#define NL_BATCH 64
// Descriptors one message may carry (FDSTORE=1); they are closed, never kept.
#define NL_MAX_FDS 16

typedef struct {
  int fd;
  uv_poll_t poll;
  int polling, handle_open, finalized, closed;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
} listener_t;

static void on_closed(uv_handle_t *h) {
  listener_t *l = h->data;
  l->handle_open = 0;
  if (l->finalized) free(l);
}

static void close_listener(listener_t *l) {
  if (l->closed) return;
  l->closed = 1;
  if (l->polling) uv_poll_stop(&l->poll);
  l->polling = 0;
  sn_js_poll_release(l->env, &l->callback, &l->async, &l->poll, l->handle_open, on_closed);
  if (l->fd >= 0) close(l->fd);
  l->fd = -1;
}

static void env_cleanup(void *arg) { close_listener(arg); }

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  listener_t *l = data;
  napi_remove_env_cleanup_hook(env, env_cleanup, l);
  close_listener(l);
  l->finalized = 1;
  if (!l->handle_open) free(l);
}

// One datagram: its text and the sender's PID (0 when the kernel attached no credentials).
static int read_one(listener_t *l, char *buf, size_t *len, int32_t *pid) {
  union {
    struct cmsghdr align;
    char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * NL_MAX_FDS)];
  } control;
  struct iovec iov = { .iov_base = buf, .iov_len = NL_MAX_MESSAGE };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control };
  ssize_t n = recvmsg(l->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
  if (n < 0) return -errno;
  *pid = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
      struct ucred cred;
      memcpy(&cred, CMSG_DATA(c), sizeof cred);
      *pid = cred.pid;
    } else if (c->cmsg_type == SCM_RIGHTS) {
      size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < nfds; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        close(fd);
      }
    }
  }
  // A message longer than systemd takes is dropped whole, like systemd does.
  if ((size_t)n > NL_MAX_MESSAGE || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) return 1;
  *len = (size_t)n;
  return 0;
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  listener_t *l = handle->data;
  if (l->closed || status < 0) return;
  char buf[NL_MAX_MESSAGE];
  for (int i = 0; i < NL_BATCH && !l->closed; i++) {
    size_t len = 0;
    int32_t pid = 0;
    int r = read_one(l, buf, &len, &pid);
    if (r == -EINTR || r == 1) continue;
    if (r < 0) return;  // EAGAIN: drained
    napi_env env = l->env;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value args[2];
    if (napi_create_int32(env, pid, &args[0]) == napi_ok && napi_create_string_utf8(env, buf, len, &args[1]) == napi_ok) {
      sn_js_poll_call(env, l->callback, l->async, 2, args);
    }
    napi_close_handle_scope(env, scope);
  }
}

// new NotifyListener(path, (pid, message) => void): binds a datagram socket at `path` (which must
// not exist; '@name' is abstract) with SO_PASSCRED and starts reading it.
static napi_value listener_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok) return NULL;
  char path[PATH_BUF];
  if (!sn_get_string(env, argv[0], path, sizeof path, "path")) return NULL;
  napi_valuetype t;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return NULL;
  }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t alen = strlen(path);
  if (alen == 0 || alen >= sizeof sa.sun_path) { sn_throw_sys(env, alen == 0 ? EINVAL : ENAMETOOLONG, "bind", path); return NULL; }
  socklen_t salen;
  if (path[0] == '@') {
    memcpy(sa.sun_path + 1, path + 1, alen - 1);
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + alen);
  } else {
    memcpy(sa.sun_path, path, alen);
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + alen + 1);
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) { sn_throw_sys(env, errno, "socket", path); return NULL; }
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) { int e = errno; close(fd); sn_throw_sys(env, e, "setsockopt", path); return NULL; }
  if (bind(fd, (struct sockaddr *)&sa, salen) < 0) { int e = errno; close(fd); sn_throw_sys(env, e, "bind", path); return NULL; }
  listener_t *l = calloc(1, sizeof *l);
  if (l == NULL) { close(fd); sn_throw_sys(env, ENOMEM, "calloc", path); return NULL; }
  l->fd = fd;
  l->env = env;
  uv_loop_t *loop;
  napi_value name;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &l->poll, fd) != 0) {
    close(fd);
    free(l);
    sn_throw_sys(env, EIO, "uv_poll_init", path);
    return NULL;
  }
  l->poll.data = l;
  l->handle_open = 1;
  if (napi_create_reference(env, argv[1], 1, &l->callback) != napi_ok ||
      napi_create_string_utf8(env, "sentinel:notify-listener", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &l->async) != napi_ok || napi_wrap(env, self, l, finalize, NULL, NULL) != napi_ok) {
    close_listener(l);
    l->finalized = 1;
    napi_throw_error(env, "EIO", "notify listener: cannot set up the callback");
    return NULL;
  }
  napi_add_env_cleanup_hook(env, env_cleanup, l);
  if (uv_poll_start(&l->poll, UV_READABLE, on_readable) != 0) {
    close_listener(l);
    sn_throw_sys(env, EIO, "uv_poll_start", path);
    return NULL;
  }
  l->polling = 1;
  return self;
}

static listener_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  listener_t *l = NULL;
  if (napi_unwrap(env, self, (void **)&l) != napi_ok || l == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_THIS", "not a NotifyListener");
    return NULL;
  }
  return l;
}

// close(): stop reading and close the socket (the caller removes its file). Idempotent.
static napi_value listener_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  listener_t *l = unwrap(env, info, &argc, NULL);
  if (l != NULL) close_listener(l);
  return NULL;
}

// ref(on): whether the socket keeps the event loop alive (default: it does).
static napi_value listener_ref(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  listener_t *l = unwrap(env, info, &argc, argv);
  if (l == NULL || l->closed) return NULL;
  bool on = true;
  if (argc >= 1) napi_get_value_bool(env, argv[0], &on);
  if (on) uv_ref((uv_handle_t *)&l->poll);
  else uv_unref((uv_handle_t *)&l->poll);
  return NULL;
}

napi_status sn_register_notify_listen(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
    {"close", NULL, listener_close, NULL, NULL, NULL, napi_default_method, NULL},
    {"ref", NULL, listener_ref, NULL, NULL, NULL, napi_default_method, NULL},
  };
  napi_value cls;
  napi_status s = napi_define_class(env, "NotifyListener", NAPI_AUTO_LENGTH, listener_new, NULL, sizeof methods / sizeof methods[0], methods, &cls);
  if (s != napi_ok) return s;
  return napi_set_named_property(env, exports, "NotifyListener", cls);
}
