"""One contender of ``bench.peers``, in its own virtualenv: a long-lived process driven over stdin.

Runs as a plain script (``python peers_worker.py KIND MAX_USERS``) with Django's settings already
chosen by the environment. For the peers (``hq``, ``community``) it is copied into a temporary
folder next to a generated settings module and run from there, so that ``notifications`` is the
peer's package from its virtualenv, never this repository's. Only the standard library and
Django are imported at the top for that reason.

It migrates its (fresh) database, creates one actor and MAX_USERS recipients, prints
``{"ready": ...}`` and then answers one JSON line per JSON command line:

- ``{"op": "send", "users": N, "mode": "plain" | "atomic"}``: empty the notifications table, send
  one notification to the first N recipients the way the contender's users do, and report
  seconds, statements executed and rows written;
- ``{"op": "poller", "notifications": N}``: empty the table, create a user with a session and N
  notifications (a quarter read), for the polling comparison;
- ``{"op": "quit"}``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import sys
import time
import traceback
from datetime import timedelta
from importlib import metadata
from typing import Any

import django

KIND = sys.argv[1]
MAX_USERS = int(sys.argv[2])

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

User = get_user_model()
VERB = "published a new release"


def answer(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


class StatementCounter:
    """Counts every statement Django sends through a cursor (savepoints included; the driver's
    own BEGIN/COMMIT are not statements Django executes and are not counted)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        self.count += 1
        return execute(sql, params, many, context)


def notification_model():  # type: ignore[no-untyped-def]
    from notifications.models import Notification

    return Notification


def truncate() -> None:
    table = connection.ops.quote_name(notification_model()._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table} RESTART IDENTITY")
        cursor.execute(f"VACUUM ANALYZE {table}")


def seed() -> tuple[Any, list[int]]:
    actor = User.objects.create(username="bench-actor")
    User.objects.bulk_create(
        [User(username=f"recipient{i:06d}") for i in range(MAX_USERS)], batch_size=5000
    )
    ids = list(User.objects.filter(pk__gt=actor.pk).order_by("pk").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return actor, ids


def send_function(actor: Any) -> Any:
    if KIND == "ours":
        from notifications.services import notify

        def send(recipients: Any) -> int:
            return len(notify(recipients, VERB, actor=actor).ids)

        return send

    from notifications.signals import notify as signal

    def send(recipients: Any) -> int:
        # As their README shows: notify.send(actor, recipient=..., verb=...).
        responses = signal.send(actor, recipient=recipients, verb=VERB)
        return sum(len(rows) for _, rows in responses)

    return send


def run_send(actor: Any, ids: list[int], users: int, mode: str) -> dict[str, Any]:
    truncate()
    audience = User.objects.filter(pk__gte=ids[0], pk__lte=ids[users - 1])
    send = send_function(actor)
    counter = StatementCounter()
    gc.collect()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        if mode == "atomic":
            with transaction.atomic():
                written = send(audience)
        else:
            written = send(audience)
    seconds = time.perf_counter() - started
    rows = notification_model().objects.count()
    if rows != users or written != users:
        raise RuntimeError(f"{KIND}: expected {users} rows, got {rows} (send said {written})")
    return {"seconds": seconds, "statements": counter.count, "rows": rows}


def run_poller(actor: Any, count: int) -> dict[str, Any]:
    """A user with a session and ``count`` notifications, a quarter of them read."""
    truncate()
    user, _ = User.objects.get_or_create(username="bench-poller")
    Notification = notification_model()
    now = timezone.now()
    rows = []
    actor_type = ContentType.objects.get_for_model(actor)
    for i in range(count):
        created = now - timedelta(seconds=count - i)
        read = i % 4 == 0
        if KIND == "ours":
            rows.append(
                Notification(
                    recipient=user,
                    title=f"Notification {i}",
                    body="Something happened.",
                    created_at=created,
                    read_at=created if read else None,
                    seen_at=created if read or i % 2 == 0 else None,
                    actor_content_type=actor_type,
                    actor_object_id=str(actor.pk),
                )
            )
        else:
            rows.append(
                Notification(
                    recipient=user,
                    actor_content_type=actor_type,
                    actor_object_id=str(actor.pk),
                    verb=VERB,
                    description="Something happened.",
                    unread=not read,
                    timestamp=created,
                )
            )
    Notification.objects.bulk_create(rows, batch_size=1000)
    store = importlib.import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()  # a new session key, saved with the keys above
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    unread = count - len(range(0, count, 4))
    return {
        "session_cookie": settings.SESSION_COOKIE_NAME,
        "session": store.session_key,
        "unread_count": unread,
        "user_id": user.pk,
    }


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "django": django.get_version()}
    for name in ("django-notifications-hq", "django-notifications-community", "psycopg"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def main() -> None:
    call_command("migrate", verbosity=0, interactive=False)
    actor, ids = seed()
    # The content type cache is warm for everyone before the first timed send.
    ContentType.objects.get_for_model(actor)
    answer({"ready": True, "users": len(ids), "versions": versions()})
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["op"] == "quit":
                break
            if command["op"] == "send":
                answer(run_send(actor, ids, command["users"], command.get("mode", "plain")))
            elif command["op"] == "poller":
                answer(run_poller(actor, command["notifications"]))
            else:
                answer({"error": f"unknown op {command['op']!r}"})
        except Exception:
            answer({"error": traceback.format_exc()})
    connection.close()


if __name__ == "__main__":
    main()
