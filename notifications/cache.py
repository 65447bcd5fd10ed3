"""The app's place in the cache: the namespaces of its keys, and a Redis connection pool shared
by every request of a process.

Every key the app writes starts with ``notifications:`` and then a namespace of one module's
own, declared below and nowhere else, so that no two modules can ever write the same key
(tests/test_cache.py holds them apart).

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

ROOT = "notifications"
# Through the cache of NOTIFICATIONS["CACHE_ALIAS"], which adds its KEY_PREFIX and VERSION:
VERSIONS = f"{ROOT}:v:"  # versions.py: a user's inbox version token, by user id ("all": everyone's)
AUTH_USERS = f"{ROOT}:auth:user:"  # api/credentials.py: a user's session auth hash, by user id
AUTH_TOKENS = f"{ROOT}:auth:token:"  # api/credentials.py: a DRF token's user, by the key's sha256
THROTTLES = f"{ROOT}:throttle:"  # api/throttling.py: a rate window's count, by scope and user
TICKETS = f"{ROOT}:ticket:"  # realtime/tickets.py: a WebSocket ticket, by its sha256
EMAIL_SCHEDULE = f"{ROOT}:email:next"  # email/tasks.py: when the next email task is due to run
# Straight in the cache's Redis (realtime/presence.py, the socket registry), each after what the
# cache's make_key(ROOT) gives, so under its KEY_PREFIX and VERSION too:
REGISTRY_STATS = ":stats"  # the app's counters
REGISTRY_ONLINE = ":online"  # every user with a live socket, and the registry's epoch
REGISTRY_SOCKETS = ":sockets:"  # a user's sockets, by user id
REGISTRY_NODES = ":nodes"  # every process holding sockets
REGISTRY_REVOKED = ":revoked:"  # when a user's credentials last changed, by user id


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
