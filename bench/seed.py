"""Seed the benchmark database: one user, a DRF token and some notifications.

Run as ``python -m bench.seed`` with ``DJANGO_SETTINGS_MODULE=bench.settings`` and
``DATABASE_URL`` set; prints one JSON line (token, user id, expected counts) on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from notifications.models import Notification  # noqa: E402


def seed(count: int) -> dict[str, object]:
    now = timezone.now()
    with transaction.atomic():
        # One INSERT: saving the user again would revoke its credential note (a tombstone for a
        # minute), and the 304 path would not trust the token during the run.
        user = get_user_model().objects.create(
            username="bench-poller", password=make_password(None)
        )
        token = Token.objects.create(user=user)
        rows = []
        for i in range(count):
            created = now - timedelta(seconds=count - i)
            read = i % 4 == 0  # a quarter read (and so seen)
            seen = read or i % 2 == 0  # half seen
            rows.append(
                Notification(
                    recipient=user,
                    title=f"Notification {i}",
                    body="Something happened.",
                    created_at=created,
                    read_at=created if read else None,
                    seen_at=created if seen else None,
                )
            )
        Notification.objects.bulk_create(rows, batch_size=1000)
    counts = Notification.objects.for_user(user.pk).counts()
    for connection in connections.all():
        connection.close()
        close_pool = getattr(connection, "close_pool", None)  # PostgreSQL with a pool
        if close_pool is not None:
            close_pool()
    return {
        "token": token.key,
        "user_id": user.pk,
        "unread_count": counts["unread_count"],
        "unseen_count": counts["unseen_count"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notifications", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(seed(args.notifications)))


if __name__ == "__main__":
    main()
