"""One ``notify()`` to one user with a socket open, against a raw INSERT and commit of the same
row: what the send path costs beyond the database's own work (brief, target 2: latency).

``make bench`` or ``.venv/bin/python -m bench.notify_path [--postgres] [--sends 200]
[--repeat 5] [--profile]``: SQLite (a file), or PostgreSQL with ``--postgres`` (a fresh
database); each with the in-memory channel layer and cache, then with Redis as the demo's
settings use it (pub/sub layer, ``RedisCache``). Per configuration a process of its own
(Django is set up once per process): the user's socket claimed in the registry as the consumer
claims it (with Redis, past the registry's start-up grace, so that who is online is known), a
warm-up, then rounds. Each round starts from an empty table and alternates blocks of
``notify(user, ...)`` calls in autocommit (the after-commit work included: version bump, who is
online, counts, push) with blocks of the baseline: one ``INSERT ... RETURNING id`` of a row with
the same values through the database driver's own connection in autocommit (the statement is
its own transaction, committed when it returns), for another user. ``--profile`` adds a
pyinstrument profile of the sends per configuration. Into ``bench/results/notify_path-*.md``.
"""

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.lib import report
from bench.lib.databases import POSTGRES, close_connections, flush_redis, scratch_database
from bench.lib.processes import BIN, ROOT, BenchError, become_django, django_env, main
from bench.lib.report import RESULTS

LAYER = {"BENCH_LAYER_PREFIX": "notif-notify-path-bench"}
# Sends, then baseline inserts, this many at a time: both see the machine in the same mood.
BLOCK = 20
TITLE, BODY = "bob commented on Launch plan", "Looks good to me. Ship it on Monday."


# --- inside the configuration's own process ---------------------------------------------------


class Bench:
    """The migrated database, the user with a socket open, the other user the baseline writes to."""

    def __init__(self) -> None:
        from asgiref.sync import async_to_sync
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import connection

        from notifications.models import Notification
        from notifications.realtime import broker
        from notifications.realtime.presence import PROCESS, registry

        call_command("migrate", verbosity=0, interactive=False)
        users = get_user_model()
        self.user = users.objects.create_user("bench-reader")
        self.other = users.objects.create_user("bench-baseline")
        # The user's socket, claimed as the consumer claims it on connect.
        claimed = async_to_sync(registry().claim)(self.user.pk, "bench.socket!1", PROCESS)
        if claimed is False:
            raise BenchError("the registry refused the bench's socket")
        started = time.monotonic()
        while broker.online([self.user.pk]) != {self.user.pk}:
            if time.monotonic() - started > 60:  # a fresh Redis registry knows nothing for 15 s
                raise BenchError("the user never showed as online")
            time.sleep(0.5)
        self.vendor = connection.vendor
        self.table = connection.ops.quote_name(Notification._meta.db_table)
        self.pushes = 0

    def clear(self) -> None:
        from django.db import connection

        from notifications.models import Notification

        Notification.objects.all().delete()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")

    def send(self) -> None:
        from notifications.services import notify

        notify(self.user, TITLE, BODY)

    def baseline(self) -> Callable[[], None]:
        """The raw insert, on the driver's connection (Django's, so the same session)."""
        from django.db import connection
        from django.utils import timezone

        connection.ensure_connection()
        raw = connection.connection
        placeholder = "%s" if self.vendor == "postgresql" else "?"
        columns = (
            "recipient_id, title, body, level, category, url, actor_object_id, target_object_id,"
            " data, created_at, group_key, group_count, actors, email"
        )
        values = ", ".join([placeholder] * 14)
        sql = f"INSERT INTO {self.table} ({columns}) VALUES ({values}) RETURNING id"
        other = self.other.pk

        def insert() -> None:
            now = timezone.now()
            created = now if self.vendor == "postgresql" else f"{now:%Y-%m-%d %H:%M:%S.%f}"
            params = (other, TITLE, BODY, "info", "", "", "", "", "{}", created, "", 1, "[]", "")
            cursor = raw.cursor()
            try:
                cursor.execute(sql, params)
                cursor.fetchall()
            finally:
                cursor.close()

        return insert

    def statements(self) -> list[str]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            self.send()
        return [query["sql"][:120] for query in queries.captured_queries]

    def round(self, sends: int, baseline_first: bool) -> dict[str, list[float]]:
        """``sends`` of each, in alternating blocks: the seconds of each call, and the CPU
        seconds of each block per call (the process's, its threads included: less moved by
        the other users of a shared machine than the clock)."""
        self.clear()
        insert = self.baseline()
        timed: dict[str, list[float]] = {"notify": [], "baseline": []}
        cpu: dict[str, list[float]] = {"notify": [], "baseline": []}
        runs: list[tuple[str, Callable[[], None]]] = [("notify", self.send), ("baseline", insert)]
        if baseline_first:
            runs.reverse()
        gc.collect()
        for _ in range(0, sends, BLOCK):
            for name, call in runs:
                cpu_started = time.process_time()
                for _ in range(BLOCK):
                    started = time.perf_counter()
                    call()
                    timed[name].append(time.perf_counter() - started)
                cpu[name].append((time.process_time() - cpu_started) / BLOCK)
        return {**timed, **{f"{name} cpu": values for name, values in cpu.items()}}


def worker(args: argparse.Namespace) -> None:
    """Set up, warm up, run the rounds (and the profile); one JSON line on stdout."""
    from django.conf import settings

    bench = Bench()
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rpartition(".")[2]
    for _ in range(3):  # warm-up: connections, content types, the push loop
        bench.round(BLOCK, baseline_first=False)
    rounds = []
    for number in range(args.repeat):
        timed = bench.round(args.sends, baseline_first=bool(number % 2))
        rounds.append({name: statistics.median(values) for name, values in timed.items()})
        print(
            f"  round {number + 1}: notify() {1000 * rounds[-1]['notify']:.3f} ms"
            f" ({1000 * rounds[-1]['notify cpu']:.3f} CPU), baseline"
            f" {1000 * rounds[-1]['baseline']:.3f} ms ({1000 * rounds[-1]['baseline cpu']:.3f})",
            file=sys.stderr,
            flush=True,
        )
    statements = bench.statements()
    profile = ""
    if args.profile:
        from pyinstrument import Profiler

        bench.clear()
        profiler = Profiler(interval=0.0002)
        with profiler:
            for _ in range(args.sends):
                bench.send()
        profile = profiler.output_text(unicode=False, color=False)
    bench.clear()
    close_connections()
    answer = {"layer": layer, "rounds": rounds, "statements": statements, "profile": profile}
    print(json.dumps(answer), flush=True)


# --- the run -----------------------------------------------------------------------------------


@contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    if not args.postgres:
        with tempfile.TemporaryDirectory(prefix="notif-notify-path-bench-") as folder:
            yield f"sqlite:///{folder}/notify.sqlite3"
        return
    with scratch_database(args.database, args.postgres_url) as url:
        yield url


def measure(args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    flush_redis(redis_url)
    with database(args) as url:
        command = [str(BIN / "python"), "-m", "bench.notify_path", "--worker", url]
        command += ["--sends", str(args.sends), "--repeat", str(args.repeat)]
        command += ["--profile"] if args.profile else []
        env = django_env(url, redis_url or None, **LAYER)
        done = subprocess.run(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, timeout=3600
        )
        if done.returncode:
            raise BenchError(f"the worker failed ({done.returncode}):\n{done.stdout}")
    flush_redis(redis_url)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, not SQLite")
    parser.add_argument("--sends", type=int, default=200, help="of each, per round")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="pyinstrument, into the results")
    parser.add_argument("--database", default="notifications_bench_notify", help="PostgreSQL's")
    parser.add_argument("--postgres-url", default=POSTGRES, help="the maintenance database")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="flushed")
    parser.add_argument("--output", help="default: bench/results/notify_path-<database>.md")
    parser.add_argument("--worker", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        become_django(args.worker, os.environ.get("REDIS_URL"), **LAYER)
        worker(args)
        return 0
    if args.repeat < 3 or args.sends < BLOCK:
        parser.error(f"--repeat must be 3 or more, --sends {BLOCK} or more")
    kind = "postgresql" if args.postgres else "sqlite"
    measured = {}
    for name, redis_url in (("in-memory", ""), ("Redis", args.redis_url)):
        print(f"{kind}, {name}:", file=sys.stderr, flush=True)
        measured[name] = measure(args, redis_url)
    lines = report.header(
        f"notify() to one user with a socket open, against a raw INSERT and commit ({kind})",
        "bench.notify_path",
        "NOTIFY_BENCH_ARGS",
    )
    lines += [
        f"- code: {report.code_version()}; {args.repeat} rounds of {args.sends} calls of each"
        f" (blocks of {BLOCK}, alternating) after a warm-up",
        "",
        "| layer and cache | notify(), ms: median of the rounds' medians (min–max) | raw INSERT"
        " + commit, ms | notify() / raw, per round | CPU ms per notify() | CPU ms per raw insert"
        " | CPU, notify() / raw | statements per notify() |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, found in measured.items():
        rounds = found["rounds"]
        ours = [1000 * r["notify"] for r in rounds]
        base = [1000 * r["baseline"] for r in rounds]
        ratio = report.spread(report.paired(ours, base), "{:.1f}")
        cpu = [1000 * r["notify cpu"] for r in rounds]
        cpu_base = [1000 * r["baseline cpu"] for r in rounds]
        cpu_ratio = report.spread(report.paired(cpu, cpu_base), "{:.1f}")
        lines.append(
            f"| {found['layer']} ({name}) | {report.spread(ours, '{:.3f}')} |"
            f" {report.spread(base, '{:.3f}')} | {ratio} | {report.spread(cpu, '{:.3f}')} |"
            f" {report.spread(cpu_base, '{:.3f}')} | {cpu_ratio} | {len(found['statements'])} |"
        )
    lines += [
        "",
        "notify(): `notify(user, title, body)` in autocommit, to a user whose socket the registry"
        " holds, so the after-commit work runs whole (version bump, who is online, the counts"
        " query, the push to the channel layer). Raw: `INSERT ... RETURNING id` of a row with"
        " the same values on the driver's connection in autocommit, for another user (its rows"
        " do not add to the reader's counts). Each round starts from an empty table (PostgreSQL:"
        " VACUUM ANALYZE). CPU: the benchmark process's (all its threads: the push loop's and"
        " the Redis workers' too; not the database's or Redis's), per call, per round."
        " Machine: shared, 2 cores.",
        "",
    ]
    for name, found in measured.items():
        lines += [f"Statements of one notify() ({name}):", ""]
        lines += [f"    {sql}" for sql in found["statements"]] + [""]
    for name, found in measured.items():
        if found["profile"]:
            lines += [f"## Profile ({name}), {args.sends} sends", "", "```", found["profile"]]
            lines += ["```", ""]
    output = Path(args.output) if args.output else RESULTS / f"notify_path-{kind}.md"
    report.write(output, "\n".join(lines))
    return 0


if __name__ == "__main__":
    main(run)
