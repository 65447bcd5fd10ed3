"""The WebSocket path (fan-out, latency, broadcast, memory) against a bare `websockets` server.

``make bench`` or ``.venv/bin/python -m bench.websocket [--quick] [--profile]``: the reference
(``ws_reference.py``), and per channel layer a daphne and a sender (``sender.py``); client
processes (``ws_client.py``) hold a socket per user and count every message. Targets 1 to 4, in
repetitions interleaving the servers: only ratios of one repetition mean much on this machine.
"""

import argparse
import asyncio
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.lib import processes, profiling, report
from bench.lib.databases import POSTGRES, django_database, seed
from bench.lib.processes import BIN, HOST, BenchError, Process, cpu_seconds, daphne, rss_bytes
from bench.lib.report import RESULTS, median, percentile

REFERENCE, LAYERS = "reference", ("pubsub", "core")
PER_USER, BROADCAST = "fan-out, one per user", "fan-out, broadcast to all"
LATENCY, EVERYONE = "latency (paced)", "broadcast to everyone"
WARM, SETTLE = 20, 2.0  # sockets of the warm-up; seconds before reading RSS
# A delivery ends when every message came, after IDLE s of silence, or after CAP s.
IDLE, CAP = 5.0, 120.0
SIZES = {"users": (1000, 200), "broadcast_users": (5000, 1000), "rounds": (10, 3)}  # --quick: 2nd
SIZES |= {"per_user_rounds": (2, 2), "reps": (3, 2), "paced": (400, 200), "latency_reps": (2, 1)}


@dataclass
class Server:
    name: str  # REFERENCE or a layer
    pid: int  # the process holding the sockets
    url: str  # with {index}
    origin: str
    trigger: Process  # the sender (app) or the reference itself
    offset: int  # user i's id is offset + i (the reference knows indices only: 0)
    log: Callable[[], str]
    rss: dict[int, int] = field(default_factory=dict)  # sockets open -> RSS bytes


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
        self.connect_seconds: dict[str, float] = {}

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
            mine = [[i, self.keys[i]] for i in self.mine(indices, c)]
            return {"url": server.url, "origin": server.origin, "entries": mine}

        self.check(server, await self.each(server, "connect", entries, 300))
        return time.monotonic() - started

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
        line = f"  rep {rep} {d.scenario:<26} {d.server:<9} {d.received:>6}/{d.expected:<6}"
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
        line += f"  SERVER CLOSED {closed} sockets, codes {dict(d.codes)}" if closed else ""
        self.say(line)


async def measure(run: Run, env: dict[str, str], folder: Path, first_id: int) -> None:
    args, servers = run.args, run.servers

    def helper(name: str, *module: str, env: dict[str, str] = env) -> Process:
        python = [str(BIN / "python"), "-m", *module]
        return Process(python, env, folder / f"{name}.log").start()

    run.clients = [helper(f"client-{c}", "bench.ws_client") for c in range(args.clients)]
    port = processes.free_port()
    reference = helper(REFERENCE, "bench.ws_reference", str(port), env["DATABASE_URL"])
    url, origin = f"ws://{HOST}:{port}/ws?u={{index}}", f"http://{HOST}:{port}"
    servers[REFERENCE] = Server(REFERENCE, reference.pid, url, origin, reference, 0, reference.log)
    for layer in args.layers:
        layer_env = env | {"CHANNEL_LAYER": layer, "BENCH_LAYER_PREFIX": f"ws{os.getpid()}{layer}"}
        layer_env["BENCH_GC_FREEZE_SECONDS"] = str(args.gc_freeze)
        server = daphne(layer_env, folder / f"daphne-{layer}.log")
        sender = helper(f"sender-{layer}", "bench.sender", env=layer_env)
        url = f"ws://{HOST}:{server.port}/ws/notifications/"
        servers[layer] = Server(layer, server.pid, url, server.url, sender, first_id, server.log)
        run.say(f"{layer}: daphne pid {server.pid} port {server.port}; sender pid {sender.pid}")
    run.say(f"reference: pid {reference.pid} port {port}; {args.clients} client processes")
    order, users = [REFERENCE, *args.layers], range(args.users)

    def rotated(index: int) -> list[Server]:
        return [servers[name] for name in order[index % len(order) :] + order[: index % len(order)]]

    # Imports, pools, the sender's first notify(): on sockets of users outside the measured
    # set, closed again before the memory baseline.
    warm = range(args.broadcast_users - WARM, args.broadcast_users)
    run.say(f"warm-up: {WARM} sockets per server, one burst of each kind, a few paced sends")
    for server in servers.values():
        await run.connect(server, warm)
        for scenario, paced in ((PER_USER, 0), (BROADCAST, 0), (LATENCY, WARM)):
            await run.deliver(server, scenario, warm, paced=paced)
        await run.each(server, "close", lambda c: {}, 120)
    await asyncio.sleep(2)

    run.say(f"memory: RSS of each server before and after {args.users} idle sockets")
    for name, server in servers.items():
        before = server.rss[0] = rss_bytes(server.pid)
        run.connect_seconds[name] = await run.connect(server, users)
        await asyncio.sleep(SETTLE)
        after = server.rss[args.users] = rss_bytes(server.pid)
        mib, per = f"{before / 2**20:7.1f} MiB -> {after / 2**20:7.1f} MiB", after - before
        took = f"{args.users} connects in {run.connect_seconds[name]:.1f} s"
        run.say(f"  {name:<9} {mib}: {per / args.users:,.0f} B/socket; {took}")

    rounds = f"{args.per_user_rounds} rounds one per user, {args.rounds} rounds broadcast"
    run.say(f"fan-out: {args.reps} reps of bursts to {args.users} users: {rounds}")
    for rep in range(args.reps):
        for scenario, rounds in ((PER_USER, args.per_user_rounds), (BROADCAST, args.rounds)):
            for server in rotated(rep):
                await run.deliver(server, scenario, users, rounds=rounds, key=server.name)
    every = f"one every {1000 * args.interval:g} ms"
    run.say(f"latency: {args.latency_reps} reps x {args.paced} single sends, {every}")
    for rep in range(args.latency_reps):
        for server in rotated(rep):
            await run.deliver(server, LATENCY, users, paced=args.paced, key=server.name)

    # One daphne at a time holds the extra sockets, each repetition interleaved with the
    # reference: a reconnect storm or a wedged process must not spill into the other's figures.
    reference, extra = servers[REFERENCE], range(args.users, args.broadcast_users)
    seconds = await run.connect(reference, extra)
    run.say(f"broadcast: {REFERENCE} +{len(extra)} sockets in {seconds:.1f} s")
    for layer in args.layers:
        server = servers[layer]
        seconds = await run.connect(server, extra)
        await asyncio.sleep(SETTLE)
        server.rss[args.broadcast_users] = rss_bytes(server.pid)
        rss = server.rss[args.broadcast_users] / 2**20
        run.say(f"broadcast: {layer} +{len(extra)} sockets in {seconds:.1f} s; RSS {rss:.1f} MiB")
        for rep in range(args.reps):
            for target in [reference, server][rep % 2 :] + [reference, server][: rep % 2]:
                key = f"{REFERENCE} ({layer}'s turn)" if target is reference else layer
                await run.deliver(target, EVERYONE, range(args.broadcast_users), key=key)
        if args.profile:
            run.profiles.append(await profile(run, server))
        await run.each(server, "close", lambda c: {}, 120)  # free its sockets for the next layer


DAPHNE_FRAMES = (  # see bench.lib.profiling.summarise
    ("channel layer: redis-py reading/parsing replies", "", "/redis/"),
    ("channel layer: pub/sub receive loop (_do_receiving)", "_do_receiving", "channels_redis/"),
    ("channel layer: core receive (receive_single, BZPOPMIN)", "receive_single", "channels_redis/"),
    ("channel layer: msgpack deserialize", "deserialize", "channels_redis/"),
    ("consumer: dispatch of the event (AsyncConsumer.dispatch)", "dispatch", "channels/consumer"),
    ("  consumer: notifications_created", "notifications_created", "notifications/"),
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
    ("  INSERT ... SELECT (_insert)", "_insert", "notifications/"),
    ("  validate_content", "validate_content", "notifications/"),
    ("after commit: outbox flush (receivers)", "flush", "notifications/"),
    ("  per-user counts (counts_by_recipient)", "counts_by_recipient", "notifications/"),
    ("  version bump (versions.bump)", "bump", "notifications/versions"),
    ("  payloads (serialize)", "serialize", "notifications/"),
    ("  who is online (online)", "online", "notifications/"),
    ("  the push: send (hands the batch to the push loop, waits)", "send", "notifications/"),
    ("    pipelined PUBLISH (publish)", "publish", "notifications/"),
    ("    group_send (layers other than pub/sub)", "group_send", "channels_redis/"),
    ("    msgpack serialize", "serialize", "channels_redis/"),
    ("    redis-py (commands, round trips)", "", "/redis/"),
    ("    asgiref (async_to_sync: thread, loop)", "", "asgiref/"),
    ("database (psycopg)", "", "/psycopg/"),
    ("database (Django ORM)", "", "django/db/"),
)
# The push's long-lived loop; async_to_sync's one-thread executors (in-memory layer).
PUSH_THREADS = ("notifications-push", "ThreadPoolExecutor", "asyncio")
VIEWS = (  # whose stacks, which of their threads
    ("daphne", "all threads holding the GIL", DAPHNE_FRAMES, None),
    ("sender", "main thread, wall time", SENDER_FRAMES, "MainThread".__eq__),
    ("sender", "the push's loop threads", SENDER_FRAMES, lambda t: t.startswith(PUSH_THREADS)),
)


async def profile(run: Run, server: Server) -> str:
    args, sections = run.args, []
    for scenario in (PER_USER, BROADCAST, LATENCY, EVERYONE):
        indices = range(args.broadcast_users if scenario == EVERYONE else args.users)
        how = {PER_USER: {"rounds": args.per_user_rounds}, BROADCAST: {"rounds": args.rounds}}
        how[LATENCY] = {"paced": min(args.paced, 200)}
        slug = f"{server.name}-" + scenario.split(",")[-1].split("(")[0].strip().replace(" ", "-")
        raw = {who: RESULTS / f"profile-websocket-{slug}-{who}.txt" for who in ("daphne", "sender")}
        run.say(f"profiling {server.name} / {scenario}: py-spy on daphne {server.pid} and sender")
        spied = [(server.pid, raw["daphne"], "--gil --nonblocking")]
        spied.append((server.trigger.pid, raw["sender"], "--idle --nonblocking"))
        deliveries: list[Any] = []
        async with profiling.sampled(spied, args.profile_seconds, rate=250):
            deadline = time.monotonic() + args.profile_seconds
            while len(deliveries) < 50 and time.monotonic() < deadline:
                d = await run.deliver(server, scenario, indices, **how.get(scenario, {}))
                deliveries.append(d)
        received = sum(d.received for d in deliveries)
        missing, rate = sum(d.missing for d in deliveries), median(d.rate for d in deliveries)
        sampled = f"{len(deliveries)} deliveries while sampled ({received} messages, {missing}"
        sampled += f" missing, median {rate:,.0f} msg/s). Raw stacks: `bench/results/"
        for who, view, frames, threads in VIEWS:
            summary = profiling.summarise(raw[who], frames, threads)
            title = f"## {server.name}: {scenario}, {who} ({view})"
            sections.append(f"{title}\n\n{sampled}{raw[who].name}`.\n\n{summary}")
    return "\n".join(sections)


def figures(run: Run, layer: str) -> Iterator[tuple]:
    """(number, figure, the app's values, the reference's, (their format, the ratio's), target,
    the deliveries) of one layer: a target above 0 is a least ratio, below 0 a most."""
    args, results, n = run.args, run.results, run.args.users
    for number, scenario in (("1a", PER_USER), ("1b", BROADCAST)):
        app, ref = results[(scenario, layer)], results[(scenario, REFERENCE)]
        rounds = args.per_user_rounds if scenario == PER_USER else args.rounds
        figure = f"{scenario}: delivered msg/s, {n:,} sockets, {rounds} × {n:,} msgs"
        yield number, figure, [d.rate for d in app], [d.rate for d in ref], RATE, 0.25, app
    app, ref = results[(LATENCY, layer)], results[(LATENCY, REFERENCE)]
    for q, limit in ((0.5, 2), (0.99, 3)):
        sends = f"{sum(len(d.latencies) for d in app)} paced sends, 1 per {1000 * args.interval:g}"
        figure = f"latency p{100 * q:.0f}: notify() to receipt, ms ({sends} ms, {n:,} idle sockets)"
        values = [[1000 * percentile(d.latencies, q) for d in ds] for ds in (app, ref)]
        yield "2", figure, *values, ("{:.1f}", "{:.2f}"), -limit, app
    app, ref = results[(EVERYONE, layer)], results[(EVERYONE, f"{REFERENCE} ({layer}'s turn)")]
    figure = f"{EVERYONE}: s until the last of {args.broadcast_users:,} sockets holds it"
    values = [[d.elapsed for d in ds] for ds in (app, ref)]
    yield "3", figure, *values, ("{:.3f}", "{:.1f}"), -2, app
    rss = run.servers[layer].rss, run.servers[REFERENCE].rss
    values = [[(of[n] - of[0]) / n] for of in rss]
    yield "4", f"memory: RSS bytes per idle socket ({n:,} sockets)", *values, RSS, -1.5, []


RATE, RSS = ("{:,.0f}", "{:.3f}"), ("{:,.0f}", "{:.2f}")  # the value's format, the ratio's


def tables(run: Run) -> str:
    args, rows = run.args, []
    for layer in args.layers:
        for number, figure, app, ref, (fmt, ratio_fmt), target, ds in figures(run, layer):
            ratios = report.paired(app, ref)
            ratio, lost = median(ratios), sum(d.missing for d in ds)
            closed = sum(d.lost_sockets for d in ds)
            codes = sum((d.codes for d in ds), Counter())
            ok = (ratio >= target if target > 0 else ratio <= -target) and not lost
            figure += f"; **{lost} of {sum(d.expected for d in ds)} lost**" if lost else ""
            if closed:
                figure += f"; **server closed {closed} sockets** (codes {dict(codes)})"
            if nothing := sum(d.last is None for d in ds if d.scenario == EVERYONE):
                figure += f"; **{nothing} of {len(ds)} broadcasts delivered nothing**"
            goal = f"≥ {target:g}, nothing lost" if target > 0 else f"≤ {-target:g}"
            row = [number, figure, layer, report.spread(app, fmt), fmt.format(median(ref))]
            rows.append(row + [report.spread(ratios, ratio_fmt), goal, "yes" if ok else "**no**"])
    header = "#|figure|layer|app: median (min–max)|bare `websockets`: median"
    header += "|ratio app/bare: median (per-rep min–max)|target|met?"
    text = [report.table(header.split("|"), rows), "", NOTE]
    rows = []
    for (scenario, name), ds in run.results.items():
        value = median(d.elapsed if scenario == EVERYONE else d.rate for d in ds)
        row = [scenario, name, f"{value:.3f} s" if scenario == EVERYONE else f"{value:,.0f} msg/s"]
        for key in ("server_cpu", "sender_cpu", "sent", "cpu"):
            row.append(f"{median(getattr(d, key) for d in ds):.2f}")
        rows.append(row + [sum(d.missing for d in ds), sum(d.stale for d in ds)])
    header = "scenario|server|msg/s or s|server CPU s|sender CPU s|send call s|client CPU s"
    text += ["", "Details (medians over repetitions):", ""]
    text += [report.table((header + "|missing|late").split("|"), rows), ""]
    for name in (REFERENCE, *args.layers):
        took = [x for d in run.results[(LATENCY, name)] for x in d.durations]
        what = "(INSERT, commit, send)" if name == REFERENCE else "(the notify() call)"
        what = f"in the sending process {what}"
        p50, p99 = 1000 * percentile(took, 0.5), 1000 * percentile(took, 0.99)
        text.append(f"- {name}: one paced send takes p50 {p50:.1f} ms, p99 {p99:.1f} ms {what}")
    for name, server in run.servers.items():
        rss = ", ".join(f"{n:,} sockets {b / 2**20:.1f} MiB" for n, b in sorted(server.rss.items()))
        seconds = run.connect_seconds[name]
        text.append(f"- {name}: RSS {rss}; {args.users:,} connects took {seconds:.1f} s")
    return "\n".join(text + ["", "Run log:", "", "```", *run.log, "```", ""])


NOTE = (
    "Ratios are app / bare `websockets` in the same repetition. Fan-out msg/s = messages received"
    " / (last receipt − first send); the app's (a) is one `notify()` per user in one transaction"
    " per round, its (b) one `notify()` to the users' QuerySet (a row, an event and a frame per"
    " user either way); the reference's (a) sends each socket its JSON, (b) `websockets.broadcast`."
)


def run() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the WebSocket push path.")
    parser.add_argument("--quick", action="store_true", help="small sizes for a fast check")
    for name, (full, _) in SIZES.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, help=f"default {full}")
    parser.add_argument("--interval", type=float, default=0.005, help="s between paced sends")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--layers", default="pubsub,core", help="channel layers to run")
    parser.add_argument("--gc-freeze", type=float, default=10.0, help="GC_FREEZE_SECONDS (0: off)")
    parser.add_argument("--database", default="notif_wsbench")
    parser.add_argument("--postgres-url", default=POSTGRES, help="the maintenance database")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10", help="flushed")
    parser.add_argument("--profile", action="store_true", help="py-spy daphne and the sender")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    for name, sizes in SIZES.items():
        setattr(args, name, getattr(args, name) or sizes[args.quick])
    args.output = args.output or RESULTS / f"websocket{'-quick' * args.quick}.md"
    args.layers = [layer for layer in args.layers.split(",") if layer in LAYERS]
    args.broadcast_users = max(args.broadcast_users, args.users + WARM)
    processes.raise_nofile()  # thousands of sockets: every process started inherits the limit
    clock, version = time.monotonic(), report.code_version()
    title = "WebSocket benchmark: daphne + channels-redis against bare `websockets`"
    lines = report.header(title, "bench.websocket", "WS_BENCH_ARGS")
    with django_database(args.database, args.postgres_url, args.redis_url) as (env, folder):
        seeded = seed(env, folder, "users", args.broadcast_users)
        run = Run(args, seeded["session_keys"])
        asyncio.run(measure(run, env, folder, seeded["first_id"]))
    lines[2] += f"; the run took {(time.monotonic() - clock) / 60:.1f} min"
    lines += [f"- code: {version}", SETUP.format(args=args), ""]
    report.write(args.output, "\n".join(lines) + "\n" + tables(run))
    if run.profiles:
        title = "Where the time goes: daphne and the sender during fan-out and broadcast"
        heading = "\n".join(report.header(title, "bench.websocket", "WS_BENCH_ARGS"))
        text = f"{heading}\n\n{PROFILED}\n\n" + "\n".join(run.profiles)
        report.write(RESULTS / "profile-websocket.md", text)
    return 0


SETUP = (
    "- setup: a daphne per channel layer, DJANGO_DEBUG=0, PostgreSQL (Django pool), Redis,"
    " `GC_FREEZE_SECONDS` {args.gc_freeze:g} (0: off); `notify()` from a process of its own;"
    " {args.clients} client processes (`websockets`, session cookie, Origin, no compression);"
    " the reference (`bench/ws_reference.py`) beside them, every repetition interleaving all"
)
PROFILED = "py-spy: daphne with `--gil` (its one core), the sender with `--idle` (waits included)."

if __name__ == "__main__":
    processes.main(run)
