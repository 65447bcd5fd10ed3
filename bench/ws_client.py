"""A client process of the WebSocket benchmarks: holds many sockets, counts what arrives.

Commands (over stdin) per ``target`` server: ``connect`` a socket per ``[index, session key]``;
``arm``: expect ``expected`` notifications tagged ``tag`` in ``data.b`` (any, with no tag; others
are late), with their latency if asked (receipt minus ``data.t``: ``time.monotonic()`` is
system-wide); ``wait`` for them (at most ``cap`` s, or ``idle`` s of silence), then reopen what
the server closed; ``close``. Counting is by prefix: a client must cost little per message.
"""

import asyncio
import contextlib
import json
import time
from collections import Counter
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.lib.processes import raise_nofile, serve_commands

NOTIFICATION = '{"type": "notification"'  # as json.dumps() writes the app's and the reference's
# No pings from here: the servers ping, and clients answer.
OPTIONS = {"compression": None, "ping_interval": None, "max_size": 2**20, "open_timeout": 120}


class Target:
    def __init__(self, url: str, origin: str) -> None:
        self.url, self.origin = url, origin
        self.sockets: dict[int, ClientConnection] = {}
        self.keys: dict[int, str] = {}  # of every socket, by index
        self.lost: set[int] = set()  # closed by the server, until opened again
        self.codes: Counter[str] = Counter()  # their close codes, since the last arm
        self.readers: set[asyncio.Task[None]] = set()
        self.arm(0, False, "")

    async def read(self, index: int, socket: ClientConnection, hello: asyncio.Future) -> None:
        with contextlib.suppress(Exception):
            async for message in socket:
                if not message.startswith(NOTIFICATION):
                    if not hello.done():
                        hello.set_result(None)
                elif self.tag not in message:
                    self.stale += 1
                else:
                    self.total, self.last = self.total + 1, time.monotonic()
                    self.first = self.first or self.last
                    if self.latencies is not None:
                        sent = json.loads(message)["notification"]["data"]["t"]
                        self.latencies.append(self.last - sent)
                    if self.total >= self.expected:
                        self.reached.set()
        if not hello.done():  # a failed connect: tried again
            hello.set_exception(ConnectionError(f"closed ({socket.close_code})"))
        elif self.sockets.get(index) is socket:  # closed by the server, not by close()
            del self.sockets[index]
            self.lost.add(index)
            self.codes[str(socket.close_code)] += 1

    async def open(self, index: int, key: str) -> None:
        headers = {"Cookie": f"sessionid={key}"}
        url = self.url.format(index=index)
        socket = await connect(url, origin=self.origin, additional_headers=headers, **OPTIONS)
        hello = asyncio.get_running_loop().create_future()
        self.sockets[index] = socket
        self.readers.add(reader := asyncio.create_task(self.read(index, socket, hello)))
        reader.add_done_callback(self.readers.discard)
        try:
            await asyncio.wait_for(hello, 120)
        except BaseException:
            self.sockets.pop(index, None)
            await socket.close()
            raise

    async def connect(self, entries: list[list[Any]], at_once: int = 25) -> dict[str, Any]:
        limit = asyncio.Semaphore(at_once)
        self.keys.update((index, key) for index, key in entries)

        async def one(index: int, key: str) -> None:
            async with limit:
                for attempt in (1, 2, 3):  # daphne may refuse a handshake when busy
                    with contextlib.suppress(Exception):
                        return await self.open(index, key)
                    await asyncio.sleep(attempt)
                raise ConnectionError(f"socket {index} did not open")

        done = await asyncio.gather(*(one(*entry) for entry in entries), return_exceptions=True)
        failed = sum(isinstance(result, BaseException) for result in done)
        return {"connected": len(done) - failed, "failed": failed}

    def arm(self, expected: int, latency: bool, tag: str) -> dict[str, Any]:
        self.codes.clear()
        self.tag = f'"b": "{tag}"' if tag else ""
        self.expected, self.total, self.stale, self.first, self.last = expected, 0, 0, None, None
        self.latencies: list[float] | None = [] if latency else None
        self.reached, self.cpu = asyncio.Event(), time.process_time()
        return {"armed": expected}

    async def wait(self, idle: float, cap: float) -> dict[str, Any]:
        started = time.monotonic()
        while self.total < self.expected:
            timeout = min(started + cap, max(started, self.last or 0) + idle) - time.monotonic()
            if timeout <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.reached.wait(), timeout)
        answer = {"received": self.total, "first": self.first, "last": self.last}
        answer |= {"stale": self.stale, "latencies": self.latencies, "close_codes": {**self.codes}}
        answer |= {"lost_sockets": self.codes.total(), "cpu": time.process_time() - self.cpu}
        if self.lost:  # opened again, so that the next delivery has them all
            lost, self.lost, started = sorted(self.lost), set(), time.monotonic()
            answer["reopened"] = await self.connect([[i, self.keys[i]] for i in lost])
            answer["reopened"]["seconds"] = time.monotonic() - started
        return answer

    async def close(self) -> dict[str, Any]:
        sockets, self.sockets = list(self.sockets.values()), {}
        self.keys.clear()
        closing = [asyncio.wait_for(socket.close(), 10) for socket in sockets]
        await asyncio.gather(*closing, return_exceptions=True)
        return {"closed": len(sockets)}


async def main() -> None:
    targets: dict[str, Target] = {}

    async def handle(command: dict[str, Any]) -> dict[str, Any]:
        cmd, name = command.pop("cmd"), command.pop("target")
        if cmd == "connect":
            target = targets.setdefault(name, Target(command.pop("url"), command.pop("origin")))
            return await target.connect(**command)
        if cmd == "arm":
            return targets[name].arm(**command)
        return await (targets[name].wait if cmd == "wait" else targets[name].close)(**command)

    await serve_commands(handle, {"ready": True, "nofile": raise_nofile()})


if __name__ == "__main__":
    asyncio.run(main())
