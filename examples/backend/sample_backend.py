"""Sample OmniMind backend: a FastAPI app with the faults the sentinel and systemd must handle.

Run it through the integration (examples/backend/serve.py does this from a source checkout):
    python3 -m omnimind_sentinel.serve sample_backend:app --app-dir examples/backend --port 8000

  GET /health          200 {"status": "ok", "pid": ...}
  GET /data?bytes=N    N bytes of payload (TCP retransmission tests)
  GET /thread          starts a short-lived extra thread, answers when it has exited
  GET /tree            what the startup read from $OMNIMIND_SAMPLE_TREE (the vault's live tree)
  GET /hang?seconds=S  blocks the event loop (time.sleep in an async handler; default: for good)
  GET /gil?seconds=S   holds the GIL in a C call (libc sleep through ctypes.PyDLL; default: for good)
  GET /stuck?seconds=S a handler stuck in a worker thread (the loop stays free; default: for good)
  GET /crash           exits at once with status 3

$SAMPLE_BACKEND_STARTUP_DELAY (seconds) makes the startup slow, to show READY=1 waits for it.
"""
import asyncio
import ctypes
import os
import threading
import time

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response

app = FastAPI(title="omnimind sample backend")
FOREVER = 10 ** 7  # seconds: "for good" without overflowing the C unsigned int of sleep(3)
TREE = {"path": None, "files": 0, "bytes": 0}


def read_tree(root):
    """Reads every file under root once: a unit that cannot read the vault's tree fails its startup."""
    files = size = 0
    for dirpath, _dirs, names in os.walk(root, onerror=lambda e: (_ for _ in ()).throw(e)):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as f:
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    size += len(chunk)
            files += 1
    return {"path": root, "files": files, "bytes": size}


@app.on_event("startup")
async def startup():
    delay = float(os.environ.get("SAMPLE_BACKEND_STARTUP_DELAY", "0") or 0)
    if delay > 0:
        await asyncio.sleep(delay)
    root = os.environ.get("OMNIMIND_SAMPLE_TREE")
    if root:
        TREE.update(read_tree(root))


@app.get("/health")
async def health():
    return {"status": "ok", "pid": os.getpid()}


@app.get("/data")
async def data(bytes: int = 1 << 20):
    return Response(b"x" * max(0, min(bytes, 1 << 30)), media_type="application/octet-stream")


@app.get("/thread", response_class=PlainTextResponse)
async def thread():
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    return "thread %d exited\n" % t.native_id


@app.get("/tree")
async def tree():
    return TREE


@app.get("/hang", response_class=PlainTextResponse)
async def hang(seconds: float = FOREVER):
    time.sleep(seconds)  # on the event loop's own thread: nothing else runs meanwhile
    return "hung for %g s\n" % seconds


@app.get("/gil", response_class=PlainTextResponse)
def gil(seconds: int = FOREVER):
    # A worker thread (sync handler) in a C call that never releases the GIL: the event loop's
    # thread cannot run a single bytecode until it returns.
    ctypes.PyDLL(None).sleep(max(0, min(seconds, FOREVER)))
    return "held the GIL for %d s\n" % seconds


@app.get("/stuck", response_class=PlainTextResponse)
def stuck(seconds: float = FOREVER):
    time.sleep(seconds)  # a worker thread; the GIL is released, the loop keeps serving
    return "stuck for %g s\n" % seconds


@app.get("/crash")
async def crash():
    os._exit(3)
