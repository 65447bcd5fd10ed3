"""A WebSocket client process of the benchmark: holds many sockets and counts what arrives.

``python -m bench.ws_client``; driven over stdin by ``bench.websocket`` (JSON lines, see
``bench.ws_common``). Commands, each for one ``target`` (a server: its sockets are kept apart):

- ``connect``: open one socket per ``(index, session key)`` to ``url`` (``{index}`` is replaced),
  with the session cookie and ``Origin``, at most ``concurrency`` handshakes at a time; a socket
  counts as connected once its first message (``hello``) has arrived; a failed one is retried
  (``attempts``), and the retries are reported;
- ``arm``: zero the counters and expect ``expected`` notification messages in all, those whose
  ``notification.data.b`` is ``tag`` (others are late ones of an earlier delivery: counted apart),
  optionally recording each one's latency: receipt clock minus ``notification.data.t``;
- ``wait``: until that many arrived, or nothing arrived for ``idle`` s, or ``cap`` s passed;
  answers the count, per-socket minimum and maximum, sockets short of ``per_socket``, the first
  and last receipt (``time.monotonic()``, which is system-wide on Linux) and this process's CPU;
- ``reconnect``: open again the sockets the server closed since they were opened (a delivery
  reports how many were closed, and with which codes);
- ``close``: close the target's sockets.

Notification messages are counted per socket by their prefix (no JSON parsing unless latencies
are recorded), so that the client costs as little as it can per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.ws_common import NOTIFICATION_PREFIX, raise_nofile, reply, serve_commands


class Target:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sockets: dict[int, ClientConnection] = {}
        self.readers: dict[int, asyncio.Task] = {}
        self.counts: dict[int, int] = {}
        self.total = 0
        self.expected: int | None = None
        self.reached = asyncio.Event()
        self.first: float | None = None
        self.last: float | None = None
        self.latencies: list[float] | None = None
        self.span = range(0)
        self.tag = ""  # the armed delivery's marker: '"b": "<tag>"' in notification.data
        self.stale = 0  # notifications of an earlier delivery (late) since the last arm
        self.others = 0  # messages that are neither hello nor notification
        self.lost_sockets = 0  # closed by the server or the network since the last arm
        self.lost: set[int] = set()  # their indices, until reconnected
        self.close_codes: Counter = Counter()  # their close codes, since the last arm
        self.entries: dict[int, str | None] = {}  # index -> session key, of every socket
        self.url = self.origin = ""
        self.closing = False
        self.cpu0 = time.process_time()

    async def read(self, index: int, websocket: ClientConnection, hello: asyncio.Future) -> None:
        counts = self.counts
        try:
            async for message in websocket:
                now = time.monotonic()
                if message.startswith(NOTIFICATION_PREFIX):
                    if self.tag not in message:
                        self.stale += 1
                        continue
                    counts[index] += 1
                    self.total += 1
                    if self.first is None:
                        self.first = now
                    self.last = now
                    if self.latencies is not None:
                        sent = json.loads(message)["notification"]["data"]["t"]
                        self.latencies.append(now - sent)
                    if self.expected is not None and self.total >= self.expected:
                        self.reached.set()
                elif not hello.done():
                    hello.set_result(message)
                else:
                    self.others += 1
        except ConnectionClosed:
            pass
        finally:
            if not hello.done():  # a failed connect: reported (and retried) by connect()
                code = websocket.close_code
                hello.set_exception(ConnectionError(f"closed before hello (code {code})"))
            elif not self.closing:
                self.lost_sockets += 1
                self.lost.add(index)
                self.close_codes[str(websocket.close_code)] += 1
                if self.sockets.get(index) is websocket:
                    del self.sockets[index]

    async def connect(
        self,
        url: str,
        origin: str,
        entries: list[list],
        concurrency: int,
        seconds: float,
        attempts: int,
    ) -> dict[str, Any]:
        limit = asyncio.Semaphore(concurrency)
        errors: list[str] = []
        started = time.monotonic()
        retries = 0
        self.url, self.origin = url, origin
        self.entries.update((index, key) for index, key in entries)

        async def attempt(index: int, key: str | None) -> None:
            headers = {"Cookie": f"sessionid={key}"} if key else {}
            websocket = await connect(
                url.format(index=index),
                origin=origin,
                additional_headers=headers,
                compression=None,
                ping_interval=None,  # the servers ping; clients answer
                open_timeout=seconds,
                close_timeout=5,
                max_size=2**20,
            )
            hello = asyncio.get_running_loop().create_future()
            self.counts[index] = 0
            self.sockets[index] = websocket
            self.readers[index] = asyncio.create_task(self.read(index, websocket, hello))
            try:
                await asyncio.wait_for(hello, seconds)
            except BaseException:
                self.sockets.pop(index, None)
                self.counts.pop(index, None)
                with contextlib.suppress(Exception):
                    await websocket.close()
                raise

        async def one(index: int, key: str | None) -> None:
            nonlocal retries
            async with limit:
                for attempt_number in range(attempts):
                    try:
                        await attempt(index, key)
                        return
                    except Exception as exc:
                        if len(errors) < 5:
                            errors.append(f"{type(exc).__name__}: {exc}")
                        if attempt_number == attempts - 1:
                            raise
                        retries += 1
                        await asyncio.sleep(0.5 * 2**attempt_number)

        results = await asyncio.gather(*(one(i, k) for i, k in entries), return_exceptions=True)
        failed = sum(1 for r in results if isinstance(r, BaseException))
        return {
            "connected": len(entries) - failed,
            "failed": failed,
            "retries": retries,
            "errors": errors,
            "seconds": time.monotonic() - started,
            "sockets": len(self.sockets),
        }

    async def reconnect(self, concurrency: int, seconds: float, attempts: int) -> dict[str, Any]:
        """Open again the sockets the server closed (so that the next delivery has them all)."""
        entries = [[index, self.entries[index]] for index in sorted(self.lost)]
        self.lost.clear()
        return await self.connect(self.url, self.origin, entries, concurrency, seconds, attempts)

    def arm(self, expected: int, latency: bool, tag: str, span: list[int]) -> dict[str, Any]:
        for index in self.counts:
            self.counts[index] = 0
        self.tag = f'"b": "{tag}"'
        self.span = range(*span)  # the indices this delivery is for (per-socket checks)
        self.stale = 0
        self.lost_sockets = 0
        self.close_codes.clear()
        self.total = 0
        self.first = self.last = None
        self.others = 0
        self.latencies = [] if latency else None
        self.expected = expected
        self.reached.clear()
        if expected <= 0:
            self.reached.set()
        self.cpu0 = time.process_time()
        return {"armed": expected, "sockets": len(self.sockets), "lost_sockets": self.lost_sockets}

    async def wait(self, idle: float, cap: float, per_socket: int | None) -> dict[str, Any]:
        started = time.monotonic()
        deadline = started + cap
        while not self.reached.is_set():
            now = time.monotonic()
            quiet_until = max(started, self.last or 0.0) + idle
            timeout = min(deadline, quiet_until) - now
            if timeout <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.reached.wait(), timeout)
        counts = [c for i, c in self.counts.items() if i in self.span]
        short = sum(1 for c in counts if per_socket is not None and c < per_socket)
        extra = sum(1 for c in counts if per_socket is not None and c > per_socket)
        cpu = time.process_time() - self.cpu0
        return {
            "received": self.total,
            "expected": self.expected,
            "first": self.first,
            "last": self.last,
            "min_per_socket": min(counts, default=0),
            "max_per_socket": max(counts, default=0),
            "short_sockets": short,
            "extra_sockets": extra,
            "others": self.others,
            "stale": self.stale,
            "lost_sockets": self.lost_sockets,
            "close_codes": dict(self.close_codes),
            "latencies": self.latencies,
            "cpu": cpu,
            "waited": time.monotonic() - started,
        }

    async def close(self, concurrency: int = 200) -> dict[str, Any]:
        self.closing = True
        limit = asyncio.Semaphore(concurrency)

        async def one(websocket: ClientConnection) -> None:
            async with limit:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(websocket.close(), 10)

        count = len(self.sockets)
        await asyncio.gather(*(one(ws) for ws in self.sockets.values()))
        for task in self.readers.values():
            task.cancel()
        await asyncio.gather(*self.readers.values(), return_exceptions=True)
        self.sockets.clear()
        self.readers.clear()
        self.counts.clear()
        self.entries.clear()
        self.lost.clear()
        self.closing = False
        return {"closed": count}


class Client:
    def __init__(self) -> None:
        self.targets: dict[str, Target] = {}

    def target(self, name: str) -> Target:
        if name not in self.targets:
            self.targets[name] = Target(name)
        return self.targets[name]

    async def command(self, command: dict[str, Any]) -> dict[str, Any] | None:
        name = command["cmd"]
        if name == "quit":
            for target in self.targets.values():
                await target.close()
            return None
        target = self.target(command["target"])
        if name == "connect":
            return await target.connect(
                command["url"],
                command["origin"],
                command["entries"],
                command.get("concurrency", 50),
                command.get("timeout", 60.0),
                command.get("attempts", 3),
            )
        if name == "reconnect":
            return await target.reconnect(
                command.get("concurrency", 50), command.get("timeout", 60.0), 3
            )
        if name == "arm":
            return target.arm(
                command["expected"], command.get("latency", False), command["tag"], command["span"]
            )
        if name == "wait":
            return await target.wait(command["idle"], command["cap"], command.get("per_socket"))
        if name == "close":
            return await target.close()
        raise ValueError(f"unknown command {name!r}")


async def main() -> None:
    limit = raise_nofile()
    client = Client()
    reply({"ready": True, "nofile": limit})
    await serve_commands(client.command)


if __name__ == "__main__":
    asyncio.run(main())
