from django.core.cache.backends.redis import RedisCache

from notifications.cache import (
    AUTH_TOKENS,
    AUTH_USERS,
    REGISTRY_NODES,
    REGISTRY_ONLINE,
    REGISTRY_REVOKED,
    REGISTRY_SOCKETS,
    REGISTRY_STATS,
    ROOT,
    THROTTLES,
    TICKETS,
    VERSIONS,
    SharedConnectionPool,
)
from tests.conftest import REDIS_URL


def test_one_pool_per_url_and_options_across_cache_objects():
    # Pools only: no connection is opened, so nothing is written to the Redis REDIS_URL names.
    options = {"pool_class": "notifications.cache.SharedConnectionPool"}
    first = RedisCache(REDIS_URL, {"OPTIONS": options})
    second = RedisCache(REDIS_URL, {"OPTIONS": options})
    other_url = RedisCache(f"{REDIS_URL.rsplit('/', 1)[0]}/9", {"OPTIONS": options})
    other_options = RedisCache(REDIS_URL, {"OPTIONS": {**options, "socket_timeout": 5}})
    pool = first._cache._get_connection_pool(True)
    assert pool is second._cache._get_connection_pool(True)
    assert pool is not other_url._cache._get_connection_pool(True)
    assert pool is not other_options._cache._get_connection_pool(True)
    assert isinstance(pool, SharedConnectionPool)


def test_no_two_modules_can_write_the_same_key():
    namespaces = [VERSIONS, AUTH_USERS, AUTH_TOKENS, THROTTLES, TICKETS]
    # The registry's keys follow the cache's make_key(ROOT): with the default key function, the
    # same as ROOT followed by them.
    namespaces += [
        ROOT + name
        for name in (
            REGISTRY_STATS,
            REGISTRY_ONLINE,
            REGISTRY_SOCKETS,
            REGISTRY_NODES,
            REGISTRY_REVOKED,
        )
    ]
    for namespace in namespaces:
        assert namespace.startswith(f"{ROOT}:")
        others = [other for other in namespaces if other is not namespace]
        assert not any(other.startswith(namespace) for other in others), namespace
