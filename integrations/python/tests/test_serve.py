"""omnimind_sentinel.serve against a real datagram listener, with the real FastAPI/Uvicorn sample backend."""
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import tempfile
import time
import unittest
import urllib.error

from support import (PYTHON, Listener, env_with, fire_and_forget, free_port, get, has, kill_quietly, listening_socket, output_of,
                     start_sample, stop, unix_dgram_sockets_of, wait_healthy)

is_ping = has("WATCHDOG=1")


def tcp_info_u32(sock, offset):
    """A u32 of a TCP socket's tcp_info: for a listening socket 24 is the accept queue's length, 28 its limit."""
    return struct.unpack_from("I", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32), offset)[0]


def read_reply(conn):
    reply = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return reply
        reply += chunk


class ServeTest(unittest.TestCase):
    def setUp(self):
        self.listener = Listener()
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            stop(p)
        self.listener.close()

    def start(self, args, listener=None, **env):
        listener = self.listener if listener is None else listener
        env.setdefault("NOTIFY_SOCKET", listener.env_value)
        p = start_sample(args, env_with(**env), pass_fds=env.pop("_pass_fds", ()))
        self.procs.append(p)
        return p

    def ready(self, p, timeout=30):
        try:
            return self.listener.wait_for(has("READY=1"), timeout, "READY=1")
        except AssertionError:
            raise AssertionError("no READY=1; backend output:\n" + output_of(p)) from None

    def test_ready_only_after_startup_and_listening(self):
        port = free_port()
        t0 = time.monotonic()
        p = self.start(["--host", "127.0.0.1", "--port", str(port)], SAMPLE_BACKEND_STARTUP_DELAY="1.0")
        _, (t_ready, msg) = self.ready(p)
        # The port takes connections the moment READY=1 arrives.
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        self.assertGreaterEqual(t_ready - t0, 1.0, "READY=1 came before the 1 s startup had completed")
        self.assertIn("STATUS=serving sample_backend:app on 127.0.0.1:%d" % port, msg)
        self.assertEqual(get("http://127.0.0.1:%d/health" % port)[0], 200)
        self.assertEqual(len(self.listener.matching(has("READY=1"))), 1)

    def test_pings_every_half_watchdog_period(self):
        port = free_port()
        p = self.start(["--port", str(port)], WATCHDOG_USEC=600000)
        i, _ = self.ready(p)
        # Eight pings, timed as they arrive here; on a busy machine one can arrive late through no fault of
        # the pinger, so up to three rounds of eight are taken and one round must hold every bound.
        rounds = []
        for _ in range(3):
            times = []
            for n in range(8):
                i, (t, _) = self.listener.wait_for(is_ping, 5, "ping %d" % n, start=i + 1)
                times.append(t)
            gaps = [round(b - a, 3) for a, b in zip(times, times[1:])]
            rounds.append(gaps)
            if 0.3 * 0.8 <= statistics.median(gaps) <= 0.3 * 1.35 and all(g < 0.6 for g in gaps):
                break
        gaps = rounds[-1]
        median = statistics.median(gaps)
        self.assertGreaterEqual(median, 0.3 * 0.8, "pings come faster than WATCHDOG_USEC/2 (gaps of each round: %r)" % rounds)
        self.assertLessEqual(median, 0.3 * 1.35, "pings come slower than WATCHDOG_USEC/2 (gaps of each round: %r)" % rounds)
        self.assertTrue(all(g < 0.6 for g in gaps), "a gap reached the whole watchdog period (gaps of each round: %r)" % rounds)

    def assert_pings_stop(self, path):
        port = free_port()
        p = self.start(["--port", str(port)], WATCHDOG_USEC=1000000)  # a ping every 0.5 s
        i, _ = self.ready(p)
        i, _ = self.listener.wait_for(is_ping, 5, "first ping", start=i + 1)
        self.listener.wait_for(is_ping, 5, "second ping", start=i + 1)
        t_request = time.monotonic()
        fire_and_forget("http://127.0.0.1:%d%s" % (port, path))
        time.sleep(3.0)  # six ping periods of silence expected
        # A ping already due, or one sent while a busy machine delays the request, may still arrive in the
        # first period or two; from two periods on, none (a pinger that ignored the blocked loop sends two more).
        late = self.listener.matching(is_ping, since=t_request + 2 * 0.5)
        pings = [round(t - t_request, 3) for t, _ in self.listener.matching(is_ping, since=t_request)]
        self.assertEqual(late, [], "pings went on more than two periods after %s (pings at these seconds after it: %r)" % (path, pings))
        self.assertIsNone(p.poll(), "the backend is alive (hung), not dead")
        return p

    def test_pings_stop_when_the_event_loop_is_blocked(self):
        self.assert_pings_stop("/hang")

    def test_pings_stop_while_a_c_call_holds_the_gil_and_sigabrt_dumps_every_thread(self):
        p = self.assert_pings_stop("/gil")
        # What systemd's watchdog does next: SIGABRT. faulthandler prints every thread's stack.
        p.send_signal(signal.SIGABRT)
        self.assertEqual(p.wait(timeout=10), -signal.SIGABRT)
        out = output_of(p)
        self.assertIn("Fatal Python error: Aborted", out)
        self.assertIn("Current thread 0x", out, "the thread holding the GIL is named")
        self.assertRegex(out, r'File ".*sample_backend\.py", line \d+ in gil', "the stuck handler's frame is in the dump")
        self.assertGreaterEqual(out.count("Thread 0x") + out.count("Current thread 0x"), 2, "every thread, not just one")

    def test_stuck_request_timeout_withholds_pings_while_the_loop_is_free(self):
        port = free_port()
        p = self.start(["--port", str(port), "--stuck-request-timeout", "0.5"], WATCHDOG_USEC=600000)
        i, _ = self.ready(p)
        self.listener.wait_for(is_ping, 5, "first ping", start=i + 1)
        t_request = time.monotonic()
        fire_and_forget("http://127.0.0.1:%d/stuck" % port)
        j, (_, msg) = self.listener.wait_for(lambda m: "withheld: request GET /stuck running" in m, 5, "STATUS naming the stuck request")
        self.assertEqual(get("http://127.0.0.1:%d/health" % port)[0], 200, "the loop still serves")
        # Once withheld, withheld: no ping in the next three periods (the same sender, so arrival order is send order).
        time.sleep(0.9)
        after = [m for _, m in self.listener.messages[j + 1:] if is_ping(m)]
        pings = [round(t - t_request, 3) for t, _ in self.listener.matching(is_ping, since=t_request)]
        self.assertEqual(after, [], "no ping once the request is stuck (pings at these seconds after the request: %r)" % pings)

    def test_health_callback_withholds_pings_until_healthy_again(self):
        for func in ("healthy", "healthy_async"):
            with self.subTest(func=func), tempfile.TemporaryDirectory() as d:
                flag = os.path.join(d, "sick")
                port = free_port()
                listener = Listener()
                try:
                    p = self.start(["--port", str(port), "--health", "health_flag:" + func], listener=listener, WATCHDOG_USEC=400000, HEALTH_FLAG=flag)
                    i, _ = listener.wait_for(has("READY=1"), 30, "READY=1")
                    i, _ = listener.wait_for(is_ping, 5, "ping while healthy", start=i + 1)
                    open(flag, "w").close()
                    t_sick = time.monotonic()
                    j, (_, msg) = listener.wait_for(lambda m: "watchdog ping withheld" in m, 5, "STATUS with the reason")
                    self.assertNotIn("WATCHDOG=1", msg)
                    time.sleep(1.0)
                    # No ping after the STATUS that withheld them (the same sender: arrival order is send order).
                    after = [m for _, m in listener.messages[j + 1:] if is_ping(m)]
                    pings = [round(t - t_sick, 3) for t, _ in listener.matching(is_ping, since=t_sick)]
                    self.assertEqual(after, [], "no ping while unhealthy (pings at these seconds after the flag: %r)" % pings)
                    os.unlink(flag)
                    listener.wait_for(is_ping, 5, "pings again once healthy", start=j + 1)
                finally:
                    listener.close()

    def test_stopping_on_sigterm_then_a_clean_exit(self):
        port = free_port()
        p = self.start(["--port", str(port)], WATCHDOG_USEC=2000000)
        i, _ = self.ready(p)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=15), 0, output_of(p))
        self.listener.wait_for(has("STOPPING=1"), 2, "STOPPING=1", start=i + 1)

    def test_nothing_sent_without_notify_socket(self):
        port = free_port()
        p = self.start(["--port", str(port)], NOTIFY_SOCKET="", WATCHDOG_USEC=200000)
        wait_healthy(port)
        time.sleep(0.5)
        self.assertEqual(unix_dgram_sockets_of(p.pid), 0, "no datagram socket was even opened")
        self.assertEqual(self.listener.messages, [])
        # The same check sees the socket when NOTIFY_SOCKET is set (it can fail).
        port2 = free_port()
        q = self.start(["--port", str(port2)])
        self.ready(q)
        self.assertEqual(unix_dgram_sockets_of(q.pid), 1)

    def test_abstract_notify_socket(self):
        abstract = Listener(abstract=True)
        try:
            self.assertTrue(abstract.env_value.startswith("@"))
            port = free_port()
            p = self.start(["--port", str(port)], listener=abstract, WATCHDOG_USEC=400000)
            i, _ = abstract.wait_for(has("READY=1"), 30, "READY=1 on the abstract socket")
            abstract.wait_for(is_ping, 5, "a ping on the abstract socket", start=i + 1)
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=15)
            abstract.wait_for(has("STOPPING=1"), 2, "STOPPING=1 on the abstract socket")
        finally:
            abstract.close()

    def test_watchdog_pid_of_another_process_means_no_pings(self):
        port = free_port()
        p = self.start(["--port", str(port)], WATCHDOG_USEC=200000, WATCHDOG_PID=1)
        self.ready(p)
        time.sleep(0.8)
        self.assertEqual(self.listener.matching(is_ping), [], "WATCHDOG_PID names another process")

    def test_fd_option_serves_connections_queued_before_the_start(self):
        sock = listening_socket()
        port = sock.getsockname()[1]
        try:
            # A client connects before the backend exists: the kernel queues it in the backlog.
            early = socket.create_connection(("127.0.0.1", port), timeout=30)
            early.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            p = self.start(["--fd", str(sock.fileno())], _pass_fds=(sock.fileno(),))
            _, (_, msg) = self.ready(p)
            self.assertIn("127.0.0.1:%d (fd %d)" % (port, sock.fileno()), msg)
            reply = b""
            while True:
                chunk = early.recv(65536)
                if not chunk:
                    break
                reply += chunk
            early.close()
            self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply[:200])
        finally:
            sock.close()

    def test_a_queue_met_at_start_is_served_in_batches_without_lowering_the_backlog(self):
        # What a backend restarted behind a held socket meets: many connections, each with its request sent,
        # queued before it starts. All are answered; the first reply does not wait until the whole queue has
        # been accepted and parsed; the socket's backlog (the socket unit's Backlog=) is not lowered.
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(4096)
        port = sock.getsockname()[1]
        self.assertEqual(tcp_info_u32(sock, 28), 4096, "the backlog before the start")
        clients = []
        try:
            for _ in range(300):
                c = socket.create_connection(("127.0.0.1", port), timeout=60)
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                clients.append(c)
            self.assertEqual(tcp_info_u32(sock, 24), 300, "all 300 queued before the start")
            env = env_with(NOTIFY_SOCKET=self.listener.env_value, QUEUE_FD=sock.fileno())
            err = tempfile.TemporaryFile()
            p = subprocess.Popen([PYTHON, "-m", "omnimind_sentinel.serve", "queue_app:app", "--fd", str(sock.fileno()), "--no-access-log"],
                                 env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err, pass_fds=(sock.fileno(),))
            p.err_file = err
            self.procs.append(p)
            self.ready(p)
            replies = [json.loads(read_reply(c).split(b"\r\n\r\n", 1)[1]) for c in clients]
            self.assertEqual(sorted(r["n"] for r in replies), list(range(1, 301)), "every queued request answered once")
            queued_at_first = replies[0]["queued_at_first"]
            self.assertGreater(queued_at_first, 0, "the first reply came only after the whole queue was accepted")
            self.assertEqual(tcp_info_u32(sock, 28), 4096, "the backend lowered the socket's backlog")
        finally:
            for c in clients:
                c.close()
            sock.close()

    def test_a_passed_unix_socket_keeps_its_backlog(self):
        # A Unix socket's backlog cannot be read back: serve must leave the one it was given (systemd's
        # Backlog=), not set Uvicorn's --backlog or the accept batch on it.
        d = tempfile.mkdtemp(prefix="sentinel-unix-")
        path = os.path.join(d, "backend.sock")
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        sock.listen(300)
        clients = []
        try:
            p = self.start(["--fd", str(sock.fileno()), "--backlog", "100"], _pass_fds=(sock.fileno(),))
            self.ready(p)
            p.send_signal(signal.SIGSTOP)  # nothing accepted from now on: the kernel's queue alone holds them
            try:
                for i in range(250):
                    c = socket.socket(socket.AF_UNIX)
                    c.setblocking(False)
                    clients.append(c)
                    try:
                        c.connect(path)
                    except BlockingIOError:
                        self.fail("connection %d refused by a full backlog: the passed socket's backlog was lowered" % (i + 1))
            finally:
                p.send_signal(signal.SIGCONT)
        finally:
            for c in clients:
                c.close()
            sock.close()
            os.unlink(path)
            os.rmdir(d)

    def test_socket_activation_through_listen_fds(self):
        port = free_port()
        env = env_with(NOTIFY_SOCKET=self.listener.env_value)
        err = tempfile.TemporaryFile()
        # systemd's own socket activator: holds the port, starts the backend with LISTEN_FDS on the first connection.
        cmd = ["systemd-socket-activate", "-l", "127.0.0.1:%d" % port, "-E", "NOTIFY_SOCKET", "-E", "PYTHONPATH",
               "/usr/bin/python3", "-m", "omnimind_sentinel.serve", "sample_backend:app", "--app-dir", os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "backend"), "--no-access-log"]
        try:
            p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        except FileNotFoundError:
            self.skipTest("systemd-socket-activate not installed")
        p.err_file = err
        self.procs.append(p)
        deadline = time.monotonic() + 10
        while True:
            try:
                status, body = get("http://127.0.0.1:%d/health" % port, timeout=30)
                break
            except urllib.error.URLError as e:
                if not isinstance(e.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.assertEqual(status, 200)
        _, (_, msg) = self.ready(p)
        self.assertIn("(fd 3)", msg, "the socket systemd passed as fd 3 is the one served")
        kill_quietly(p, signal.SIGTERM)

    def test_usage_errors_exit_2_with_one_line(self):
        for args, needle in (
            (["--workers", "2"], "--workers must be 1"),
            (["--reload"], "--reload is not supported"),
            (["--fd", "nope"], "--fd needs a file descriptor number"),
            (["--fd", "97"], "file descriptor 97 is not a usable socket"),
            (["--accept-batch", "0"], "--accept-batch must be at least 1"),
            (["--accept-batch", "many"], "--accept-batch needs a number of connections"),
            (["--health", "nosuchmodule_xyz:f"], "cannot import module"),
            (["--health", "nosuchpkg_xyz.health:ok"], "cannot import module 'nosuchpkg_xyz.health'"),
            (["--app-dir", "/nonexistent_xyz"], "--app-dir /nonexistent_xyz: no such directory"),
            (["--stuck-request-timeout", "0"], "must be a positive number"),
        ):
            with self.subTest(args=args):
                p = self.start(args, NOTIFY_SOCKET="")
                self.assertEqual(p.wait(timeout=30), 2)
                out = output_of(p)
                self.assertIn(needle, out)
                self.assertEqual(len(out.strip().splitlines()), 1, out)

    def test_without_uvicorn_one_line_says_what_to_install(self):
        # -S: no site directories, so Debian's python3-uvicorn is not importable (a Python of its own, a venv).
        env = env_with(NOTIFY_SOCKET="")
        r = subprocess.run([PYTHON, "-S", "-m", "omnimind_sentinel.serve", "sample_backend:app"], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("cannot import uvicorn", r.stderr)
        self.assertIn("python3-uvicorn", r.stderr)


if __name__ == "__main__":
    unittest.main()
