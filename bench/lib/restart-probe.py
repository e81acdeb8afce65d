"""The restart benchmark's probe (bench/backend-restart.ts --probe): runs omnimind_sentinel.serve as the
unit would, and writes one line to stderr (the journal) once the new process sends its first bytes on
an accepted connection: "restart-probe {json}" with, at each step, CLOCK_MONOTONIC (us), this process's
user and system CPU (us, getrusage: tick-sampled split), the listening socket's accept queue (connections
waiting, from TCP_INFO), and its CPU time and run-queue wait (us, /proc/self/schedstat: exact):
  exec: (CPU and wait only) read by the drop-in's shell just before it exec'd python3 (systemd's set-up);
  probe: the probe's first line (the interpreter's own start done); imported: serve and uvicorn imported;
  app: the application imported; startup: Uvicorn's startup begins (its event loop running); ready: READY=1 sent;
  accept: the first accept(); reply: the first send() on an accepted connection,
and how many connections were accepted and how many bytes were read before that first reply.
Usage (the bench's drop-in): python3 restart-probe.py MODULE:APP [serve options]
"""
import json
import os
import resource
import socket
import struct
import sys
import time


def _schedstat():
    """(CPU time, run-queue wait), us, of this process so far, from the scheduler (ns, not ticks)."""
    with open("/proc/self/schedstat") as f:
        cpu, wait = f.read().split()[:2]
    return [int(cpu) // 1000, int(wait) // 1000]


def _mark(lsock):
    r = resource.getrusage(resource.RUSAGE_SELF)
    queued = -1
    if lsock is not None:
        # struct tcp_info: 8 bytes of u8 fields, then rto, ato, snd_mss, rcv_mss, unacked; for a listening
        # socket tcpi_unacked is the accept queue's length (sk_ack_backlog) and tcpi_sacked its limit.
        info = lsock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32)
        queued = struct.unpack_from("I", info, 24)[0]
    return [time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000, round(r.ru_utime * 1e6), round(r.ru_stime * 1e6), queued] + _schedstat()


def main():
    lsock = None
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS"):
        lsock = socket.fromfd(3, socket.AF_INET, socket.SOCK_STREAM)
    marks = {"pid": os.getpid(), "probe": _mark(lsock)}
    # the shell line of the drop-in read the same counters just before it exec'd python3: what systemd's
    # set-up of the process (fork → exec) took
    at_exec = os.environ.pop("RESTART_PROBE_EXEC", "").split()
    if len(at_exec) == 2:
        marks["exec"] = [0, 0, 0, -1, int(at_exec[0]) // 1000, int(at_exec[1]) // 1000]
    counts = {"accepted": 0, "recvBytes": 0}
    base_accept = socket.socket.accept
    base_send = socket.socket.send
    base_recv = socket.socket.recv

    def accept(self):
        if counts["accepted"] == 0:
            marks["accept"] = _mark(lsock)
        got = base_accept(self)
        counts["accepted"] += 1
        return got

    def recv(self, *args):
        data = base_recv(self, *args)
        counts["recvBytes"] += len(data)
        return data

    def send(self, data, *args):
        if self.type == socket.SOCK_STREAM and "reply" not in marks:
            marks["reply"] = _mark(lsock)
            marks.update(counts)
            # back to the plain methods: the probe costs nothing after the first reply
            socket.socket.accept = base_accept
            del socket.socket.send
            del socket.socket.recv
            print("restart-probe " + json.dumps(marks), file=sys.stderr, flush=True)
        return base_send(self, data, *args)

    socket.socket.accept = accept
    socket.socket.send = send
    socket.socket.recv = recv
    from omnimind_sentinel import notify, serve
    import uvicorn

    marks["imported"] = _mark(lsock)
    base_import = serve.import_object
    base_startup = uvicorn.Server.startup

    def import_object(spec, what):
        got = base_import(spec, what)
        if what == "APP":
            marks["app"] = _mark(lsock)
        return got

    async def startup(self, sockets=None):
        marks["startup"] = _mark(lsock)
        return await base_startup(self, sockets=sockets)

    serve.import_object = import_object
    uvicorn.Server.startup = startup

    base_ready = notify.Notifier.ready

    def ready(self, *args, **kwargs):
        sent = base_ready(self, *args, **kwargs)
        marks["ready"] = _mark(lsock)
        return sent

    notify.Notifier.ready = ready
    return serve.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
