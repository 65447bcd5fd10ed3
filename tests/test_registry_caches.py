"""The shared socket registry on every Redis cache people use: Django's own RedisCache and
django-redis (which the docs suggest for Sentinel). Any other cache keeps it per process, and a
system check says so when the channel layer spans processes."""

import time
import uuid

import pytest
from channels.db import database_sync_to_async
from django.core.checks import run_checks

from notifications.realtime.node import node
from notifications.realtime.presence import LocalRegistry, RedisRegistry, registry
from tests.redis_keys import REDIS_CACHE, key_prefix
from tests.test_consumers import open_socket, signed_in

pytestmark = [pytest.mark.django_db(transaction=True)]


def cache_config(kind: str, url: str) -> dict:
    """A cache of ``kind`` under a key prefix of this test's own (so its registry starts empty)."""
    prefix = key_prefix(f"registry-caches-{uuid.uuid4().hex[:8]}")
    if kind == "django":
        return {"BACKEND": REDIS_CACHE, "LOCATION": url, "KEY_PREFIX": prefix}
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": prefix,
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
    }


@pytest.fixture(params=["django", "django-redis"])
def a_redis_cache(request, redis_url, settings):
    settings.CACHES = {"default": cache_config(request.param, redis_url)}
    settings.NOTIFICATIONS = {"MAX_SOCKETS_PER_USER": 2}
    current = registry()
    current._sync().zadd(current.online_key, {f"epoch:{time.time() - 3600}": float("inf")})
    return request.param


def another_process(current: RedisRegistry) -> RedisRegistry:
    """What a second daphne holds: a registry of its own over the same cache."""
    namespace = current.stats_key.rsplit(":", 1)[0]
    if current._threaded:
        return RedisRegistry(current.url, namespace, sync_client=current._sync())
    return RedisRegistry(current.url, namespace)


async def test_the_registry_is_shared_across_processes(a_redis_cache, alice, bob):
    here = registry()
    assert isinstance(here, RedisRegistry)
    there = another_process(here)
    # The limit counts every process's sockets.
    assert await here.claim(alice.pk, "here-1", "node-here")
    assert await there.claim(alice.pk, "there-1", "node-there")
    assert await there.claim(alice.pk, "there-2", "node-there") is False
    # Who is online, and the metrics, as any process sees them.
    assert await database_sync_to_async(there.online)([alice.pk, bob.pk]) == {alice.pk}
    await there.count("connects", 3)
    snapshot = await database_sync_to_async(here.snapshot)()
    assert snapshot["open_sockets"] == 2 and snapshot["connects"] == 3
    await here.release(alice.pk, "here-1", "node-here")
    assert await there.claim(alice.pk, "there-2", "node-there") is True


async def test_sockets_are_limited_through_the_cache(a_redis_cache, alice):
    first, _ = await signed_in(alice)
    second, _ = await signed_in(alice)
    third, connected, _ = await open_socket(alice)
    assert connected
    assert await third.receive_output(timeout=3) == {"type": "websocket.close", "code": 4409}
    await node().sweep.tick()  # a beat and a claim through the cache's client
    for communicator in (first, second):
        await communicator.disconnect()


def test_a_per_process_cache_with_a_redis_layer_is_a_warning(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # only read by the check
        }
    }
    assert isinstance(registry(), LocalRegistry)
    assert "notifications.W006" in [message.id for message in run_checks()]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert "notifications.W006" not in [message.id for message in run_checks()]


@pytest.mark.parametrize("kind", ["django", "django-redis"])
def test_a_redis_cache_is_no_warning(kind, settings):
    settings.CACHES = {"default": cache_config(kind, "redis://127.0.0.1:1/0")}  # never used
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # only read by the check
        }
    }
    assert "notifications.W006" not in [message.id for message in run_checks()]
