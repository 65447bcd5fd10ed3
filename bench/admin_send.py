"""The admin's "Send notification" to 100,000 users on PostgreSQL, and where the time goes.

``.venv/bin/python -m bench.admin_send [--users 100000] [--repeat 3] [--sockets 1000]``: the form
posted with Django's test Client, to a group and to all, with sockets on daphne. Split through
public seams: SQL statements (``execute_wrapper``); the app's after-commit work (``AfterCommit``),
in there the cache's calls (the version bump) and the counts query to ``event=push``.
"""

import argparse
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from bench.lib import report
from bench.lib.databases import POSTGRES, close_connections, django_database, sign_in
from bench.lib.processes import BIN, Process, become_django, daphne, main
from bench.lib.timing import AfterCommit, EventLog, Statements, TimedRedisCache

AFTER_COMMIT = AfterCommit().connect_first()  # before django.setup(): see AfterCommit
# A channel-layer prefix of its own (no other run hears the pushes); the layer CHANNEL_LAYER names.
LAYER = {"BENCH_LAYER_PREFIX": "notif-admin-bench"}
LAYER["CHANNEL_LAYER"] = os.environ.get("CHANNEL_LAYER", "pubsub")
SEND_URL = "/admin/notifications/notification/send/"
ROWS = {
    "first": "first submit: validate, COUNT, confirm page",
    "send": "send: the confirmed submit, in all",
    "count": "  form: COUNT of the audience",
    "insert": "  INSERT ... SELECT (RETURNING ids)",
    "after_commit": "  after commit, in all",
    "counts": "    per-user counts (one query)",
    "bump": "    version bump (cache)",
    "push": "    push (frames, channel layer)",
    "shaping": "    payloads and the rest",
    "rest": "  request: everything else",
    "queries": "queries in the send request",
    "rows": "rows written",
    "delivered": "sockets that got it",
    "first_arrival": "first socket got it, after the click",
    "last_arrival": "last socket got it, after the click",
    "after_response": "last socket got it, after the response",
}


def seed(users: int) -> tuple[Any, int]:
    """``users`` users in one group, and a superuser; returns (superuser, group id)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    group = Group.objects.create(name="everyone")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined) SELECT '!', false, 'user' || i, '', '',"
            " '', false, true, now() FROM generate_series(1, %s) AS i",
            [users],
        )
        cursor.execute(
            "INSERT INTO auth_user_groups (user_id, group_id) SELECT id, %s FROM auth_user",
            [group.pk],
        )
        cursor.execute("ANALYZE")
    return get_user_model().objects.create_superuser("bench-admin", password="pw"), group.pk


def send(client: Any, data: dict[str, Any], events: EventLog) -> dict[str, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.models import Notification

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Notification._meta.db_table}")
    client.cookies.pop("messages", None)
    start = time.perf_counter()
    page = client.post(SEND_URL, data).content.decode()
    first = time.perf_counter() - start
    token = re.search(r'name="confirmed" value="([0-9a-f]+)"', page)
    assert token, "no confirmation step: is the audience above SEND_CONFIRM_ABOVE?"
    statements, spans, clicked = Statements(), len(AFTER_COMMIT.spans), time.monotonic()
    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(statements):
        start = time.perf_counter()
        response = client.post(SEND_URL, {**data, "confirmed": token[1]})
        took = {"first": first, "send": time.perf_counter() - start, "clicked": clicked}
    assert response.status_code == 302, f"the send failed: {response.status_code}"
    took |= {"answered": time.monotonic(), "queries": len(queries.captured_queries)}
    took |= dict.fromkeys(("count", "insert", "after_commit", "counts", "bump", "push"), 0.0)
    after = AFTER_COMMIT.spans[spans:]
    for begin, end in after:
        inside = statements.between(begin, end)  # the counts for the push
        took["after_commit"] += end - begin
        took["counts"] += sum(s.seconds for s in inside)
        took["bump"] += TimedRedisCache.seconds_between(begin, end)
        if inside and (pushed := events.times("push", begin, end)):
            took["push"] += max(pushed) - inside[-1].end
    for s in statements:
        if any(begin <= s.start <= end for begin, end in after):
            continue
        if s.sql.startswith("INSERT INTO") and Notification._meta.db_table in s.sql:
            took["insert"] += s.seconds
        elif "COUNT(" in s.sql:
            took["count"] += s.seconds
    took["shaping"] = took["after_commit"] - took["counts"] - took["bump"] - took["push"]
    took["rest"] = took["send"] - took["count"] - took["insert"] - took["after_commit"]
    return took | {"rows": Notification.objects.count()}


def measure(args: argparse.Namespace, env: dict[str, str], folder: Path) -> dict[str, list]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    events, started = EventLog(), time.perf_counter()
    admin, group = seed(args.users)
    print(f"seeded {args.users:,} users in {time.perf_counter() - started:.1f} s", flush=True)
    client = Client()
    client.force_login(admin)
    audiences = {"group": {"audience": "groups", "groups": [group]}}
    audiences["all active"] = {"audience": "all"}
    content = {"title": "Maintenance tonight", "body": "From 22:00 to 23:00.", "level": "warning"}
    keys = sign_in(get_user_model().objects.order_by("pk")[: args.sockets])
    sockets = Process([str(BIN / "python"), "-m", "bench.ws_client"], env, folder / "sockets.log")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in audiences}

    def ask(cmd: str, **command: Any) -> dict[str, Any]:
        return sockets.call({"cmd": cmd, "target": "daphne", **command}) if args.sockets else {}

    if args.sockets:
        server, _ = daphne(env | LAYER, folder / "daphne.log"), sockets.start()
        url, entries = f"ws://127.0.0.1:{server.port}/ws/notifications/", list(enumerate(keys))
        connected = ask("connect", url=url, origin=server.url, entries=entries)["connected"]
        print(f"{connected:,} sockets connected", flush=True)
    for round_ in range(args.repeat):
        for name, audience in audiences.items():
            ask("arm", expected=args.sockets, latency=False, tag="")
            took = send(client, {**audience, **content, "_send": "Send"}, events)
            if got := ask("wait", idle=30, cap=120):
                first, last = got["first"] or math.nan, got["last"] or math.nan
                took |= {"delivered": got["received"], "first_arrival": first - took["clicked"]}
                took |= {"last_arrival": last - took["clicked"], "after_response": last}
                took["after_response"] -= took["answered"]
            results[name].append(took)
            print(f"round {round_ + 1} {name}: {took['send']:.2f} s", flush=True)
    return results


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sockets", type=int, default=1000, help="connected users (0: none)")
    parser.add_argument("--database", default="notif_admin_bench")
    parser.add_argument("--postgres-url", default=POSTGRES, help="the maintenance database")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11", help="flushed")
    args = parser.parse_args()
    with django_database(args.database, args.postgres_url, args.redis_url) as (env, folder):
        # A Django process too, with the settings of the daphne it sends through.
        become_django(env["DATABASE_URL"], args.redis_url, BENCH_TIMED_CACHE="1", **LAYER)
        AFTER_COMMIT.connect_last()
        logging.getLogger("notifications").setLevel(logging.WARNING)
        results = measure(args, env, folder)
        from django.conf import settings
        from django.db import connection

        layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
        title = f"Admin send to {args.users:,} users: PostgreSQL {connection.pg_version // 10000}"
        close_connections()
    title += f", {layer}, {args.sockets:,} sockets connected; median [min-max] of {args.repeat}"
    print(f"\n{title} runs, seconds\n{'':42}" + "".join(f"{name:>22}" for name in results))
    for key, label in ROWS.items():
        if key in results["group"][0]:
            digits = 0 if key in ("queries", "rows", "delivered") else 2
            cells = [[r[key] for r in rounds] for rounds in results.values()]
            shown = [report.bracketed(c, digits) for c in cells]
            print(f"{label:42}" + "".join(f"{cell:>22}" for cell in shown))
    return 0


if __name__ == "__main__":
    main(run)
