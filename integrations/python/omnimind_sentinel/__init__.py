"""omnimind_sentinel: systemd's notify and watchdog protocol for Python ASGI backends, stdlib only.

    python3 -m omnimind_sentinel.serve web.backend.main:app --host 127.0.0.1 --port 8000

or in code: `SentinelMiddleware(app)` (any ASGI app), `async with watchdog(): ...` (a lifespan),
`Notifier` (the raw protocol), `install_stack_dump()` (thread stacks on the watchdog's signal).
See docs/BACKEND.md.
"""
import importlib

__all__ = ["Notifier", "SentinelMiddleware", "Watchdog", "install_stack_dump", "watchdog"]
__version__ = "0.1.0"

# Imported on first use, so `python3 -m omnimind_sentinel.graceful_restart` (a unit's stop hook)
# loads only what it needs and runpy does not find its module imported twice.
_EXPORTS = {
    "Notifier": "notify",
    "SentinelMiddleware": "asgi",
    "Watchdog": "loop_watchdog",
    "watchdog": "loop_watchdog",
    "install_stack_dump": "graceful_restart",
}


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError("module 'omnimind_sentinel' has no attribute %r" % name)
    value = getattr(importlib.import_module("." + module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
