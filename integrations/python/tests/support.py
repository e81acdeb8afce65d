"""Test support: a real datagram listener (the service manager's side) and the sample backend as a child."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(PACKAGE_ROOT))
SAMPLE_DIR = os.path.join(REPO, "examples", "backend")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


class Listener:
    """An AF_UNIX datagram socket like systemd's notify socket; records (monotonic time, message)."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.dir = None
        if abstract:
            name = "omnimind-sentinel-test-%d-%s" % (os.getpid(), os.urandom(4).hex())
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            self.dir = tempfile.mkdtemp(prefix="sentinel-notify-")
            path = os.path.join(self.dir, "notify")
            self.sock.bind(path)
            self.env_value = path
        self.messages = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data and self.closed:
                return
            with self.cond:
                self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))
                self.cond.notify_all()

    def wait_for(self, predicate, timeout, what, start=0):
        """The first message at index >= start matching predicate; fails the test after timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.messages)):
                    if predicate(self.messages[i][1]):
                        return i, self.messages[i]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %.1f s waiting for %s; got %r" % (timeout, what, [m for _, m in self.messages][-10:]))
                self.cond.wait(left)

    def matching(self, predicate, since=None):
        with self.cond:
            return [(t, m) for t, m in self.messages if predicate(m) and (since is None or t >= since)]

    def close(self):
        self.closed = True
        self.sock.close()
        if self.dir is not None:
            try:
                os.unlink(os.path.join(self.dir, "notify"))
            except OSError:
                pass
            os.rmdir(self.dir)


def has(field):
    return lambda m: field in m.split("\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_socket():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    return s


def env_with(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")}
    env["PYTHONPATH"] = PACKAGE_ROOT + os.pathsep + HERE
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


def start_sample(args, env, pass_fds=(), prefix=()):
    """The sample backend through omnimind_sentinel.serve; stderr captured to a temp file."""
    err = tempfile.TemporaryFile()
    cmd = [*prefix, PYTHON, "-m", "omnimind_sentinel.serve", "sample_backend:app", "--app-dir", SAMPLE_DIR, "--no-access-log", *args]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err, pass_fds=pass_fds)
    proc.err_file = err
    return proc


def output_of(proc):
    proc.err_file.seek(0)
    return proc.err_file.read().decode("utf-8", "replace")


def stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    proc.err_file.close()


def get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def fire_and_forget(url):
    """A request that is never answered (a hang): sent from a thread that gives up after a while."""
    def go():
        try:
            urllib.request.urlopen(url, timeout=30).read()
        except (urllib.error.URLError, OSError):
            pass
    threading.Thread(target=go, daemon=True).start()


def wait_healthy(port, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            status, _ = get("http://127.0.0.1:%d/health" % port, timeout=2)
            if status == 200:
                return
        except OSError as e:
            last = e
        time.sleep(0.02)
    raise AssertionError("backend on port %d not healthy within %.0f s (last: %s)" % (port, timeout, last))


def unix_dgram_sockets_of(pid):
    """How many AF_UNIX datagram sockets the process holds (from /proc/PID/fd and /proc/net/unix)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    with open("/proc/%d/net/unix" % pid) as f:
        next(f)
        for line in f:
            parts = line.split()
            if len(parts) >= 7 and parts[4] == "0002" and parts[6] in inodes:
                count += 1
    return count


def kill_quietly(proc, sig=signal.SIGKILL):
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass
