"""python3 -m omnimind_sentinel.serve MODULE:APP [options] [uvicorn options]

Runs an unmodified ASGI application under Uvicorn with the systemd watchdog wired in: READY=1 once
the application's startup has completed and the socket is listening, WATCHDOG=1 every
WATCHDOG_USEC/2 from the event loop while healthy, STATUS=, STOPPING=1 on shutdown, every thread's
stack to stderr on the watchdog's signal. Takes a listening socket from systemd ($LISTEN_FDS) or
`--fd N`. Uses only Uvicorn's public API (Config, Server, the `uvicorn` command's options).
See docs/BACKEND.md#serve.
"""
import importlib
import inspect
import os
import sys

from .asgi import SentinelMiddleware
from .sockets import ACCEPT_BATCH, UsageError, describe_socket, inherited_sockets, parse_accept_batch
from .graceful_restart import install_stack_dump, parse_signal
from .notify import Notifier
from .loop_watchdog import Watchdog

PROG = "python3 -m omnimind_sentinel.serve"
USAGE = """usage: %s MODULE:APP [--fd N] [--accept-batch N] [--health MODULE:FUNC] [--stuck-request-timeout SECONDS]
       [--pid-file PATH] [--watchdog-signal SIG] [--no-stack-dump] [uvicorn options]

Runs the ASGI app MODULE:APP under Uvicorn with the systemd watchdog wired in (READY=1, STATUS=,
WATCHDOG=1 every WATCHDOG_USEC/2 from the event loop, STOPPING=1). Without NOTIFY_SOCKET it sends nothing.

options of the integration:
  --fd N                       serve the listening socket on file descriptor N (any address family);
                               without it, sockets passed by systemd ($LISTEN_FDS/$LISTEN_PID) are used
  --accept-batch N             on a passed socket, accept at most N connections per event-loop turn (default
                               %d), so a queue met at start is served as it is accepted; its backlog is kept
  --health MODULE:FUNC         a callable (plain or async) checked before each ping; falsy or raising
                               withholds the ping, so systemd's watchdog restarts a sick backend
  --stuck-request-timeout S    withhold pings while a request has been running longer than S seconds
  --pid-file PATH              write the PID once ready (for a sentinel pidFile target), removed on exit
  --watchdog-signal SIG        the unit's WatchdogSignal= (default SIGABRT): dump every thread's stack on it
  --no-stack-dump              do not install the stack dump (faulthandler)

examples:
  %s web.backend.main:app --host 127.0.0.1 --port 8000
  %s web.backend.main:app --app-dir /opt/omnimind --health web.backend.main:healthy
  ExecStart=/usr/bin/python3 -m omnimind_sentinel.serve web.backend.main:app   (with omnimind-backend.socket)

Uvicorn's own options follow (--workers and --reload are refused: one process per unit, so the
watchdog watches the process that serves).
""" % (PROG, ACCEPT_BATCH, PROG, PROG)

# Our options and whether they take a value.
OWN_OPTIONS = {"--fd": True, "--accept-batch": True, "--health": True, "--stuck-request-timeout": True, "--pid-file": True, "--watchdog-signal": True, "--no-stack-dump": False}


def split_args(argv):
    """(our options, the rest for uvicorn); `--name value` and `--name=value` both accepted."""
    own = {}
    rest = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in OWN_OPTIONS:
            if not OWN_OPTIONS[name]:
                if eq:
                    raise UsageError("%s takes no value" % name)
                own[name] = True
            elif eq:
                own[name] = value
            else:
                if i + 1 >= len(argv):
                    raise UsageError("%s needs a value" % name)
                own[name] = argv[i + 1]
                i += 1
        else:
            rest.append(arg)
        i += 1
    return own, rest


def import_object(spec, what):
    """`package.module:attr.attr` → the object (like uvicorn's import string)."""
    module_name, sep, attrs = spec.partition(":")
    if not sep or not module_name or not attrs:
        raise UsageError('%s must be "MODULE:ATTRIBUTE", not %r' % (what, spec))
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        # The module or a package above it is missing; an import failing inside the app is the app's own error.
        if e.name is None or (module_name != e.name and not module_name.startswith(e.name + ".")):
            raise
        raise UsageError("%s: cannot import module %r (%s)" % (what, module_name, e)) from None
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise UsageError("%s: %r has no attribute %r" % (what, module_name, attrs)) from None
    return obj


def uvicorn_kwargs(params, config_class):
    """The `uvicorn` command's parsed options as Config(**kwargs), for this Uvicorn's own Config."""
    accepted = inspect.signature(config_class).parameters
    kwargs = {}
    for name, value in params.items():
        if name not in accepted or name in ("app", "fd", "factory"):
            continue
        if isinstance(value, tuple):
            value = list(value) or None
        if name == "headers" and value:
            value = [h.split(":", 1) for h in value]
        if name == "log_config" and value is None:
            continue  # Config's default is Uvicorn's logging setup
        kwargs[name] = value
    return kwargs


def import_uvicorn():
    """Uvicorn (and its click), or one line saying what to install for this Python."""
    try:
        import click
        import uvicorn
    except ImportError as e:
        raise UsageError("cannot import uvicorn with %s (%s): install Debian's python3-uvicorn and python3-fastapi, "
                         "or pip install uvicorn fastapi into this Python" % (sys.executable, e)) from None
    return click, uvicorn


def write_pid_file(path):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % os.getpid())
    os.replace(tmp, path)


def remove_pid_file(path):
    try:
        with open(path) as f:
            if f.read().strip() == str(os.getpid()):
                os.unlink(path)
    except OSError:
        pass


def make_server_class(uvicorn, dog, pid_file, where, logger):
    class SentinelServer(uvicorn.Server):
        """Uvicorn's Server with READY=1 after its startup and STOPPING=1 before its shutdown."""

        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)
            if self.should_exit or not self.started:
                return
            if sockets:
                logger.info("Uvicorn running on %s (Press CTRL+C to quit)", ", ".join(describe_socket(s) for s in sockets))
            if pid_file is not None:
                write_pid_file(pid_file)
            dog.start()
            where.append(dog.notifier.describe())

        async def shutdown(self, sockets=None):
            await dog.stop("stopping: shutting down")
            await super().shutdown(sockets=sockets)

    return SentinelServer


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        try:
            _, uvicorn = import_uvicorn()
        except UsageError as e:
            print("%s: error: %s" % (PROG, e), file=sys.stderr)
            return 2
        uvicorn.main.main(["--help"], prog_name=PROG, standalone_mode=False)
        return 0
    notifier = Notifier()  # reads and removes NOTIFY_SOCKET/WATCHDOG_* before the app can see them
    try:
        own, rest = split_args(argv)
        click, uvicorn = import_uvicorn()

        try:
            ctx = uvicorn.main.make_context(PROG, rest)
        except click.exceptions.Exit as e:
            return e.exit_code
        except click.exceptions.ClickException as e:
            e.show()
            return e.exit_code
        params = dict(ctx.params)
        if params.get("reload"):
            raise UsageError("--reload is not supported: the watchdog must watch the serving process")
        if (params.get("workers") or 1) != 1:
            raise UsageError("--workers must be 1: run one unit per worker so each has its own watchdog")
        watchdog_signal = parse_signal(own.get("--watchdog-signal", "SIGABRT"))
        stuck = own.get("--stuck-request-timeout")
        stuck = None if stuck is None else float(stuck)
        if stuck is not None and stuck <= 0:
            raise UsageError("--stuck-request-timeout must be a positive number of seconds")
        sockets = inherited_sockets(own.get("--fd"))
        batch = parse_accept_batch(own.get("--accept-batch"))
        app_dir = params.get("app_dir")
        if app_dir is not None:
            if not os.path.isdir(app_dir):
                raise UsageError("--app-dir %s: no such directory" % app_dir)
            sys.path.insert(0, app_dir)
        if not own.get("--no-stack-dump"):
            install_stack_dump([watchdog_signal])
        app = import_object(params["app"], "APP")
        if params.get("factory"):
            app = app()
        health = import_object(own["--health"], "--health") if "--health" in own else None
    except (UsageError, ValueError) as e:
        print("%s: error: %s" % (PROG, e), file=sys.stderr)
        return 2
    import logging

    where = ", ".join(describe_socket(s) for s in sockets) if sockets else None
    if where is None:
        where = params.get("uds") or "%s:%s" % (params.get("host"), params.get("port"))
    name = "%s on %s" % (params["app"], where)
    dog = Watchdog(notifier=notifier, health=health)
    wrapped = SentinelMiddleware(app, watchdog=dog, lifecycle=False, stuck_request_timeout=stuck, name=name)
    dog.status = wrapped.status_line
    kwargs = uvicorn_kwargs(params, uvicorn.Config)
    if sockets:
        # asyncio's accept batch; a TCP socket's backlog becomes the larger of its own and --backlog,
        # another socket's stays as it was given (HeldSocket)
        if kwargs.get("backlog"):
            for sock in sockets:
                sock.listen(kwargs["backlog"])
        kwargs["backlog"] = batch
    config = uvicorn.Config(wrapped, **kwargs)
    notified = []
    server = make_server_class(uvicorn, dog, own.get("--pid-file"), notified, logging.getLogger("uvicorn.error"))(config)
    try:
        server.run(sockets=sockets or None)
    finally:
        if own.get("--pid-file"):
            remove_pid_file(own["--pid-file"])
        notifier.close()
    if not server.started:
        return 3  # Uvicorn's own exit status for a failed startup
    return 0


def cli():
    """Console-script entry point (pip install)."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
