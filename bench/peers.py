"""Benchmark against the peers: bulk sending (target 5) and the unread count's 200 (target 6).

``.venv/bin/python -m bench.peers`` (also run by ``make bench``) does, start to end:

1. builds (once, then reuses) two virtualenvs under ``.bench-venvs/`` (ignored by git): one with
   django-notifications-hq (latest) on Django 4.2 LTS, which it needs, and one with
   django-notifications-community (latest) and the Django it asks for. Both import as
   ``notifications``, so each runs in its own process, from a temporary folder holding a generated
   settings module and a copy of ``bench/peers_worker.py``; none of their code is kept here;
2. on the same PostgreSQL server, creates a fresh database per contender (``notif_peers_*``) and
   starts one worker per contender, which migrates it and creates the recipients (10,000, and
   100,000 unless ``--no-large``): hq, community, ours with Redis (the demo's settings with
   ``REDIS_URL``: channel layer, cache, registry) and ours with the in-memory layer;
3. times one send to N users per contender, in interleaved rounds (order rotated each round):
   hq's ``notify.send(actor, recipient=<QuerySet>, verb=...)`` as its users call it, and the same
   inside ``transaction.atomic()``; community's ``notify.send`` (its handler builds the rows and
   ``bulk_create``s them, returning them); ours ``notify(<QuerySet>, title, actor=...)`` with
   its after-commit work (no socket is open). Each send starts from an empty table and is checked
   to have written exactly N rows; every statement Django executes is counted;
4. unless ``--no-polling``: serves hq (``api/unread_count/``) and ours
   (``/api/notifications/unread-count/``) with daphne, each on its own database holding one user
   with 1,000 notifications and a session, and measures requests/s of the 200 path with the client
   of ``bench/polling.py``, with our daphne's trivial view (``bench.urls``) as the ceiling,
   rotating the order round by round;
5. prints one table (median and min-max, ratio of theirs to ours, the targets of
   ``/work/shared/brief/performance.md``) and writes it to ``bench/results/peers.md``;
6. stops every process it started, drops its databases and flushes its Redis database, always.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import queue
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.polling import (
    HOST,
    BenchError,
    Daphne,
    RoundResult,
    build_request,
    drop_database,
    fetch_once,
    flush_redis,
    machine_info,
    recreate_database,
    run_round,
    with_path,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
WORKER = ROOT / "bench" / "peers_worker.py"

HQ = "hq"
COMMUNITY = "community"
OURS = "ours"
OURS_MEMORY = "ours-memory"

# What each peer's virtualenv holds. hq needs Django < 5.1 (it imports distutils and was never
# updated past 4.2); community declares its own Django range, so pip picks it.
VENV_REQUIREMENTS = {
    HQ: ["django-notifications-hq", "Django>=4.2,<4.3", "psycopg[binary]>=3.1", "daphne>=4.1,<5"],
    COMMUNITY: ["django-notifications-community", "psycopg[binary]>=3.1"],
}

# The peers' settings: what their README asks for, a stock project's middleware, PostgreSQL.
PEER_SETTINGS = """\
import os
from urllib.parse import urlsplit

_db = urlsplit(os.environ["PEERS_DATABASE_URL"])
SECRET_KEY = "bench-peers-only-0123456789-abcdefghijklmnopqrstuvwxyz"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "notifications",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "peers_urls"
ASGI_APPLICATION = "peers_asgi.application"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/"),
        "USER": _db.username or "postgres",
        "PASSWORD": _db.password or "",
        "HOST": _db.hostname or "127.0.0.1",
        "PORT": _db.port or 5432,
        # Django 4.2 has no pool; under ASGI a persistent connection per request thread piles up
        # until PostgreSQL refuses more, so hq runs with Django's default: one per request.
        "CONN_MAX_AGE": 0,
    }
}
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
"""

PEER_URLS = """\
from django.urls import include, path

import notifications.urls

urlpatterns = [path("inbox/notifications/", include(notifications.urls, namespace="notifications"))]
"""

PEER_ASGI = """\
from django.core.asgi import get_asgi_application

application = get_asgi_application()
"""

HQ_COUNT_PATH = "/inbox/notifications/api/unread_count/"
OURS_COUNT_PATH = "/api/notifications/unread-count/"
TRIVIAL = "trivial"  # bench.urls' trivial view on our daphne: what any view costs there
TRIVIAL_PATH = "/bench/trivial/"


@dataclass(frozen=True)
class Scenario:
    key: str
    worker: str
    mode: str
    label: str
    target: float | None  # theirs / ours at least this much, or None


SCENARIOS = (
    Scenario("hq", HQ, "plain", "django-notifications-hq `notify.send` (as its users call it)", 30),
    Scenario(
        "hq-atomic", HQ, "atomic", "django-notifications-hq `notify.send` in `atomic()`", None
    ),
    Scenario(
        "community",
        COMMUNITY,
        "plain",
        "django-notifications-community `notify.send` (bulk_create)",
        5,
    ),
    Scenario("ours", OURS, "plain", "ours `notify(QuerySet)`, Redis layer + cache", None),
    Scenario("ours-memory", OURS_MEMORY, "plain", "ours `notify(QuerySet)`, in-memory layer", None),
)
REFERENCE = "ours"  # the row the peers are compared with
TARGET_SIZE = 10_000  # performance.md sets target 5 for this audience; other sizes only inform


# --- virtualenvs ---------------------------------------------------------------------------------


def ensure_venv(root: Path, name: str, refresh: bool) -> Path:
    """The peer's virtualenv's python, built if missing or built from other requirements."""
    venv = root / name
    python = venv / "bin" / "python"
    stamp = venv / ".bench-requirements.json"
    wanted = json.dumps(VENV_REQUIREMENTS[name])
    if not refresh and python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"building {venv} ({' '.join(VENV_REQUIREMENTS[name])})", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        + VENV_REQUIREMENTS[name],
        check=True,
        timeout=900,
    )
    stamp.write_text(wanted)
    return python


# --- workers -------------------------------------------------------------------------------------


class Worker:
    """A contender's ``peers_worker.py`` process: one JSON line in, one JSON line out."""

    def __init__(
        self, kind: str, python: Path, workdir: Path, env: dict[str, str], users: int
    ) -> None:
        self.kind = kind
        self.log_path = workdir / f"worker-{kind}.log"
        self.lines: queue.Queue[str | None] = queue.Queue()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(python), str(workdir / "peers_worker.py"), kind.split("-")[0], str(users)],
                cwd=workdir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        threading.Thread(target=self._read, daemon=True).start()
        self.ready: dict[str, Any] = {}

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def receive(self, timeout: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"{self.kind} worker gave no answer within {timeout} s") from None
        if line is None:
            raise BenchError(f"{self.kind} worker exited:\n{self.log()}")
        answer = json.loads(line)
        if "error" in answer:
            raise BenchError(f"{self.kind} worker failed:\n{answer['error']}\n{self.log()}")
        return answer

    def request(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.receive(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self.process.stdin is not None
                self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.process.stdin.close()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self, limit: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


# --- the bulk send -------------------------------------------------------------------------------


@dataclass
class Sends:
    seconds: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)


def measure_sends(
    args: argparse.Namespace, workers: dict[str, Worker]
) -> dict[tuple[str, int], Sends]:
    results: dict[tuple[str, int], Sends] = defaultdict(Sends)
    for size in args.sizes:
        rounds = args.repeats if size <= TARGET_SIZE else min(args.repeats, args.large_repeats)
        for index in range(rounds):
            order = SCENARIOS[index % len(SCENARIOS) :] + SCENARIOS[: index % len(SCENARIOS)]
            for scenario in order:
                hq_rounds = args.hq_large_repeats if size > TARGET_SIZE else args.hq_repeats
                if scenario.worker == HQ and index >= hq_rounds:
                    continue  # half a minute or more per send: fewer rounds (see --hq-repeats)
                answer = workers[scenario.worker].request(
                    {"op": "send", "users": size, "mode": scenario.mode}, args.send_timeout
                )
                sends = results[(scenario.key, size)]
                sends.seconds.append(answer["seconds"])
                sends.statements.append(answer["statements"])
                print(
                    f"{size:>7,} users  round {index + 1}/{rounds}  {scenario.key:<12}"
                    f" {answer['seconds']:8.3f} s  {answer['statements']:>7,} statements",
                    flush=True,
                )
    return results


# --- the unread count's 200 ----------------------------------------------------------------------


async def measure_polling(
    args: argparse.Namespace, targets: dict[str, tuple[Daphne, bytes]]
) -> dict[str, list[RoundResult]]:
    """Requests/s of each (server, request), in rounds whose order rotates."""

    async def one(name: str, seconds: float) -> RoundResult:
        server, request = targets[name]
        return await run_round(
            name,
            server.port,
            request,
            200,
            connections=args.connections,
            seconds=seconds,
            max_requests=args.max_requests,
            server_pid=server.pid,
        )

    for name in targets:
        warm = await one(name, args.poll_warmup)
        if warm.errors:
            raise BenchError(f"warm-up of {name}: {dict(warm.errors)} {warm.error_samples}")
    results: dict[str, list[RoundResult]] = defaultdict(list)
    names = list(targets)
    for index in range(args.poll_rounds):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            result = await one(name, args.poll_seconds)
            results[name].append(result)
            line = (
                f"polling round {index + 1}/{args.poll_rounds} {name:<7} {result.rps:8,.0f} req/s"
                f" ({result.requests} in {result.elapsed:.2f} s, daphne CPU"
                f" {result.server_cpu:.0%}, client CPU {result.client_cpu:.0%})"
            )
            if result.errors:
                line += f"  ERRORS {dict(result.errors)} {result.error_samples[:2]}"
            print(line, flush=True)
    return results


async def check_count(port: int, request: bytes, expected: int, name: str, server: Daphne) -> None:
    status, _, body = await fetch_once(port, request)
    if status != 200:
        raise BenchError(f"{name} unread count answered {status}: {body[:300]!r}\n{server.log()}")
    count = json.loads(body).get("unread_count")
    if count != expected:
        raise BenchError(f"{name} unread count said {count}, expected {expected}")


# --- the report ----------------------------------------------------------------------------------


def spread(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (1 run)"
    return (
        f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–"
        f"{max(values):.{digits}f}, {len(values)} runs)"
    )


def send_table(
    args: argparse.Namespace, results: dict[tuple[str, int], Sends]
) -> tuple[str, list[str]]:
    rows = [
        "| contender | recipients | seconds: median (min–max, runs) | statements | ours faster by:"
        " median (per-round min–max) | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    problems: list[str] = []
    for size in args.sizes:
        reference = results[(REFERENCE, size)].seconds
        for scenario in SCENARIOS:
            sends = results.get((scenario.key, size))
            if sends is None or not sends.seconds:
                continue
            statements = sorted(set(sends.statements))
            counted = "/".join(f"{n:,}" for n in statements)
            if scenario.key == REFERENCE:
                ratio_text, target_text, met = "reference", "—", "—"
            else:
                # Each run against ours of the same round: rounds share the machine's mood.
                paired = [t / o for t, o in zip(sends.seconds, reference, strict=False)]
                ratio = statistics.median(sends.seconds) / statistics.median(reference)
                if len(paired) == 1:
                    ratio_text = f"{ratio:,.1f}x (its round: {paired[0]:,.1f}x)"
                else:
                    ratio_text = f"{ratio:,.1f}x ({min(paired):,.1f}–{max(paired):,.1f})"
                if scenario.target is None:
                    target_text, met = "—", "—"
                elif size != TARGET_SIZE:
                    target_text, met = f"({scenario.target:g}x is set for {TARGET_SIZE:,})", "—"
                else:
                    target_text = f"≥ {scenario.target:g}x"
                    met = "yes" if ratio >= scenario.target else "**no**"
                    if ratio < scenario.target:
                        problems.append(
                            f"{size:,} users: {ratio:.1f}x faster than {scenario.key},"
                            f" the target is {scenario.target:g}x"
                        )
                if scenario.worker in (OURS, OURS_MEMORY):
                    ratio_text = f"{1 / ratio:.2f}x of reference" if ratio else "—"
            rows.append(
                f"| {scenario.label} | {size:,} | {spread(sends.seconds)} | {counted} |"
                f" {ratio_text} | {target_text} | {met} |"
            )
    return "\n".join(rows), problems


def polling_table(results: dict[str, list[RoundResult]]) -> tuple[str, list[str]]:
    problems: list[str] = []
    theirs = [r.rps for r in results[HQ]]

    def against_hq(name: str) -> tuple[float, str]:
        values = [r.rps for r in results[name]]
        paired = [v / t for v, t in zip(values, theirs, strict=True)]
        ratio = statistics.median(values) / statistics.median(theirs)
        return ratio, f"{ratio:.2f}x ({min(paired):.2f}–{max(paired):.2f})"

    ratio, ours_text = against_hq(OURS)
    met = "yes" if ratio >= 3 else "**no**"
    if ratio < 3:
        problems.append(f"unread count 200: {ratio:.2f}x hq's, the target is 3x")
    _, trivial_text = against_hq(TRIVIAL)
    for name in results:
        errors = sum(sum(r.errors.values()) for r in results[name])
        if errors:
            problems.append(f"polling {name}: {errors} unexpected answers")

    def row(name: str, label: str, ratio_text: str, target: str, met_text: str) -> str:
        values = [r.rps for r in results[name]]
        cpu = statistics.median(r.server_cpu for r in results[name])
        client = statistics.median(r.client_cpu for r in results[name])
        errors = sum(sum(r.errors.values()) for r in results[name])
        return (
            f"| {label} | {statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"
            f" | {ratio_text} | {target} | {met_text} | {cpu:.0%} | {client:.0%} | {errors} |"
        )

    rows = [
        "| server and path | req/s: median (min–max) | / hq: median (per-round min–max) | target"
        " | met | daphne CPU | client CPU | errors |",
        "|---|---|---|---|---|---|---|---|",
        row(HQ, "django-notifications-hq `api/unread_count/` (Django 4.2)", "—", "—", "—"),
        row(OURS, "ours `unread-count/` → 200 (Django 5.2)", ours_text, "≥ 3x", met),
        row(
            TRIVIAL,
            "ours: a trivial view on the same daphne (the ceiling of any view)",
            trivial_text,
            "—",
            "—",
        ),
    ]
    return "\n".join(rows), problems


# --- main ----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Bulk send and polling against the peers.")
    parser.add_argument("--users", type=int, default=10_000, help="the audience of a send")
    parser.add_argument(
        "--large",
        type=int,
        default=100_000,
        help="also send to this many users (default 100,000)",
    )
    parser.add_argument("--no-large", action="store_true", help="only --users")
    parser.add_argument("--repeats", type=int, default=5, help="rounds at --users")
    parser.add_argument("--large-repeats", type=int, default=3, help="rounds at --large")
    parser.add_argument(
        "--hq-repeats",
        type=int,
        default=3,
        help="rounds of hq at --users (each send commits every row: 15-40 s per 10,000 here)",
    )
    parser.add_argument(
        "--hq-large-repeats",
        type=int,
        default=1,
        help="rounds of hq at --large (one to three minutes each)",
    )
    parser.add_argument("--send-timeout", type=float, default=600.0)
    parser.add_argument("--no-polling", action="store_true", help="skip the unread-count part")
    parser.add_argument("--notifications", type=int, default=1000, help="the poller's")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--poll-rounds", type=int, default=4)
    parser.add_argument("--poll-seconds", type=float, default=5.0)
    parser.add_argument("--poll-warmup", type=float, default=2.0)
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap per round")
    parser.add_argument("--database-prefix", default="notif_peers")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a URL of the server's maintenance database (for CREATE/DROP DATABASE)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_PEERS_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="a Redis database of its own (flushed at start and end)",
    )
    parser.add_argument("--venvs", type=Path, default=ROOT / ".bench-venvs")
    parser.add_argument("--refresh-venvs", action="store_true", help="rebuild them (latest)")
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="migrate + seed")
    parser.add_argument("--output", type=Path, default=RESULTS / "peers.md")
    args = parser.parse_args()
    counts = (args.users, args.repeats, args.large_repeats, args.hq_repeats, args.hq_large_repeats)
    if min(*counts, args.poll_rounds) < 1:
        parser.error("sizes, repeats and rounds must be positive")
    args.sizes = [args.users] if args.no_large else sorted({args.users, args.large})
    return args


def invoked_as() -> str:
    python = (
        Path(sys.executable).relative_to(ROOT).as_posix()
        if sys.executable.startswith(str(ROOT))
        else sys.executable
    )
    command = shlex.join([python, "-m", "bench.peers", *sys.argv[1:]])
    if os.environ.get("MAKELEVEL"):
        extra = shlex.join(sys.argv[1:])
        return f"make bench{f' PEERS_ARGS={shlex.quote(extra)}' if extra else ''} (runs: {command})"
    return command


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    args = parse_args()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_exit)
    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    machine = machine_info()
    command = invoked_as()
    workdir = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    databases = {
        kind: f"{args.database_prefix}_{kind.replace('-', '_')}"
        for kind in (HQ, COMMUNITY, OURS, OURS_MEMORY)
    }
    created: list[str] = []
    workers: dict[str, Worker] = {}
    servers: dict[str, Daphne] = {}
    polling: dict[str, list[RoundResult]] | None = None
    try:
        args.venvs.mkdir(parents=True, exist_ok=True)
        pythons = {
            HQ: ensure_venv(args.venvs, HQ, args.refresh_venvs),
            COMMUNITY: ensure_venv(args.venvs, COMMUNITY, args.refresh_venvs),
            OURS: BIN / "python",
            OURS_MEMORY: BIN / "python",
        }
        shutil.copy(WORKER, workdir / "peers_worker.py")
        (workdir / "peers_settings.py").write_text(PEER_SETTINGS)
        (workdir / "peers_urls.py").write_text(PEER_URLS)
        (workdir / "peers_asgi.py").write_text(PEER_ASGI)
        flush_redis(args.redis_url)
        base_env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "REDIS_URL", "DATABASE_URL")
        }
        base_env["PYTHONUNBUFFERED"] = "1"
        envs: dict[str, dict[str, str]] = {}
        for kind, name in databases.items():
            recreate_database(args.postgres_url, name)
            created.append(name)
            url = with_path(args.postgres_url, "/" + name)
            if kind in (HQ, COMMUNITY):
                envs[kind] = {
                    **base_env,
                    "PYTHONPATH": str(workdir),
                    "DJANGO_SETTINGS_MODULE": "peers_settings",
                    "PEERS_DATABASE_URL": url,
                }
            else:
                envs[kind] = {
                    **base_env,
                    "PYTHONPATH": f"{workdir}{os.pathsep}{ROOT}",
                    "DJANGO_SETTINGS_MODULE": "bench.settings",
                    "DJANGO_DEBUG": "0",
                    "ALLOWED_HOSTS": f"{HOST},localhost",
                    "DATABASE_URL": url,
                }
                if kind == OURS:
                    envs[kind]["REDIS_URL"] = args.redis_url
        size = max(args.sizes)
        print(f"databases {', '.join(databases.values())}: migrating, {size:,} users each")
        for kind in databases:
            workers[kind] = Worker(kind, pythons[kind], workdir, envs[kind], size)
        for kind, worker in workers.items():
            worker.ready = worker.receive(args.startup_timeout)
            print(f"{kind:<12} ready: {worker.ready['versions']}", flush=True)

        sends = measure_sends(args, workers)

        if not args.no_polling:
            pollers = {
                kind: workers[kind].request(
                    {"op": "poller", "notifications": args.notifications}, args.send_timeout
                )
                for kind in (HQ, OURS)
            }
            hq_venv_bin = pythons[HQ].parent
            servers[HQ] = Daphne(
                envs[HQ],
                workdir / "daphne-hq.log",
                "peers_asgi:application",
                executable=hq_venv_bin / "daphne",
                cwd=workdir,
                name="hq daphne",
            )
            servers[OURS] = Daphne(envs[OURS], workdir / "daphne-ours.log", name="our daphne")
            targets: dict[str, tuple[Daphne, bytes]] = {}
            for kind, path in ((HQ, HQ_COUNT_PATH), (OURS, OURS_COUNT_PATH)):
                server = servers[kind]
                server.start(60)
                cookie = f"{pollers[kind]['session_cookie']}={pollers[kind]['session']}"
                request = build_request(
                    path, server.port, {"Accept": "application/json", "Cookie": cookie}
                )
                asyncio.run(
                    check_count(server.port, request, pollers[kind]["unread_count"], kind, server)
                )
                targets[kind] = (server, request)
                if kind == OURS:
                    targets[TRIVIAL] = (
                        server,
                        build_request(
                            TRIVIAL_PATH,
                            server.port,
                            {"Accept": "application/json", "Cookie": cookie},
                        ),
                    )
            polling = asyncio.run(measure_polling(args, targets))
            for server in servers.values():
                if server.process is not None and server.process.poll() is not None:
                    raise BenchError(f"{server.name} died during the run:\n{server.log()}")
    except BenchError as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for server in servers.values():
            server.stop()
        for worker in workers.values():
            worker.stop()
        for name in created:
            try:
                drop_database(args.postgres_url, name)
            except Exception as exc:  # never hide the original error
                print(f"could not drop database {name}: {exc}", file=sys.stderr)
        with contextlib.suppress(Exception):
            flush_redis(args.redis_url)
        shutil.rmtree(workdir, ignore_errors=True)

    versions = {kind: worker.ready.get("versions", {}) for kind, worker in workers.items()}
    table, problems = send_table(args, sends)
    lines = [
        "# Against the peers: bulk send and the unread count",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; whole run {time.monotonic() - clock:.0f} s",
        f"- machine: {machine['nproc']} CPUs, {machine['cpu']}; load average at start"
        f" {machine['loadavg at start']}",
        f"- command: `{command}`",
        f"- hq: django-notifications-hq {versions[HQ].get('django-notifications-hq')} on Django"
        f" {versions[HQ].get('django')}; community: django-notifications-community"
        f" {versions[COMMUNITY].get('django-notifications-community')} on Django"
        f" {versions[COMMUNITY].get('django')}; ours on Django {versions[OURS].get('django')};"
        f" Python {versions[OURS].get('python')}, psycopg {versions[OURS].get('psycopg')},"
        " one PostgreSQL server, a fresh database per contender",
        "",
        "## Bulk send (performance target 5)",
        "",
        "One notification (with an actor) to the first N of the seeded users, given as a"
        " QuerySet, from an empty table; each contender in its own long-lived process, rounds"
        " interleaved (order rotated each round). Seconds include the commit and, for ours, the"
        " after-commit work (signal, registry lookup, version bump; no socket is open). Statements"
        " = every statement Django executed (savepoints included; the driver's BEGIN/COMMIT are"
        " not statements). `ours faster by` = their median / ours (Redis) median; in brackets each"
        " run against ours of the same round.",
        "",
        table,
        "",
    ]
    if polling is not None:
        poll_table, poll_problems = polling_table(polling)
        problems += poll_problems
        lines += [
            "## Unread count, the 200 path (second half of performance target 6)",
            "",
            f"One user with {args.notifications:,} notifications (a quarter read) and a session"
            " cookie; each server is one daphne process on its own database of the same"
            f" PostgreSQL server; {args.connections} keep-alive connections from the client of"
            f" `bench/polling.py`; {args.poll_rounds} rounds × {args.poll_seconds:g} s per path,"
            " order rotated. hq runs as Django 4.2 must under ASGI: a new database connection per"
            " request (no pool before 5.1), sessions in the database (Django's default), a stock"
            " project's middleware. Ours runs the demo's settings (`bench.settings`): psycopg"
            " pool, sessions cached in Redis. The trivial view (no database, no authentication,"
            " the same session cookie sent) on our daphne is the most any view can do there:"
            " when it is below 3x hq's endpoint, no unread-count view can reach the target on"
            " this server.",
            "",
            poll_table,
            "",
        ]
    else:
        lines += ["The unread-count comparison was skipped (`--no-polling`).", ""]
    if problems:
        lines += ["Problems:", "", *[f"- {p}" for p in problems], ""]
    text = "\n".join(lines)
    print()
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"written to {shown}")
    return 1 if any("unexpected answers" in p for p in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
