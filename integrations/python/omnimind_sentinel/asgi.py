"""ASGI middleware: the watchdog wired into any ASGI application's lifespan, plus request tracking.

Works with every FastAPI/Starlette version (it only sees ASGI messages): READY=1 when the wrapped
application reports `lifespan.startup.complete`, STOPPING=1 when `lifespan.shutdown` arrives, and a
request running longer than `stuck_request_timeout` withholds the pings. See docs/BACKEND.md#library.
"""
import itertools
import time

from .loop_watchdog import Watchdog

__all__ = ["SentinelMiddleware"]


class SentinelMiddleware:
    """Wraps an ASGI app. With `lifecycle=False` it only tracks requests (serve.py drives the watchdog)."""

    def __init__(self, app, health=None, stuck_request_timeout=None, notifier=None, watchdog=None, lifecycle=True, name=None):
        self.app = app
        self.name = name or getattr(app, "title", None) or type(app).__name__
        self.stuck_request_timeout = stuck_request_timeout
        self.lifecycle = lifecycle
        self.requests = 0
        self.in_flight = {}
        self._ids = itertools.count()
        checks = [self.stuck_request] if stuck_request_timeout is not None else []
        if watchdog is None:
            watchdog = Watchdog(notifier=notifier, health=health, status=self.status_line, checks=checks)
        else:
            watchdog.checks.extend(checks)
        self.watchdog = watchdog

    def status_line(self):
        return "serving %s; %d requests, %d in flight" % (self.name, self.requests, len(self.in_flight))

    def stuck_request(self):
        """A reason when the oldest request in flight has run longer than the timeout, else None."""
        if not self.in_flight:
            return None
        started, what = min(self.in_flight.values())
        age = time.monotonic() - started
        if age <= self.stuck_request_timeout:
            return None
        return "request %s running for %.1f s (limit %g s)" % (what, age, self.stuck_request_timeout)

    async def __call__(self, scope, receive, send):
        kind = scope.get("type")
        if kind == "lifespan":
            if self.lifecycle:
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        key = next(self._ids)
        self.requests += 1
        self.in_flight[key] = (time.monotonic(), "%s %s" % (scope.get("method", "WS"), scope.get("path", "")))
        try:
            await self.app(scope, receive, send)
        finally:
            del self.in_flight[key]

    async def _lifespan(self, scope, receive, send):
        async def receive_wrapper():
            message = await receive()
            if message.get("type") == "lifespan.shutdown":
                await self.watchdog.stop("stopping: lifespan shutdown")
            return message

        async def send_wrapper(message):
            if message.get("type") == "lifespan.startup.complete":
                self.watchdog.start()
            await send(message)

        await self.app(scope, receive_wrapper, send_wrapper)
