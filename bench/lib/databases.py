"""Databases: a PostgreSQL database and a Redis database of the run's own, and users signed in."""

import functools
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.lib.processes import BIN, Process, django_env, run_checked, stop_all

# A URL of the server's maintenance database, for CREATE and DROP DATABASE.
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def _admin(admin_url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as connection:
        for statement in statements:
            connection.execute(statement)


@contextmanager
def scratch_database(name: str, admin_url: str = POSTGRES) -> Iterator[str]:
    """A fresh PostgreSQL database ``name`` (its URL), dropped afterwards."""
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    _admin(admin_url, drop, f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        stop_all()  # what used it, first
        try:
            _admin(admin_url, drop)
        except Exception as error:  # never hide the run's own error
            print(f"could not drop database {name}: {error}", flush=True)


@contextmanager
def django_database(name: str, admin_url: str, redis_url: str = "") -> Iterator[tuple[dict, Path]]:
    """A fresh database, migrated, and an empty Redis database: the environment of the Django
    processes using them (``django_env``), and a temporary folder for their logs."""
    with scratch_database(name, admin_url) as url, tempfile.TemporaryDirectory() as folder:
        env = django_env(url, redis_url)
        flush_redis(redis_url)
        try:
            run_checked([str(BIN / "python"), "manage.py", "migrate", "--noinput"], env)
            yield env, Path(folder)
        finally:
            stop_all()  # what used them, first
            flush_redis(redis_url)


def seed(env: dict[str, str], folder: Path, what: str, count: int) -> dict[str, Any]:
    """What a sender of the run seeded (``bench.sender``: ``poller`` or ``users``)."""
    sender = Process([str(BIN / "python"), "-m", "bench.sender"], env, folder / "seed.log")
    try:
        return sender.start().call({"cmd": what, "count": count})
    finally:
        sender.stop()


@functools.cache
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=10)


def flush_redis(url: str) -> None:
    """Empty the Redis database ``url`` names (if any), and only that one (never FLUSHALL)."""
    if url:
        _redis(url).flushdb()


def redis_counters(url: str) -> tuple[int, Counter[str]]:
    """Connections Redis ever accepted, and calls per command: server-wide, so other users of
    the server add noise (the INFO calls of this function are left out)."""
    commands = Counter[str]()
    for name, stats in _redis(url).info("commandstats").items():
        commands[name.removeprefix("cmdstat_")] = int(stats["calls"])
    del commands["info"]
    return int(_redis(url).info("stats")["total_connections_received"]), commands


# --- inside a Django process --------------------------------------------------------------


def close_connections() -> None:
    """Close this process's database connections and pools (before the database is dropped)."""
    from django.db import connections

    for connection in connections.all():
        connection.close()
        close_pool = getattr(connection, "close_pool", None)  # PostgreSQL with a pool
        if close_pool is not None:
            close_pool()


def sign_in(users: Iterable[Any]) -> list[str]:
    """A session for each user, saved by the session engine as ``login()`` would; their keys."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.db import transaction

    keys = []
    with transaction.atomic():
        for user in users:
            store = import_module(settings.SESSION_ENGINE).SessionStore()
            store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            store[SESSION_KEY], store[HASH_SESSION_KEY] = str(user.pk), user.get_session_auth_hash()
            store.create()
            keys.append(store.session_key)
    return keys
