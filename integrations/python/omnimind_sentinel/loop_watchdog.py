"""WATCHDOG=1 from the asyncio event loop itself, withheld while the application is unhealthy.

The pinger is a task on the application's own loop: if the loop is blocked (a synchronous call in
an async handler), or a C call holds the GIL, no ping goes out and the service manager's watchdog
fires. See docs/BACKEND.md#watchdog.
"""
import asyncio
import contextlib
import inspect
import logging

from .notify import Notifier

__all__ = ["Watchdog", "watchdog"]

log = logging.getLogger("omnimind_sentinel")


class Watchdog:
    """Sends READY=1 on `start()`, WATCHDOG=1 every WATCHDOG_USEC/2 while healthy, STOPPING=1 on `stop()`.

    `health` is an optional callable (plain or async) checked before every ping: a falsy result or an
    exception withholds the ping and puts the reason in STATUS=. `checks` are callables returning None
    when fine, else the reason (the ASGI middleware adds its stuck-request check). `status` returns the one-line STATUS= text.
    """

    def __init__(self, notifier=None, health=None, status=None, checks=()):
        self.notifier = notifier if notifier is not None else Notifier()
        self.health = health
        self.status = status
        self.checks = list(checks)
        self.pings = 0
        self.withheld = 0
        self.last_problem = None
        self._task = None
        self._last_status = None

    @property
    def period(self):
        return self.notifier.watchdog_period

    def start(self):
        """READY=1 with the current status, then the pinger on the running loop (if a watchdog is armed)."""
        text = self._status_text(None)
        self._last_status = text
        self.notifier.ready(text)
        if self.period is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, status="stopping"):
        """STOPPING=1 first (the manager then knows the exit is intended), then the pinger ends."""
        self.notifier.stopping(status)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self):
        """None when healthy, else the reason the next ping is withheld."""
        if self.health is not None:
            try:
                result = self.health()
                if inspect.isawaitable(result):
                    result = await asyncio.wait_for(result, timeout=self.period or 1.0)
            except asyncio.TimeoutError:
                return "health check did not answer within %.3g s" % (self.period or 1.0)
            except Exception as e:  # the check's own failure is the reason
                return "health check failed: %s: %s" % (type(e).__name__, e)
            if not result:
                return "health check returned %r" % (result,)
        for problem_of in self.checks:
            problem = problem_of()
            if problem is not None:
                return problem
        return None

    def _status_text(self, problem):
        base = self.status() if self.status is not None else "running"
        return base if problem is None else "%s; watchdog ping withheld: %s" % (base, problem)

    async def _run(self):
        loop = asyncio.get_running_loop()
        period = self.period
        deadline = loop.time()
        while True:
            problem = await self.check()
            text = self._status_text(problem)
            changed = text != self._last_status
            self._last_status = text
            if problem is None:
                self.notifier.ping(text if changed else None)
                self.pings += 1
                if self.last_problem is not None:
                    log.warning("omnimind_sentinel: healthy again; watchdog pings resumed")
            else:
                self.withheld += 1
                if changed:
                    self.notifier.status(text)
                if problem != self.last_problem:
                    log.warning("omnimind_sentinel: watchdog ping withheld: %s", problem)
            self.last_problem = problem
            # A fixed cadence on the loop's clock; after a stall the next ping goes out at once.
            deadline = max(deadline + period, loop.time())
            await asyncio.sleep(deadline - loop.time())


@contextlib.asynccontextmanager
async def watchdog(health=None, status=None, notifier=None):
    """`async with watchdog(): ...` inside an application's lifespan: READY=1 on entry, STOPPING=1 on exit."""
    dog = Watchdog(notifier=notifier, health=health, status=status)
    dog.start()
    try:
        yield dog
    finally:
        await dog.stop()
