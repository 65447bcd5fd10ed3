"""Against the peers: bulk sending (target 5) and the unread count's 200 (target 6).

``make bench`` or ``.venv/bin/python -m bench.peers``: hq (Django 4.2, which it needs) and
community run from virtualenvs of their own (``.bench-venvs/``), since both import as
``notifications``. Each contender times one send to N users on a fresh database, rounds rotating;
then hq's ``api/unread_count/`` and ours in requests/s, with our trivial view as the ceiling.
"""

import argparse
import asyncio
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.lib import report
from bench.lib.databases import POSTGRES, flush_redis, scratch_database
from bench.lib.load import Round, fetch, interleave, request, run_round
from bench.lib.processes import BIN, ROOT, BenchError, Process, daphne, django_env, main
from bench.lib.report import RESULTS, median

HQ, COMMUNITY, OURS, MEMORY, TRIVIAL = "hq", "community", "ours", "ours-memory", "trivial"
# hq needs Django < 5.1 (it imports distutils and was never updated past 4.2); community
# declares its own Django range, so pip picks it.
VENVS = {
    HQ: ["django-notifications-hq", "Django>=4.2,<4.3", "psycopg[binary]>=3.1", "daphne>=4.1,<5"],
    COMMUNITY: ["django-notifications-community", "psycopg[binary]>=3.1"],
}
# The peers' project: what their README asks for, a stock project's middleware, PostgreSQL
# (hq on Django 4.2 has no pool: a connection per request, Django's default).
PEER_SETTINGS = """\
import os
from urllib.parse import urlsplit

_db = urlsplit(os.environ["PEERS_DATABASE_URL"])
SECRET_KEY = "bench-peers-only-0123456789-abcdefghijklmnopqrstuvwxyz"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib." + a for a in ("auth", "contenttypes", "sessions", "messages")]
INSTALLED_APPS.append("notifications")
MIDDLEWARE = [f"django.{m}Middleware" for m in ("middleware.security.Security",
    "contrib.sessions.middleware.Session", "middleware.common.Common", "middleware.csrf.CsrfView",
    "contrib.auth.middleware.Authentication", "contrib.messages.middleware.Message",
    "middleware.clickjacking.XFrameOptions")]
ROOT_URLCONF = "peers_urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": _db.path[1:]}}
DATABASES["default"] |= {"USER": _db.username, "HOST": _db.hostname, "PORT": _db.port}
USE_TZ, DEFAULT_AUTO_FIELD = True, "django.db.models.AutoField"
"""
PEER_URLS = """\
from django.urls import include, path

urlpatterns = [path("inbox/notifications/", include("notifications.urls", "notifications"))]
"""
PEER_ASGI = "from django.core.asgi import get_asgi_application as a\napplication = a()"
PEER_FILES = {"settings": PEER_SETTINGS, "urls": PEER_URLS, "asgi": PEER_ASGI}
PATHS = {HQ: "/inbox/notifications/api/unread_count/", OURS: "/api/notifications/unread-count/"}
PATHS[TRIVIAL] = "/bench/trivial/"  # on our daphne: what any view costs there
COMMUNITY_NAME = "django-notifications-community"
# key: worker, mode, label, target (theirs / ours at least this much, at TARGET_SIZE)
SENDS = {
    "hq": (HQ, "plain", "django-notifications-hq `notify.send` (as its users call it)", 30),
    "hq-atomic": (HQ, "atomic", "django-notifications-hq `notify.send` in `atomic()`", None),
    "community": (COMMUNITY, "plain", f"{COMMUNITY_NAME} `notify.send` (bulk_create)", 5),
    OURS: (OURS, "plain", "ours `notify(QuerySet)`, Redis layer + cache", None),
    MEMORY: (MEMORY, "plain", "ours `notify(QuerySet)`, in-memory layer", None),
}
CPU = ("server_cpu", "client_cpu")
TARGET_SIZE = 10_000  # performance.md sets target 5 for this audience; other sizes only inform


def venv(name: str) -> Path:
    """Its virtualenv's python, built if missing (remove ``.bench-venvs/`` for new releases)."""
    root = ROOT / ".bench-venvs"
    python, stamp, wanted = root / name / "bin/python", root / name / ".requirements", VENVS[name]
    if not stamp.exists() or stamp.read_text() != json.dumps(wanted):
        print(f"building {root / name} ({' '.join(wanted)})", flush=True)
        shutil.rmtree(root / name, ignore_errors=True)
        base = getattr(sys, "_base_executable", sys.executable)  # not this virtualenv's python
        subprocess.run([base, "-m", "venv", str(root / name)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted], check=True)
        stamp.write_text(json.dumps(wanted))
    return python


def sends(args: argparse.Namespace, workers: dict[str, Process]) -> dict:
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for size in args.sizes:
        # hq's sends take half a minute or more each (two at 100,000): fewer rounds
        rounds, hq_rounds = (5, 3) if size <= TARGET_SIZE else (3, 1)
        for index in range(rounds):
            for key in list(SENDS)[index % 5 :] + list(SENDS)[: index % 5]:
                worker, mode, _, _ = SENDS[key]
                if worker == HQ and index >= hq_rounds:
                    continue
                command = {"cmd": "send", "users": size, "mode": mode}
                done = workers[worker].call(command, 900)
                results.setdefault((key, size), []).append(done)
                took, statements = done["seconds"], done["statements"]
                where = f"{size:>7,} users  round {index + 1}/{rounds}  {key:<12}"
                print(f"{where} {took:8.3f} s  {statements:>7,} statements", flush=True)
    return results


def send_table(args: argparse.Namespace, results: dict) -> str:
    rows = []
    for size in args.sizes:
        ours = [r["seconds"] for r in results[(OURS, size)]]
        for key, (_, _, label, target) in SENDS.items():
            if not (seconds := [r["seconds"] for r in results.get((key, size), [])]):
                continue
            statements = "/".join(
                f"{n:,}" for n in sorted({r["statements"] for r in results[(key, size)]})
            )
            shown = f"{report.spread(seconds, '{:.3f}')}, {len(seconds)} run(s)"
            ratio, paired = median(seconds) / median(ours), report.paired(seconds, ours)
            faster = f"{ratio:,.1f}x ({min(paired):,.1f}–{max(paired):,.1f})"
            faster = {OURS: "reference", MEMORY: f"{1 / ratio:.2f}x of reference"}.get(key, faster)
            goal = met = "—"
            if target and size != TARGET_SIZE:
                goal = f"({target:g}x is set for {TARGET_SIZE:,})"
            elif target:
                goal, met = f"≥ {target:g}x", "yes" if ratio >= target else "**no**"
            rows.append([label, f"{size:,}", shown, statements, faster, goal, met])
    header = "contender|recipients|seconds: median (min–max), runs|statements"
    header += "|ours faster by: median (per-round min–max)|target|met"
    return report.table(header.split("|"), rows)


def polling_table(results: dict[str, list[Round]]) -> str:
    theirs, rows = [r.rps for r in results[HQ]], []
    for name, label in (
        (HQ, "django-notifications-hq `api/unread_count/` (Django 4.2)"),
        (OURS, "ours `unread-count/` → 200 (Django 5.2)"),
        (TRIVIAL, "ours: a trivial view on the same daphne (the ceiling of any view)"),
    ):
        rps, rounds = [r.rps for r in results[name]], results[name]
        paired, ratio = report.paired(rps, theirs), median(rps) / median(theirs)
        against = "—" if name == HQ else f"{ratio:.2f}x ({min(paired):.2f}–{max(paired):.2f})"
        goal, met = ("≥ 3x", "yes" if ratio >= 3 else "**no**") if name == OURS else ("—", "—")
        row = [label, report.spread(rps), against, goal, met]
        row += [f"{median(getattr(r, key) for r in rounds):.0%}" for key in CPU]
        rows.append(row + [sum(sum(r.errors.values()) for r in rounds)])
    header = "server and path|req/s: median (min–max)|/ hq: median (per-round min–max)|target|met"
    return report.table((header + "|daphne CPU|client CPU|errors").split("|"), rows)


def start(args: argparse.Namespace, folder: Path, urls: dict[str, str]) -> tuple[dict, dict]:
    pythons = {kind: venv(kind) for kind in VENVS}
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env |= {"PYTHONPATH": str(folder), "DJANGO_SETTINGS_MODULE": "peers_settings"}
    envs = {kind: env | {"PEERS_DATABASE_URL": urls[kind]} for kind in VENVS}
    for kind, redis_url in ((OURS, args.redis_url), (MEMORY, None)):
        pythons[kind] = BIN / "python"
        envs[kind] = django_env(urls[kind], redis_url, PYTHONPATH=f"{folder}{os.pathsep}{ROOT}")
    size, workers = max(args.sizes), {}
    print(f"databases {', '.join(urls.values())}: migrating, {size:,} users each", flush=True)
    for kind in urls:
        script = [str(pythons[kind]), "peers_worker.py", kind.split("-")[0], str(size)]
        log = folder / f"worker-{kind}.log"
        workers[kind] = Process(script, envs[kind], log, cwd=folder).start(600)
        print(f"{kind:<12} ready: {workers[kind].ready['versions']}", flush=True)
    envs["hq-daphne"] = {"executable": pythons[HQ].parent / "daphne", "cwd": folder}
    return workers, envs


def polling(args: argparse.Namespace, folder: Path, workers: dict, envs: dict) -> dict:
    measured = {}
    for kind in (HQ, OURS):
        seeded = workers[kind].call({"cmd": "poller", "notifications": args.notifications})
        log = folder / f"daphne-{kind}.log"
        if kind == HQ:
            server = daphne(envs[HQ], log, "peers_asgi:application", **envs["hq-daphne"])
        else:
            server = daphne(envs[OURS], log)
        headers = {"Accept": "application/json", "Cookie": seeded["cookie"]}
        for name in (kind, TRIVIAL) if kind == OURS else (kind,):
            raw, options = request(PATHS[name], server.port, headers), {"server": server.pid}
            options |= {"connections": args.connections, "limit": 200_000}
            measured[name] = functools.partial(run_round, server.port, raw, 200, **options)
        raw = request(PATHS[kind], server.port, headers)
        status, _, body = asyncio.run(fetch(server.port, raw))
        if status != 200 or json.loads(body)["unread_count"] != seeded["unread_count"]:
            raise BenchError(f"{kind}: unread count {status} {body[:300]!r}\n{server.log()}")
    return asyncio.run(interleave(measured, args.poll_rounds, args.poll_seconds, 2.0))


def run() -> int:
    parser = argparse.ArgumentParser(description="Bulk send and polling against the peers.")
    parser.add_argument("--users", type=int, default=10_000, help="the audience of a send")
    parser.add_argument("--large", type=int, default=100_000, help="also send to this many users")
    parser.add_argument("--no-large", action="store_true", help="only --users")
    parser.add_argument("--notifications", type=int, default=1000, help="the poller's")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--poll-rounds", type=int, default=4)
    parser.add_argument("--poll-seconds", type=float, default=5.0)
    parser.add_argument("--database-prefix", default="notif_peers")
    parser.add_argument("--postgres-url", default=POSTGRES, help="the maintenance database")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="flushed")
    parser.add_argument("--output", type=Path, default=RESULTS / "peers.md")
    args = parser.parse_args()
    args.sizes = [args.users] if args.no_large else sorted({args.users, args.large})
    title, clock = "Against the peers: bulk send and the unread count", time.monotonic()
    lines = report.header(title, "bench.peers", "PEERS_ARGS")
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        shutil.copy(ROOT / "bench/peers_worker.py", folder)
        for name, text in PEER_FILES.items():
            Path(folder, f"peers_{name}.py").write_text(text)
        urls = {}
        for kind in (HQ, COMMUNITY, OURS, MEMORY):
            name = f"{args.database_prefix}_{kind.replace('-', '_')}"
            urls[kind] = stack.enter_context(scratch_database(name, args.postgres_url))
        flush_redis(args.redis_url)
        stack.callback(flush_redis, args.redis_url)
        workers, envs = start(args, Path(folder), urls)
        results = sends(args, workers)
        polled = polling(args, Path(folder), workers, envs)
    hq, community, ours = (workers[kind].ready["versions"] for kind in (HQ, COMMUNITY, OURS))
    lines[2] += f"; whole run {time.monotonic() - clock:.0f} s"
    lines.append(
        f"- hq: django-notifications-hq {hq['hq']} on Django {hq['django']}; community:"
        f" {COMMUNITY_NAME} {community['community']} on Django {community['django']}; ours on"
        f" Django {ours['django']}; Python {ours['python']}, psycopg {ours['psycopg']}, one"
        " PostgreSQL server, a fresh database per contender\n\n## Bulk send (performance target"
        f" 5)\n\n{SENDS_TEXT}\n\n{send_table(args, results)}\n\n## Unread count, the 200 path"
        f" (second half of performance target 6)\n\n{POLLING_TEXT.format(args=args)}\n\n"
        f"{polling_table(polled)}\n"
    )
    report.write(args.output, "\n".join(lines))
    return 1 if any(r.errors for rounds in polled.values() for r in rounds) else 0


SENDS_TEXT = (
    "One notification (with an actor) to the first N users, as a QuerySet, from an empty table;"
    " each contender in a process of its own, rounds interleaved. Seconds include the commit and,"
    " for ours, the after-commit work (no socket is open). Statements: every one Django executed,"
    " savepoints included. `ours faster by`: their median / ours (Redis); in brackets, each run"
    " against ours of the same round."
)
POLLING_TEXT = (
    "One user with {args.notifications:,} notifications and a session; each server one daphne on"
    " a database of its own; {args.connections} keep-alive connections; {args.poll_rounds} rounds"
    " × {args.poll_seconds:g} s, order rotated. hq as Django 4.2 must: a database connection per"
    " request (no pool before 5.1), sessions in the database. Ours: the demo's settings (pool,"
    " sessions cached in Redis). The trivial view on our daphne is the most any view can do"
    " there: below 3x hq's endpoint, no unread-count view can reach the target."
)

if __name__ == "__main__":
    main(run)
