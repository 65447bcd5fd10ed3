"""A Django process of the push benchmark, with Web Push on: the run's VAPID keys and push sink
come from its environment (``BENCH_PUSH_PUBLIC_KEY``, ``BENCH_PUSH_PRIVATE_KEY``,
``BENCH_PUSH_SINK``), the rest is ``bench.settings`` (the database task backend included).

``python -m bench.push_worker``: a helper driven over stdin (``bench.lib.processes``).

- ``seed``: ``count`` users, each with one push subscription to the sink (real P-256 keys and a
  random auth secret, checked by ``subscriptions.clean()``), and one notification to all of
  them through ``notify()`` (Web Push off for it: no task is queued).
- ``due``: how many of those notifications a push would still go out for.
- ``send``: ``delivery.send()`` over each of ``chunks`` in turn, as ``send_pushes`` runs it,
  counting SQL statements per call and this process's CPU.
- ``notify``: ``notify()`` to the same users with Web Push on: the receiver queues
  ``send_pushes`` tasks for the db_worker processes; ``tasks``: how those are doing;
  ``clean``: those notifications and tasks deleted, the seeded ones left.
- ``baseline``: ``pywebpush.webpush()`` in a loop over the same subscriptions with the same
  payloads (built before the clock), one ``requests.Session`` for all or none; no database work
  in the clock.

``python -m bench.push_worker db_worker [options]``: ``manage.py db_worker`` with these settings.
It says it is ready on stdout, then logs there (its stdout becomes its log); it stops, as on
SIGTERM, when its stdin ends; each task it runs logs a ``bench-task {json}`` line with the SQL
statements from ``task_started`` to ``task_finished`` (the task and marking it done).
"""

import json
import os
import resource
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import django

django.setup()

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from notifications.conf import app_settings  # noqa: E402
from notifications.models import Notification, PushSubscription  # noqa: E402
from notifications.push import delivery, payload, subscriptions  # noqa: E402
from notifications.push.keys import b64encode  # noqa: E402
from notifications.services import notify  # noqa: E402

User = get_user_model()
PREFIX = "push-bench-"
SUBJECT = "mailto:bench@example.com"
TITLE, BODY, URL = "Export ready", "Your export of 1,204 rows is ready.", "/exports/7/"
PUSH_SETTINGS = {
    "WEB_PUSH": True,
    "WEB_PUSH_VAPID_PUBLIC_KEY": os.environ["BENCH_PUSH_PUBLIC_KEY"],
    "WEB_PUSH_VAPID_PRIVATE_KEY": os.environ["BENCH_PUSH_PRIVATE_KEY"],
    "WEB_PUSH_VAPID_SUBJECT": SUBJECT,
    "WEB_PUSH_ALLOW_LOOPBACK_HTTP": True,
}
override_settings(NOTIFICATIONS={**settings.NOTIFICATIONS, **PUSH_SETTINGS}).enable()


def cpu() -> float:
    """User and system CPU of this process so far, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Statements:
    """Counts the SQL statements of this thread's connection while installed."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], *args: Any) -> Any:
        self.count += 1
        return execute(*args)


def audience() -> Any:
    return User.objects.filter(username__startswith=PREFIX)


def seed(count: int) -> dict[str, Any]:
    sink = os.environ["BENCH_PUSH_SINK"]
    password = make_password(None)
    users = [User(username=f"{PREFIX}{i:05d}", password=password) for i in range(count)]
    User.objects.bulk_create(users, batch_size=1000)
    rows = []
    for n, user in enumerate(audience().order_by("pk")):
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        posted = {
            "endpoint": f"{sink}/push/{n}",
            "expirationTime": None,
            "keys": {"p256dh": b64encode(point), "auth": b64encode(os.urandom(16))},
        }
        checked = subscriptions.clean(posted)  # what the REST API would have kept
        rows.append(
            PushSubscription(
                user=user, endpoint=checked.endpoint, p256dh=checked.p256dh, auth=checked.auth
            )
        )
    PushSubscription.objects.bulk_create(rows, batch_size=1000)
    with override_settings(NOTIFICATIONS={**settings.NOTIFICATIONS, "WEB_PUSH": False}):
        notify(audience(), TITLE, body=BODY, url=URL)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    ids = list(Notification.objects.filter(url=URL).order_by("pk").values_list("pk", flat=True))
    return {"ids": ids, "batch_size": app_settings.WEB_PUSH_BATCH_SIZE, **due()}


def due() -> dict[str, Any]:
    """Seeded notifications still pushable (live, unseen, unread, unarchived): all of them."""
    pushable = Notification.objects.filter(url=URL).live().not_seen().not_read().unarchived()
    return {"due": pushable.count(), "subscriptions": PushSubscription.objects.count()}


def send(chunks: list[list[int]]) -> dict[str, Any]:
    statements = Statements()
    per_batch: list[int] = []
    totals: Counter[str] = Counter()
    cpu0, t0 = cpu(), time.monotonic()
    with connection.execute_wrapper(statements):
        for chunk in chunks:
            before = statements.count
            report = delivery.send(chunk)
            per_batch.append(statements.count - before)
            totals.update({k: v for k, v in report.as_dict().items() if k != "retry_after"})
    t1 = time.monotonic()
    return {"t0": t0, "t1": t1, "cpu": cpu() - cpu0, "batches": per_batch, **totals}


def run_notify() -> dict[str, Any]:
    statements = Statements()
    cpu0, t0 = cpu(), time.monotonic()
    with connection.execute_wrapper(statements):
        batch = notify(audience(), TITLE, body=BODY, url="/exports/8/")
    t1 = time.monotonic()
    return {
        "t0": t0,
        "t1": t1,
        "cpu": cpu() - cpu0,
        "queries": statements.count,
        "rows": len(batch),
    }


def tasks() -> dict[str, Any]:
    """The queued ``send_pushes`` tasks by status, and what the finished ones reported."""
    from django_tasks_db.models import DBTaskResult

    statuses = Counter(DBTaskResult.objects.values_list("status", flat=True))
    reported: Counter[str] = Counter()
    for value in DBTaskResult.objects.exclude(return_value=None).values_list(
        "return_value", flat=True
    ):
        reported.update({k: v for k, v in value.items() if k != "retry_after"})
    return {"statuses": dict(statuses), "reported": dict(reported)}


def clean() -> dict[str, Any]:
    """The round's notifications and tasks gone: the database as after the seed."""
    from django_tasks_db.models import DBTaskResult

    deleted, _ = Notification.objects.exclude(url=URL).delete()
    DBTaskResult.objects.all().delete()
    return {"deleted": deleted, **due()}


def baseline(session: bool) -> dict[str, Any]:
    """What most apps do (django-webpush does): ``webpush()`` per subscription, the VAPID key
    as a string, the claims a new dict each time; the payloads are the app's, made before."""
    import requests
    from pywebpush import webpush

    now = timezone.now()
    rows = {row.recipient_id: row for row in Notification.objects.filter(url=URL).with_related()}
    counts = Notification.objects.counts_by_recipient(list(rows))
    jobs = []
    for sub in PushSubscription.objects.filter(user_id__in=list(rows)).order_by("pk"):
        row = rows[sub.user_id]
        info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
        message = payload.message(row, counts.get(row.recipient_id, (0, 0))[0])
        jobs.append((info, message, payload.ttl(row, now)))
    private = app_settings.WEB_PUSH_VAPID_PRIVATE_KEY
    requests_session = requests.Session() if session else None
    sent = 0
    cpu0, t0 = cpu(), time.monotonic()
    for info, message, ttl in jobs:
        webpush(
            info,
            message,  # bytes: pywebpush encrypts them as they are
            vapid_private_key=private,
            vapid_claims={"sub": SUBJECT},
            ttl=ttl,
            requests_session=requests_session,
        )
        sent += 1
    t1 = time.monotonic()
    return {"t0": t0, "t1": t1, "cpu": cpu() - cpu0, "batches": [], "sent": sent}


def handle(command: dict[str, Any]) -> dict[str, Any]:
    name = command["cmd"]
    if name == "seed":
        return seed(command["count"])
    if name == "due":
        return due()
    if name == "send":
        return send(command["chunks"])
    if name == "notify":
        return run_notify()
    if name == "tasks":
        return tasks()
    if name == "clean":
        return clean()
    if name == "baseline":
        return baseline(command["session"])
    raise ValueError(f"unknown command {name!r}")


def db_worker(arguments: list[str]) -> None:
    """``manage.py db_worker`` in this process, as described above."""
    from django.core.management import execute_from_command_line
    from django_tasks_db.compat import task_finished, task_started

    statements = Statements()
    connection.execute_wrappers.append(statements)  # this thread's: the worker's loop
    started = [0, 0.0]

    def on_started(**kwargs: Any) -> None:
        started[:] = [statements.count, time.monotonic()]

    def on_finished(**kwargs: Any) -> None:
        line = {"queries": statements.count - started[0], "t0": started[1], "t1": time.monotonic()}
        print("bench-task", json.dumps(line), file=sys.stderr, flush=True)

    task_started.connect(on_started, weak=False)
    task_finished.connect(on_finished, weak=False)
    print(json.dumps({"ready": True, "vendor": connection.vendor}), flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # from now on, stdout is the log

    def stop_at_end_of_input() -> None:
        sys.stdin.read()
        os.kill(os.getpid(), signal.SIGTERM)  # db_worker stops after its current task

    threading.Thread(target=stop_at_end_of_input, daemon=True).start()
    execute_from_command_line(["manage.py", "db_worker", *arguments])


if __name__ == "__main__":
    if sys.argv[1:2] == ["db_worker"]:
        db_worker(sys.argv[2:])
    else:
        print(json.dumps({"ready": True, "vendor": connection.vendor}), flush=True)
        for line in sys.stdin:  # an error ends the process: the run stops with its log
            print(json.dumps(handle(json.loads(line))), flush=True)
