#!/usr/bin/env python3
"""Tiny sample OmniMind backend for the sentinel's recovery demo and tests.

Usage: python3 server.py [--port 8000] [--bind 127.0.0.1] [--pid-file PATH]

  GET /health        200 "ok" (each request is served by its own thread, which then exits)
  GET /data?bytes=N  N bytes of payload (for the TCP retransmission test)
  GET /thread        starts a short-lived extra thread, answers when it has exited
  GET /hang          from now on every request is accepted but never answered (a "stuck GIL")
  GET /crash         exits at once with status 3
  SIGUSR1            same as /hang
"""
import argparse
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

HUNG = threading.Event()
FOREVER = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):  # keep the demo quiet
        pass

    def reply(self, body, status=200):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if HUNG.is_set():
            FOREVER.wait()  # accepted, never answered
        url = urlparse(self.path)
        if url.path == "/health":
            self.reply(b"ok\n")
        elif url.path == "/data":
            n = int(parse_qs(url.query).get("bytes", ["1048576"])[0])
            self.reply(b"x" * n)
        elif url.path == "/thread":
            t = threading.Thread(target=lambda: None)
            t.start()
            t.join()
            self.reply(("thread %d exited\n" % t.native_id).encode())
        elif url.path == "/hang":
            HUNG.set()
            self.reply(b"hanging from now on\n")
        elif url.path == "/crash":
            os._exit(3)
        else:
            self.reply(b"not found\n", 404)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--pid-file")
    a = p.parse_args()
    signal.signal(signal.SIGUSR1, lambda *_: HUNG.set())
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer((a.bind, a.port), Handler)
    if a.pid_file:
        tmp = a.pid_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, a.pid_file)
    print("backend listening on %s:%d pid %d" % (a.bind, a.port, os.getpid()), file=sys.stderr, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
