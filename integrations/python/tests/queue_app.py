"""An app for the queued-connections test: each reply says which request it was (in the order the app
handled them) and, for every reply, how many connections still waited in the listening socket's accept
queue when the first request was handled (the listening socket is QUEUE_FD's, a duplicate)."""
import os
import socket
import struct

counter = {"n": 0, "queued_at_first": None}


def queued():
    sock = socket.socket(fileno=os.dup(int(os.environ["QUEUE_FD"])))
    try:
        # for a listening socket tcpi_unacked (after 8 bytes of u8 fields and four u32) is the accept queue's length
        return struct.unpack_from("I", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32), 24)[0]
    finally:
        sock.close()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    counter["n"] += 1
    if counter["queued_at_first"] is None:
        counter["queued_at_first"] = queued()
    body = b'{"n": %d, "queued_at_first": %d}' % (counter["n"], counter["queued_at_first"])
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
