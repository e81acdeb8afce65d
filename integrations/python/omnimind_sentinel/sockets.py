"""Listening sockets for omnimind_sentinel.serve: the ones systemd passes ($LISTEN_FDS) or `--fd N` names,
kept as they are configured (their backlog), and described for the log and STATUS=. See docs/BACKEND.md#serve.
"""
import os
import socket
import struct


class UsageError(Exception):
    pass


# Connections accepted per turn of the event loop on a passed socket (HeldSocket): small enough that the
# first of a queue met at start is answered after a few accepts, large enough to cost no more CPU than
# accepting the whole queue at once (measured with 100 and 300 queued requests; BENCHMARKS.md).
ACCEPT_BATCH = 4


class HeldSocket(socket.socket):
    """A listening socket passed in (systemd's, held across restarts) whose backlog is never lowered.

    asyncio's create_server(sock=..., backlog=N) calls sock.listen(N), and its accept callback accepts up
    to N connections each time the socket is readable, before any of their requests is read. With
    Uvicorn's --backlog (2048) a backend that starts behind a queue (the connections that waited while it
    restarted) accepts and parses the whole queue before its first reply, and listen(2048) lowers a
    larger Backlog= of the socket unit. serve gives the loop the accept batch as N; this socket, once
    listening, never gets a smaller backlog: a TCP socket's is the larger of what it has (read back from
    the kernel) and what is asked; any other socket's (which cannot be read back) is left as it was."""

    def listen(self, backlog=socket.SOMAXCONN):
        if is_listening(self):
            now = listen_limit(self)
            if now is None:
                return
            backlog = max(backlog, now)
        super().listen(backlog)


def is_listening(sock):
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        return False


def listen_limit(sock):
    """The backlog of a listening TCP socket; None for another family, whose backlog cannot be read back."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    # struct tcp_info: 8 bytes of u8 fields, then rto, ato, snd_mss, rcv_mss, unacked, sacked (u32);
    # for a listening socket tcpi_sacked is its backlog (tcpi_unacked the connections waiting in it)
    try:
        return struct.unpack_from("I", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32), 28)[0]
    except OSError:
        return None  # a stream socket of another protocol (SCTP): not readable either


def inherited_sockets(fd_option, environ=None):
    """Listening sockets from `--fd N` or from systemd's socket activation (sd_listen_fds(3))."""
    env = os.environ if environ is None else environ
    fds = []
    if fd_option is not None:
        try:
            fds = [int(fd_option)]
        except ValueError:
            raise UsageError("--fd needs a file descriptor number, not %r" % fd_option) from None
    elif env.get("LISTEN_PID") == str(os.getpid()) and env.get("LISTEN_FDS"):
        try:
            fds = list(range(3, 3 + int(env["LISTEN_FDS"])))
        except ValueError:
            raise UsageError("LISTEN_FDS is not a number: %r" % env["LISTEN_FDS"]) from None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        env.pop(name, None)
    socks = []
    for fd in fds:
        try:
            sock = HeldSocket(fileno=fd)
        except OSError as e:
            raise UsageError("file descriptor %d is not a usable socket (%s)" % (fd, e.strerror or e)) from None
        if sock.type != socket.SOCK_STREAM:
            raise UsageError("file descriptor %d is not a stream socket" % fd)
        if not is_listening(sock):
            sock.listen(socket.SOMAXCONN)
        socks.append(sock)
    return socks


def parse_accept_batch(value):
    if value is None:
        return ACCEPT_BATCH
    try:
        batch = int(value)
    except ValueError:
        raise UsageError("--accept-batch needs a number of connections, not %r" % value) from None
    if batch < 1:
        raise UsageError("--accept-batch must be at least 1")
    return batch


def describe_socket(sock):
    addr = sock.getsockname()
    if isinstance(addr, tuple):
        host, port = addr[0], addr[1]
        return "%s:%d (fd %d)" % ("[%s]" % host if ":" in host else host, port, sock.fileno())
    return "%s (fd %d)" % (addr or "unnamed socket", sock.fileno())
