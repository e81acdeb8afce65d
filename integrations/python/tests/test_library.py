"""The library forms (ASGI middleware, lifespan context manager) under plain Uvicorn, and the pieces alone."""
import asyncio
import os
import signal
import subprocess
import tempfile
import time
import unittest

from support import PYTHON, Listener, env_with, free_port, has, wait_healthy

from omnimind_sentinel import Notifier, Watchdog, notify
from omnimind_sentinel.notify import notify_address, one_line, watchdog_usec


class NotifierTest(unittest.TestCase):
    def test_no_notify_socket_means_no_op(self):
        n = Notifier(environ={"WATCHDOG_USEC": "1000000"})
        self.assertFalse(n.enabled)
        self.assertIsNone(n.watchdog_period)
        self.assertFalse(n.ready("x"))
        self.assertFalse(n.ping())
        self.assertIsNone(n._sock, "no socket is opened")

    def test_addresses(self):
        self.assertEqual(notify_address("@name"), "\0name")
        self.assertEqual(notify_address("/run/systemd/notify"), "/run/systemd/notify")
        self.assertIsNone(notify_address("relative/path"))
        self.assertIsNone(notify_address("vsock:2:1234"))
        self.assertIsNone(notify_address("@"))

    def test_watchdog_usec_and_pid_as_sd_watchdog_enabled(self):
        self.assertEqual(watchdog_usec({"WATCHDOG_USEC": "3000000"}), 3000000)
        self.assertEqual(watchdog_usec({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}), 3000000)
        self.assertIsNone(watchdog_usec({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}))
        self.assertIsNone(watchdog_usec({"WATCHDOG_USEC": "0"}))
        self.assertIsNone(watchdog_usec({"WATCHDOG_USEC": "soon"}))
        self.assertIsNone(watchdog_usec({}))

    def test_environment_read_once_then_removed(self):
        saved = {k: os.environ.get(k) for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        try:
            notify._inherited = None
            os.environ.update(NOTIFY_SOCKET="@x", WATCHDOG_USEC="100", WATCHDOG_PID=str(os.getpid()))
            n = Notifier()
            self.assertEqual(n.watchdog_usec, 100)
            for k in saved:
                self.assertNotIn(k, os.environ, "children of the app do not inherit it")
            self.assertEqual(Notifier().describe(), "@x", "a second Notifier in the process sees the same manager")
        finally:
            notify._inherited = None
            for k, v in saved.items():
                if v is not None:
                    os.environ[k] = v

    def test_status_is_one_bounded_line(self):
        self.assertEqual(one_line("a\nb\r\n  c"), "a b c")
        self.assertEqual(len(one_line("x" * 5000)), 512)

    def test_a_vanished_manager_socket_is_not_an_error(self):
        n = Notifier(environ={"NOTIFY_SOCKET": "/nonexistent/notify"})
        self.assertTrue(n.enabled)
        self.assertFalse(n.ready())
        n.close()


class WatchdogUnitTest(unittest.TestCase):
    def test_health_check_reasons(self):
        async def run():
            l = Listener()
            try:
                n = Notifier(environ={"NOTIFY_SOCKET": l.env_value, "WATCHDOG_USEC": "100000"})
                dog = Watchdog(notifier=n, health=lambda: False)
                self.assertEqual(await dog.check(), "health check returned False")
                dog.health = lambda: 1 / 0
                self.assertRegex(await dog.check(), "ZeroDivisionError")

                async def slow():
                    await asyncio.sleep(10)
                dog.health = slow
                self.assertRegex(await dog.check(), "did not answer within")
                dog.health = lambda: True
                dog.checks.append(lambda: "request GET /x running")
                self.assertEqual(await dog.check(), "request GET /x running")
            finally:
                l.close()
        asyncio.run(run())


class LibraryUnderUvicornTest(unittest.TestCase):
    def run_app(self, target, **env):
        listener = Listener()
        port = free_port()
        err = tempfile.TemporaryFile()
        p = subprocess.Popen([PYTHON, "-m", "uvicorn", target, "--port", str(port), "--no-access-log"],
                             env=env_with(NOTIFY_SOCKET=listener.env_value, WATCHDOG_USEC=400000, **env), cwd=os.path.dirname(__file__),
                             stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        try:
            t0 = time.monotonic()
            i, (t_ready, msg) = listener.wait_for(has("READY=1"), 30, "READY=1")
            listener.wait_for(has("WATCHDOG=1"), 5, "a ping", start=i + 1)
            wait_healthy(port)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=15), 0)
            listener.wait_for(has("STOPPING=1"), 2, "STOPPING=1")
            return t_ready - t0, msg
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            err.close()
            listener.close()

    def test_middleware_on_fastapi_sends_ready_after_startup(self):
        took, msg = self.run_app("lib_app:middleware_app", STARTUP_DELAY="0.8")
        self.assertGreaterEqual(took, 0.8, "READY=1 waited for the app's startup")
        self.assertIn("STATUS=serving FastAPI", msg)

    def test_lifespan_context_manager(self):
        _, msg = self.run_app("lib_app:lifespan_app")
        self.assertIn("STATUS=starlette sample", msg)


if __name__ == "__main__":
    unittest.main()
