"""One contender of ``bench.peers``: ``python peers_worker.py ours|hq|community MAX_USERS``.

Run in the contender's virtualenv, beside its settings, so that ``notifications`` is its own
package: it imports nothing but Django. It makes MAX_USERS recipients and answers ``send``
(``users``, ``mode``: one notification to the first N, as the contender's users send it, from an
empty table) and ``poller`` (a user with a session and N notifications, a quarter read).
"""

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

KIND, MAX_USERS = sys.argv[1], int(sys.argv[2])
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib import auth  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from notifications.models import Notification  # noqa: E402  (ours or the peer's)

User = auth.get_user_model()
VERB, TEXT = "published a new release", "Something happened."


def truncate() -> None:
    table = connection.ops.quote_name(Notification._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table} RESTART IDENTITY")
        cursor.execute(f"VACUUM ANALYZE {table}")


def send(actor: Any, recipients: Any) -> int:
    if KIND == "ours":
        from notifications.services import notify

        return len(notify(recipients, VERB, actor=actor).ids)
    from notifications.signals import notify as signal

    # As their README shows: notify.send(actor, recipient=..., verb=...).
    return sum(len(rows) for _, rows in signal.send(actor, recipient=recipients, verb=VERB))


def run_send(actor: Any, ids: list[int], users: int, mode: str) -> dict[str, Any]:
    truncate()
    audience = User.objects.filter(pk__gte=ids[0], pk__lte=ids[users - 1])
    statements = 0

    def count(execute, *args):  # type: ignore[no-untyped-def]
        # Every statement Django executes, savepoints included (not the driver's BEGIN/COMMIT).
        nonlocal statements
        statements += 1
        return execute(*args)

    gc.collect()
    started = time.perf_counter()
    atomic = transaction.atomic() if mode == "atomic" else contextlib.nullcontext()
    with connection.execute_wrapper(count), atomic:
        written = send(actor, audience)
    seconds = time.perf_counter() - started
    rows = Notification.objects.count()
    if rows != users or written != users:
        raise RuntimeError(f"{KIND}: expected {users} rows, got {rows} (send said {written})")
    return {"seconds": seconds, "statements": statements, "rows": rows}


def run_poller(actor: Any, count: int) -> dict[str, Any]:
    truncate()
    user, _ = User.objects.get_or_create(username="bench-poller")
    now, actor_type, rows = timezone.now(), ContentType.objects.get_for_model(actor), []
    for i in range(count):
        at, read, seen = now - timedelta(seconds=count - i), i % 4 == 0, i % 2 == 0
        row = {"recipient": user, "actor_content_type": actor_type, "actor_object_id": actor.pk}
        if KIND == "ours":
            row |= {"title": f"Notification {i}", "body": TEXT, "created_at": at}
            row |= {"read_at": at if read else None, "seen_at": at if seen else None}
        else:
            row |= {"verb": VERB, "description": TEXT, "timestamp": at, "unread": not read}
        rows.append(Notification(**row))
    Notification.objects.bulk_create(rows, batch_size=1000)
    store = importlib.import_module(settings.SESSION_ENGINE).SessionStore()
    store[auth.SESSION_KEY] = str(user.pk)
    store[auth.HASH_SESSION_KEY] = user.get_session_auth_hash()
    store[auth.BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store.save()  # a new session key, saved with the keys above
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    cookie = f"{settings.SESSION_COOKIE_NAME}={store.session_key}"
    return {"cookie": cookie, "unread_count": count - len(range(0, count, 4))}


if __name__ == "__main__":
    call_command("migrate", verbosity=0, interactive=False)
    actor = User.objects.create(username="bench-actor")
    User.objects.bulk_create([User(username=f"to{i:06d}") for i in range(MAX_USERS)], 5000)
    ids = list(User.objects.filter(pk__gt=actor.pk).order_by("pk").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    ContentType.objects.get_for_model(actor)  # the content type cache is warm for everyone
    versions = {"python": sys.version.split()[0], "django": django.get_version()}
    for name in ("django-notifications-hq", "django-notifications-community", "psycopg"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name.rpartition("-")[2]] = metadata.version(name)
    print(json.dumps({"ready": True, "users": len(ids), "versions": versions}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["cmd"] == "send":
                answer = run_send(actor, ids, command["users"], command["mode"])
            else:
                answer = run_poller(actor, command["notifications"])
        except Exception:
            answer = {"error": traceback.format_exc()}
        print(json.dumps(answer), flush=True)
    connection.close()
