"""The unit's stop hook: what it extracts, what it sends, and when it stays silent."""
import io
import json
import os
import socket
import tempfile
import threading
import unittest
from contextlib import redirect_stderr, redirect_stdout

from omnimind_sentinel import graceful_restart as gr

DUMP = """INFO:     Application startup complete.
Fatal Python error: Aborted

Thread 0x00007f0000000001 (most recent call first):
  File "/usr/lib/python3.11/threading.py", line 320 in wait
Current thread 0x00007f0000000002 (most recent call first):
  File "/opt/x/sample_backend.py", line 97 in gil
""".splitlines()


class FakeControlSocket:
    """A control socket that records one request line and answers it."""

    def __init__(self, reply):
        self.dir = tempfile.mkdtemp(prefix="sentinel-ctl-")
        self.path = os.path.join(self.dir, "s.sock")
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(1)
        self.requests = []
        self.reply = reply
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        conn, _ = self.srv.accept()
        with conn:
            buf = b""
            while not buf.endswith(b"\n"):
                buf += conn.recv(65536)
            self.requests.append(json.loads(buf))
            conn.sendall(json.dumps(self.reply).encode() + b"\n")

    def close(self):
        self.srv.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


class GracefulRestartTest(unittest.TestCase):
    def test_stack_section_starts_at_the_dump(self):
        section = gr.stack_section(DUMP)
        self.assertEqual(section[0], "Fatal Python error: Aborted")
        self.assertIn('  File "/opt/x/sample_backend.py", line 97 in gil', section)
        self.assertNotIn("INFO:     Application startup complete.", section)
        self.assertEqual(gr.stack_section(["nothing", "here"]), [])

    def test_stack_section_is_bounded(self):
        lines = ["Fatal Python error: Aborted"] + ["  File \"x.py\", line %d in f %s" % (i, "y" * 2000) for i in range(1000)]
        section = gr.stack_section(lines)
        self.assertLessEqual(len(section), gr.EVIDENCE_MAX_LINES)
        self.assertLessEqual(sum(len(l) for l in section), gr.EVIDENCE_MAX_CHARS)
        self.assertTrue(all(len(l) <= gr.LINE_MAX_CHARS for l in section))

    def test_other_results_are_left_alone(self):
        for result in ("success", "signal", "exit-code", ""):
            with self.subTest(result=result):
                self.assertEqual(gr.main(["--unit", "b.service", "--socket", "/nonexistent"], env={"SERVICE_RESULT": result}), 0)

    def test_watchdog_result_is_sent_with_the_evidence_note(self):
        ctl = FakeControlSocket({"ok": True, "op": "service-event", "result": {"seq": 7}})
        try:
            env = {"SERVICE_RESULT": "watchdog", "EXIT_CODE": "dumped", "EXIT_STATUS": "ABRT"}
            out = io.StringIO()
            with redirect_stdout(out):
                code = gr.main(["--unit", "omnimind-backend.service", "--socket", ctl.path, "--wait", "0"], env=env)
            self.assertEqual(code, 0)
            req = ctl.requests[0]
            self.assertEqual(req["op"], "service-event")
            self.assertEqual(req["unit"], "omnimind-backend.service")
            self.assertEqual(req["result"], "watchdog")
            self.assertEqual(req["message"], "backend hung: watchdog")
            self.assertEqual((req["exitCode"], req["exitStatus"]), ("dumped", "ABRT"))
            self.assertEqual(req["evidence"], [])
            self.assertIn("not run by systemd", req["evidenceNote"])
        finally:
            ctl.close()

    def test_a_refusal_or_a_missing_sentinel_exits_1_with_one_line(self):
        ctl = FakeControlSocket({"ok": False, "error": {"code": "usage", "message": "bad request field(s): unit"}})
        try:
            err = io.StringIO()
            with redirect_stderr(err):
                self.assertEqual(gr.main(["--unit", "x", "--socket", ctl.path, "--wait", "0"], env={"SERVICE_RESULT": "watchdog"}), 1)
            self.assertIn("refused the event: usage", err.getvalue())
        finally:
            ctl.close()
        err = io.StringIO()
        with redirect_stderr(err):
            self.assertEqual(gr.main(["--unit", "x", "--socket", "/nonexistent/s.sock", "--wait", "0"], env={"SERVICE_RESULT": "watchdog"}), 1)
        self.assertEqual(len(err.getvalue().strip().splitlines()), 1)

    def test_parse_signal(self):
        import signal
        self.assertEqual(gr.parse_signal("SIGABRT"), signal.SIGABRT)
        self.assertEqual(gr.parse_signal("usr1"), signal.SIGUSR1)
        self.assertEqual(gr.parse_signal("6"), signal.SIGABRT)
        with self.assertRaises(ValueError):
            gr.parse_signal("SIGNOPE")


if __name__ == "__main__":
    unittest.main()
