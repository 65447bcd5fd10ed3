"""What ``bench.websocket`` drives: its servers, and the client processes that connect to them
and count every delivery (``ws_client.py``), each delivery's figures, and the run log."""

import argparse
import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from bench.lib.processes import BenchError, Process, cpu_seconds
from bench.lib.report import percentile

REFERENCE = "reference"
PER_USER, BROADCAST = "fan-out, one per user", "fan-out, broadcast to all"
LATENCY, EVERYONE = "latency (paced)", "broadcast to everyone"
# A delivery ends when every message came, after IDLE s of silence, or after CAP s.
IDLE, CAP = 5.0, 120.0


@dataclass
class Server:
    name: str  # REFERENCE or "<server>/<layer>", e.g. "daphne/pubsub"
    process: Process  # the one holding the sockets
    url: str  # with {index}
    origin: str
    trigger: Process  # the sender (app) or the reference itself
    offset: int  # user i's id is offset + i (the reference knows indices only: 0)
    base: int = 0  # user i's session key is the run's keys[base + i]
    rss: dict[int, int] = field(default_factory=dict)  # sockets open -> RSS bytes

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.process.log()


def delivery(server: str, scenario: str, expected: int, sent: dict, answers: list) -> Any:
    """One delivery: what the clients counted of it (``received``, ``lost_sockets``, ``stale``,
    their ``cpu``; ``latencies``, close ``codes``), and the send."""
    d = SimpleNamespace(server=server, scenario=scenario, expected=expected, t0=sent["t0"])
    for key in ("received", "lost_sockets", "stale", "cpu"):
        setattr(d, key, sum(answer[key] for answer in answers))
    d.last = max((a["last"] for a in answers if a["last"]), default=None)
    d.elapsed = d.last - d.t0 if d.last else math.nan
    d.rate, d.missing = d.received / d.elapsed if d.last else 0.0, max(0, expected - d.received)
    d.latencies = [x for a in answers for x in a["latencies"] or []]
    d.codes = sum((Counter(a["close_codes"]) for a in answers), Counter())
    d.sent, d.durations = sent["t_end"] - sent["t0"], sent.get("durations", [])
    return d


class Run:
    def __init__(self, args: argparse.Namespace, keys: list[str]) -> None:
        self.args, self.keys, self.log, self.profiles = args, keys, list[str](), list[str]()
        self.deliveries = 0
        self.clients: list[Process] = []
        self.servers: dict[str, Server] = {}
        self.results: dict[tuple[str, str], list[Any]] = {}
        self.memory: dict[str, list[float]] = {}  # bytes per idle socket, one per repetition
        self.connect_seconds: dict[str, float] = {}

    @property
    def apps(self) -> list[str]:
        return [name for name in self.servers if name != REFERENCE]

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.log.append(text)  # the results file's run log

    async def each(self, server: Server, cmd: str, extra: Callable, seconds: float) -> list:
        command = {"cmd": cmd, "target": server.name}
        calls = [(c.call, command | extra(n), seconds) for n, c in enumerate(self.clients)]
        return await asyncio.gather(*(asyncio.to_thread(*call) for call in calls))

    def mine(self, indices: range | list[int], c: int) -> list[int]:
        return [i for i in indices if i % len(self.clients) == c]

    def check(self, server: Server, answers: list[dict[str, Any]]) -> None:
        if failed := sum(a["failed"] for a in answers):
            raise BenchError(f"{failed} sockets to {server.name} did not open\n{server.log()}")

    async def connect(self, server: Server, indices: range) -> float:
        started = time.monotonic()

        def entries(c: int) -> dict[str, Any]:
            mine = [[i, self.keys[server.base + i]] for i in self.mine(indices, c)]
            return {"url": server.url, "origin": server.origin, "entries": mine}

        self.check(server, await self.each(server, "connect", entries, 300))
        return time.monotonic() - started

    async def close(self, server: Server) -> None:
        await self.each(server, "close", lambda c: {}, 120)

    async def deliver(self, server: Server, scenario: str, indices: range, **how: Any) -> Any:
        """Arm the clients, have the sender (or the reference) send, wait for every message.
        ``how``: ``rounds`` or ``paced`` sends; ``key``, where the result is kept, if it is."""
        args, paced, rounds = self.args, how.get("paced", 0), how.get("rounds", 1)
        span, is_app = [indices[0], indices[-1] + 1], server.name != REFERENCE
        sequence = [indices[k % len(indices)] for k in range(paced)] if paced else indices
        each = 1 if paced else rounds  # messages to each socket of the sequence
        expected = [len(self.mine(sequence, c)) * each for c in range(len(self.clients))]
        self.deliveries += 1
        armed = {"latency": bool(paced), "tag": f"d{self.deliveries}"}
        await self.each(server, "arm", lambda c: {"expected": expected[c], **armed}, 30)
        cpu = [cpu_seconds(server.pid), cpu_seconds(server.trigger.pid)]
        command = {"cmd": "paced" if paced else "burst", "offset": server.offset, "rounds": rounds}
        command |= {"count": paced, "interval": args.interval, "broadcast": scenario != PER_USER}
        sent = await asyncio.to_thread(server.trigger.call, command | armed | {"span": span}, 180)
        wait = {"idle": IDLE, "cap": CAP}
        answers = await self.each(server, "wait", lambda c: wait, CAP + 300)
        d = delivery(server.name, scenario, sum(expected), sent, answers)
        d.server_cpu = cpu_seconds(server.pid) - cpu[0]
        d.sender_cpu = cpu_seconds(server.trigger.pid) - cpu[1] if is_app else 0.0
        if "key" in how:  # not a warm-up's or a profile's
            self.results.setdefault((scenario, how["key"]), []).append(d)
            self.report(len(self.results[(scenario, how["key"])]), d)
        if reopened := [a["reopened"] for a in answers if "reopened" in a]:
            count, took = sum(r["connected"] for r in reopened), max(r["seconds"] for r in reopened)
            self.say(f"  {server.name}: reopened {count} closed sockets in {took:.1f} s")
            self.check(server, reopened)
        return d

    def report(self, rep: int, d: Any) -> None:
        closed = d.lost_sockets
        line = f"  rep {rep} {d.scenario:<26} {d.server:<14} {d.received:>6}/{d.expected:<6}"
        line += f" in {d.elapsed:6.3f} s = {d.rate:9,.0f} msg/s"
        if d.latencies:
            line += f"  p50 {1000 * percentile(d.latencies, 0.5):6.1f} ms"
            line += f"  p99 {1000 * percentile(d.latencies, 0.99):6.1f} ms"
        line += f"  [server CPU {d.server_cpu:.2f} s"
        if d.server != REFERENCE:
            line += f", sender CPU {d.sender_cpu:.2f} s, send {d.sent:.2f} s"
        line += f", clients CPU {d.cpu:.2f} s]"
        line += f"  ({d.stale} late ones of an earlier delivery)" if d.stale else ""
        line += f"  MISSING {d.missing}" if d.missing else ""
        line += f"  {d.received - d.expected} TWICE" if d.received > d.expected else ""
        line += f"  SERVER CLOSED {closed} sockets, codes {dict(d.codes)}" if closed else ""
        self.say(line)
