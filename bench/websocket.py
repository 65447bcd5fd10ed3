"""The WebSocket path (fan-out, latency, broadcast, memory) against a bare `websockets` server.

``make bench`` or ``.venv/bin/python -m bench.websocket [--quick] [--profile] [--servers ...]``:
the reference (``ws_reference.py``), and per ASGI server (daphne, uvicorn with wsproto) and
channel layer an app server and a sender (``sender.py``); client processes (``ws_client.py``)
hold a socket per user and count every message. Targets 1 to 4 of performance.md, in
repetitions interleaving the servers: only ratios of one repetition mean much on this machine.
"""

import argparse
import asyncio
import os
import re
import time
from pathlib import Path

from bench.lib import processes, report
from bench.lib.databases import POSTGRES, django_database, seed
from bench.lib.processes import ASGI_SERVERS, BIN, HOST, Process, rss_bytes
from bench.lib.report import RESULTS
from bench.ws_profile import profile
from bench.ws_run import BROADCAST, EVERYONE, LATENCY, PER_USER, REFERENCE, Run, Server
from bench.ws_tables import tables

LAYERS = ("pubsub", "core")
WARM, SETTLE = 20, 2.0  # sockets of the warm-up; seconds before reading RSS
SIZES = {"users": (1000, 200), "broadcast_users": (5000, 1000), "rounds": (10, 3)}  # --quick: 2nd
# One round one per user: 1,000 notify() calls, 5-20 s a repetition on a busy machine.
SIZES |= {"per_user_rounds": (1, 1), "reps": (3, 2), "paced": (400, 200), "latency_reps": (3, 1)}


class Starter:
    """Starts the run's servers: the reference, or an app server of a kind and layer with its
    sender. Each app server has users and a channel layer prefix of its own: one's pushes, and
    the rows its gap detection recovers (realtime/gaps.py), must not reach another's sockets."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str], folder: Path) -> None:
        self.args, self.env, self.folder, self.first_id = args, env, folder, 0
        self.bases: dict[str, int] = {}  # app server -> its first user's index in the seed

    def helper(self, name: str, *module: str, env: dict[str, str] | None = None) -> Process:
        python = [str(BIN / "python"), "-m", *module]
        log = self.folder / f"{re.sub(r'[^a-z0-9]+', '-', name).strip('-')}.log"
        return Process(python, env or self.env, log).start()

    def reference(self, rep: int = 0) -> Server:
        """The reference; ``rep``, a fresh one for that repetition of the memory measurement."""
        port, name = processes.free_port(), REFERENCE + f" (memory {rep + 1})" * bool(rep)
        reference = self.helper(name, "bench.ws_reference", str(port), self.env["DATABASE_URL"])
        url, origin = f"ws://{HOST}:{port}/ws?u={{index}}", f"http://{HOST}:{port}"
        return Server(name, reference, url, origin, reference, 0)

    def app(self, name: str, rep: int = 0) -> Server:
        """``name``: ``<server>/<layer>``, with its sender; ``rep``: a fresh one for that
        repetition of the memory measurement, without (it sends nothing)."""
        (kind, layer), tag = name.split("/"), f"-m{rep + 1}" * bool(rep)
        prefix = f"ws{os.getpid()}{kind}{layer}{tag}"
        env = self.env | {"CHANNEL_LAYER": layer, "BENCH_LAYER_PREFIX": prefix}
        env["BENCH_GC_FREEZE_SECONDS"] = str(self.args.gc_freeze)
        server = processes.asgi_server(kind, env, self.folder / f"{kind}-{layer}{tag}.log")
        sender = f"sender-{kind}-{layer}"
        trigger = server if rep else self.helper(sender, "bench.sender", env=env)
        url = f"ws://{HOST}:{server.port}/ws/notifications/"
        base = self.bases.setdefault(name, len(self.bases) * self.args.broadcast_users)
        name += f" (memory {rep + 1})" * bool(rep)
        return Server(name, server, url, server.url, trigger, self.first_id + base, base)


async def memory(run: Run, start: Starter, name: str, rep: int) -> float:
    """Bytes per idle socket of a fresh server of ``name``'s kind, warmed up as the run's were."""
    server = start.reference(rep) if name == REFERENCE else start.app(name, rep)
    try:
        warm = range(run.args.broadcast_users - WARM, run.args.broadcast_users)
        for _ in range(2):
            await run.connect(server, warm)
            await run.close(server)
        await asyncio.sleep(SETTLE)
        before = rss_bytes(server.pid)
        seconds = await run.connect(server, range(run.args.users))
        await asyncio.sleep(SETTLE)
        after = rss_bytes(server.pid)
        await run.close(server)
    finally:
        server.process.stop()
    per = (after - before) / run.args.users
    mib = f"{before / 2**20:7.1f} MiB -> {after / 2**20:7.1f} MiB"
    run.say(f"  rep {rep + 1} {name:<14} {mib}: {per:,.0f} B/socket; connects {seconds:.1f} s")
    return per


async def measure(run: Run, start: Starter) -> None:
    args, servers = run.args, run.servers
    run.clients = [start.helper(f"client-{c}", "bench.ws_client") for c in range(args.clients)]
    servers[REFERENCE] = start.reference()
    for kind in args.servers:
        for layer in args.layers:
            server = servers[f"{kind}/{layer}"] = start.app(f"{kind}/{layer}")
            run.say(f"{server.name}: pid {server.pid} {server.url}; sender {server.trigger.pid}")
    run.say(f"reference: pid {servers[REFERENCE].pid}; {args.clients} client processes")
    order, users = list(servers), range(args.users)

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
        await run.close(server)
    await asyncio.sleep(2)

    run.say(f"memory: RSS of each server before and after {args.users} idle sockets")
    run.say(f"  rep 1: the run's servers, then {args.reps - 1} on fresh ones, order rotated")
    for name, server in servers.items():
        before = server.rss[0] = rss_bytes(server.pid)
        run.connect_seconds[name] = await run.connect(server, users)
        await asyncio.sleep(SETTLE)
        after = server.rss[args.users] = rss_bytes(server.pid)
        run.memory[name] = [(after - before) / args.users]
        mib = f"{before / 2**20:7.1f} MiB -> {after / 2**20:7.1f} MiB"
        took = f"connects {run.connect_seconds[name]:.1f} s"
        run.say(f"  rep 1 {name:<14} {mib}: {run.memory[name][0]:,.0f} B/socket; {took}")
    for rep in range(1, args.reps):
        for server in rotated(rep):
            run.memory[server.name].append(await memory(run, start, server.name, rep))

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

    # One app server at a time holds the extra sockets, each repetition interleaved with the
    # reference: a reconnect storm or a wedged process must not spill into the other's figures.
    reference, extra = servers[REFERENCE], range(args.users, args.broadcast_users)
    seconds = await run.connect(reference, extra)
    run.say(f"broadcast: {REFERENCE} +{len(extra)} sockets in {seconds:.1f} s")
    for name in run.apps:
        server = servers[name]
        seconds = await run.connect(server, extra)
        await asyncio.sleep(SETTLE)
        server.rss[args.broadcast_users] = rss_bytes(server.pid)
        rss = server.rss[args.broadcast_users] / 2**20
        run.say(f"broadcast: {name} +{len(extra)} sockets in {seconds:.1f} s; RSS {rss:.1f} MiB")
        for rep in range(args.reps):
            for target in [reference, server][rep % 2 :] + [reference, server][: rep % 2]:
                key = f"{REFERENCE} ({name}'s turn)" if target is reference else name
                await run.deliver(target, EVERYONE, range(args.broadcast_users), key=key)
        if args.profile:
            run.profiles.append(await profile(run, server))
        await run.close(server)  # free its sockets for the next one


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the WebSocket push path.")
    parser.add_argument("--quick", action="store_true", help="small sizes for a fast check")
    for name, (full, _) in SIZES.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, help=f"default {full}")
    parser.add_argument("--interval", type=float, default=0.005, help="s between paced sends")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--servers", default="daphne,uvicorn", help="ASGI servers to run")
    parser.add_argument("--layers", default="pubsub,core", help="channel layers to run")
    parser.add_argument("--gc-freeze", type=float, default=10.0, help="GC_FREEZE_SECONDS (0: off)")
    parser.add_argument("--database", default="notif_wsb_bench")
    parser.add_argument("--postgres-url", default=POSTGRES, help="the maintenance database")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10", help="flushed")
    parser.add_argument("--profile", action="store_true", help="py-spy each server and sender")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--note", default="", help="a line for the results' header")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    for name, sizes in SIZES.items():
        setattr(args, name, getattr(args, name) or sizes[args.quick])
    args.output = args.output or RESULTS / f"websocket{'-quick' * args.quick}.md"
    for name, known in (("servers", ASGI_SERVERS), ("layers", LAYERS)):
        chosen = [x for x in getattr(args, name).split(",") if x]
        if not chosen or set(chosen) - set(known):
            parser.error(f"--{name}: one or more of {', '.join(known)}")
        setattr(args, name, chosen)
    args.broadcast_users = max(args.broadcast_users, args.users + WARM)
    args.names = ", ".join(f"{kind}/{layer}" for kind in args.servers for layer in args.layers)
    return args


def run() -> int:
    args = options()
    processes.raise_nofile()  # thousands of sockets: every process started inherits the limit
    clock, version = time.monotonic(), report.code_version()
    title = "WebSocket benchmark: the app on daphne and uvicorn against bare `websockets`"
    lines = report.header(title, "bench.websocket", "WS_BENCH_ARGS")
    with django_database(args.database, args.postgres_url, args.redis_url) as (env, folder):
        start = Starter(args, env, folder)
        seeded = seed(env, folder, "users", args.broadcast_users * len(args.names.split(",")))
        start.first_id, run = seeded["first_id"], Run(args, seeded["session_keys"])
        asyncio.run(measure(run, start))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines[2] += f"; the run took {(time.monotonic() - clock) / 60:.1f} min"
    lines[3] += f"; load average at the end {load}"
    lines += [f"- code: {version}", SETUP.format(args=args)]
    lines += [f"- note: {args.note}"] if args.note else []
    report.write(args.output, "\n".join(lines) + "\n\n" + tables(run))
    if run.profiles:
        title = "Where the time goes: the app servers and senders during fan-out and broadcast"
        heading = "\n".join(report.header(title, "bench.websocket", "WS_BENCH_ARGS"))
        text = f"{heading}\n\n{PROFILED}\n\n" + "\n".join(run.profiles)
        report.write(args.output.with_name(f"profile-{args.output.name}"), text)
    return 0


SETUP = (
    "- setup: per ASGI server and channel layer ({args.names}) one process,"
    " DJANGO_DEBUG=0, PostgreSQL (Django pool), Redis, `GC_FREEZE_SECONDS` {args.gc_freeze:g}"
    " (0: off); uvicorn as `uvicorn --ws wsproto --lifespan off`; `notify()` from a process of"
    " its own per server; {args.clients} client processes (`websockets`, session cookie, Origin,"
    " no compression); the reference (`bench/ws_reference.py`) beside them, every repetition"
    " interleaving all"
)
PROFILED = "py-spy: each app server with `--gil` (its one core), its sender with `--idle`."

if __name__ == "__main__":
    processes.main(run)
