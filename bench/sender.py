"""A Django process of the run, driven over stdin (``bench.lib.processes``): it seeds, and sends.

Seeds ``poller`` (a DRF token, ``count`` notifications, a quarter read) or ``users`` (each with a
session). ``burst``: ``rounds`` transactions of one ``notify()`` per user of ``span`` (user i is
``offset + i``; with ``broadcast``, one to their QuerySet); ``paced``: ``count`` sends, one every
``interval`` s. ``data.t`` is the clock before ``notify()``, ``data.b`` the delivery's tag.
"""

import json
import sys
import time
from datetime import timedelta
from typing import Any

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from bench.lib.databases import sign_in  # noqa: E402
from bench.ws_reference import CONTENT  # noqa: E402
from notifications.models import Notification  # noqa: E402
from notifications.services import notify  # noqa: E402

User = get_user_model()


def poller(count: int) -> dict[str, Any]:
    # One INSERT: saving the user again would revoke its credential note (a tombstone for a
    # minute), and the 304 path would not trust the token during the run.
    user = User.objects.create(username="bench-poller", password=make_password(None))
    now, rows = timezone.now(), []
    for i in range(count):
        at = now - timedelta(seconds=count - i)
        row = {"title": f"Notification {i}", "body": "Something happened.", "created_at": at}
        row |= {"read_at": at if i % 4 == 0 else None, "seen_at": at if i % 2 == 0 else None}
        rows.append(Notification(recipient=user, **row))
    Notification.objects.bulk_create(rows, batch_size=1000)
    token = Token.objects.create(user=user).key
    return {"token": token, **Notification.objects.for_user(user).counts()}


def users(count: int) -> dict[str, Any]:
    password = make_password(None)  # unusable; one hash for all, as the session hash reads it
    made = [User(username=f"wsbench-{i:05d}", password=password) for i in range(count)]
    keys = sign_in(User.objects.bulk_create(made, batch_size=1000))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    ids = [user.pk for user in made]
    assert ids == list(range(ids[0], ids[0] + count)), "user ids are not contiguous"
    return {"first_id": ids[0], "session_keys": keys}


def send(command: dict[str, Any]) -> dict[str, Any]:
    ids = range(command["offset"] + command["span"][0], command["offset"] + command["span"][1])
    tag, t0 = command["tag"], time.monotonic()
    if command["cmd"] == "burst":
        for round_ in range(command["rounds"]):
            data = {"t": time.monotonic(), "b": tag, "round": round_}
            if command["broadcast"]:
                notify(User.objects.filter(pk__range=(ids[0], ids[-1])), **CONTENT, data=data)
                continue
            with transaction.atomic():
                for user_id in ids:
                    notify(user_id, **CONTENT, data=data)
        return {"t0": t0, "t_end": time.monotonic()}
    durations = []
    for k in range(command["count"]):
        time.sleep(max(0.0, t0 + k * command["interval"] - time.monotonic()))
        start = time.monotonic()
        notify(ids[k % len(ids)], **CONTENT, data={"t": start, "b": tag, "seq": k})
        durations.append(time.monotonic() - start)
    return {"t0": t0, "t_end": time.monotonic(), "durations": durations}


def handle(command: dict[str, Any]) -> dict[str, Any]:
    seed = {"poller": poller, "users": users}.get(command["cmd"])
    return seed(command["count"]) if seed else send(command)


if __name__ == "__main__":
    # A plain loop: notify() on the main thread, as a view calls it (the profile's main thread).
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:  # an error ends the process: the run stops with its log
        print(json.dumps(handle(json.loads(line))), flush=True)
