"""A Redis connection pool shared by every request of a process.

Under ASGI, Django builds its cache objects per request, and ``RedisCache`` builds a new
connection pool with each: every request that touches the cache (sessions, the unread count's
version, tickets) then opens a TCP connection to Redis. Name this class as the cache's
``pool_class`` to keep one pool per server URL and per process::

    CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"pool_class": "notifications.cache.SharedConnectionPool"},
    }}
"""

from __future__ import annotations

import threading
from typing import Any

from redis import ConnectionPool


class SharedConnectionPool(ConnectionPool):
    _pools: dict[tuple[str, str], ConnectionPool] = {}
    # The class's lock guards _pools; each pool still gets its own RLock in __init__.
    _lock = threading.Lock()  # type: ignore[assignment]

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> ConnectionPool:  # type: ignore[override]
        key = (url, repr(sorted(kwargs.items())))
        with cls._lock:
            pool = cls._pools.get(key)
            if pool is None:
                pool = cls._pools[key] = super().from_url(url, **kwargs)
            return pool
