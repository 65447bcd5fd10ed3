"""The test suite's place in Redis: the database ``REDIS_URL`` names (db 0 of 127.0.0.1:6379 if
unset), under keys that start with one prefix per run (``PREFIX``). The suite deletes those keys
when it ends (``delete_keys``), and nothing else: it never flushes a database, so a Redis shared
with other projects or other runs keeps their keys.

Everything the suite writes goes through a cache or a channel layer with the prefix: the test
settings' own, the daphne processes' (the prefix travels to them in the environment, as
``NOTIFICATIONS_TEST_REDIS_PREFIX``), and those a test makes with :func:`redis_cache` and
:func:`layer_config`. Django's ``RedisCache`` writes ``<KEY_PREFIX>:<version>:<key>`` (so the
socket registry, tickets, versions and sessions live under it); channels-redis names its keys and
pub/sub channels after the layer's ``prefix``. (One test of the pub/sub layer gives it a second
"host" as database 1 of the same server: pub/sub ignores databases, nothing is written there.)
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

ENV = "NOTIFICATIONS_TEST_REDIS_PREFIX"
PREFIX = os.environ.setdefault(ENV, f"notifications-tests-{uuid.uuid4().hex[:12]}")
REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"


def key_prefix(name: str = "") -> str:
    """The run's prefix, or a part of it of its own (``name``) for a test that needs a registry
    nobody else has written to."""
    return f"{PREFIX}:{name}" if name else PREFIX


def redis_cache(url: str, name: str = "", **options: Any) -> dict[str, Any]:
    return {"BACKEND": REDIS_CACHE, "LOCATION": url, "KEY_PREFIX": key_prefix(name), **options}


def layer_config(backend: str, url: str, **config: Any) -> dict[str, Any]:
    """A channels-redis layer on ``url`` whose keys and channels carry the run's prefix."""
    return {"BACKEND": backend, "CONFIG": {"hosts": [{"address": url}], "prefix": PREFIX, **config}}


def prefixed(caches: dict[str, Any], layers: dict[str, Any]) -> None:
    """Give the Redis caches and channels-redis layers of some settings the run's prefix."""
    for cache in caches.values():
        if cache.get("BACKEND") == REDIS_CACHE:
            cache["KEY_PREFIX"] = PREFIX
    for layer in layers.values():
        if layer.get("BACKEND", "").startswith("channels_redis."):
            layer.setdefault("CONFIG", {})["prefix"] = PREFIX


def delete_keys(url: str) -> int:
    """Delete the run's keys from the database ``url`` names; return how many there were."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", PREFIX) + "*"
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        return len(keys)
    finally:
        client.close()
