"""Benchmark of the WebSocket path (fan-out, latency, broadcast, memory) against `websockets`.

``make bench`` (after the polling benchmark; options in ``WS_BENCH_ARGS``, e.g.
``make bench WS_BENCH_ARGS=--quick``), or ``.venv/bin/python -m bench.websocket [--quick]
[--profile]``, does in order:

1. drops and recreates a PostgreSQL database (``notif_wsbench``), migrates it, and creates
   ``--broadcast-users`` users, each signed in with a session of its own (a row in the session table
   and its copy in the session cache, as ``cached_db`` keeps them: ``bench/ws_seed.py``); flushes
   Redis database 10;
2. starts, side by side: the bare reference (``bench/ws_reference.py``, a few lines of
   ``websockets`` serving the same JSON), and for each channel layer (``CHANNEL_LAYER=pubsub`` and
   ``core``) one daphne process and one sender process (``bench/ws_sender.py``, which calls
   ``notify()``); and ``--clients`` client processes (``bench/ws_client.py``) that open every socket
   with a real session cookie and ``Origin``, and count every message per socket;
3. memory (target 4): each server's RSS before and after ``--users`` idle sockets, per socket;
4. fan-out (target 1): with ``--users`` sockets on each server, ``--reps`` interleaved bursts:
   (a) ``--per-user-rounds`` rounds of one ``notify()`` per user in one transaction per round,
   against a reference sending each socket its own JSON; (b) ``--rounds`` rounds of one
   ``notify()`` to the QuerySet of those users (the app's broadcast), against
   ``websockets.broadcast``; delivered
   messages/s = messages received / (last receipt - first send); anything missing is reported;
5. latency (target 2): ``--paced`` single notifications, one every ``--interval`` s, with the same
   sockets idle; ``notify()``-to-receipt p50 and p99, against a reference that commits one row to
   the same PostgreSQL and then sends it to one client;
6. broadcast (target 3): ``--broadcast-users`` sockets on one daphne at a time (the other keeps
   its ``--users`` idle), each repetition interleaved with the reference's broadcast to as many;
   time from the send to the last socket holding the notification, against
   ``websockets.broadcast``;
7. with ``--profile``, while a layer holds all its sockets, samples its daphne (``py-spy --gil``)
   and its sender (``--idle``) during fan-out, paced and broadcast sends, and writes a summary to
   ``bench/results/profile-websocket.md`` (raw stacks beside it, for speedscope);
8. prints one table (figure, baseline, ratio, target, met) and writes it to
   ``bench/results/websocket.md`` (``websocket-quick.md`` with ``--quick``);
9. stops every process it started and drops the database, always (``finally``, SIGTERM/SIGHUP).

Every delivery is bounded: it ends when every expected message has arrived, after ``--idle`` s
without one, or after ``--wait-cap`` s; whatever is missing is reported per socket. Sockets the
server closes during a delivery (the app's watchdog closes with 4013, say) are reported with their
close codes and opened again before the next delivery.

Only ratios measured in the same run mean anything on a shared 2-core machine: the servers run side
by side and every repetition interleaves them (order rotated), so they share the machine's noise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.polling import (
    BIN,
    HOST,
    RESULTS,
    ROOT,
    BenchError,
    Daphne,
    _frame_file,
    _frame_label,
    _raise_exit,
    drop_database,
    ensure_py_spy,
    flush_redis,
    free_port,
    machine_info,
    percentile,
    process_cpu_seconds,
    recreate_database,
    run_checked,
    server_env,
    with_path,
)
from bench.ws_common import raise_nofile

REFERENCE = "reference"
LAYERS = ("pubsub", "core")
PER_USER = "fan-out, one per user"
BROADCAST = "fan-out, broadcast to all"
LATENCY = "latency (paced)"
EVERYONE = "broadcast to everyone"


# Every process this run started and has not stopped yet: main() ends whatever is left of them
# (after SIGTERM, say, the event loop may be gone before every child was stopped).
SPAWNED: set[int] = set()


def stop_leftovers(grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` s, each process of SPAWNED still running (by pid)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pid in sorted(SPAWNED):
            try:
                if os.waitpid(pid, os.WNOHANG) != (0, 0):
                    continue  # it had exited: reaped now
            except ChildProcessError:
                continue  # already reaped (by asyncio's child watcher)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                alive.append(pid)
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            for pid in list(alive):
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG) == (0, 0):
                        continue
                alive.remove(pid)
        if not alive:
            break
    SPAWNED.clear()


class Child:
    """A helper process answering JSON-line commands on stdin/stdout (see ``bench.ws_common``)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.lock = asyncio.Lock()

    async def start(self, seconds: float) -> dict[str, Any]:
        log = self.log_path.open("wb")  # noqa: ASYNC230 (a local file, opened once)
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.args,
                cwd=ROOT,
                env=self.env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                limit=64 * 1024 * 1024,
            )
            SPAWNED.add(self.process.pid)
        finally:
            log.close()
        return await self._read(seconds)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def call(self, command: dict[str, Any], seconds: float) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        async with self.lock:
            self.process.stdin.write(json.dumps(command).encode() + b"\n")
            await self.process.stdin.drain()
            return await self._read(seconds)

    async def _read(self, seconds: float) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), seconds)
        except TimeoutError:
            message = f"{self.name} gave no answer within {seconds:g} s"
            raise BenchError(f"{message}\n{self.log()}") from None
        if not line:
            raise BenchError(f"{self.name} exited ({self.process.returncode})\n{self.log()}")
        answer = json.loads(line)
        if "error" in answer:
            raise BenchError(f"{self.name}: {answer['error']}\n{answer.get('trace', '')}")
        return answer

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(Exception):
            process.stdin.write(b'{"cmd": "quit"}\n')
            await asyncio.wait_for(process.stdin.drain(), 2)
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    def log(self, limit: int = 5000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            text = ""
        return f"--- {self.name} log ({self.log_path}) ---\n{text or '(empty)'}\n--- end ---"


@dataclass
class Server:
    name: str  # REFERENCE or a layer
    pid: int  # the process holding the sockets (for RSS and CPU)
    url: str  # with {index}
    origin: str
    trigger: Child  # the sender (app) or the reference itself
    daphne: Daphne | None = None
    rss: dict[int, int] = field(default_factory=dict)  # sockets open -> RSS bytes


@dataclass
class Delivery:
    server: str
    scenario: str
    expected: int
    received: int
    t0: float
    sent_end: float
    first: float | None
    last: float | None
    short_sockets: int
    lost_sockets: int  # closed by the server during this delivery (reconnected afterwards)
    close_codes: dict[str, int]
    stale: int  # late messages of an earlier delivery, seen during this one
    latencies: list[float]
    server_cpu: float
    sender_cpu: float
    client_cpu: float
    durations: list[float] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return (self.last - self.t0) if self.last is not None else float("nan")

    @property
    def rate(self) -> float:
        return self.received / self.elapsed if self.last is not None else 0.0

    @property
    def missing(self) -> int:
        return max(0, self.expected - self.received)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for pid {pid}")


class Run:
    def __init__(self, args: argparse.Namespace, seeded: dict[str, list]) -> None:
        self.args = args
        self.user_ids: list[int] = seeded["user_ids"]
        self.keys: list[str] = seeded["session_keys"]
        self.clients: list[Child] = []
        self.servers: dict[str, Server] = {}
        self.connected: dict[str, int] = {}
        self.log: list[str] = []
        self.deliveries = 0

    def say(self, text: str, keep: bool = True) -> None:
        print(text, flush=True)
        if keep:  # in the results file's run log
            self.log.append(text)

    # --- sockets ---

    def _share(self, indices: range | list[int], client: int) -> list[int]:
        return [i for i in indices if i % len(self.clients) == client]

    async def connect(self, server: Server, indices: range) -> float:
        """Open one socket per index on ``server``; returns the seconds it took."""
        started = time.monotonic()
        answers = await asyncio.gather(
            *(
                client.call(
                    {
                        "cmd": "connect",
                        "target": server.name,
                        "url": server.url,
                        "origin": server.origin,
                        "entries": [[i, self.keys[i]] for i in self._share(indices, c)],
                        "concurrency": self.args.handshakes,
                        "timeout": 120,
                    },
                    seconds=self.args.connect_cap,
                )
                for c, client in enumerate(self.clients)
            )
        )
        failed = sum(a["failed"] for a in answers)
        retries = sum(a["retries"] for a in answers)
        if retries:
            errors = [e for a in answers for e in a["errors"]]
            self.say(
                f"  {server.name}: {retries} handshakes failed and were retried, e.g. {errors[:2]}"
            )
        if failed:
            errors = [e for a in answers for e in a["errors"]]
            log = server.daphne.log(3000) if server.daphne else server.trigger.log(3000)
            raise BenchError(f"{failed} sockets to {server.name} failed: {errors[:5]}\n{log}")
        self.connected[server.name] = self.connected.get(server.name, 0) + len(indices)
        return time.monotonic() - started

    async def close(self, server: Server) -> None:
        await asyncio.gather(
            *(c.call({"cmd": "close", "target": server.name}, 120) for c in self.clients)
        )
        self.connected[server.name] = 0

    # --- one delivery: arm the clients, send, wait for every message ---

    async def deliver(
        self,
        server: Server,
        scenario: str,
        indices: range,
        *,
        rounds: int = 1,
        paced: int = 0,
    ) -> Delivery:
        args = self.args
        if paced:
            sequence = [indices[k % len(indices)] for k in range(paced)]
            expected = [len(self._share(sequence, c)) for c in range(len(self.clients))]
            per_socket = None
        else:
            expected = [rounds * len(self._share(indices, c)) for c in range(len(self.clients))]
            per_socket = rounds
        self.deliveries += 1
        tag = f"d{self.deliveries}"
        await asyncio.gather(
            *(
                client.call(
                    {
                        "cmd": "arm",
                        "target": server.name,
                        "expected": expected[c],
                        "latency": bool(paced),
                        "tag": tag,
                        "span": [indices[0], indices[-1] + 1],
                    },
                    30,
                )
                for c, client in enumerate(self.clients)
            )
        )
        trigger_pid = server.trigger.pid
        cpu0 = process_cpu_seconds(server.pid)
        sender0 = process_cpu_seconds(trigger_pid) if trigger_pid != server.pid else 0.0
        is_reference = server.name == REFERENCE
        if paced:
            if is_reference:
                command = {"cmd": "paced", "users": list(indices), "count": paced}
            else:
                command = {"cmd": "paced", "ids": [self.user_ids[i] for i in indices]}
                command["count"] = paced
            command["interval"] = args.interval
            command["tag"] = tag
        else:
            mode = "per_user" if scenario == PER_USER else "broadcast"
            if is_reference:
                command = {"cmd": "burst", "mode": mode, "users": list(indices)}
                command.update(rounds=rounds, tag=tag)
            else:
                command = {
                    "cmd": "burst",
                    "mode": "per_user" if mode == "per_user" else "queryset",
                    "lo": self.user_ids[indices[0]],
                    "hi": self.user_ids[indices[-1]],
                    "rounds": rounds,
                    "tag": tag,
                }
        sent = await server.trigger.call(command, seconds=args.send_cap)
        answers = await asyncio.gather(
            *(
                client.call(
                    {
                        "cmd": "wait",
                        "target": server.name,
                        "idle": args.idle,
                        "cap": args.wait_cap,
                        "per_socket": per_socket,
                    },
                    seconds=args.wait_cap + 30,
                )
                for client in self.clients
            )
        )
        lasts = [a["last"] for a in answers if a["last"] is not None]
        firsts = [a["first"] for a in answers if a["first"] is not None]
        delivery = Delivery(
            server=server.name,
            scenario=scenario,
            expected=sum(expected),
            received=sum(a["received"] for a in answers),
            t0=sent["t0"],
            sent_end=sent["t_end"],
            first=min(firsts, default=None),
            last=max(lasts, default=None),
            short_sockets=sum(a["short_sockets"] for a in answers),
            lost_sockets=sum(a["lost_sockets"] for a in answers),
            close_codes=dict(sum((Counter(a["close_codes"]) for a in answers), Counter())),
            stale=sum(a["stale"] for a in answers),
            latencies=[x for a in answers for x in (a["latencies"] or [])],
            server_cpu=process_cpu_seconds(server.pid) - cpu0,
            sender_cpu=(process_cpu_seconds(trigger_pid) - sender0) if not is_reference else 0.0,
            client_cpu=sum(a["cpu"] for a in answers),
            durations=sent.get("durations", []),
        )
        if delivery.lost_sockets:
            await self.reconnect(server)
        return delivery

    async def reconnect(self, server: Server) -> None:
        started = time.monotonic()
        answers = await asyncio.gather(
            *(
                c.call(
                    {
                        "cmd": "reconnect",
                        "target": server.name,
                        "concurrency": self.args.handshakes,
                        "timeout": 120,
                    },
                    self.args.connect_cap,
                )
                for c in self.clients
            )
        )
        failed = sum(a["failed"] for a in answers)
        self.say(
            f"  {server.name}: reopened {sum(a['connected'] for a in answers)} sockets the server"
            f" had closed, in {time.monotonic() - started:.1f} s ({failed} failed)"
        )
        if failed:
            errors = [e for a in answers for e in a["errors"]]
            raise BenchError(f"{failed} sockets to {server.name} could not reopen: {errors[:5]}")

    def report(self, rep: int, d: Delivery, keep: bool = True) -> None:
        wall = d.elapsed
        line = (
            f"  rep {rep + 1} {d.scenario:<26} {d.server:<9} {d.received:>6}/{d.expected:<6}"
            f" in {wall:6.3f} s = {d.rate:9,.0f} msg/s"
        )
        if d.latencies:
            line += (
                f"  p50 {1000 * percentile(d.latencies, 0.5):6.1f} ms"
                f"  p99 {1000 * percentile(d.latencies, 0.99):6.1f} ms"
            )
        line += f"  [server CPU {d.server_cpu:.2f} s"
        if d.server != REFERENCE:
            line += f", sender CPU {d.sender_cpu:.2f} s, send {d.sent_end - d.t0:.2f} s"
        line += f", clients CPU {d.client_cpu:.2f} s]"
        if d.stale:
            line += f"  ({d.stale} late ones of an earlier delivery)"
        if d.missing or d.short_sockets or d.lost_sockets:
            line += f"  MISSING {d.missing} ({d.short_sockets} sockets short)"
        if d.lost_sockets:
            line += f"  SERVER CLOSED {d.lost_sockets} sockets, codes {d.close_codes}"
        self.say(line, keep)


# --- the measurements ----------------------------------------------------------------------------


async def measure(run: Run) -> dict[str, Any]:
    args = run.args
    servers = run.servers
    order = [REFERENCE, *args.layers]
    users = range(args.users)
    everyone = range(args.broadcast_users)
    results: dict[tuple[str, str], list[Delivery]] = {}

    def rotated(index: int) -> list[Server]:
        shift = index % len(order)
        return [servers[name] for name in order[shift:] + order[:shift]]

    # Warm-up: imports, pools, the sender's first notify(): on sockets of users outside the
    # measured set where possible, closed again before the memory baseline.
    warm = range(max(0, args.broadcast_users - args.warmup_sockets), args.broadcast_users)
    run.say(f"warm-up: {len(warm)} sockets per server, one burst of each kind, a few paced sends")
    for server in servers.values():
        await run.connect(server, warm)
        for scenario in (PER_USER, BROADCAST):
            await run.deliver(server, scenario, warm, rounds=1)
        await run.deliver(server, LATENCY, warm, paced=len(warm))
        await run.close(server)
    await asyncio.sleep(2)

    # Target 4: memory per idle socket.
    run.say(f"memory: RSS of each server before and after {args.users} idle sockets")
    connect_seconds: dict[str, float] = {}
    for server in servers.values():
        server.rss[0] = rss_bytes(server.pid)
        connect_seconds[server.name] = await run.connect(server, users)
        await asyncio.sleep(args.settle)
        server.rss[args.users] = rss_bytes(server.pid)
        per = (server.rss[args.users] - server.rss[0]) / args.users
        run.say(
            f"  {server.name:<9} {server.rss[0] / 2**20:7.1f} MiB -> "
            f"{server.rss[args.users] / 2**20:7.1f} MiB: {per:,.0f} B/socket;"
            f" {args.users} connects in {connect_seconds[server.name]:.1f} s"
        )

    # Target 1: fan-out bursts.
    rounds = {PER_USER: args.per_user_rounds, BROADCAST: args.rounds}
    run.say(
        f"fan-out: {args.reps} reps of bursts to {args.users} users: {args.per_user_rounds}"
        f" rounds one per user, {args.rounds} rounds broadcast"
    )
    for rep in range(args.reps):
        for scenario in (PER_USER, BROADCAST):
            for server in rotated(rep):
                d = await run.deliver(server, scenario, users, rounds=rounds[scenario])
                results.setdefault((scenario, server.name), []).append(d)
                run.report(rep, d)

    # Target 2: paced latency with the sockets idle.
    run.say(
        f"latency: {args.latency_reps} reps x {args.paced} single sends, one every"
        f" {1000 * args.interval:g} ms, {args.users} sockets connected"
    )
    for rep in range(args.latency_reps):
        for server in rotated(rep):
            d = await run.deliver(server, LATENCY, users, paced=args.paced)
            results.setdefault((LATENCY, server.name), []).append(d)
            run.report(rep, d)

    # Target 3: broadcast to everyone. One daphne at a time holds the extra sockets (the other
    # keeps its 1,000 idle), each repetition interleaved with the reference's broadcast: a
    # reconnect storm or a wedged process of one layer must not spill into the other's figures.
    reference = servers[REFERENCE]
    extra = range(args.users, args.broadcast_users)
    if len(extra):
        seconds = await run.connect(reference, extra)
        run.say(f"broadcast: {REFERENCE} +{len(extra)} sockets in {seconds:.1f} s")
    profiles = []
    for layer in args.layers:
        server = servers[layer]
        if len(extra):
            seconds = await run.connect(server, extra)
            await asyncio.sleep(args.settle)
            server.rss[args.broadcast_users] = rss_bytes(server.pid)
            run.say(
                f"broadcast: {layer} +{len(extra)} sockets in {seconds:.1f} s;"
                f" RSS {server.rss[args.broadcast_users] / 2**20:.1f} MiB"
            )
        pair = [reference, server]
        for rep in range(args.reps):
            for target in pair[rep % 2 :] + pair[: rep % 2]:
                d = await run.deliver(target, EVERYONE, everyone, rounds=1)
                name = f"{REFERENCE} ({layer}'s turn)" if target is reference else layer
                results.setdefault((EVERYONE, name), []).append(d)
                run.report(rep, d)
        if args.profile:
            profiles.append(await run_profiles(run, layer))
        await run.close(server)  # done with this layer: free its sockets for the next one
    profile = "\n".join(profiles) if profiles else None
    return {"results": results, "connect_seconds": connect_seconds, "profile": profile}


# --- profiling -----------------------------------------------------------------------------------

# (what, function name, path fragment): inclusive share of samples with that frame on the stack.
DAPHNE_FRAMES = (
    ("channel layer: redis-py reading/parsing replies", "", "/redis/"),
    ("channel layer: pub/sub receive loop (_do_receiving)", "_do_receiving", "channels_redis/"),
    ("channel layer: core receive (receive_single, BZPOPMIN)", "receive_single", "channels_redis/"),
    ("channel layer: msgpack deserialize", "deserialize", "channels_redis/"),
    ("consumer: dispatch of the event (AsyncConsumer.dispatch)", "dispatch", "channels/consumer"),
    ("  consumer: notifications_created", "notifications_created", "notifications/consumers"),
    ("  consumer: JSON encoding (encode_json)", "encode_json", "channels/generic/websocket"),
    ("daphne: handle_reply (ASGI send -> protocol)", "handle_reply", "daphne/"),
    ("  autobahn: sendMessage (framing)", "sendMessage", "autobahn/"),
    ("  twisted: transport write", "write", "twisted/internet/"),
    ("twisted: socket writes (doWrite)", "doWrite", "twisted/internet/"),
    ("asyncio: task steps (Task.__step / _run)", "_run", "asyncio/events"),
    ("daphne: timeouts and pings (check_timeouts)", "check_timeouts", "daphne/"),
    ("daphne: application_checker", "application_checker", "daphne/"),
    ("database (psycopg)", "", "/psycopg/"),
)
SENDER_FRAMES = (
    ("notify(): all of it", "notify", "notifications/services"),
    ("  INSERT ... SELECT (services._insert)", "_insert", "notifications/services"),
    ("  validate_content", "validate_content", "notifications/services"),
    ("after commit: outbox flush (receivers)", "flush", "notifications/outbox"),
    ("  per-user counts (counts_by_recipient)", "counts_by_recipient", "notifications/models"),
    ("  version bump (versions.bump)", "bump", "notifications/versions"),
    ("  payloads (serialize)", "serialize", "notifications/protocol"),
    ("  who is online (push.online)", "online", "notifications/push"),
    ("  push.send (hands the batch to the push loop, waits)", "send", "notifications/push"),
    ("    pipelined PUBLISH (push._Publisher.publish)", "publish", "notifications/push"),
    ("    group_send (layers other than pub/sub)", "group_send", "channels_redis/"),
    ("    msgpack serialize", "serialize", "channels_redis/"),
    ("    redis-py (commands, round trips)", "", "/redis/"),
    ("    asgiref (async_to_sync: thread, loop)", "", "asgiref/"),
    ("database (psycopg)", "", "/psycopg/"),
    ("database (Django ORM)", "", "django/db/"),
)
LEAF_CATEGORIES = (
    ("msgpack / channels_redis", "channels_redis/"),
    ("redis-py", "/redis/"),
    ("json", "/json/"),
    ("channels (consumer, layers)", "/channels/"),
    ("notifications app", "/notifications/"),
    ("autobahn (WebSocket framing)", "autobahn/"),
    ("daphne", "daphne/"),
    ("twisted (reactor, transport)", "twisted/"),
    ("asgiref", "asgiref/"),
    ("psycopg", "psycopg"),
    ("django db", "django/db/"),
    ("django other", "django/"),
    ("asyncio", "asyncio/"),
    ("threading / selectors / socket", "threading.py"),
    ("threading / selectors / socket", "selectors.py"),
    ("threading / selectors / socket", "socket.py"),
)


def _thread_name(frame: str) -> str:
    # py-spy --threads: "thread (0x7F01ABCD): MainThread" -> "MainThread"; numbers -> N
    return re.sub(r"\d+", "N", frame.partition(": ")[2] or "unnamed")


def summarise(
    raw_path: Path, frames: tuple, threads: Callable[[str], bool] | None = None, top: int = 25
) -> str:
    """Shares of samples: by thread, then (for the threads ``threads`` accepts) key frames,
    the library of the leaf frame, and the top functions."""
    samples = 0
    by_thread: Counter = Counter()
    keys: Counter = Counter()
    category: Counter = Counter()
    inclusive: Counter = Counter()
    leaf: Counter = Counter()
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        parts = [f for f in stack.split(";") if f]
        thread = next((_thread_name(f) for f in parts if f.startswith("thread ")), "?")
        stack_frames = [f for f in parts if not f.startswith(("thread ", "process "))]
        if not stack_frames:
            continue
        by_thread[thread] += count
        if threads is not None and not threads(thread):
            continue
        samples += count
        files = ["/" + _frame_file(f) for f in stack_frames]
        names = [f.rpartition(" (")[0] for f in stack_frames]
        for what, name, part in frames:
            if any(
                (not name or n == name or n.endswith("." + name)) and part in path
                for n, path in zip(names, files, strict=True)
            ):
                keys[what] += count
        where = next((lbl for lbl, part in LEAF_CATEGORIES if part in files[-1]), "other")
        category[where] += count
        leaf[_frame_label(stack_frames[-1])] += count
        for label in {_frame_label(f) for f in stack_frames}:
            inclusive[label] += count
    total = sum(by_thread.values())
    if not samples:
        return "(no samples)\n"

    def pct(value: int, of: int = 0) -> str:
        return f"{100 * value / (of or samples):5.1f} %"

    out = [f"{total} samples in all; by thread:", ""]
    out += [f"- {pct(n, total)}  {name}" for name, n in by_thread.most_common(8)]
    out += ["", f"Of the {samples} samples of the threads summarised below:", ""]
    out += ["Key costs (inclusive):", ""]
    out += [f"- {pct(keys[what])}  {what}" for what, _, _ in frames]
    out += ["", "Self time by library of the leaf frame:", ""]
    out += [f"- {pct(n)}  {name}" for name, n in category.most_common()]
    out += ["", f"Top {top} functions by inclusive time:", ""]
    out += [f"- {pct(n)}  {name}" for name, n in inclusive.most_common(top)]
    out += ["", "Top 15 functions by self time:", ""]
    out += [f"- {pct(n)}  {name}" for name, n in leaf.most_common(15)]
    return "\n".join(out) + "\n"


def _is_main(thread: str) -> bool:
    return thread == "MainThread"


def _is_loop(thread: str) -> bool:
    # push.py's long-lived loop; async_to_sync's fresh one-thread executors (in-memory layer)
    return thread.startswith(("notifications-push", "ThreadPoolExecutor", "asyncio"))


async def run_profiles(run: Run, layer: str) -> str:
    args = run.args
    py_spy = ensure_py_spy()
    sections = []
    plans = [  # (scenario, sockets, rounds, paced sends)
        (PER_USER, range(args.users), args.per_user_rounds, 0),
        (BROADCAST, range(args.users), args.rounds, 0),
        (LATENCY, range(args.users), 1, min(args.paced, 200)),
        (EVERYONE, range(args.broadcast_users), 1, 0),
    ]
    server = run.servers[layer]
    for scenario, indices, rounds, paced in plans:
        name = scenario.split(",")[-1].split("(")[0].strip().replace(" ", "-")
        slug = f"{layer}-{name}"
        raws = {
            "daphne": RESULTS / f"profile-websocket-{slug}-daphne.txt",
            "sender": RESULTS / f"profile-websocket-{slug}-sender.txt",
        }
        spies = {}
        for who, pid, extra in (
            ("daphne", server.pid, ["--gil", "--threads"]),
            ("sender", server.trigger.pid, ["--idle", "--threads"]),
        ):
            command = [
                str(py_spy), "record", "--pid", str(pid), "--rate", "250",
                "--duration", str(int(args.profile_seconds)), "--format", "raw",
                "--nonblocking", "-o", str(raws[who]), *extra,
            ]  # fmt: skip
            spies[who] = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
            )
        run.say(f"profiling {layer} / {scenario}: py-spy on daphne {server.pid} and sender")
        deliveries = []
        try:
            await asyncio.sleep(0.5)
            deadline = time.monotonic() + args.profile_seconds
            for _ in range(50):  # bounded in count and in time
                if time.monotonic() > deadline:
                    break
                d = await run.deliver(server, scenario, indices, rounds=rounds, paced=paced)
                deliveries.append(d)
                run.report(len(deliveries) - 1, d, keep=False)
            for who, spy in spies.items():
                async with asyncio.timeout(args.profile_seconds + 60):
                    _, stderr = await spy.communicate()
                if spy.returncode != 0:
                    error = stderr.decode(errors="replace")
                    raise BenchError(f"py-spy ({who}) failed: {error}")
        finally:
            for spy in spies.values():
                if spy.returncode is None:
                    spy.kill()
                    await spy.wait()
        received = sum(d.received for d in deliveries)
        missing = sum(d.missing for d in deliveries)
        rate = statistics.median(d.rate for d in deliveries) if deliveries else 0
        views = (
            ("daphne", "all threads holding the GIL", DAPHNE_FRAMES, None, raws["daphne"]),
            ("sender", "main thread, wall time", SENDER_FRAMES, _is_main, raws["sender"]),
            ("sender", "the push's loop threads", SENDER_FRAMES, _is_loop, raws["sender"]),
        )
        for who, view, frames, threads, raw in views:
            sections.append(
                f"## {layer}: {scenario}, {who} ({view})\n\n{len(deliveries)} deliveries while"
                f" sampled ({received} messages, {missing} missing, median {rate:,.0f} msg/s)."
                f" Raw stacks: `{raw.relative_to(ROOT)}` (collapsed format: speedscope and"
                f" flamegraph.pl read it).\n\n{summarise(raw, frames, threads)}"
            )
    return "\n".join(sections)


# --- the table -----------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def closed_note(deliveries: list[Delivery], what: str, problems: list[str]) -> str:
    """A note on the sockets the server closed during these deliveries (reopened after each)."""
    closed = sum(d.lost_sockets for d in deliveries)
    if not closed:
        return ""
    codes = dict(sum((Counter(d.close_codes) for d in deliveries), Counter()))
    problems.append(
        f"{what}: the server closed {closed} sockets during the deliveries, codes {codes}"
    )
    return f"; **server closed {closed} sockets** (codes {codes})"


def build_table(run: Run, outcome: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    """The markdown table, the problems (losses, missed targets) and the layer comparison."""
    args = run.args
    results = outcome["results"]
    rows = [
        "| # | figure | layer | app: median (min–max) | bare `websockets`: median"
        " | ratio app/bare: median (per-rep min–max) | target | met? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    problems: list[str] = []
    summary: dict[tuple[str, str], float] = {}
    lost_by: dict[tuple[str, str], int] = {}  # messages lost, by figure and layer

    def verdict(ok: bool) -> str:
        return "yes" if ok else "**no**"

    def spread(values: list[float], fmt: str) -> str:
        low, high = fmt.format(min(values)), fmt.format(max(values))
        return f"{fmt.format(_median(values))} ({low}–{high})"

    for layer in args.layers:
        # 1: fan-out throughput, per user and broadcast.
        for number, scenario, rounds in (
            ("1a", PER_USER, args.per_user_rounds),
            ("1b", BROADCAST, args.rounds),
        ):
            app = results[(scenario, layer)]
            ref = results[(scenario, REFERENCE)]
            ratios = [a.rate / r.rate for a, r in zip(app, ref, strict=True) if r.rate]
            ratio = _median(ratios)
            missing = sum(d.missing for d in app)
            ok = ratio >= 0.25 and missing == 0
            summary[(scenario, layer)] = _median([d.rate for d in app])
            lost_by[(scenario, layer)] = missing
            lost = f"; **{missing} of {sum(d.expected for d in app)} lost**" if missing else ""
            lost += closed_note(app, f"{layer} {scenario}", problems)
            rows.append(
                f"| {number} | {scenario}: delivered msg/s, {args.users:,} sockets,"
                f" {rounds} × {args.users:,} msgs{lost} | {layer}"
                f" | {spread([d.rate for d in app], '{:,.0f}')}"
                f" | {_median([d.rate for d in ref]):,.0f}"
                f" | {ratio:.3f} ({min(ratios):.3f}–{max(ratios):.3f}) | ≥ 0.25, nothing lost"
                f" | {verdict(ok)} |"
            )
            if not ok:
                problems.append(
                    f"{layer} {scenario}: ratio {ratio:.3f} (target ≥ 0.25), {missing} lost"
                )
        # 2: latency.
        app = results[(LATENCY, layer)]
        ref = results[(LATENCY, REFERENCE)]
        app_lat = [x for d in app for x in d.latencies]
        ref_lat = [x for d in ref for x in d.latencies]
        missing = sum(d.missing for d in app)
        for q, limit in ((0.5, 2.0), (0.99, 3.0)):
            a, r = percentile(app_lat, q), percentile(ref_lat, q)
            per_rep = [
                percentile(x.latencies, q) / percentile(y.latencies, q)
                for x, y in zip(app, ref, strict=True)
            ]
            ratio = a / r
            summary[(f"{LATENCY} p{int(q * 100)}", layer)] = a
            lost_by[(f"{LATENCY} p{int(q * 100)}", layer)] = missing
            ok = ratio <= limit and missing == 0
            lost = f"; **{missing} lost**" if missing else ""
            if q == 0.5:
                lost += closed_note(app, f"{layer} {LATENCY}", problems)
            rows.append(
                f"| 2 | latency p{int(q * 100)}: notify() to receipt, ms ({len(app_lat)} paced"
                f" sends, 1 per {1000 * args.interval:g} ms, {args.users:,} idle sockets){lost}"
                f" | {layer} | {1000 * a:.1f} | {1000 * r:.1f}"
                f" | {ratio:.2f} ({min(per_rep):.2f}–{max(per_rep):.2f}) | ≤ {limit:g}"
                f" | {verdict(ok)} |"
            )
            if not ok:
                problems.append(f"{layer} latency p{int(q * 100)}: {ratio:.2f}x (≤ {limit:g})")
        # 3: broadcast to everyone.
        app = results[(EVERYONE, layer)]
        ref = results[(EVERYONE, f"{REFERENCE} ({layer}'s turn)")]
        done = [d.elapsed for d in app if d.last is not None]
        ratios = [
            a.elapsed / r.elapsed
            for a, r in zip(app, ref, strict=True)
            if a.last is not None and r.last is not None
        ]
        ratio = _median(ratios)
        missing = sum(d.missing for d in app)
        ok = bool(ratios) and ratio <= 2.0 and missing == 0
        summary[(EVERYONE, layer)] = _median(done)
        lost_by[(EVERYONE, layer)] = missing
        lost = f"; **{missing} lost**" if missing else ""
        nothing = len(app) - len(done)
        if nothing:
            lost += f"; **{nothing} of {len(app)} broadcasts delivered nothing**"
        lost += closed_note(app, f"{layer} {EVERYONE}", problems)
        shown = spread(done, "{:.3f}") if done else "—"
        shown_ratio = f"{ratio:.1f} ({min(ratios):.1f}–{max(ratios):.1f})" if ratios else "—"
        rows.append(
            f"| 3 | {EVERYONE}: s until the last of {args.broadcast_users:,} sockets holds it"
            f"{lost} | {layer} | {shown}"
            f" | {_median([d.elapsed for d in ref if d.last is not None]):.3f}"
            f" | {shown_ratio} | ≤ 2 | {verdict(ok)} |"
        )
        if not ok:
            problems.append(
                f"{layer} broadcast to everyone: {shown_ratio}x (≤ 2), {missing} lost,"
                f" {nothing} broadcasts delivered nothing"
            )
        # 4: memory.
        server, reference = run.servers[layer], run.servers[REFERENCE]
        n = args.users
        app_b = (server.rss[n] - server.rss[0]) / n
        ref_b = (reference.rss[n] - reference.rss[0]) / n
        ratio = app_b / ref_b
        summary[("memory", layer)] = app_b
        rows.append(
            f"| 4 | memory: RSS bytes per idle socket ({n:,} sockets) | {layer}"
            f" | {app_b:,.0f} | {ref_b:,.0f} | {ratio:.2f} | ≤ 1.5 | {verdict(ratio <= 1.5)} |"
        )
        if ratio > 1.5:
            problems.append(f"{layer} memory: {ratio:.2f}x (≤ 1.5)")

    comparison = []
    if len(args.layers) == 2:
        p, c = args.layers
        for key, label, higher, scale, unit in (
            (PER_USER, "fan-out one per user", True, 1, " msg/s"),
            (BROADCAST, "fan-out broadcast", True, 1, " msg/s"),
            (f"{LATENCY} p50", "latency p50", False, 1000, " ms"),
            (f"{LATENCY} p99", "latency p99", False, 1000, " ms"),
            (EVERYONE, f"broadcast to {args.broadcast_users:,}", False, 1, " s"),
            ("memory", "memory per socket", False, 1, " B"),
        ):
            a, b = summary[(key, p)], summary[(key, c)]
            factor = (a / b) if higher else (b / a)
            better = p if factor >= 1 else c
            lost = [
                f"{name} lost {lost_by[(key, name)]:,}"
                for name in (p, c)
                if lost_by.get((key, name))
            ]
            comparison.append(
                f"- {label}: {better} better by {max(factor, 1 / factor):.2f}x"
                f" ({p} {_num(a * scale)}{unit}, {c} {_num(b * scale)}{unit})"
                + (f"; but {' and '.join(lost)} messages: not like for like" if lost else "")
            )
    return "\n".join(rows), problems, comparison


def details(run: Run, outcome: dict[str, Any]) -> str:
    args = run.args
    results = outcome["results"]
    lines = [
        "| scenario | server | msg/s or s | server CPU s | sender CPU s | send call s"
        " | client CPU s | missing | late |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (scenario, name), ds in results.items():
        value = (
            f"{_median([d.elapsed for d in ds if d.last is not None]):.3f} s"
            if scenario == EVERYONE
            else f"{_median([d.rate for d in ds]):,.0f} msg/s"
        )
        lines.append(
            f"| {scenario} | {name} | {value} | {_median([d.server_cpu for d in ds]):.2f}"
            f" | {_median([d.sender_cpu for d in ds]):.2f}"
            f" | {_median([d.sent_end - d.t0 for d in ds]):.2f}"
            f" | {_median([d.client_cpu for d in ds]):.2f} | {sum(d.missing for d in ds)}"
            f" | {sum(d.stale for d in ds)} |"
        )
    lines.append("")
    for name in (REFERENCE, *args.layers):
        ds = results.get((LATENCY, name), [])
        durations = [x for d in ds for x in d.durations]
        if durations:
            lines.append(
                f"- {name}: one paced send takes p50 {1000 * percentile(durations, 0.5):.1f} ms,"
                f" p99 {1000 * percentile(durations, 0.99):.1f} ms in the sending process"
                + (" (INSERT + commit + send)" if name == REFERENCE else " (the notify() call)")
            )
    for name, server in run.servers.items():
        rss = ", ".join(f"{n:,} sockets {b / 2**20:.1f} MiB" for n, b in sorted(server.rss.items()))
        lines.append(
            f"- {name}: RSS {rss}; {args.users:,} connects took"
            f" {outcome['connect_seconds'][name]:.1f} s"
        )
    return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------------


def code_version() -> str:
    """The commit, and whether the app's code differs from it (read-only git commands)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # git status must not even refresh the index
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
            timeout=10, env=env,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "notifications", "project"], cwd=ROOT,
            capture_output=True, text=True, timeout=10, env=env,
        ).stdout.splitlines()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    if not commit:
        return "unknown (not a git checkout)"
    return f"{commit}" + (
        f" + uncommitted changes in {len(dirty)} files of notifications/ or project/"
        if dirty
        else ""
    )


def invoked_as() -> str:
    python = Path(sys.executable)
    shown = python.relative_to(ROOT).as_posix() if python.is_relative_to(ROOT) else str(python)
    command = shlex.join([shown, "-m", "bench.websocket", *sys.argv[1:]])
    if os.environ.get("MAKELEVEL"):
        extra = shlex.join(sys.argv[1:])
        shown = f" WS_BENCH_ARGS={shlex.quote(extra)}" if extra else ""
        return f"make bench{shown} (runs: {command})"
    return command


async def start_and_measure(run: Run, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    args = run.args
    python = str(BIN / "python")
    started: list[Child] = []
    daphnes: list[Daphne] = []
    try:
        for c in range(args.clients):
            child = Child(f"client {c}", [python, "-m", "bench.ws_client"], env,
                          workdir / f"client-{c}.log")  # fmt: skip
            started.append(child)
            await child.start(30)
            run.clients.append(child)
        port = free_port()
        reference = Child(
            REFERENCE,
            [python, "-m", "bench.ws_reference", "--port", str(port),
             "--database-url", env["DATABASE_URL"]],
            env,
            workdir / "reference.log",
        )  # fmt: skip
        started.append(reference)
        await reference.start(30)
        run.servers[REFERENCE] = Server(
            REFERENCE, reference.pid, f"ws://{HOST}:{port}/ws?u={{index}}",
            f"http://{HOST}:{port}", reference,
        )  # fmt: skip
        for layer in args.layers:
            layer_env = {
                **env,
                "CHANNEL_LAYER": layer,
                "WSBENCH_LAYER_PREFIX": f"wsbench{os.getpid()}{layer}",
                "WSBENCH_GC_FREEZE_SECONDS": str(args.gc_freeze),
            }
            daphne = Daphne(layer_env, workdir / f"daphne-{layer}.log")
            daphnes.append(daphne)
            try:
                daphne.start(args.startup_timeout)
            finally:
                if daphne.process is not None:
                    SPAWNED.add(daphne.process.pid)
            sender = Child(f"sender ({layer})", [python, "-m", "bench.ws_sender"], layer_env,
                           workdir / f"sender-{layer}.log")  # fmt: skip
            started.append(sender)
            ready = await sender.start(60)
            run.servers[layer] = Server(
                layer, daphne.pid, f"ws://{HOST}:{daphne.port}/ws/notifications/",
                f"http://{HOST}:{daphne.port}", sender, daphne,
            )  # fmt: skip
            run.say(f"{layer}: daphne pid {daphne.pid} port {daphne.port}; sender {ready['layer']}")
        run.say(f"reference: pid {reference.pid} port {port}; {args.clients} client processes")
        outcome = await measure(run)
        for daphne in daphnes:
            if daphne.process is not None and daphne.process.poll() is not None:
                raise BenchError(f"daphne died during the run:\n{daphne.log()}")
        return outcome
    finally:
        try:
            for child in reversed(started):  # clients close their sockets first
                with contextlib.suppress(Exception):
                    await child.stop()
                SPAWNED.discard(child.pid)
        finally:  # even when cancelled (SIGTERM) halfway through the above
            for daphne in daphnes:
                daphne.stop()
                if daphne.process is not None:
                    SPAWNED.discard(daphne.process.pid)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the WebSocket push path.")
    parser.add_argument("--quick", action="store_true", help="small N for a fast check")
    parser.add_argument("--users", type=int, help="sockets for fan-out, latency, memory (1000)")
    parser.add_argument("--broadcast-users", type=int, help="sockets for the broadcast (5000)")
    parser.add_argument("--rounds", type=int, help="broadcast burst: notifications per user (10)")
    parser.add_argument(
        "--per-user-rounds", type=int, help="one-per-user burst: notifications per user (2)"
    )
    parser.add_argument("--reps", type=int, help="repetitions of each burst (3)")
    parser.add_argument("--paced", type=int, help="paced sends per latency rep (400)")
    parser.add_argument("--latency-reps", type=int, help="latency repetitions (2)")
    parser.add_argument("--interval", type=float, default=0.005, help="s between paced sends")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--handshakes", type=int, default=25, help="concurrent per client")
    parser.add_argument("--layers", default="pubsub,core", help="channel layers to run")
    parser.add_argument(
        "--gc-freeze",
        type=float,
        default=10.0,
        help="daphne's NOTIFICATIONS GC_FREEZE_SECONDS, as docs/deployment.md advises (0: off)",
    )
    parser.add_argument("--warmup-sockets", type=int, default=20)
    parser.add_argument("--settle", type=float, default=2.0, help="s before reading RSS")
    parser.add_argument("--idle", type=float, default=5.0, help="give up after s of silence")
    parser.add_argument("--wait-cap", type=float, default=120.0, help="max s waiting per delivery")
    parser.add_argument("--send-cap", type=float, default=180.0, help="max s per send command")
    parser.add_argument("--connect-cap", type=float, default=300.0, help="max s per connect")
    parser.add_argument("--database", default="notif_wsbench")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_WS_REDIS_URL", "redis://127.0.0.1:6379/10")
    )
    parser.add_argument("--startup-timeout", type=float, default=30.0)
    parser.add_argument("--profile", action="store_true", help="py-spy daphne and the sender")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()
    full = {"users": 1000, "broadcast_users": 5000, "rounds": 10, "per_user_rounds": 2,
            "reps": 3, "paced": 400, "latency_reps": 2}  # fmt: skip
    quick = {"users": 200, "broadcast_users": 1000, "rounds": 3, "per_user_rounds": 2,
             "reps": 2, "paced": 200, "latency_reps": 1}  # fmt: skip
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.output is None:
        args.output = RESULTS / ("websocket-quick.md" if args.quick else "websocket.md")
    args.layers = [layer.strip() for layer in args.layers.split(",") if layer.strip()]
    if any(layer not in LAYERS for layer in args.layers) or not args.layers:
        parser.error(f"--layers: a comma-separated subset of {','.join(LAYERS)}")
    args.broadcast_users = max(args.broadcast_users, args.users)
    counts = (args.users, args.rounds, args.per_user_rounds, args.reps, args.paced)
    if min(*counts, args.latency_reps, args.clients) < 1:
        parser.error("every count (users, rounds, reps, paced, clients...) must be positive")
    if args.warmup_sockets < 1 or args.warmup_sockets > args.broadcast_users:
        parser.error("--warmup-sockets: from 1 to --broadcast-users")
    return args


def main() -> int:
    args = parse_args()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_exit)
    nofile = raise_nofile()  # inherited by daphne and every helper process
    if nofile < args.broadcast_users * len(args.layers) // args.clients + 1000:
        print(f"warning: open-file limit {nofile} may be too low", file=sys.stderr)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    machine = machine_info()
    command = invoked_as()
    version = code_version()
    database_url = with_path(args.postgres_url, "/" + args.database)
    env = server_env("bench.ws_settings", database_url, args.redis_url)
    workdir = Path(tempfile.mkdtemp(prefix="bench-websocket-"))
    created = False
    clock = time.monotonic()
    run: Run | None = None
    try:
        print(f"database {args.database} (recreated), Redis {args.redis_url} (flushed)", flush=True)
        recreate_database(args.postgres_url, args.database)
        created = True
        flush_redis(args.redis_url)
        python = str(BIN / "python")
        run_checked([python, "manage.py", "migrate", "--noinput"], env, "migrate", 300)
        seed_file = workdir / "seed.json"
        summary = run_checked(
            [python, "-m", "bench.ws_seed", "--users", str(args.broadcast_users),
             "--output", str(seed_file)],
            env, "seeding", 300,
        ).strip().splitlines()[-1]  # fmt: skip
        seeded_summary = json.loads(summary)
        if not seeded_summary["contiguous"]:
            raise BenchError(f"user ids are not contiguous: {seeded_summary}")
        print(f"seeded {seeded_summary}", flush=True)
        run = Run(args, json.loads(seed_file.read_text()))
        outcome = asyncio.run(start_and_measure(run, env, workdir))
    except BenchError as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stop_leftovers()
        if created and not args.keep_database:
            try:
                drop_database(args.postgres_url, args.database)
            except Exception as exc:
                print(f"could not drop database {args.database}: {exc}", file=sys.stderr)
        with contextlib.suppress(Exception):
            flush_redis(args.redis_url)
        shutil.rmtree(workdir, ignore_errors=True)

    table, problems, comparison = build_table(run, outcome)
    minutes = (time.monotonic() - clock) / 60
    header = [
        "# WebSocket benchmark: daphne + channels-redis against bare `websockets`",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; the run took {minutes:.1f} min",
        f"- machine: {machine['nproc']} CPUs, {machine['cpu']}; load average at start"
        f" {machine['loadavg at start']}; Python {machine['python']}",
        f"- command: `{command}`",
        f"- code: {version}",
        f"- setup: one daphne process per channel layer, DJANGO_DEBUG=0, PostgreSQL (Django pool),"
        f" `GC_FREEZE_SECONDS` {args.gc_freeze:g} (0: off),"
        f" Redis; sends from a separate process calling `notify()`; {args.clients} asyncio client"
        f" processes (`websockets`, session cookie + Origin, no compression) counting every"
        f" message per socket; the reference (`bench/ws_reference.py`) and the daphnes run side"
        f" by side and every repetition interleaves them (order rotated)",
        "",
    ]
    text = "\n".join(header) + "\n" + table + "\n"
    text += (
        "\nRatios are app / bare `websockets` in the same repetition: for msg/s higher is better,"
        " for times and bytes lower is better. Fan-out msg/s = messages received / (last receipt −"
        " the sender's first `notify()`); the app's (a) is one `notify()` per user inside one"
        " transaction per round, its (b) one `notify()` to the users' QuerySet (the app has no"
        " all-users group: either way each user gets a row, an event and a frame of its own); the"
        " reference's (a) serialises and sends per socket, its (b) is `websockets.broadcast`.\n"
    )
    if comparison:
        text += "\nWhich layer is faster (" + " vs ".join(args.layers) + "):\n\n"
        text += "\n".join(comparison) + "\n"
    if problems:
        text += "\nTargets missed or messages lost:\n\n" + "\n".join(f"- {p}" for p in problems)
        text += "\n"
    text += "\nDetails (medians over repetitions):\n\n" + details(run, outcome) + "\n"
    text += "\nRun log:\n\n```\n" + "\n".join(run.log) + "\n```\n"
    print()
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"written to {shown}")
    if outcome["profile"]:
        path = RESULTS / "profile-websocket.md"
        path.write_text(
            "# Where the time goes: daphne and the sender during fan-out and broadcast\n\n"
            f"- date: {started:%Y-%m-%d %H:%M} UTC\n- command: `{command}`\n\n"
            f"py-spy: daphne sampled with `--gil` (where its one core goes), the sender with"
            f" `--idle` (where its wall time goes, waits included).\n\n{outcome['profile']}"
        )
        print(f"profile summary written to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
