"""Measure the admin's "Send notification" to 100,000 users on PostgreSQL, and where the time goes.

``.venv/bin/python -m bench.admin_send [--users 100000] [--repeat 3] [--sockets 1000] [--keep]``

1. drops and recreates a scratch database (``notif_admin_bench``), migrates it, inserts ``--users``
   users (one ``INSERT ... SELECT generate_series``), all members of one group, and a superuser;
2. with ``--sockets N`` (default 1,000), starts daphne on that database and Redis and connects N of
   those users' WebSockets from a separate process, each signed in with a session of its own;
3. for each repetition and audience (the group; all active users) empties the notifications table
   and posts the send form with Django's test Client, as a staff member's browser would: the first
   submit (validation, COUNT, the confirmation page), then the confirmed one (the send);
4. splits the send's time by wrapping its steps: the form's COUNT, the ``INSERT ... SELECT``, and,
   after commit, the per-user counts, the version bump, the push, and the rest (the payloads);
5. prints the median and the range over the repetitions, the queries of the send request, and
   how long after the click the last connected socket held the notification;
   with ``--changelist-rows N``, then fills the table to N rows and times the changelist, plain
   and under each filter, the date hierarchy and search;
6. stops daphne, empties its Redis database (11), and drops the database unless ``--keep``.

This module is also the run's settings module (``DJANGO_SETTINGS_MODULE=bench.admin_send``, in
this process and in daphne): the demo's settings on the scratch database and Redis database 11,
with a channel-layer prefix of its own, so that no other benchmark's sockets hear these pushes.
``CHANNEL_LAYER=core`` picks the core Redis layer instead of pub/sub, as in the demo.
Times are wall-clock on a shared 2-core machine: compare them within one run.
"""

from __future__ import annotations

import os

DATABASE = "notif_admin_bench"
os.environ["DATABASE_URL"] = os.environ.get(
    "ADMIN_BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
)
os.environ["REDIS_URL"] = os.environ.get("ADMIN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")

from project.settings import *  # noqa: E402, F403
from project.settings import CHANNEL_LAYERS, LOGGING  # noqa: E402

CHANNEL_LAYERS["default"].setdefault("CONFIG", {})["prefix"] = "notif-admin-bench"
DEBUG = False
LOGGING["loggers"]["notifications"]["level"] = "WARNING"

# --- the benchmark --------------------------------------------------------------------------

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from datetime import timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlencode, urlsplit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEND_URL = "/admin/notifications/notification/send/"
STEPS = (
    ("count", "form: COUNT of the audience"),
    ("insert", "INSERT ... SELECT (RETURNING ids)"),
    ("after_commit", "after commit, in all"),
    ("counts", "  per-user counts (one query)"),
    ("bump", "  version bump (cache)"),
    ("push", "  push (channel layer)"),
    ("shaping", "  payloads and the rest"),
    ("rest", "request: everything else"),
)


def recreate_database(drop_only: bool = False) -> None:
    import psycopg

    parts = urlsplit(os.environ["DATABASE_URL"])
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            connection.execute(f'CREATE DATABASE "{name}"')


def flush_redis() -> None:
    """Empty this run's Redis database: sessions and the per-user versions of 100,000 users."""
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


def seed(users: int) -> tuple[object, int]:
    """``users`` users in one group, and a superuser; returns (superuser, group id)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    group = Group.objects.create(name="everyone")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined)"
            " SELECT '!', false, 'user' || i, '', '', '', false, true, now()"
            " FROM generate_series(1, %s) AS i",
            [users],
        )
        cursor.execute(
            "INSERT INTO auth_user_groups (user_id, group_id) SELECT id, %s FROM auth_user",
            [group.pk],
        )
        cursor.execute("ANALYZE")
    admin = get_user_model().objects.create_superuser("bench-admin", password="pw")
    return admin, group.pk


def session_keys(count: int) -> list[str]:
    """Signed-in sessions for users 1..count, written in one bulk insert."""
    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    store = SessionStore()
    expires = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    rows, keys = [], []
    for user in get_user_model().objects.order_by("pk")[:count]:
        key = secrets.token_hex(16)
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expires))
        keys.append(key)
    Session.objects.bulk_create(rows, batch_size=1000)
    return keys


# --- timing the steps of a send ---


class Split:
    """Seconds spent in each wrapped step, since the last reset()."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner: object, name: str, step: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[step] += time.perf_counter() - start

        setattr(owner, name, timed)

    def reset(self) -> None:
        self.seconds.clear()


def instrument() -> Split:
    from notifications import forms, outbox, push, services, versions
    from notifications.models import NotificationQuerySet

    split = Split()
    split.wrap(forms.SendNotificationForm, "_check_audience", "count")
    split.wrap(services, "_insert", "insert")
    split.wrap(outbox._Outbox, "flush", "after_commit")
    split.wrap(NotificationQuerySet, "counts_by_recipient", "counts")
    split.wrap(versions, "bump", "bump")
    split.wrap(push, "send", "push")
    return split


# --- sockets, in a process of their own ---


def run_sockets(pipe, url: str, origin: str, keys: list[str]) -> None:
    asyncio.run(_sockets(pipe, url, origin, keys))


async def _sockets(pipe, url: str, origin: str, keys: list[str]) -> None:
    import websockets

    arrivals: list[list[float]] = [[] for _ in keys]
    greeted = [asyncio.Event() for _ in keys]
    arrived = asyncio.Event()
    connecting = asyncio.Semaphore(50)  # daphne accepts a burst of handshakes slowly

    async def client(index: int, key: str) -> None:
        headers = {"Cookie": f"sessionid={key}", "Origin": origin}
        async with connecting:
            socket_ = await websockets.connect(
                url, additional_headers=headers, max_size=None, open_timeout=120
            )
        async with socket_:
            async for raw in socket_:
                kind = json.loads(raw)["type"]
                if kind == "hello":
                    greeted[index].set()
                elif kind == "notification":
                    arrivals[index].append(time.monotonic())
                    arrived.set()

    async def all_reached(expected: int) -> None:
        while any(len(times) < expected for times in arrivals):
            arrived.clear()
            await arrived.wait()

    tasks = [asyncio.create_task(client(i, key)) for i, key in enumerate(keys)]
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in greeted)), 300)
        pipe.send(("ready", len(keys)))
        while True:
            command, expected, timeout = await loop.run_in_executor(None, pipe.recv)
            if command == "stop":
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_reached(expected), timeout)
            reached = [a[expected - 1] for a in arrivals if len(a) >= expected]
            pipe.send(
                ("arrived", len(reached), min(reached, default=None), max(reached, default=None))
            )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def daphne() -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.admin_send", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("daphne")), "-b", "127.0.0.1", "-p", str(port),
         "project.asgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("daphne did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


# --- the run ---


def send_once(client, data: dict, split: Split) -> dict[str, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.models import Notification

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Notification._meta.db_table}")
    client.cookies.pop("messages", None)
    split.reset()
    start = time.perf_counter()
    first = client.post(SEND_URL, data)
    first_seconds = time.perf_counter() - start
    token = re.search(r'name="confirmed" value="([0-9a-f]+)"', first.content.decode())
    if token is None:
        raise RuntimeError("no confirmation step: is the audience above SEND_CONFIRM_ABOVE?")
    split.reset()
    clicked = time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        response = client.post(SEND_URL, {**data, "confirmed": token.group(1)})
        seconds = time.perf_counter() - start
    answered = time.monotonic()
    if response.status_code != 302:
        raise RuntimeError(f"the send failed: {response.status_code}")
    steps = dict(split.seconds)
    steps["shaping"] = steps["after_commit"] - steps["counts"] - steps["bump"] - steps["push"]
    steps["rest"] = seconds - steps["count"] - steps["insert"] - steps["after_commit"]
    return {
        "first": first_seconds,
        "send": seconds,
        **steps,
        "queries": len(queries.captured_queries),
        "rows": Notification.objects.count(),
        "clicked": clicked,
        "answered": answered,
    }


def summary(values: list[float], unit: float = 1.0, digits: int = 2) -> str:
    scaled = [value * unit for value in values]
    median = statistics.median(scaled)
    return f"{median:.{digits}f} [{min(scaled):.{digits}f}-{max(scaled):.{digits}f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sockets", type=int, default=1000, help="connected users (0: none)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--changelist-rows",
        type=int,
        default=0,
        help="then fill the table to this many rows and time the changelist (0: skip)",
    )
    args = parser.parse_args()

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.admin_send"
    recreate_database()
    flush_redis()
    try:
        run(args)
    finally:
        flush_redis()
        from django.db import connections

        connections.close_all()
        for connection in connections.all():
            close_pool = getattr(connection, "close_pool", None)
            if close_pool is not None:
                close_pool()
        if not args.keep:
            recreate_database(drop_only=True)


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    admin, group_id = seed(args.users)
    print(f"seeded {args.users:,} users in {time.perf_counter() - started:.1f} s", flush=True)
    client = Client()
    client.force_login(admin)
    audiences = {
        "group": {"audience": "groups", "groups": [group_id]},
        "all active": {"audience": "all"},
    }
    common = {"title": "Maintenance tonight", "body": "From 22:00 to 23:00.", "level": "warning"}
    split = instrument()

    with connected_sockets(args.sockets) as sockets:
        results: dict[str, list[dict[str, float]]] = defaultdict(list)
        for round_ in range(args.repeat):
            for name, audience in audiences.items():
                result = send_once(client, {**audience, **common, "_send": "Send"}, split)
                if sockets is not None:
                    result.update(sockets.arrivals(result))
                results[name].append(result)
                print(f"round {round_ + 1} {name}: {result['send']:.2f} s", flush=True)

    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    version = connection.cursor().connection.info.server_version // 10000
    print(
        f"\nAdmin send to {args.users:,} users: PostgreSQL {version}, {layer}, "
        f"{args.sockets:,} sockets connected; median [min-max] of {args.repeat} runs, seconds"
    )
    names = list(audiences)
    print(f"{'':42}" + "".join(f"{name:>22}" for name in names))

    def line(label: str, key: str, unit: float = 1.0, digits: int = 2) -> None:
        cells = [summary([r[key] for r in results[name]], unit, digits) for name in names]
        print(f"{label:42}" + "".join(f"{cell:>22}" for cell in cells))

    line("first submit: validate, COUNT, confirm page", "first")
    line("send: the confirmed submit, in all", "send")
    for key, label in STEPS:
        line(f"  {label}", key)
    line("queries in the send request", "queries", digits=0)
    line("rows written", "rows", digits=0)
    if args.sockets:
        line("sockets that got it", "delivered", digits=0)
        line("first socket got it, after the click", "first_arrival")
        line("last socket got it, after the click", "last_arrival")
        line("last socket got it, after the response", "after_response")
    if args.changelist_rows:
        time_changelist(client, args.changelist_rows, args.users, args.repeat)


def fill_notifications(total: int, users: int) -> None:
    """Bring the table to ``total`` rows: one a second back from now, 70 % read, four levels,
    four common categories and a rare one."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE notifications_notification")
        cursor.execute(
            "INSERT INTO notifications_notification (recipient_id, title, body, level, category,"
            " url, actor_object_id, target_object_id, data, created_at, read_at, seen_at)"
            " SELECT i %% %(users)s + 1, 'Notification ' || i, '',"
            " (ARRAY['info', 'success', 'warning', 'error'])[i %% 4 + 1],"
            " CASE WHEN i %% 100000 = 0 THEN 'rare'"
            " ELSE (ARRAY['billing', 'security', 'social', ''])[i %% 4 + 1] END,"
            " '', '', '', '{}'::jsonb, now() - (%(total)s - i) * interval '1 second',"
            " CASE WHEN i %% 10 < 7 THEN now() END, CASE WHEN i %% 10 < 8 THEN now() END"
            " FROM generate_series(1, %(total)s) AS i",
            {"users": users, "total": total},
        )
        cursor.execute("VACUUM ANALYZE notifications_notification")


def time_changelist(client, total: int, users: int, repeat: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    started = time.perf_counter()
    fill_notifications(total, users)
    print(f"\nfilled the table to {total:,} rows in {time.perf_counter() - started:.1f} s")
    now = timezone.now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    changelist = "/admin/notifications/notification/"
    views = {
        "unfiltered": "",
        "page 50": "?p=50",
        "unread": "?read=no",
        "level error": "?level__exact=error",
        "category, common": "?category=billing",
        "category, rare": "?category=rare",
        "date filter: today": "?" + urlencode({"created_at__gte": str(today)}),
        "date hierarchy: a year": f"?created_at__year={now.year}",
        "date hierarchy: a month": f"?created_at__year={now.year}&created_at__month={now.month}",
        "date hierarchy: a day": (
            f"?created_at__year={now.year}&created_at__month={now.month}&created_at__day={now.day}"
        ),
        "one recipient": "?recipient__id__exact=5",
        "search: a username": "?q=user5",
        "search: a title": "?q=Notification+1999",
    }
    print(f"Changelist on {total:,} rows: median [min-max] of {repeat} runs")
    print(f"{'':28}{'ms':>22}{'queries':>10}{'slowest query ms':>20}")
    for name, query in views.items():
        times, slowest, count = [], [], 0
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as queries:
                start = time.perf_counter()
                response = client.get(changelist + query)
                times.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise RuntimeError(f"{name}: {response.status_code} {response.get('Location')}")
            count = len(queries.captured_queries)
            slowest.append(max(float(q["time"]) for q in queries.captured_queries))
        print(
            f"{name:28}{summary(times, 1000, 0):>22}{count:>10}"
            f"{statistics.median(slowest) * 1000:>20.0f}"
        )


class Sockets:
    def __init__(self, pipe, count: int) -> None:
        self.pipe = pipe
        self.count = count
        self.expected = 0

    def arrivals(self, result: dict[str, float]) -> dict[str, float]:
        self.expected += 1  # each send brings every socket one more notification
        self.pipe.send(("wait", self.expected, 120))
        _kind, delivered, first, last = self.pipe.recv()
        return {
            "delivered": delivered,
            "first_arrival": (first - result["clicked"]) if first else float("nan"),
            "last_arrival": (last - result["clicked"]) if last else float("nan"),
            "after_response": (last - result["answered"]) if last else float("nan"),
        }


@contextmanager
def connected_sockets(count: int) -> Iterator[Sockets | None]:
    if not count:
        yield None
        return
    keys = session_keys(count)
    with daphne() as port:
        parent, child = multiprocessing.get_context("spawn").Pipe()
        process = multiprocessing.get_context("spawn").Process(
            target=run_sockets,
            args=(
                child,
                f"ws://127.0.0.1:{port}/ws/notifications/",
                f"http://127.0.0.1:{port}",
                keys,
            ),
        )
        process.start()
        try:
            if not parent.poll(300):
                raise RuntimeError("the sockets did not connect")
            _ready, connected = parent.recv()
            print(f"{connected:,} sockets connected", flush=True)
            yield Sockets(parent, count)
        finally:
            parent.send(("stop", 0, 0))
            process.join(30)
            if process.is_alive():
                process.terminate()


if __name__ == "__main__":
    main()
