"""Graceful restart on a watchdog timeout: thread stacks to the journal, the event to the sentinel.

Two halves (docs/BACKEND.md#graceful-restart):

* In the backend process, `install_stack_dump()` makes the watchdog's signal (SIGABRT unless the
  unit sets WatchdogSignal=) print every Python thread's stack to stderr, which systemd sends to
  the journal, before the process dies. faulthandler writes from its C signal handler, so this works
  while the event loop is blocked and while a C call holds the GIL.
* As a unit's ExecStopPost= hook, `python3 -m omnimind_sentinel.graceful_restart --unit %n`
  reads $SERVICE_RESULT; on a watchdog timeout it collects those stack lines from the journal
  (this invocation only) and records "backend hung: watchdog" with them in the sentinel's audit log
  through its control socket. For a unit no sentinel target watches: the shipped backend unit has
  no stop hook (it would run on every restart); the sentinel records its watchdog timeouts itself.
"""
import argparse
import faulthandler
import json
import os
import signal
import socket
import subprocess
import sys
import time

__all__ = ["install_stack_dump", "collect_evidence", "report", "main"]

# faulthandler.enable() already dumps on these and then lets the signal kill the process.
FATAL_SIGNALS = {signal.SIGABRT, signal.SIGSEGV, signal.SIGFPE, signal.SIGBUS, signal.SIGILL}

DEFAULT_SOCKET = "/run/omnimind-sentinel/sentinel.sock"
# What the control socket accepts for one event's evidence (docs/DAEMON.md#control-socket).
EVIDENCE_MAX_LINES = 400
EVIDENCE_MAX_CHARS = 60000
LINE_MAX_CHARS = 1000
# faulthandler's first line, and the header of each thread's stack.
STACK_MARKERS = ("Fatal Python error", "Thread 0x", "Current thread 0x")


def install_stack_dump(extra_signals=(), file=None):
    """Every thread's stack to stderr on SIGABRT (and the other fatal signals) and on `extra_signals`.

    A non-fatal extra signal (say SIGUSR1 as the unit's WatchdogSignal=) only dumps; systemd's SIGKILL
    after TimeoutAbortSec= then ends the process.
    """
    out = sys.stderr if file is None else file
    faulthandler.enable(file=out, all_threads=True)
    for sig in extra_signals:
        if sig not in FATAL_SIGNALS:
            faulthandler.register(sig, file=out, all_threads=True, chain=False)


def parse_signal(name):
    """SIGABRT, ABRT or 6 → signal.SIGABRT."""
    text = str(name).strip().upper()
    if text.isdigit():
        return signal.Signals(int(text))
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return signal.Signals[text]
    except KeyError:
        raise ValueError("unknown signal %r" % name) from None


def stack_section(lines):
    """The faulthandler output among a unit's journal lines: from the last 'Fatal Python error' (or first
    thread header) on, bounded in lines and characters."""
    start = None
    for i, line in enumerate(lines):
        if line.startswith("Fatal Python error"):
            start = i
    if start is None:
        start = next((i for i, l in enumerate(lines) if l.startswith(STACK_MARKERS[1:])), None)
    if start is None:
        return []
    picked = []
    total = 0
    for line in lines[start : start + EVIDENCE_MAX_LINES]:
        line = line[:LINE_MAX_CHARS]
        if total + len(line) > EVIDENCE_MAX_CHARS:
            break
        picked.append(line)
        total += len(line)
    return picked


def collect_evidence(invocation_id, wait_seconds=3.0, journalctl="journalctl"):
    """This invocation's stack dump from the journal, waiting (bounded) for journald to have it.

    Returns (lines, note): note says why there are none (journal unreadable, no dump found)."""
    if not invocation_id:
        return [], "no INVOCATION_ID: not run by systemd"
    deadline = time.monotonic() + wait_seconds
    note = "no thread stacks in the journal of invocation %s" % invocation_id
    while True:
        try:
            out = subprocess.run(
                [journalctl, "_SYSTEMD_INVOCATION_ID=" + invocation_id, "-o", "cat", "--no-pager", "-n", "2000"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=5, check=False,
            )
            if out.returncode == 0:
                lines = out.stdout.decode("utf-8", "replace").splitlines()
                section = stack_section(lines)
                # The dump is complete once the process is gone: the stop hook runs after that.
                if section:
                    return section, None
            else:
                note = "journalctl failed: %s" % out.stderr.decode("utf-8", "replace").strip()[:200]
        except (OSError, subprocess.TimeoutExpired) as e:
            return [], "journalctl not runnable: %s" % e
        if time.monotonic() >= deadline:
            return [], note
        time.sleep(0.1)


def report(socket_path, event, timeout=10.0):
    """Sends one `service-event` request to the sentinel's control socket; returns its reply."""
    request = dict(event, op="service-event")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
        s.settimeout(timeout)
        s.connect(socket_path)
        s.sendall(json.dumps(request, separators=(",", ":")).encode("utf-8") + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf.decode("utf-8"))


def build_event(env, unit, role, evidence, note):
    result = env.get("SERVICE_RESULT", "")
    verb = "hung" if result == "watchdog" else "failed"
    event = {
        "unit": unit,
        "result": result,
        "message": "%s %s: %s" % (role, verb, result),
        "evidence": evidence,
    }
    for key, name in (("exitCode", "EXIT_CODE"), ("exitStatus", "EXIT_STATUS"), ("invocationId", "INVOCATION_ID")):
        if env.get(name):
            event[key] = env[name]
    if note is not None:
        event["evidenceNote"] = note
    return event


def main(argv=None, env=None):
    env = os.environ if env is None else env
    p = argparse.ArgumentParser(
        prog="python3 -m omnimind_sentinel.graceful_restart",
        description="ExecStopPost= hook: on a watchdog timeout, record the event and the thread stacks in the sentinel's audit log.",
        epilog="example (in the unit; it runs as root, so never from the unit's working directory): "
        "ExecStopPost=-+/bin/sh -c 'cd / && exec /usr/bin/python3 -P -m omnimind_sentinel.graceful_restart --unit %n'",
    )
    p.add_argument("--unit", required=True, help="the unit's name (%%n in the unit file)")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help="the sentinel's control socket (default %(default)s)")
    p.add_argument("--role", default="backend", help="what the unit is, for the message (default %(default)s)")
    p.add_argument("--on", default="watchdog", help="comma-separated $SERVICE_RESULT values to report (default %(default)s)")
    p.add_argument("--wait", type=float, default=3.0, help="seconds to wait for the stacks to reach the journal (default %(default)s)")
    a = p.parse_args(argv)
    result = env.get("SERVICE_RESULT", "")
    if result not in [r.strip() for r in a.on.split(",") if r.strip()]:
        return 0
    evidence, note = collect_evidence(env.get("INVOCATION_ID", ""), a.wait)
    event = build_event(env, a.unit, a.role, evidence, note)
    try:
        reply = report(a.socket, event)
    except (OSError, ValueError) as e:
        print("omnimind_sentinel: cannot record %r in the sentinel's audit log (%s): %s" % (event["message"], a.socket, e), file=sys.stderr)
        return 1
    if not reply.get("ok"):
        err = reply.get("error", {})
        print("omnimind_sentinel: the sentinel refused the event: %s: %s" % (err.get("code"), err.get("message")), file=sys.stderr)
        return 1
    print("omnimind_sentinel: recorded %r with %d stack line(s) in the sentinel's audit log" % (event["message"], len(evidence)))
    return 0


def cli():
    """Console-script entry point (pip install)."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
