"""Benchmark of the polling path: ``GET /api/notifications/unread-count/`` under daphne.

``make bench`` (or ``.venv/bin/python -m bench.polling``) does, start to end:

1. drops and recreates a PostgreSQL database (``notif_bench``), migrates it and seeds one user with
   a DRF token and 1,000 notifications (``bench/seed.py``); flushes Redis db 9;
2. starts its own daphne on a free 127.0.0.1 port with ``DJANGO_SETTINGS_MODULE=bench.settings``
   (the demo's settings plus ``/bench/trivial/``), ``DJANGO_DEBUG=0``, ``DATABASE_URL`` (Django's
   pool) and ``REDIS_URL`` (the Redis cache);
3. measures requests/s with an asyncio HTTP/1.1 keep-alive client (raw streams: the client must not
   be the bottleneck, so it reports its own CPU and daphne's) over N connections, in interleaved
   rounds bounded in time and in requests, for: the trivial view (baseline), ``unread-count``
   answering 200, and ``unread-count`` answering 304 (``If-None-Match`` = the ETag of a 200);
   every response's status is checked and anything else counted as an error;
4. prints one table (median and min-max of req/s, ratio to the trivial view of the same rounds,
   the target from the performance brief) and writes it to ``bench/results/polling.md``;
5. with ``--profile``, samples daphne with py-spy under each load (trivial, 304, 200) and writes a
   summary to ``bench/results/profile-polling.md``;
6. stops daphne and drops the database, always (``finally``, SIGTERM/SIGHUP handled).

Only ratios measured in the same run mean anything on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"

TRIVIAL = "trivial"
COUNT_200 = "unread-count 200"
COUNT_304 = "unread-count 304"
SCENARIOS = (TRIVIAL, COUNT_200, COUNT_304)
PATHS = {
    TRIVIAL: "/bench/trivial/",
    COUNT_200: "/api/notifications/unread-count/",
    COUNT_304: "/api/notifications/unread-count/",
}
EXPECTED = {TRIVIAL: 200, COUNT_200: 200, COUNT_304: 304}
# Targets from /work/shared/brief/performance.md ("Polling"): the 304 path at least 80 % of the
# requests/s of a trivial Django view on the same server. The 200 path's target is against
# django-notifications-hq, which this first part of the suite does not run.
TARGETS = {
    TRIVIAL: (None, "baseline"),
    COUNT_200: (None, ">= 3x django-notifications-hq (not measured here)"),
    COUNT_304: (0.80, ">= 0.80 of trivial"),
}


class BenchError(RuntimeError):
    pass


# --- the load generator --------------------------------------------------------------------------


@dataclass
class RoundResult:
    scenario: str
    requests: int
    elapsed: float
    client_cpu: float  # share of one core used by this process during the round
    server_cpu: float  # share of one core used by daphne during the round
    latencies: list[float]
    errors: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    reconnects: int = 0
    redis_connections: int = 0  # new connections Redis accepted during the round (server-wide)
    redis_commands: Counter = field(default_factory=Counter)  # calls per command (server-wide)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0


def build_request(path: str, port: int, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    """One HTTP/1.1 response: status, headers (lower-case names) and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if status in (204, 304) or 100 <= status < 200:
        body = b""
    elif b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    elif b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    else:
        body = await reader.read()  # delimited by the end of the connection
        headers[b"connection"] = b"close"
    return status, headers, body


async def fetch_once(port: int, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        return await asyncio.wait_for(read_response(reader), 10)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_round(
    scenario: str,
    port: int,
    request: bytes,
    expected: int,
    *,
    connections: int,
    seconds: float,
    max_requests: int,
    server_pid: int,
) -> RoundResult:
    """``connections`` closed-loop keep-alive clients, each sending its next request when the
    previous answer arrived, until ``seconds`` passed or ``max_requests`` were sent."""
    streams = [await asyncio.open_connection(HOST, port) for _ in range(connections)]
    latencies: list[float] = []
    errors: Counter = Counter()
    samples: list[str] = []
    sent = 0
    reconnects = 0
    clock = time.perf_counter

    async def client(index: int, deadline: float) -> int:
        nonlocal sent, reconnects
        reader, writer = streams[index]
        done = 0
        while sent < max_requests and clock() < deadline:
            sent += 1
            began = clock()
            try:
                writer.write(request)
                status, headers, body = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors[type(exc).__name__] += 1
                if len(samples) < 5:
                    samples.append(f"{type(exc).__name__}: {exc}")
                headers = {b"connection": b"close"}
            else:
                latencies.append(clock() - began)
                done += 1
                if status != expected:
                    errors[status] += 1
                    if len(samples) < 5:
                        samples.append(f"{status}: {body[:300]!r}")
            if headers.get(b"connection", b"").lower() == b"close":
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
                streams[index] = (reader, writer)
                reconnects += 1
        return done

    try:
        cpu0, server0, start = time.process_time(), process_cpu_seconds(server_pid), clock()
        deadline = start + seconds
        async with asyncio.timeout(seconds + 30):  # a hung server cannot hang the benchmark
            done = await asyncio.gather(*(client(i, deadline) for i in range(connections)))
        elapsed = clock() - start
        client_cpu = (time.process_time() - cpu0) / elapsed
        server_cpu = (process_cpu_seconds(server_pid) - server0) / elapsed
    finally:
        for _, writer in streams:
            writer.close()
        for _, writer in streams:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return RoundResult(
        scenario,
        sum(done),
        elapsed,
        client_cpu,
        server_cpu,
        latencies,
        errors,
        samples,
        reconnects,
    )


# --- the environment: database, Redis, daphne ----------------------------------------------------


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def admin_sql(admin_url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        for statement in statements:
            conn.execute(statement)


def recreate_database(admin_url: str, name: str) -> None:
    admin_sql(
        admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )


def drop_database(admin_url: str, name: str) -> None:
    admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        client.flushdb()
    finally:
        client.close()


_redis_clients: dict[str, object] = {}


def redis_counters(url: str) -> tuple[int, Counter]:
    """Redis's count of connections it ever accepted and of calls per command (server-wide: other
    users of the server add noise; the benchmark's own INFO calls are left out)."""
    import redis

    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=10)
    connections = int(client.info("stats")["total_connections_received"])
    commands = Counter(
        {
            name.removeprefix("cmdstat_"): int(stats["calls"])
            for name, stats in client.info("commandstats").items()
            if name != "cmdstat_info"
        }
    )
    return connections, commands


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def run_checked(args: list[str], env: dict[str, str], what: str, timeout: float) -> str:
    try:
        done = subprocess.run(
            args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{what} took longer than {timeout} s") from exc
    if done.returncode != 0:
        raise BenchError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


class Daphne:
    """A daphne process on a free port of 127.0.0.1 (ours by default; bench.peers runs hq's)."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        application: str = "project.asgi:application",
        *,
        executable: Path = BIN / "daphne",
        cwd: Path = ROOT,
        name: str = "daphne",
    ) -> None:
        self.port = free_port()
        self.env = env
        self.log_path = log_path
        self.application = application
        self.executable = executable
        self.cwd = cwd
        self.name = name
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(self.executable), "-b", HOST, "-p", str(self.port), self.application],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with {self.process.returncode} at start:\n{self.log()}"
                )
            try:
                with socket.create_connection((HOST, self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise BenchError(
            f"{self.name} did not listen on {HOST}:{self.port} within {timeout} s:\n{self.log()}"
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self, limit: int = 20_000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            text = ""
        return f"--- {self.name} log ({self.log_path}) ---\n{text or '(empty)'}\n--- end of log ---"


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# --- profiling -----------------------------------------------------------------------------------

CATEGORIES = (  # (label, path fragment) in order: the first match of a sample's leaf frame wins
    ("redis client (cache round trip)", "/redis/"),
    ("django cache backend", "django/core/cache/"),
    ("psycopg / db", "/psycopg"),
    ("django db", "django/db/"),
    ("notifications app", "notifications/"),
    ("DRF", "rest_framework/"),
    ("django middleware", "django/middleware/"),
    ("django sessions/auth", "django/contrib/"),
    ("django http (request/response)", "django/http/"),
    ("django urls", "django/urls/"),
    ("django handlers (asgi/base)", "django/core/handlers/"),
    ("django other", "django/"),
    ("asgiref (sync_to_async, locals)", "asgiref/"),
    ("daphne", "daphne/"),
    ("twisted (HTTP parsing, reactor)", "twisted/"),
    ("asyncio", "asyncio/"),
    ("threading / concurrent.futures", "threading.py"),
    ("threading / concurrent.futures", "concurrent/futures/"),
)


def _frame_file(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"
    inner = frame.rpartition(" (")[2]
    return inner.rstrip(")").rpartition(":")[0] if ":" in inner else inner


def _frame_label(frame: str) -> str:
    name, _, location = frame.rpartition(" (")
    path = location.rstrip(")").rpartition(":")[0]
    for marker in ("site-packages/", "/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})" if name else frame


KEY_FRAMES = (  # (what, function name, path fragment): inclusive time of the costs that matter
    ("daphne/twisted: HTTP parsing (dataReceived)", "dataReceived", "twisted/"),
    ("daphne: response writing (handle_reply)", "handle_reply", "daphne/"),
    ("Django ASGI handler, whole request", "ASGIHandler.handle", "django/core/handlers/asgi.py"),
    ("sync_to_async hop (SyncToAsync.__call__)", "SyncToAsync.__call__", "asgiref/sync.py"),
    ("  of which: a new thread per request (Thread.start)", "Thread.start", "threading.py"),
    ("  of which: executor shutdown (ThreadSensitiveContext.__aexit__)", "__aexit__", "asgiref/"),
    ("Django middleware chain incl. view (MiddlewareMixin)", "MiddlewareMixin.__", "django/"),
    ("DRF dispatch (APIView.dispatch), incl. the view", "APIView.dispatch", "rest_framework/"),
    ("DRF content negotiation", "perform_content_negotiation", "rest_framework/"),
    ("DRF finalize_response + rendering", "finalize_response", "rest_framework/"),
    ("authentication (DRF authenticators)", "_authenticate", "rest_framework/"),
    ("  of which: the token's database query", "authenticate_credentials", "rest_framework/"),
    ("the 304 check (_unchanged_since)", "_unchanged_since", "notifications/"),
    ("Django cache calls (RedisCache.*)", "RedisCache.", "django/core/cache/"),
    ("  of which: a new Redis connection (get_connection)", "get_connection", "redis/"),
    ("  of which: redis-py version lookup (importlib.metadata)", "version", "importlib/metadata"),
    ("  of which: redis-py deprecated_args signature checks", "_get_filterable_args", "/redis/"),
    ("database (psycopg)", "", "/psycopg/"),
    ("database (Django ORM / backend)", "", "/django/db/"),
    ("the view itself (unread_count)", "unread_count", "notifications/"),
)


def summarise_profile(raw_path: Path, top: int = 30) -> str:
    """Self time by library, and the functions with most inclusive time, from py-spy raw output."""
    samples = 0
    by_thread: Counter = Counter()
    by_category: Counter = Counter()
    inclusive: Counter = Counter()
    leaf: Counter = Counter()
    keys: Counter = Counter()
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames and frames[0].startswith(("thread ", "process ")):
            # "thread (1234): ThreadPoolExecutor-56_0" -> "ThreadPoolExecutor-N_N"
            thread = re.sub(r"\d+", "N", frames[0].partition(": ")[2] or "unnamed")
            frames = [f for f in frames if not f.startswith(("thread ", "process "))]
        else:
            thread = "?"
        if not frames:
            continue
        samples += count
        by_thread[thread] += count
        leaf_file = "/" + _frame_file(frames[-1])  # py-spy shortens site-packages paths
        category = next((label for label, part in CATEGORIES if part in leaf_file), "other")
        by_category[category] += count
        leaf[_frame_label(frames[-1])] += count
        for label in {_frame_label(frame) for frame in frames}:
            inclusive[label] += count
        for what, name, part in KEY_FRAMES:
            if any(
                name in frame.rpartition(" (")[0] and part in "/" + _frame_file(frame)
                for frame in frames
            ):
                keys[what] += count
    if not samples:
        return "(no samples)\n"

    def pct(value: int) -> str:
        return f"{100 * value / samples:5.1f} %"

    out = [
        f"{samples} samples of threads holding the GIL (py-spy --gil: where the one core that"
        " daphne can use goes; waits on sockets without the GIL do not show)\n",
        "By thread (N = any number: a new thread pool per request shows as many threads):\n",
    ]
    out += [f"- {pct(n)}  {name}" for name, n in by_thread.most_common()]
    out += [
        "",
        "Key costs (inclusive: a sample counts for every row whose frame is on its stack):",
        "",
    ]
    out += [f"- {pct(keys[what])}  {what}" for what, _, _ in KEY_FRAMES]
    out += ["", "Self time by where the leaf frame is:", ""]
    out += [f"- {pct(n)}  {name}" for name, n in by_category.most_common()]
    out += ["", f"Top {top} functions by inclusive time:", ""]
    out += [f"- {pct(n)}  {name}" for name, n in inclusive.most_common(top)]
    out += ["", "Top 20 functions by self time:", ""]
    out += [f"- {pct(n)}  {name}" for name, n in leaf.most_common(20)]
    return "\n".join(out) + "\n"


def ensure_py_spy() -> Path:
    py_spy = BIN / "py-spy"
    if not py_spy.exists():
        print("py-spy is missing: installing it into the venv (pip install py-spy)", flush=True)
        subprocess.run(
            [str(BIN / "python"), "-m", "pip", "install", "--quiet", "py-spy"], check=True
        )
    return py_spy


# --- the benchmark -------------------------------------------------------------------------------


def fmt_rps(values: list[float]) -> tuple[str, str]:
    return f"{statistics.median(values):,.0f}", f"{min(values):,.0f}–{max(values):,.0f}"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def machine_info() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "loadavg at start": load,
        "python": platform.python_version(),
    }


def invoked_as() -> str:
    argv = [
        Path(sys.executable).relative_to(ROOT).as_posix()
        if sys.executable.startswith(str(ROOT))
        else sys.executable,
        "-m",
        "bench.polling",
        *sys.argv[1:],
    ]
    command = shlex.join(argv)
    if os.environ.get("MAKELEVEL"):  # run by make
        args = shlex.join(sys.argv[1:])
        return f"make bench{f' BENCH_ARGS={shlex.quote(args)}' if args else ''} (runs: {command})"
    return command


def build_table(results: dict[str, list[RoundResult]]) -> tuple[str, list[str]]:
    """The markdown table and the list of failures (errors, missed targets)."""
    rounds = len(results[TRIVIAL])
    rows = [
        "| path | req/s median | spread (min–max) | baseline: trivial req/s median | ratio median"
        " (per-round min–max) | target | met | p50 / p99 ms | daphne CPU | client CPU"
        " | new Redis conns / request | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    problems: list[str] = []
    base = [r.rps for r in results[TRIVIAL]]
    for scenario in SCENARIOS:
        values = [r.rps for r in results[scenario]]
        median, spread = fmt_rps(values)
        ratios = [v / b for v, b in zip(values, base, strict=True)]
        ratio = statistics.median(ratios)
        threshold, target = TARGETS[scenario]
        if threshold is None:
            met = "—"
        else:
            met = "yes" if ratio >= threshold else "**no**"
            if ratio < threshold:
                problems.append(f"{scenario}: ratio {ratio:.2f} below the target {threshold:.2f}")
        latencies = [x for r in results[scenario] for x in r.latencies]
        errors = sum((r.errors for r in results[scenario]), Counter())
        redis_per_request = sum(r.redis_connections for r in results[scenario]) / max(
            1, sum(r.requests for r in results[scenario])
        )
        if errors:
            problems.append(f"{scenario}: unexpected answers {dict(errors)}")
        rows.append(
            f"| {scenario} (→{EXPECTED[scenario]}) | {median} | {spread} | {fmt_rps(base)[0]}"
            f" | {ratio:.2f} ({min(ratios):.2f}–{max(ratios):.2f}) | {target} | {met}"
            f" | {1000 * percentile(latencies, 0.5):.1f} / {1000 * percentile(latencies, 0.99):.1f}"
            f" | {statistics.median(r.server_cpu for r in results[scenario]):.0%}"
            f" | {statistics.median(r.client_cpu for r in results[scenario]):.0%}"
            f" | {redis_per_request:.2f}"
            f" | {sum(errors.values()) or 0} |"
        )
    rows.append("")
    for scenario in SCENARIOS:
        requests = max(1, sum(r.requests for r in results[scenario]))
        commands = sum((r.redis_commands for r in results[scenario]), Counter())
        listed = ", ".join(
            f"{name} {calls / requests:.2f}"
            for name, calls in commands.most_common()
            if calls / requests >= 0.1  # other users of the Redis server add a little
        )
        rows.append(f"- Redis commands per request, {scenario}: {listed or 'none'}")
    rows.append("")
    rows.append(
        f"{rounds} interleaved rounds per path (order rotated each round); ratio = path / trivial"
        " in the same round. CPU = share of one core (median over rounds); client CPU far below"
        " 100 % means the load generator is not the bottleneck. New Redis connections per request"
        " are counted server-wide (INFO stats), so other Redis users add a little noise."
    )
    return "\n".join(rows), problems


async def measure(
    args: argparse.Namespace, daphne: Daphne, token: str, expected_counts: dict
) -> dict:
    port = daphne.port
    common = {"Accept": "application/json", "Authorization": f"Token {token}"}

    # The trivial view must answer, and the 200 must carry the seeded counts and an ETag.
    status, _, body = await fetch_once(port, build_request(PATHS[TRIVIAL], port, common))
    if status != 200:
        raise BenchError(f"trivial view answered {status}: {body[:500]!r}\n{daphne.log()}")

    async def fresh_etag() -> str:
        status, headers, body = await fetch_once(
            port, build_request(PATHS[COUNT_200], port, common)
        )
        if status != 200 or b"etag" not in headers:
            raise BenchError(f"unread-count answered {status}: {body[:500]!r}\n{daphne.log()}")
        data = json.loads(body)
        for key in ("unread_count", "unseen_count"):
            if data.get(key) != expected_counts[key]:
                raise BenchError(f"unread-count said {data}, expected {expected_counts}")
        return headers[b"etag"].decode("latin-1")

    etag = await fresh_etag()
    requests = {
        TRIVIAL: build_request(PATHS[TRIVIAL], port, common),
        COUNT_200: build_request(PATHS[COUNT_200], port, common),
    }

    def request_304(tag: str) -> bytes:
        return build_request(PATHS[COUNT_304], port, {**common, "If-None-Match": tag})

    # The 304 needs the cached token -> user id and the cached version; check it works.
    status, _, body = await fetch_once(port, request_304(etag))
    if status != 304:
        raise BenchError(
            f"unread-count with If-None-Match: {etag} answered {status}: {body[:300]!r}"
        )
    print(f"daphne pid {daphne.pid} on {HOST}:{port}; ETag {etag}", flush=True)

    async def one(scenario: str, seconds: float) -> RoundResult:
        nonlocal etag
        if scenario == COUNT_304:
            # Refresh the token cache (5 min) and the ETag, as a real poller's 200 would.
            etag = await fresh_etag()
            request = request_304(etag)
        else:
            request = requests[scenario]
        connections_before, commands_before = redis_counters(args.redis_url)
        result = await run_round(
            scenario,
            port,
            request,
            EXPECTED[scenario],
            connections=args.connections,
            seconds=seconds,
            max_requests=args.max_requests,
            server_pid=daphne.pid,
        )
        connections_after, commands_after = redis_counters(args.redis_url)
        result.redis_connections = connections_after - connections_before
        result.redis_commands = commands_after - commands_before
        return result

    print(f"warm-up: {args.warmup} s per path", flush=True)
    for scenario in SCENARIOS:
        warm = await one(scenario, args.warmup)
        if warm.errors:
            raise BenchError(f"warm-up of {scenario}: {dict(warm.errors)} {warm.error_samples}")

    results: dict[str, list[RoundResult]] = defaultdict(list)
    for index in range(args.rounds):
        order = SCENARIOS[index % 3 :] + SCENARIOS[: index % 3]
        for scenario in order:
            result = await one(scenario, args.seconds)
            results[scenario].append(result)
            line = (
                f"round {index + 1}/{args.rounds} {scenario:<17} {result.rps:8,.0f} req/s"
                f"  ({result.requests} in {result.elapsed:.2f} s, daphne CPU"
                f" {result.server_cpu:.0%}, client CPU {result.client_cpu:.0%},"
                f" Redis connects/request {result.redis_connections / max(1, result.requests):.2f})"
            )
            if result.errors:
                line += f"  ERRORS {dict(result.errors)} e.g. {result.error_samples[:2]}"
            if result.reconnects:
                line += f"  reconnects {result.reconnects}"
            print(line, flush=True)

    profile = None
    if args.profile:
        profile = await run_profiles(args, daphne, one)
    return {"results": results, "profile": profile}


async def run_profiles(args: argparse.Namespace, daphne: Daphne, one) -> str:
    py_spy = ensure_py_spy()
    sections = []
    for scenario in (TRIVIAL, COUNT_304, COUNT_200):
        slug = {TRIVIAL: "trivial", COUNT_304: "304", COUNT_200: "200"}[scenario]
        raw = RESULTS / f"profile-polling-{slug}.txt"
        command = [
            str(py_spy),
            "record",
            "--pid",
            str(daphne.pid),
            "--duration",
            str(int(args.profile_seconds)),
            "--rate",
            "200",
            "--gil",
            "--threads",
            "--format",
            "raw",
            "-o",
            str(raw),
        ]
        print(f"profiling {scenario}: {shlex.join(command)}", flush=True)
        spy = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        try:
            await asyncio.sleep(0.5)  # py-spy attaches
            result = await one(scenario, args.profile_seconds + 1)
            async with asyncio.timeout(30):
                _, stderr = await spy.communicate()
        finally:
            if spy.returncode is None:
                spy.kill()
                await spy.wait()
        if spy.returncode != 0:
            raise BenchError(f"py-spy failed ({spy.returncode}): {stderr.decode(errors='replace')}")
        sections.append(
            f"## {scenario} under load ({result.rps:,.0f} req/s while sampled, errors"
            f" {dict(result.errors) or 0})\n\nRaw stacks: `{raw.relative_to(ROOT)}` (collapsed"
            f" format, e.g. for flamegraph.pl or speedscope).\n\n{summarise_profile(raw)}"
        )
    return "\n".join(sections)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the unread-count polling path.")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one round")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per path")
    parser.add_argument("--max-requests", type=int, default=500_000, help="cap per round")
    parser.add_argument("--notifications", type=int, default=1000)
    parser.add_argument("--database", default="notif_bench")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a URL of the server's maintenance database (for CREATE/DROP DATABASE)",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    )
    parser.add_argument("--startup-timeout", type=float, default=30.0)
    parser.add_argument("--profile", action="store_true", help="also sample daphne with py-spy")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--output", type=Path, default=RESULTS / "polling.md")
    parser.add_argument("--keep-database", action="store_true", help="do not drop it at the end")
    args = parser.parse_args()
    if args.connections < 1 or args.rounds < 1 or args.seconds <= 0 or args.max_requests < 1:
        parser.error("connections, rounds, seconds and max-requests must be positive")
    return args


def server_env(settings_module: str, database_url: str, redis_url: str) -> dict[str, str]:
    """The environment of a benchmark's daphne and helper processes: this checkout, production
    settings (no DEBUG), the run's database and Redis, and the demo's default channel layer."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DJANGO_DEBUG": "0",
        "ALLOWED_HOSTS": f"{HOST},localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CHANNEL_LAYER", None)
    return env


def main() -> int:
    args = parse_args()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_exit)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    machine = machine_info()
    command = invoked_as()
    database_url = with_path(args.postgres_url, "/" + args.database)
    env = server_env("bench.settings", database_url, args.redis_url)
    workdir = Path(tempfile.mkdtemp(prefix="bench-polling-"))
    daphne = Daphne(env, workdir / "daphne.log")
    created = False
    try:
        print(f"database {args.database} (recreated), Redis {args.redis_url} (flushed)", flush=True)
        recreate_database(args.postgres_url, args.database)
        created = True
        flush_redis(args.redis_url)
        python = str(BIN / "python")
        run_checked([python, "manage.py", "migrate", "--noinput"], env, "migrate", 300)
        seeded = json.loads(
            run_checked(
                [python, "-m", "bench.seed", "--notifications", str(args.notifications)],
                env,
                "seeding",
                300,
            )
            .strip()
            .splitlines()[-1]
        )
        print(
            f"seeded user {seeded['user_id']}: {args.notifications} notifications,"
            f" {seeded['unread_count']} unread, {seeded['unseen_count']} unseen",
            flush=True,
        )
        daphne.start(args.startup_timeout)
        try:
            outcome = asyncio.run(measure(args, daphne, seeded["token"], seeded))
        except BenchError:
            raise
        except Exception as exc:
            raise BenchError(f"{type(exc).__name__}: {exc}\n{daphne.log()}") from exc
        if daphne.process is not None and daphne.process.poll() is not None:
            raise BenchError(f"daphne died during the run:\n{daphne.log()}")
    except BenchError as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        daphne.stop()
        if created and not args.keep_database:
            try:
                drop_database(args.postgres_url, args.database)
            except Exception as exc:  # never hide the original error
                print(f"could not drop database {args.database}: {exc}", file=sys.stderr)
        with contextlib.suppress(Exception):
            flush_redis(args.redis_url)
        shutil.rmtree(workdir, ignore_errors=True)

    table, problems = build_table(outcome["results"])
    header = [
        "# Polling benchmark: unread-count under daphne",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine['nproc']} CPUs, {machine['cpu']}; load average at start"
        f" {machine['loadavg at start']}; Python {machine['python']}",
        f"- command: `{command}`",
        f"- setup: one daphne process, DJANGO_DEBUG=0, PostgreSQL (Django pool) + Redis cache;"
        f" {args.connections} keep-alive connections from one asyncio process; {args.rounds}"
        f" rounds × {args.seconds:g} s per path (cap {args.max_requests:,} requests per round);"
        f" 1 user, {args.notifications} notifications; DRF token auth",
        "",
    ]
    text = "\n".join(header) + "\n" + table + "\n"
    if problems:
        text += "\nProblems:\n" + "\n".join(f"- {p}" for p in problems) + "\n"
    print()
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"written to {shown}")
    if outcome["profile"]:
        profile_path = RESULTS / "profile-polling.md"
        profile_path.write_text(
            "# Where daphne's time goes: trivial view, unread-count 304 and 200\n\n"
            f"- date: {started:%Y-%m-%d %H:%M} UTC\n- command: `{command}`\n\n"
            f"{outcome['profile']}"
        )
        print(f"profile summary written to {profile_path.relative_to(ROOT)}")
    errors = [p for p in problems if "unexpected answers" in p]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
