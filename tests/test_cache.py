from django.core.cache.backends.redis import RedisCache

from notifications.cache import SharedConnectionPool


def test_one_pool_per_url_and_options_across_cache_objects():
    options = {"pool_class": "notifications.cache.SharedConnectionPool"}
    first = RedisCache("redis://127.0.0.1:6379/3", {"OPTIONS": options})
    second = RedisCache("redis://127.0.0.1:6379/3", {"OPTIONS": options})
    other = RedisCache("redis://127.0.0.1:6379/4", {"OPTIONS": options})
    assert first._cache._get_connection_pool(True) is second._cache._get_connection_pool(True)
    assert first._cache._get_connection_pool(True) is not other._cache._get_connection_pool(True)
    assert isinstance(first._cache._get_connection_pool(True), SharedConnectionPool)
