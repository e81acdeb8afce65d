#!/usr/bin/env python3
"""An MCP-server-like OmniMind worker, standard library only: the second service of the samples.

JSON-RPC 2.0 over HTTP, the way MCP's streamable HTTP transport carries it (JSON replies only):

    POST /mcp      initialize, ping, tools/list, tools/call (tools: phi_files, echo)
    GET  /health   {"status": "ok", "pid": ...}
    GET  /hang     blocks the event loop (?seconds=S, default for good)
    GET  /crash    exits with status 3

It speaks the service manager's protocol through omnimind_sentinel (READY=1 once it listens,
WATCHDOG=1 from its event loop, STOPPING=1 on SIGTERM, every thread's stack on SIGABRT), so it is
kept alive the same way as the backend, by systemd or by the sentinel. See docs/BACKEND.md#services.

    /usr/bin/python3 examples/mcp-worker/mcp_worker.py --port 8100   (from a source checkout)
"""
import argparse
import asyncio
import json
import os
import signal
import sys
import time
from urllib.parse import parse_qs, urlsplit

try:
    from omnimind_sentinel import Watchdog, install_stack_dump
except ImportError:  # a source checkout: the package next to this file
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "integrations", "python"))
    from omnimind_sentinel import Watchdog, install_stack_dump

PROTOCOL_VERSION = "2025-03-26"
MAX_BODY = 1 << 20
TOOLS = [
    {"name": "phi_files", "description": "the files of the live Phi-engine tree", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "echo", "description": "returns its text", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
]


class Worker:
    def __init__(self, tree):
        self.tree = tree
        self.calls = 0

    def status(self):
        return "mcp worker pid %d; %d calls" % (os.getpid(), self.calls)

    def rpc(self, msg):
        """One JSON-RPC request → its reply (None for a notification)."""
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0" or not isinstance(msg.get("method"), str):
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
        if "id" not in msg:
            return None
        method, params, rid = msg["method"], msg.get("params") or {}, msg["id"]
        self.calls += 1
        if method == "initialize":
            result = {"protocolVersion": PROTOCOL_VERSION, "capabilities": {"tools": {}}, "serverInfo": {"name": "omnimind-mcp-worker", "version": "0.1.0"}}
        elif method == "ping":
            result = {}
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call" and params.get("name") == "phi_files":
            result = {"content": [{"type": "text", "text": "\n".join(self.files())}]}
        elif method == "tools/call" and params.get("name") == "echo":
            result = {"content": [{"type": "text", "text": str((params.get("arguments") or {}).get("text", ""))}]}
        elif method == "tools/call":
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": "unknown tool %r" % params.get("name")}}
        else:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "method not found: %s" % method}}
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    def files(self):
        out = []
        for root, _dirs, names in os.walk(self.tree):
            out.extend(os.path.relpath(os.path.join(root, n), self.tree) for n in names)
        return sorted(out)

    async def handle(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ")[:2]
            headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
            length = int(headers.get("content-length", "0"))
            if length > MAX_BODY:
                return await reply(writer, 413, {"error": "body too large"})
            body = await reader.readexactly(length) if length else b""
            url = urlsplit(target)
            query = parse_qs(url.query)
            if method == "GET" and url.path == "/health":
                return await reply(writer, 200, {"status": "ok", "pid": os.getpid()})
            if method == "GET" and url.path == "/hang":
                seconds = float(query.get("seconds", ["1e9"])[0])
                time.sleep(seconds)  # on purpose: the event loop stops, so do the watchdog pings
                return await reply(writer, 200, {"slept": seconds})
            if method == "GET" and url.path == "/crash":
                os._exit(3)
            if method == "POST" and url.path == "/mcp":
                try:
                    msg = json.loads(body)
                except ValueError:
                    return await reply(writer, 400, {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
                out = self.rpc(msg)
                return await reply(writer, 202 if out is None else 200, out)
            return await reply(writer, 404, {"error": "not found"})
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            writer.close()


async def reply(writer, code, value):
    body = b"" if value is None else json.dumps(value).encode()
    reason = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large"}[code]
    writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (code, reason.encode(), len(body), body))
    try:
        await writer.drain()
    finally:
        writer.close()


async def main(args):
    worker = Worker(args.tree)
    server = await asyncio.start_server(worker.handle, args.host, args.port)
    watchdog = Watchdog(status=worker.status)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.pid_file:
        with open(args.pid_file + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(args.pid_file + ".tmp", args.pid_file)
    watchdog.start()  # READY=1: the socket listens
    try:
        await stop.wait()
    finally:
        await watchdog.stop()
        server.close()
        await server.wait_closed()
        if args.pid_file:
            try:
                os.unlink(args.pid_file)
            except FileNotFoundError:
                pass


def parse(argv):
    p = argparse.ArgumentParser(prog="mcp_worker.py", description="An MCP-server-like OmniMind worker (JSON-RPC over HTTP).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--tree", default=os.environ.get("OMNIMIND_SAMPLE_TREE", os.getcwd()), help="the tree phi_files lists (default: $OMNIMIND_SAMPLE_TREE or the working directory)")
    p.add_argument("--pid-file")
    return p.parse_args(argv)


if __name__ == "__main__":
    install_stack_dump()
    asyncio.run(main(parse(sys.argv[1:])))
