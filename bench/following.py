"""Following: one comment on a document followed by 10,000 users, some of whom muted it, sent
with ``notify(followers(doc), ..., target=doc, exclude=actor)``, against what apps do without
it: the follower rows loaded into Python, the muted and the actor dropped there, then one
``Notification`` per follower through ``bulk_create`` (a django-notifications-hq-style send).
Also ``follow_all()`` of 10,000 users, against a bare ``bulk_create`` of their rows.

``make bench`` or ``.venv/bin/python -m bench.following [--followers 10000] [--muted 1000]
[--repeat 3] [--databases sqlite postgresql] [--database notifications_bench18]``: per database
a fresh one, migrated, in a process of its own (Django is set up once per process); rounds with
the order rotated; each send checked (exactly the expected rows, no muted user, not the actor)
and its statements counted (``CaptureQueriesContext``). Into ``bench/results/following.md``.
"""

import argparse
import gc
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from bench.lib import report
from bench.lib.databases import POSTGRES, close_connections, scratch_database
from bench.lib.processes import BIN, ROOT, BenchError, become_django, django_env, main
from bench.lib.report import RESULTS

SEND, SEND_BASE = "ours: notify(followers(doc), target=doc, exclude=actor)", "baseline: send"
FOLLOW, FOLLOW_BASE = "ours: follow_all(users, doc)", "baseline: follow rows"
RUNS = [SEND, SEND_BASE, FOLLOW, FOLLOW_BASE]
BASELINE_OF = {SEND: SEND_BASE, FOLLOW: FOLLOW_BASE}
DESCRIBED = {
    SEND_BASE: "baseline: follower rows into Python, muted and actor dropped there,"
    " `Notification.objects.bulk_create()`",
    FOLLOW_BASE: "baseline: `Follow.objects.bulk_create(ignore_conflicts=True)` of the same rows",
}
TITLE, BODY = "bench-actor commented on Launch plan", "Looks good to me. Ship it on Monday."


# --- inside the database's own process -------------------------------------------------------


class Bench:
    """The seeded database: a document followed by ``followers`` users (``muted`` of them muted
    it; the actor is a follower), a second document nobody follows, the runs of RUNS."""

    def __init__(self, followers: int, muted: int) -> None:
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import connection
        from django.utils import timezone

        from notifications.models import Follow
        from notifications.services import follow_all
        from project.models import Document

        call_command("migrate", verbosity=0, interactive=False)
        users = get_user_model()
        users.objects.bulk_create(
            [users(username=f"follower{n:06d}") for n in range(followers)], batch_size=2000
        )
        self.users = users.objects.filter(username__startswith="follower")
        ids = list(self.users.order_by("pk").values_list("pk", flat=True))
        self.author = users.objects.create(username="bench-author")
        self.document = Document.objects.create(title="Launch plan", author=self.author)
        self.quiet = Document.objects.create(title="Roadmap", author=self.author)
        follow_all(self.users, self.document, reason="participated")
        # Every tenth follower muted it, the actor (the last follower) did not.
        self.muted = set(ids[:: max(1, followers // muted)][:muted]) if muted else set()
        Follow.objects.of(self.document).filter(user_id__in=self.muted).update(
            muted_at=timezone.now()
        )
        self.actor = users.objects.get(pk=ids[-1])
        if self.actor.pk in self.muted:
            raise BenchError("the actor must not be among the muted")
        self.expected = followers - len(self.muted) - 1
        self.ids = ids
        self.vendor = connection.vendor
        self.vacuum()

    def vacuum(self) -> None:
        from django.db import connection

        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")

    def clear(self) -> None:
        """No notifications, nobody following the quiet document: each run starts the same."""
        from notifications.models import Follow, Notification

        Notification.objects.all().delete()
        Follow.objects.of(self.quiet).delete()
        self.vacuum()

    def ours_send(self) -> None:
        from notifications.services import followers, notify

        url = f"/documents/{self.document.pk}/#comment-1"
        notify(
            followers(self.document),
            TITLE,
            BODY,
            category="comment",
            url=url,
            actor=self.actor,
            target=self.document,
            exclude=self.actor,
        )

    def baseline_send(self) -> None:
        from notifications.models import Follow, Notification

        rows = Follow.objects.of(self.document).values_list("user_id", "reason", "muted_at")
        recipients = [
            user_id
            for user_id, reason, muted_at in rows
            if reason and muted_at is None and user_id != self.actor.pk
        ]
        url = f"/documents/{self.document.pk}/#comment-1"
        Notification.objects.bulk_create(
            Notification(
                recipient_id=user_id,
                title=TITLE,
                body=BODY,
                category="comment",
                url=url,
                actor=self.actor,
                target=self.document,
            )
            for user_id in recipients
        )

    def ours_follow(self) -> None:
        from notifications.services import follow_all

        follow_all(self.users, self.quiet, reason="mentioned")

    def baseline_follow(self) -> None:
        from django.contrib.contenttypes.models import ContentType

        from notifications.models import Follow

        content_type = ContentType.objects.get_for_model(self.quiet)
        Follow.objects.bulk_create(
            [
                Follow(
                    user_id=user_id,
                    content_type=content_type,
                    object_id=str(self.quiet.pk),
                    reason="mentioned",
                )
                for user_id in self.ids
            ],
            ignore_conflicts=True,
        )

    def check_send(self, name: str) -> None:
        from notifications.models import Notification

        rows = Notification.objects.filter(
            target_object_id=str(self.document.pk), title=TITLE
        ).values_list("recipient_id", flat=True)
        recipients = list(rows)
        problems = []
        if len(recipients) != self.expected or Notification.objects.count() != self.expected:
            problems.append(f"{len(recipients)} rows, not {self.expected}")
        if len(set(recipients)) != len(recipients):
            problems.append("a follower notified twice")
        if muted := self.muted.intersection(recipients):
            problems.append(f"{len(muted)} muted followers notified")
        if self.actor.pk in recipients:
            problems.append("the actor notified")
        if problems:
            raise BenchError(f"{name}: {'; '.join(problems)}")

    def check_follow(self, name: str) -> None:
        from notifications.models import Follow

        rows = Follow.objects.of(self.quiet).following()
        if rows.count() != len(self.ids) or rows.exclude(reason="mentioned").exists():
            raise BenchError(f"{name}: {rows.count()} following rows, not {len(self.ids)}")

    def timed(self, name: str) -> dict[str, Any]:
        """One run of ``name`` from a clear table, in a transaction: the seconds until the end of
        its work (``write``) and until the commit and what runs on it are done (``total``)."""
        from django.db import connection, transaction
        from django.test.utils import CaptureQueriesContext

        work: Callable[[], None] = {
            SEND: self.ours_send,
            SEND_BASE: self.baseline_send,
            FOLLOW: self.ours_follow,
            FOLLOW_BASE: self.baseline_follow,
        }[name]
        self.clear()
        gc.collect()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            with transaction.atomic():
                work()
                written = time.perf_counter()
            done = time.perf_counter()
        (self.check_send if name in (SEND, SEND_BASE) else self.check_follow)(name)
        return {
            "write": written - started,
            "total": done - started,
            "statements": len(queries),
            "sql": [query["sql"][:160] for query in queries.captured_queries],
        }


def worker(args: argparse.Namespace) -> None:
    """Seed, run the rounds, print the results as one JSON line (progress on stderr)."""
    from django.db import connection

    started = time.perf_counter()
    bench = Bench(args.followers, args.muted)
    print(
        f"{bench.vendor}: seeded {args.followers:,} followers ({len(bench.muted):,} muted) in"
        f" {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    for name in RUNS:  # warm-up, not counted: the content types cached, as in a running server
        bench.timed(name)
    results: dict[str, list[dict]] = {name: [] for name in RUNS}
    for round_ in range(args.repeat):
        shift = round_ % len(RUNS)
        for name in RUNS[shift:] + RUNS[:shift]:
            result = bench.timed(name)
            results[name].append(result)
            print(
                f"  round {round_ + 1} {name}: {result['total']:.3f} s,"
                f" {result['statements']} statements",
                file=sys.stderr,
                flush=True,
            )
    for name in (SEND, FOLLOW):
        print(f"  the statements of {name}:", file=sys.stderr)
        for sql, count in itertools.groupby(results[name][-1]["sql"], key=lambda sql: sql[:100]):
            times = sum(1 for _ in count)
            print(f"    {f'{times} x ' if times > 1 else ''}{sql}", file=sys.stderr, flush=True)
    version = connection.pg_version if connection.vendor == "postgresql" else None
    sqlite = None
    if connection.vendor == "sqlite":
        import sqlite3

        sqlite = sqlite3.sqlite_version
    bench.clear()
    close_connections()
    answer = {
        "vendor": bench.vendor,
        "expected": bench.expected,
        "muted": len(bench.muted),
        "version": f"PostgreSQL {version // 10000}" if version else f"SQLite {sqlite}",
        "results": results,
    }
    print(json.dumps(answer), flush=True)


# --- the run -----------------------------------------------------------------------------------


@contextmanager
def database(kind: str, args: argparse.Namespace):
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="notif-following-bench-") as folder:
            yield f"sqlite:///{folder}/following.sqlite3"
        return
    with scratch_database(args.database, args.postgres_url) as url:
        yield url


def measure(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    with database(kind, args) as url:
        command = [str(BIN / "python"), "-m", "bench.following", "--worker", url]
        command += ["--followers", str(args.followers), "--muted", str(args.muted)]
        command += ["--repeat", str(args.repeat)]
        done = subprocess.run(
            command, cwd=ROOT, env=django_env(url), stdout=subprocess.PIPE, text=True, timeout=3600
        )
        if done.returncode:
            raise BenchError(f"{kind}: the worker failed ({done.returncode}):\n{done.stdout}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--muted", type=int, default=1_000, help="of the followers")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    parser.add_argument("--database", default="notifications_bench18", help="PostgreSQL's")
    parser.add_argument("--postgres-url", default=POSTGRES, help="the maintenance database")
    parser.add_argument("--worker", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        become_django(args.worker)
        worker(args)
        return 0
    if args.repeat < 1 or not 0 <= args.muted < args.followers:
        parser.error("--repeat must be 1 or more, --muted fewer than --followers")
    measured = {kind: measure(kind, args) for kind in args.databases}
    first = measured[args.databases[0]]
    lines = report.header(
        f"Following: one comment to {args.followers:,} followers ({first['muted']:,} muted it),"
        f" and follow_all() of {args.followers:,} users",
        "bench.following",
        "FOLLOWING_BENCH_ARGS",
    )
    lines += [
        f"- code: {report.code_version()}; "
        + "; ".join(f"{m['version']}" for m in measured.values())
        + f"; {args.repeat} rounds after a warm-up, order rotated; in-memory channel layer (no"
        " socket open)",
        "",
        "| database | run | seconds to commit, median (min–max) | of which the work before"
        " commit | ours / baseline (per-round pairs) | statements | rows |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, found in measured.items():
        results = found["results"]
        for name in RUNS:
            rounds = results[name]
            total = [r["total"] for r in rounds]
            if name in BASELINE_OF:
                base = [r["total"] for r in results[BASELINE_OF[name]]]
                ratio = report.spread(report.paired(total, base), "{:.2f}")
            else:
                ratio = "1 (baseline)"
            statements = sorted({r["statements"] for r in rounds})
            rows = found["expected"] if name in (SEND, SEND_BASE) else args.followers
            lines.append(
                f"| {kind} | {DESCRIBED.get(name, name)} | {report.spread(total, '{:.3f}')} |"
                f" {report.spread([r['write'] for r in rounds], '{:.3f}')} | {ratio} |"
                f" {'/'.join(map(str, statements))} | {rows:,} |"
            )
    lines += [
        "",
        "Seconds: one call in `transaction.atomic()`, from the call to the end of the commit and"
        " of what runs on it (ours: the push to the channel layer); the work before commit"
        " beside it. Each run starts from an empty notifications table (and nobody following the"
        " second document), outside the clock. Every send is checked: exactly the rows expected"
        f" ({first['expected']:,}: the followers but the muted and the actor), no muted user,"
        " not the actor, nobody twice; every follow_all(): a row per user. Statements: those"
        " Django executed (`CaptureQueriesContext`: BEGIN, SAVEPOINT and COMMIT count as it logs"
        " them; the SQL of one send and one follow_all() is in the run's output)."
        " The baseline send builds each `Notification` (actor and target as generic keys) in"
        " Python and writes them with Django's default batching. Machine: shared, 2 cores.",
    ]
    report.write(RESULTS / "following.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    main(run)
