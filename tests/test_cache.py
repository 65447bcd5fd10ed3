from django.core.cache.backends.redis import RedisCache

from notifications.cache import SharedConnectionPool
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
