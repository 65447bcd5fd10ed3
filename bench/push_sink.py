"""A push service stand-in for the push benchmark: it takes every ``POST /push/<id>`` and counts.

10,000 subscriptions in a run: the sink must never be what is measured. So it is HTTP/1.1 on
asyncio streams, keep-alive and pipelining as the senders' pools use them, bodies by
Content-Length only, and it checks only what is cheap (``Content-Encoding: aes128gcm``, an
``Authorization`` that starts with ``vapid t=``). Whether messages decrypt and sign right is
tests/push_service.py's job, not this one's.

``python -m bench.push_sink --port N`` prints ``ready <port>`` once listening (port 0: any).
``GET /stats`` answers ``{"accepted", "refused", "bytes", "first", "last"}`` (bodies' bytes,
``time.monotonic()`` of the first and last accepted, the same clock in every process of the
machine); ``POST /reset`` zeroes them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from typing import Any

HOST = "127.0.0.1"
MAX_PAYLOAD = 4096  # RFC 8030 §7.2: what a push service must take; a larger body is a 413
MAX_BODY = 1 << 20  # a larger one is not even read: the connection is closed after the 413

_CREATED = b"HTTP/1.1 201 Created\r\nLocation: /message/0\r\nContent-Length: 0\r\n\r\n"
_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    411: b"Length Required",
    413: b"Content Too Large",
}


def _response(status: int, body: bytes, content_type: bytes = b"text/plain") -> bytes:
    return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        status,
        _REASONS[status],
        content_type,
        len(body),
        body,
    )


class Sink:
    """The counters, and the answer to one request (no I/O here)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.accepted, self.refused, self.bytes, self.first, self.last = 0, 0, 0, 0.0, 0.0

    def stats(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "refused": self.refused,
            "bytes": self.bytes,
            "first": self.first,
            "last": self.last,
        }

    def answer(self, method: bytes, path: bytes, headers: dict[bytes, bytes], body: bytes) -> bytes:
        if method == b"POST" and path.startswith(b"/push/"):
            encoding = headers.get(b"content-encoding", b"")
            authorization = headers.get(b"authorization", b"")
            if encoding.strip().lower() != b"aes128gcm" or not authorization.startswith(
                b"vapid t="
            ):
                self.refused += 1
                return _response(400, b"want Content-Encoding: aes128gcm and vapid t=")
            if len(body) > MAX_PAYLOAD:
                self.refused += 1
                return _response(413, b"over 4096 octets")
            now = time.monotonic()
            self.first = self.first or now
            self.accepted, self.bytes, self.last = self.accepted + 1, self.bytes + len(body), now
            return _CREATED
        if path == b"/stats" and method == b"GET":
            return _response(200, json.dumps(self.stats()).encode(), b"application/json")
        if path == b"/reset" and method == b"POST":
            self.reset()
            return _response(200, json.dumps(self.stats()).encode(), b"application/json")
        return _response(404, b"not found")


async def serve_connection(
    sink: Sink, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Requests one after another on a connection (pipelined ones too: they wait in the
    reader), until the client closes it or asks to."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            request_line, *lines = head[:-4].split(b"\r\n")
            method, path, version = request_line.split(b" ", 2)
            headers: dict[bytes, bytes] = {}
            for line in lines:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0"))
            if b"transfer-encoding" in headers or length > MAX_BODY:
                sink.refused += 1
                chunked = b"transfer-encoding" in headers
                writer.write(_response(411 if chunked else 413, b"Content-Length up to 1 MiB"))
                return
            if headers.get(b"expect", b"").lower() == b"100-continue":  # curl's, over 1 KiB
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await reader.readexactly(length) if length else b""
            writer.write(sink.answer(method, path, headers, body))
            connection = headers.get(b"connection", b"").lower()
            if connection == b"close" or (version == b"HTTP/1.0" and connection != b"keep-alive"):
                return
            if writer.transport.get_write_buffer_size() > 1 << 16:
                await writer.drain()
    except (ConnectionError, ValueError, asyncio.IncompleteReadError):
        return  # a malformed request or a peer gone: drop the connection
    finally:
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


async def main(port: int) -> None:
    sink, open_connections = Sink(), dict[asyncio.Task[Any], asyncio.StreamWriter]()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        open_connections[task] = writer
        try:
            await serve_connection(sink, reader, writer)
        finally:
            del open_connections[task]

    server = await asyncio.start_server(
        connection,
        HOST,
        port,
        backlog=4096,  # 10,000 subscriptions: the senders may open many connections at once
    )
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
        # Closed here, the connections' readers see EOF and their handlers return: cancelled
        # by asyncio.run() instead, Python 3.11's streams print a traceback for each.
        for writer in open_connections.values():
            writer.close()
        if open_connections:
            await asyncio.wait(list(open_connections), timeout=2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
