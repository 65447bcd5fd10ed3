"""Seed the WebSocket benchmark's database: N users, each signed in with a session of its own.

Run as ``python -m bench.ws_seed --users N --output FILE`` with ``DJANGO_SETTINGS_MODULE`` and
``DATABASE_URL``/``REDIS_URL`` set; writes ``{"user_ids": [...], "session_keys": [...]}`` to FILE
(index i: user i and the key of its session) and prints one JSON summary line.

Users are bulk-inserted; sessions are written as ``login()`` would leave them under the
``cached_db`` engine: a row in the session table (encoded by the engine's own ``SessionStore``)
and the same data in the session cache, so that a connect reads the session from Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import timedelta
from importlib import import_module
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.ws_settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402
from django.core.cache import caches  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.utils.crypto import get_random_string  # noqa: E402

BACKEND = "django.contrib.auth.backends.ModelBackend"
VALID_KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def seed(count: int) -> dict[str, list]:
    user_model = get_user_model()
    engine = import_module(settings.SESSION_ENGINE)
    store = engine.SessionStore()
    cache_prefix = getattr(engine.SessionStore, "cache_key_prefix", None)
    age = settings.SESSION_COOKIE_AGE
    expires = timezone.now() + timedelta(seconds=age)
    password = make_password(None)  # unusable; one hash for all, as the session hash reads it
    with transaction.atomic():
        users = user_model.objects.bulk_create(
            [user_model(username=f"wsbench-{i:05d}", password=password) for i in range(count)],
            batch_size=1000,
        )
        keys, rows, cached = [], [], {}
        for user in users:
            key = get_random_string(32, VALID_KEY_CHARS)
            data = {
                SESSION_KEY: str(user.pk),
                BACKEND_SESSION_KEY: BACKEND,
                HASH_SESSION_KEY: user.get_session_auth_hash(),
            }
            keys.append(key)
            encoded = store.encode(data)
            rows.append(Session(session_key=key, session_data=encoded, expire_date=expires))
            if cache_prefix is not None:
                cached[cache_prefix + key] = data
        Session.objects.bulk_create(rows, batch_size=1000)
    if cached:
        cache = caches[settings.SESSION_CACHE_ALIAS]
        items = list(cached.items())
        for start in range(0, len(items), 1000):
            cache.set_many(dict(items[start : start + 1000]), timeout=age)
    with connections["default"].cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"user_ids": [user.pk for user in users], "session_keys": keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    seeded = seed(args.users)
    args.output.write_text(json.dumps(seeded))
    for connection in connections.all():
        connection.close()
        close_pool = getattr(connection, "close_pool", None)
        if close_pool is not None:
            close_pool()
    ids = seeded["user_ids"]
    print(
        json.dumps(
            {
                "users": len(ids),
                "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None,
                "contiguous": ids == list(range(ids[0], ids[0] + len(ids))) if ids else True,
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
