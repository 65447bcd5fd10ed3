"""Mark all read and mark seen of 200,000 unread notifications of one user, on PostgreSQL.

``.venv/bin/python -m bench.mark_all [--rows 200000] [--repeat 3]``: each SQL statement of
``read-all/`` and ``seen/`` timed, the ``changed`` frame read from a socket of the user (channels'
communicator), against the former way: one ``SELECT`` of every id, one ``UPDATE``.
"""

import argparse
import asyncio
import datetime as dt
import functools
import json
import platform
import time
from collections.abc import Callable
from typing import Any

from bench.lib import report
from bench.lib.databases import POSTGRES, close_connections, django_database
from bench.lib.processes import become_django, main
from bench.lib.report import RESULTS
from bench.lib.timing import Statement, Statements

SELECT, UPDATE, OTHER = "batch SELECT ... FOR UPDATE", "batch UPDATE", "other"
EACH = ("statements", "ms per statement", "most rows in one statement")
ROWS = ["the request, in all (s)", *(f"{k}: {what}" for k in (SELECT, UPDATE) for what in EACH)]
ROWS.append("other statements (session, user, counts after commit): ms in all")
ROWS += ["`changed` frame to each socket (bytes)", "REST answer (bytes)"]


def kind(statement: Statement) -> str:
    if "FOR UPDATE" in statement.sql:
        return SELECT
    return UPDATE if statement.sql.startswith("UPDATE") else OTHER


def seed(rows: int) -> tuple[Any, int]:
    # Written an hour ago: rows written lately, the socket's gap detection would send it.
    from django.contrib.auth import get_user_model
    from django.db import connection

    from notifications.models import Notification

    users = [get_user_model().objects.create_user(name, password="pw") for name in ("me", "other")]
    with connection.cursor() as cursor:
        for user, count in zip(users, (rows, 10), strict=True):
            cursor.execute(
                f"INSERT INTO {Notification._meta.db_table} (recipient_id, title, body, level,"
                " category, url, actor_object_id, target_object_id, data, created_at, group_key,"
                " group_count, actors, inserted_at) SELECT %s, 'Notification ' || n, 'Something"
                " happened.', 'info', '', '', '', '', '{}', now() - (%s - n) * interval '1 second',"
                " '', 1, '[]', now() - interval '1 hour'"
                " FROM generate_series(1, %s) AS n",
                [user.pk, count, count],
            )
    return users[0], Notification.objects.filter(recipient=users[0]).latest("id").id


def timed(work: Callable[[], Any], user: Any) -> dict[str, Any]:
    """``work()`` on the user's rows made unread and unseen again, its statements timed."""
    from django.db import connection

    from notifications.models import Notification

    Notification.objects.filter(recipient=user).update(read_at=None, seen_at=None)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Notification._meta.db_table}")
    statements, started = Statements(), time.perf_counter()
    with connection.execute_wrapper(statements):
        done = work()
    return {"seconds": time.perf_counter() - started, "statements": statements, "done": done}


def before(user: Any) -> tuple[str, bytes]:
    """The former "mark all read": every pending id in one SELECT, one UPDATE of them all; its
    frame, and its REST answer, both listing every id."""
    from django.db import transaction
    from django.utils import timezone
    from rest_framework.renderers import JSONRenderer

    from notifications.models import Notification, id_list

    with transaction.atomic():
        pending = Notification.objects.for_user(user.pk).filter(read_at__isnull=True)
        ids = list(pending.order_by("id").values_list("id", flat=True))
        Notification.objects.filter(id__in=id_list(ids)).update(read_at=timezone.now())
    frame = {"type": "changed", "ids": ids, "state": "read", "unread_count": 0, "unseen_count": 0}
    answer = {"ids": ids, "unread_count": 0, "unseen_count": len(ids)}
    return json.dumps(frame), JSONRenderer().render(answer)


async def measure(args: argparse.Namespace, user: Any, newest: int) -> dict[str, list[dict]]:
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from project.asgi import application

    client = Client()
    await sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")]
    headers.append((b"cookie", cookie))
    socket = WebsocketCommunicator(application, "/ws/notifications/", headers)
    assert (await socket.connect())[0] and "hello" in await socket.receive_from(10)
    results: dict[str, list[dict]] = {"read-all/": [], "seen/": [], "before": []}
    for round_ in range(1, args.repeat + 1):
        for name, body in (("read-all/", {}), ("seen/", {"up_to": newest})):
            path = f"/api/notifications/{name}"
            post = functools.partial(client.post, path, body, "application/json")
            result = await sync_to_async(timed)(post, user)
            answer = result["done"].content
            assert json.loads(answer)["count"] == args.rows, answer
            result["done"] = await socket.receive_from(10), answer
            assert await socket.receive_nothing(0.2), "one frame for every socket of the user"
            results[name].append(result)
            print(f"round {round_} {name}: {result['seconds']:.2f} s", flush=True)
        former = functools.partial(before, user)
        results["before"].append(result := await sync_to_async(timed)(former, user))
        print(f"round {round_} before: {result['seconds']:.2f} s", flush=True)
    await socket.disconnect()
    await sync_to_async(close_connections)()
    return results


def column(runs: list[dict[str, Any]], rows: int = 0) -> list[object]:
    """What the runs measured, in the order of ROWS; ``rows``: the former way's, every row."""
    cells: list[object] = [report.bracketed([r["seconds"] for r in runs], 3)]
    for which in (SELECT, UPDATE):
        if rows:  # the former way: one SELECT (no FOR UPDATE), then one UPDATE
            former = [r["statements"][which == UPDATE] for r in runs]
            cells += [1, report.bracketed([s.seconds for s in former], 1, 1000), rows]
            continue
        of = [s for r in runs for s in r["statements"] if kind(s) == which]
        counts = {sum(kind(s) == which for s in r["statements"]) for r in runs}
        ms = report.bracketed([s.seconds for s in of], 1, 1000)
        cells += ["/".join(map(str, sorted(counts))), ms, max(s.rows for s in of)]
    other = [sum(s.seconds for s in r["statements"] if kind(s) == OTHER) for r in runs]
    frame, answer = runs[0]["done"]
    sizes = [f"{len(frame.encode()):,}", f"{len(answer):,}"]
    return [*cells, "" if rows else report.bracketed(other, 1, 1000), *sizes]


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", default="notif_mark_all_bench")
    parser.add_argument("--postgres-url", default=POSTGRES, help="the maintenance database")
    args = parser.parse_args()
    with django_database(args.database, args.postgres_url) as (env, _):
        become_django(env["DATABASE_URL"])  # the in-memory layer: the frame stays in this process
        from django.db import connection

        from notifications.conf import app_settings

        started = time.perf_counter()
        user, newest = seed(args.rows)
        print(f"seeded {args.rows:,} unread notifications in {time.perf_counter() - started:.1f} s")
        version, most = connection.pg_version // 10000, app_settings.MAX_IDS_PER_MESSAGE
        close_connections()
        results = asyncio.run(measure(args, user, newest))
    columns = [column(results["read-all/"]), column(results["seen/"])]
    columns.append(column(results["before"], args.rows))
    columns[2][0] = f"{columns[2][0]} (the transaction only)"
    header = ["", "read-all/", "seen/", "before: one SELECT of every id, one UPDATE"]
    rows = ([label, *cells] for label, *cells in zip(ROWS, *columns, strict=True))
    text = (
        f"Mark all read and mark seen on {args.rows:,} unread notifications of one user: PostgreSQL"
        f" {version}, batches of {columns[0][6]:,} rows; median [min-max] of {args.repeat} runs\n"
        f"({dt.date.today()}, {platform.python_implementation()} {platform.python_version()},"
        f" MAX_IDS_PER_MESSAGE {most})\n\n{report.table(header, rows)}\n\nThe frame (read-all/):"
        f"\n\n    {results['read-all/'][0]['done'][0]}\n"
    )
    report.write(RESULTS / "mark_all.md", text)
    return 0


if __name__ == "__main__":
    main(run)
