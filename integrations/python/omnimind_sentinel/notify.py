"""sd_notify(3) for Python, stdlib only: one datagram per message to $NOTIFY_SOCKET.

Honours NOTIFY_SOCKET (a path or an @abstract name) and WATCHDOG_USEC/WATCHDOG_PID the way
sd_notify(3) and sd_watchdog_enabled(3) do, and does nothing at all when they are unset.
See docs/BACKEND.md#protocol.
"""
import logging
import os
import socket

__all__ = ["Notifier", "notify_address", "watchdog_usec"]

log = logging.getLogger("omnimind_sentinel")

# The environment variables the service manager hands over; removed from os.environ once read,
# so processes the application starts do not talk to the manager on its behalf.
ENV_NAMES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")

# A STATUS= line is shown by `systemctl status`; keep it one short line.
STATUS_MAX_CHARS = 512


def notify_address(value):
    """The socket address for a NOTIFY_SOCKET value, or None when it names none we can use."""
    if not value:
        return None
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # vsock:… and relative paths are not supported


def watchdog_usec(environ, pid=None):
    """The watchdog period in microseconds for this process, or None (sd_watchdog_enabled(3))."""
    raw = environ.get("WATCHDOG_USEC")
    if raw is None:
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = environ.get("WATCHDOG_PID")
    if owner is not None:
        try:
            if int(owner) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec


def one_line(text):
    """STATUS= text as one line of bounded length."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= STATUS_MAX_CHARS else flat[: STATUS_MAX_CHARS - 1] + "…"


_inherited = None


def inherited_environment():
    """NOTIFY_SOCKET/WATCHDOG_* as this process received them; read once, then removed from os.environ."""
    global _inherited
    if _inherited is None:
        _inherited = {name: os.environ[name] for name in ENV_NAMES if name in os.environ}
        for name in ENV_NAMES:
            os.environ.pop(name, None)
    return _inherited


class Notifier:
    """Sends READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 to the service manager.

    Reads `environ` (default: the process's own, see inherited_environment()). With no
    NOTIFY_SOCKET every method is a no-op returning False. Sending never blocks the caller: a full
    socket queue drops the message (the next ping follows one period later).
    """

    def __init__(self, environ=None):
        env = inherited_environment() if environ is None else environ
        self.address = notify_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_usec = watchdog_usec(env) if self.address is not None else None
        self._sock = None
        self._last_error = None
        self.sent = 0

    @property
    def enabled(self):
        return self.address is not None

    @property
    def watchdog_period(self):
        """Seconds between pings (half the watchdog timeout), or None when no watchdog is armed."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2e6

    def send(self, *assignments):
        """Sends one datagram of `NAME=value` lines; True when the manager's socket took it."""
        if self.address is None or not assignments:
            return False
        data = "\n".join(assignments).encode("utf-8")
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(data, self.address)
        except OSError as e:
            reason = "%s: %s" % (type(e).__name__, e.strerror or e)
            if reason != self._last_error:
                log.warning("omnimind_sentinel: cannot notify the service manager at %r (%s)", self.describe(), reason)
                self._last_error = reason
            return False
        self._last_error = None
        self.sent += 1
        return True

    def ready(self, status=None):
        return self.send("READY=1", *(() if status is None else ("STATUS=" + one_line(status),)))

    def status(self, text):
        return self.send("STATUS=" + one_line(text))

    def ping(self, status=None):
        return self.send("WATCHDOG=1", *(() if status is None else ("STATUS=" + one_line(status),)))

    def stopping(self, status=None):
        return self.send("STOPPING=1", *(() if status is None else ("STATUS=" + one_line(status),)))

    def describe(self):
        if self.address is None:
            return None
        return "@" + self.address[1:] if self.address.startswith("\0") else self.address

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
