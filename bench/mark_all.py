"""Measure "mark all read" and "mark seen" of 200,000 unread notifications, on PostgreSQL.

``.venv/bin/python -m bench.mark_all [--rows 200000] [--repeat 3] [--keep]``

1. drops and recreates a scratch database (``notif_mark_all_bench``; ``MARK_ALL_BENCH_DATABASE_URL``
   to change it), migrates it, and inserts ``--rows`` unread, unseen notifications for one user
   (one ``INSERT ... SELECT generate_series``), plus a few for another user;
2. for each repetition: resets every row to unread and unseen, ``VACUUM ANALYZE``, then posts
   ``read-all/`` and ``seen/`` (``{"up_to": newest id}``) with Django's test Client as the user's
   browser would (session, CSRF off), timing every SQL statement of the request and capturing the
   ``changed`` frame the push would hand to each socket of the user (``push.send`` is wrapped: the
   frame is the exact text a socket sends; nothing is connected);
3. as a reference, the way it was done before (one ``SELECT`` of every pending id, one ``UPDATE``
   of all of them), on the same rows, and the frame that carried every id;
4. prints one table (median and range over the repetitions) and writes it to
   ``bench/results/mark_all.md``; drops the database unless ``--keep``.

Times are wall-clock on a shared 2-core machine: compare them within one run.
"""

from __future__ import annotations

import os

DATABASE = "notif_mark_all_bench"
os.environ["DATABASE_URL"] = os.environ.get(
    "MARK_ALL_BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
)
os.environ.pop("REDIS_URL", None)  # in-memory layer and cache: the push is captured, not sent
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "mark_all.md"


def recreate_database(drop_only: bool = False) -> None:
    import psycopg

    parts = urlsplit(os.environ["DATABASE_URL"])
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            connection.execute(f'CREATE DATABASE "{name}"')


class Statements:
    """Every SQL statement of the connection while installed: (kind, seconds, rows)."""

    def __init__(self) -> None:
        self.run: list[tuple[str, float, int]] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            self.run.append((self.kind(sql), elapsed, context["cursor"].rowcount))

    @staticmethod
    def kind(sql: str) -> str:
        if "FOR UPDATE" in sql:
            return "batch SELECT ... FOR UPDATE"
        if sql.startswith("UPDATE") and "notifications_notification" in sql:
            return "batch UPDATE"
        return "other (session, user, counts after commit)"


def seed(rows: int) -> tuple[Any, int]:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from notifications.models import Notification

    users = get_user_model().objects
    user = users.create_user("marker", password="pw")
    other = users.create_user("bystander", password="pw")
    table = Notification._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (recipient_id, title, body, level, category, url,"
            " actor_object_id, target_object_id, data, created_at, group_key, group_count,"
            " actors)"
            " SELECT %s, 'Notification ' || n, 'Something happened.', 'info', '', '', '', '',"
            " '{}'::jsonb, now() - (%s - n) * interval '1 second', '', 1, '[]'::jsonb"
            " FROM generate_series(1, %s) AS n",
            [user.pk, rows, rows],
        )
        cursor.execute(
            f"INSERT INTO {table} (recipient_id, title, body, level, category, url,"
            " actor_object_id, target_object_id, data, created_at, group_key, group_count,"
            " actors)"
            " SELECT %s, 'Other ' || n, '', 'info', '', '', '', '', '{}'::jsonb, now(), '', 1,"
            " '[]'::jsonb FROM generate_series(1, 10) AS n",
            [other.pk],
        )
    newest = Notification.objects.filter(recipient=user).order_by("-id").values_list("id")[0][0]
    return user, newest


def reset(user: Any) -> None:
    from django.db import connection

    from notifications.models import Notification

    Notification.objects.filter(recipient=user).update(read_at=None, seen_at=None)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Notification._meta.db_table}")


def post(client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """One request through the real view, its statements timed and its push captured."""
    from django.db import connection

    from notifications import push

    sent: list[Any] = []
    original = push.send
    push.send = lambda messages, budget=None: sent.extend(messages)  # type: ignore[assignment]
    statements = Statements()
    try:
        started = time.perf_counter()
        with connection.execute_wrapper(statements):
            response = client.post(path, body, content_type="application/json")
        elapsed = time.perf_counter() - started
    finally:
        push.send = original  # type: ignore[assignment]
    assert response.status_code == 200, response.content
    frames = [event["frame"] for _, event in sent]
    return {
        "request": elapsed,
        "statements": statements.run,
        "answer": response.content,
        "frames": frames,
    }


def before(user: Any) -> dict[str, Any]:
    """The former "mark all read": every pending id in one SELECT, one UPDATE of them all."""
    from django.db import connection, transaction
    from django.utils import timezone

    from notifications.models import Notification, id_list

    statements = Statements()
    started = time.perf_counter()
    with connection.execute_wrapper(statements), transaction.atomic():
        pending = Notification.objects.for_user(user.pk).filter(read_at__isnull=True)
        ids = list(pending.order_by("id").values_list("id", flat=True))
        Notification.objects.filter(id__in=id_list(ids)).update(read_at=timezone.now())
    elapsed = time.perf_counter() - started
    from rest_framework.renderers import JSONRenderer

    frame = json.dumps(
        {"type": "changed", "ids": ids, "state": "read", "unread_count": 0, "unseen_count": 0}
    )
    answer = JSONRenderer().render({"ids": ids, "unread_count": 0, "unseen_count": len(ids)})
    return {
        "transaction": elapsed,
        "statements": statements.run,
        "frame": len(frame.encode()),
        "answer": len(answer),
    }


def summary(values: list[float], unit: str = "s", digits: int = 3) -> str:
    if not values:
        return "-"
    if unit == "ms":
        values = [v * 1000 for v in values]
        digits = 1
    median = statistics.median(values)
    return f"{median:.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    options = parser.parse_args()

    recreate_database()
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client

        from notifications import services
        from notifications.conf import app_settings

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        user, newest = seed(options.rows)
        seconds = time.perf_counter() - started
        print(f"seeded {options.rows:,} unread notifications in {seconds:.1f} s")
        client = Client()
        client.force_login(user)

        results: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for round_ in range(1, options.repeat + 1):
            for name, path, body in (
                ("read-all/", "/api/notifications/read-all/", {}),
                ("seen/", "/api/notifications/seen/", {"up_to": newest}),
            ):
                reset(user)
                result = post(client, path, body)
                answer = json.loads(result["answer"])
                assert answer["count"] == options.rows and answer["up_to"] == newest, answer
                assert len(result["frames"]) == 1, "one frame for every socket of the user"
                results[name].append(result)
                print(f"round {round_} {name}: {result['request']:.2f} s")
            reset(user)
            results["before"].append(before(user))
            print(f"round {round_} before: {results['before'][-1]['transaction']:.2f} s")

        lines = [
            f"Mark all read and mark seen on {options.rows:,} unread notifications of one user:"
            f" PostgreSQL {connection.pg_version // 10000}, batches of"
            f" {services.RANGE_BATCH_SIZE:,} rows; median [min-max] of {options.repeat} runs",
            f"({dt.date.today()}, {platform.python_implementation()} {platform.python_version()},"
            f" MAX_IDS_PER_MESSAGE {app_settings.MAX_IDS_PER_MESSAGE})",
            "",
            "| | read-all/ | seen/ | before: one SELECT of every id, one UPDATE |",
            "|---|---|---|---|",
        ]

        def row(label: str, cell: Any, reference: str = "") -> None:
            lines.append(f"| {label} | {cell('read-all/')} | {cell('seen/')} | {reference} |")

        def statements_of(name: str, kind: str) -> list[tuple[str, float, int]]:
            return [s for r in results[name] for s in r["statements"] if s[0] == kind]

        def per_run(name: str, kind: str) -> list[int]:
            return [sum(1 for s in r["statements"] if s[0] == kind) for r in results[name]]

        old = results["before"]
        old_select = [s[1] for r in old for s in r["statements"] if s[0].startswith("other")]
        old_update = [s[1] for r in old for s in r["statements"] if s[0] == "batch UPDATE"]
        row(
            "the request, in all (s)",
            lambda n: summary([r["request"] for r in results[n]]),
            f"{summary([r['transaction'] for r in old])} (the transaction only)",
        )
        for kind in ("batch SELECT ... FOR UPDATE", "batch UPDATE"):
            row(
                f"{kind}: statements",
                lambda n, kind=kind: "/".join(map(str, sorted(set(per_run(n, kind))))),
                "1",
            )
            row(
                f"{kind}: ms per statement",
                lambda n, kind=kind: summary([s[1] for s in statements_of(n, kind)], "ms"),
                summary(old_select if kind.startswith("batch SELECT") else old_update, "ms"),
            )
            row(
                f"{kind}: most rows in one statement",
                lambda n, kind=kind: max(s[2] for s in statements_of(n, kind)),
                f"{options.rows}",
            )
        row(
            "other statements (session, user, counts after commit): ms in all",
            lambda n: summary(
                [
                    sum(s[1] for s in r["statements"] if s[0].startswith("other"))
                    for r in results[n]
                ],
                "ms",
            ),
        )
        row(
            "`changed` frame to each socket (bytes)",
            lambda n: len(results[n][0]["frames"][0].encode()),
            f"{old[0]['frame']:,}",
        )
        row("REST answer (bytes)", lambda n: len(results[n][0]["answer"]), f"{old[0]['answer']:,}")
        lines += ["", "The frame (read-all/):", "", f"    {results['read-all/'][0]['frames'][0]}"]
        table = "\n".join(lines)
        print()
        print(table)
        RESULTS.write_text(table + "\n")
        print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
        client.logout()
        connection.close()
    finally:
        if not options.keep:
            from django.db import connections

            connections.close_all()
            recreate_database(drop_only=True)


if __name__ == "__main__":
    main()
