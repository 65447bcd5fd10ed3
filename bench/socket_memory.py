"""What one idle WebSocket holds on the server, by owner (tracemalloc), and its RSS.

``.venv/bin/python -m bench.socket_memory [--sockets 1000] [--servers daphne,uvicorn]
[--redis-url redis://.../11]``: per ASGI server (daphne; uvicorn with wsproto) one serving the
demo (``bench/memory_asgi.py``, ``PYTHONTRACEMALLOC``) on a SQLite database of the run's own,
the in-memory channel layer unless ``--redis-url`` (pub/sub layer, that database flushed); a
client process (``ws_client.py``) opens authenticated sockets that stay idle.
Warm-up (sockets opened and closed), snapshot A with none open, ``--sockets`` opened and
settled, snapshot B; each allocation of B - A is attributed to the first frame, from the most
recent outwards, outside the standard library: its package is the owner. The same server
without tracemalloc gives the RSS per socket the app really costs.
"""

import argparse
import asyncio
import json
import os
import signal
import sysconfig
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.lib import processes, report
from bench.lib.databases import flush_redis, seed
from bench.lib.processes import (
    ASGI_SERVERS,
    BIN,
    HOST,
    BenchError,
    Process,
    asgi_server,
    django_env,
    rss_bytes,
    run_checked,
)
from bench.lib.report import RESULTS

WARM, SETTLE, FRAMES = 20, 2.0, 25  # warm-up sockets; seconds before a snapshot; traceback depth
STDLIB = tuple(
    os.path.realpath(sysconfig.get_paths()[key]) + "/" for key in ("stdlib", "platstdlib")
)
# The owners the issue names, and the packages each stands for (others are their own group).
GROUPS = {
    "daphne/Twisted/autobahn": ("daphne", "twisted", "autobahn", "txaio", "zope", "automat"),
    "uvicorn/wsproto/h11": ("uvicorn", "wsproto", "h11"),
    "channels": ("channels",),
    "channels_redis (+ redis, msgpack)": ("channels_redis", "redis", "msgpack"),
    "asgiref": ("asgiref",),
    "django": ("django",),
    "notifications (ours)": ("notifications",),
}


def package(filename: str) -> str | None:
    """The package a frame's file belongs to; None for the standard library."""
    if filename.startswith("<"):  # <frozen ...>, <string>
        return None
    for ours in ("notifications", "project", "bench"):
        if filename.startswith(str(processes.ROOT / ours) + "/"):
            return ours
    if "/site-packages/" in filename:
        top = filename.rpartition("/site-packages/")[2].split("/")[0]
        return top.removesuffix(".py").split(".")[0]
    real = os.path.realpath(filename)
    return None if real.startswith(STDLIB) or not real.startswith("/") else filename


def stdlib_module(filename: str) -> str:
    real = os.path.realpath(filename)
    for prefix in STDLIB:
        if real.startswith(prefix):
            return real.removeprefix(prefix).split("/")[0].removesuffix(".py")
    return filename


def attribute(traceback: tracemalloc.Traceback) -> tuple[str, str, bool]:
    """(owner, file:line of the frame that decides it, whether the most recent frame is stdlib)."""
    frames = list(reversed(traceback))  # most recent first
    for depth, frame in enumerate(frames):
        if (owner := package(frame.filename)) is not None:
            return owner, f"{short(frame.filename)}:{frame.lineno}", depth > 0
    frame = frames[0]
    return (
        f"stdlib: {stdlib_module(frame.filename)}",
        f"{short(frame.filename)}:{frame.lineno}",
        True,
    )


def short(filename: str) -> str:
    for marker in ("/site-packages/", str(processes.ROOT) + "/"):
        if marker in filename:
            return filename.rpartition(marker)[2]
    real = os.path.realpath(filename)
    return next((real.removeprefix(p) for p in STDLIB if real.startswith(p)), filename)


def group(owner: str) -> str:
    if owner.startswith("stdlib"):
        return "asyncio/stdlib (no other frame)"
    return next((name for name, members in GROUPS.items() if owner in members), "other: " + owner)


class Server:
    """A server (``kind``) of the demo and its snapshots (with tracemalloc) or just its RSS."""

    def __init__(self, kind: str, env: dict[str, str], folder: Path, traced: bool) -> None:
        self.folder, self.dumped = folder / f"{kind}-{'traced' if traced else 'plain'}", 0
        self.folder.mkdir()
        extra = {"PYTHONTRACEMALLOC": str(FRAMES), "BENCH_SNAPSHOT_DIR": str(self.folder)}
        app = "bench.memory_asgi:application" if traced else "project.asgi:application"
        env = env | (extra if traced else {})
        # Django imported under tracemalloc: a slow start on a busy machine
        self.process = asgi_server(kind, env, self.folder / f"{kind}.log", app, 300)
        self.pid, self.url = self.process.pid, self.process.url
        self.ws = f"ws://{HOST}:{self.process.port}/ws/notifications/"

    def snapshot(self, seconds: float = 600) -> tuple[tracemalloc.Snapshot, dict[str, Any]]:
        stem = self.folder / f"snapshot-{self.dumped}"
        self.dumped += 1
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + seconds
        while not stem.with_suffix(".json").exists():
            self.process.check("while dumping a snapshot")
            if time.monotonic() > deadline:
                raise BenchError(f"no snapshot in {seconds:g} s\n{self.process.log()}")
            time.sleep(0.2)
        info = json.loads(stem.with_suffix(".json").read_text())
        snapshot = tracemalloc.Snapshot.load(str(stem.with_suffix(".pickle")))
        stem.with_suffix(".pickle").unlink()  # hundreds of MB
        return snapshot, info


async def sockets(client: Process, server: Server, keys: dict[int, str], cmd: str) -> None:
    command = {"cmd": cmd, "target": server.ws}
    if cmd == "connect":
        command |= {"url": server.ws, "origin": server.url, "entries": [*map(list, keys.items())]}
        # Few at a time: under tracemalloc a busy daphne otherwise lets handshakes pass its 5 s
        # timeout (WSREJECT)
        command["at_once"] = 5
    answer = await asyncio.to_thread(client.call, command, 600)
    if answer.get("failed"):
        raise BenchError(f"{answer['failed']} sockets did not open\n{server.process.log()}")


async def measure(args: argparse.Namespace, kind: str, env: dict, folder: Path, keys: list) -> dict:
    log = folder / f"client-{kind}.log"
    client = Process([str(BIN / "python"), "-m", "bench.ws_client"], env, log).start()
    warm = dict(enumerate(keys[args.sockets :]))
    idle = dict(enumerate(keys[: args.sockets]))
    result: dict[str, Any] = {}
    for traced in (True, False):
        server, started = Server(kind, env, folder, traced), time.monotonic()
        for _ in range(2):  # imports, caches, first sessions: paid before the baseline
            await sockets(client, server, warm, "connect")
            await sockets(client, server, warm, "close")
        await asyncio.sleep(SETTLE)
        rss = [rss_bytes(server.pid)]
        a = server.snapshot() if traced else None
        await sockets(client, server, idle, "connect")
        await asyncio.sleep(SETTLE)
        rss.append(rss_bytes(server.pid))
        b = server.snapshot() if traced else None
        await sockets(client, server, idle, "close")
        server.process.stop()
        name = "traced" if traced else "plain"
        result[name] = {"rss": rss, "a": a, "b": b, "seconds": time.monotonic() - started}
        per = (rss[1] - rss[0]) / args.sockets
        rss_mib = f"RSS {rss[0] / 2**20:.1f} -> {rss[1] / 2**20:.1f} MiB"
        print(f"{kind}, {name}: {rss_mib}, {per:,.0f} B/socket", flush=True)
    client.stop()
    return result


def analyse(args: argparse.Namespace, kind: str, result: dict) -> str:
    n = args.sockets
    (a, a_info), (b, b_info) = result["traced"]["a"], result["traced"]["b"]
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    a, b = a.filter_traces(ignore), b.filter_traces(ignore)
    owners: Counter[str] = Counter()
    via_stdlib: Counter[str] = Counter()
    sites: Counter[tuple[str, str]] = Counter()
    counts: Counter[str] = Counter()
    examples: dict[tuple[str, str], str] = {}
    in_stdlib: Counter[str] = Counter()  # by the module of the most recent frame
    for diff in b.compare_to(a, "traceback"):
        if not diff.size_diff:
            continue
        owner, site, indirect = attribute(diff.traceback)
        owners[owner] += diff.size_diff
        counts[owner] += diff.count_diff
        sites[(owner, site)] += diff.size_diff
        if indirect:
            via_stdlib[owner] += diff.size_diff
            newest = diff.traceback[-1]
            examples.setdefault((owner, site), f"{short(newest.filename)}:{newest.lineno}")
            in_stdlib[stdlib_module(newest.filename)] += diff.size_diff
    total = sum(owners.values())
    traced_diff = b_info["traced"] - a_info["traced"]
    overhead = b_info["overhead"] - a_info["overhead"]
    groups: defaultdict[str, list[str]] = defaultdict(list)
    for owner in owners:  # packages under 5 B a socket either way are noise: folded
        small = abs(owners[owner]) < 5 * n and not owner.startswith("stdlib")
        groups["other (each under 5 B per socket)" if small else group(owner)].append(owner)

    def share(value: float) -> str:
        return f"{100 * value / total:.1f} %" if total else "—"

    rows = []
    for name, members in sorted(groups.items(), key=lambda g: -sum(owners[m] for m in g[1])):
        size = sum(owners[m] for m in members)
        direct = size - sum(via_stdlib[m] for m in members)
        objects = sum(counts[m] for m in members) / n
        detail = ", ".join(
            f"{m} {owners[m] / n:,.0f}" for m in sorted(members, key=lambda m: -owners[m])
        )
        row = [name, f"{size / n:,.0f}", share(size), f"{direct / n:,.0f}", f"{objects:.1f}"]
        rows.append(row + [detail if len(members) > 1 or name.startswith("asyncio") else ""])
    rows.append(
        ["**total**", f"**{total / n:,.0f}**", "100 %", "", f"{counts.total() / n:.1f}", ""]
    )
    header = ["owner", "bytes per idle socket", "share", "of which in its own frames"]
    header += ["allocations per socket", "by package (bytes per socket)"]
    top = []
    for (owner, site), size in sites.most_common(args.top):
        newest = examples.get((owner, site), "")
        top.append(
            [owner, f"`{site}`", f"{size / n:,.0f}", share(size), f"`{newest}`" * bool(newest)]
        )
    plain, traced = result["plain"]["rss"], result["traced"]["rss"]
    lines = [
        f"{n:,} authenticated idle sockets (the notification consumer, hello received, then"
        f" {SETTLE:g} s of settling) against none after a warm-up of {WARM} sockets opened and"
        f" closed twice; snapshots after `gc.collect()`, tracebacks of {FRAMES} frames.",
        "",
        report.table(header, rows),
        "",
        f"- tracemalloc: traced memory grew {traced_diff / n:,.0f} B per socket; the attributed"
        f" differences sum to {total / n:,.0f} B ({100 * total / traced_diff:.1f} % of it; the"
        " rest is tracemalloc's own module, filtered out). tracemalloc's own memory (its traces,"
        f" {b_info['overhead'] / 2**20:.0f} MiB at B) is not counted in either.",
        f"- RSS per idle socket, {kind} without tracemalloc (a second {kind}, same steps):"
        f" **{(plain[1] - plain[0]) / n:,.0f} B** ({plain[0] / 2**20:.1f} ->"
        f" {plain[1] / 2**20:.1f} MiB). Python allocations are only part of it: allocator"
        " overhead, fragmentation and C-level buffers are in RSS and not in tracemalloc (kernel"
        " socket buffers are in neither).",
        f"- RSS with tracemalloc on means little: its own memory grew {overhead / n:,.0f} B per"
        " socket (a traceback per allocation), and dumping snapshot A leaves the heap high"
        f" (RSS {traced[0] / 2**20:.1f} MiB before A, {traced[1] / 2**20:.1f} MiB before B:"
        f" {(traced[1] - traced[0]) / n:,.0f} B per socket).",
        f"- Allocated in standard-library code (counted above under its caller):"
        f" {in_stdlib.total() / n:,.0f} B per socket ({share(in_stdlib.total())}): "
        + ", ".join(f"{m} {v / n:,.0f}" for m, v in in_stdlib.most_common(6) if abs(v) >= 5 * n)
        + ".",
        "- Owner: walking each allocation's traceback from the most recent frame outwards, the"
        " first frame outside the standard library (its site-packages top-level package, or"
        " `notifications`/`project`/`bench` of this checkout); 'of which in its own frames' is the"
        " part allocated in that package's code, not in stdlib code it called (asyncio, json...)."
        " Allocations with only stdlib frames are 'stdlib: <module of the most recent frame>'.",
        "",
        f"Top {args.top} allocation sites (attributing frame; the most recent frame when that is"
        " in the stdlib):",
        "",
        report.table(["owner", "frame", "bytes per socket", "share", "allocated in"], top),
        "",
    ]
    return "\n".join(lines)


def run() -> int:
    parser = argparse.ArgumentParser(description="Memory of an idle WebSocket, by owner.")
    parser.add_argument("--sockets", type=int, default=1000, help="idle sockets (default 1000)")
    parser.add_argument("--servers", default="daphne,uvicorn", help="ASGI servers to measure")
    parser.add_argument("--top", type=int, default=10, help="allocation sites listed")
    parser.add_argument("--redis-url", default="", help="pub/sub layer on it (flushed): db 11")
    parser.add_argument("--output", type=Path, default=RESULTS / "socket_memory.md")
    args = parser.parse_args()
    kinds = [kind for kind in args.servers.split(",") if kind]
    if not kinds or set(kinds) - set(ASGI_SERVERS):
        parser.error(f"--servers: one or more of {', '.join(ASGI_SERVERS)}")
    if args.redis_url and args.redis_url.rstrip("/").endswith("/0"):
        raise BenchError("Redis db 0 is not the benchmark's to flush")
    processes.raise_nofile()
    clock, version = time.monotonic(), report.code_version()
    title = f"Memory per idle WebSocket on {' and '.join(kinds)}, by owner (tracemalloc)"
    lines = report.header(title, "bench.socket_memory", "")
    sections = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        extra = {"BENCH_LAYER_PREFIX": f"sm{os.getpid()}"} if args.redis_url else {}
        env = django_env(f"sqlite:///{folder / 'db.sqlite3'}", args.redis_url, **extra)
        flush_redis(args.redis_url)
        try:
            run_checked([str(BIN / "python"), "manage.py", "migrate", "--noinput"], env)
            keys = seed(env, folder, "users", args.sockets + WARM)["session_keys"]
            for kind in kinds:
                result = asyncio.run(measure(args, kind, env, folder, keys))
                sections += [f"## {kind}", "", analyse(args, kind, result)]
        finally:
            processes.stop_all()
            flush_redis(args.redis_url)
    lines[2] += f"; the run took {(time.monotonic() - clock) / 60:.1f} min"
    layer = f"channels_redis pub/sub on {args.redis_url}" if args.redis_url else "in-memory"
    setup = f"- setup: {' and '.join(kinds)}, one at a time (uvicorn with `--ws wsproto"
    setup += f" --lifespan off`), DJANGO_DEBUG=0, SQLite (a temporary file), {layer} channel layer,"
    setup += " one client process (`websockets`, session cookie, Origin, no compression)"
    lines += [f"- code: {version}", setup, "", *sections]
    report.write(args.output, "\n".join(lines))
    return 0


if __name__ == "__main__":
    processes.main(run)
