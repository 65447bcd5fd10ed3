"""A large send pushes only to users with an open socket, and bumps one shared version."""

import time
import uuid

import pytest
import redis
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from notifications import services, versions
from notifications.realtime import broker
from tests.redis_keys import redis_cache
from tests.test_consumers import signed_in

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shared_registry(request, settings):
    """The registry as in production: sockets of every process in Redis (under a key prefix of
    this test's own, so that it starts empty)."""
    url = request.getfixturevalue("redis_url")
    settings.CACHES = {"default": redis_cache(url, f"fanout-{uuid.uuid4().hex[:8]}")}
    settled(settings)


def settled(settings) -> None:
    """Give the registry an epoch older than the grace a wiped registry gets (during which it
    does not know who is online), as one in service for a while has."""
    from notifications.realtime.presence import registry

    current = registry()
    client = redis.Redis.from_url(current.url)
    client.zadd(current.online_key, {f"epoch:{time.time() - 3600}": float("inf")})


def make_users(n):
    user_model = get_user_model()
    return user_model.objects.bulk_create(user_model(username=f"fan{i}") for i in range(n))


@pytest.fixture
def pushed(monkeypatch):
    """The groups every push went to."""
    groups = []
    send = broker.asend

    async def spy(messages):
        groups.extend(group for group, _ in messages)
        await send(messages)

    monkeypatch.setattr(broker, "asend", spy)
    return groups


@pytest.mark.parametrize("where", ["this process", "redis"])
async def test_only_users_with_a_socket_are_pushed_to(where, request, alice, settings, pushed):
    if where == "redis":
        request.getfixturevalue("shared_registry")
    else:  # one process: the in-memory layer, and this process's registry knows every socket
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    others = await database_sync_to_async(make_users)(50)
    communicator, _ = await signed_in(alice)
    batch = await database_sync_to_async(services.notify)([alice, *others], "To 51")
    message = await communicator.receive_json_from(timeout=3)
    [alices] = [n.pk for n in batch if n.recipient_id == alice.pk]
    assert message["notification"]["id"] == alices
    assert pushed == [broker.user_group(alice.pk)]  # alice's socket only
    await communicator.disconnect()


async def test_who_is_online_is_unknown_when_sockets_may_be_elsewhere(alice, bob, settings):
    # A Redis channel layer with a process-local registry: other processes' sockets are unknown,
    # so everyone is pushed to.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0"}]},  # never connected to
        }
    }
    assert await database_sync_to_async(broker.online)([alice.pk, bob.pk]) is None


def test_a_large_send_bumps_the_shared_version(alice, bob, make_user, monkeypatch):
    monkeypatch.setattr(versions, "SHARED_BUMP_ABOVE", 2)
    carol = make_user("carol")
    clients = {}
    for user in (alice, bob, carol):
        clients[user.pk] = APIClient()
        clients[user.pk].force_authenticate(user)
    etags = {pk: c.get("/api/notifications/unread-count/")["ETag"] for pk, c in clients.items()}
    services.notify([alice, bob], "small: per-user tokens")
    after_small = {
        pk: c.get("/api/notifications/unread-count/")["ETag"] for pk, c in clients.items()
    }
    assert after_small[alice.pk] != etags[alice.pk] and after_small[carol.pk] == etags[carol.pk]
    services.notify([alice, bob, carol], "large: the shared token")
    after_large = {
        pk: c.get("/api/notifications/unread-count/")["ETag"] for pk, c in clients.items()
    }
    assert all(after_large[pk] != after_small[pk] for pk in clients)


@pytest.mark.parametrize("look_up_each_up_to", [500, 0], ids=["member by member", "whole set"])
async def test_who_is_online_in_redis(look_up_each_up_to, shared_registry, monkeypatch):
    from notifications.realtime import presence as registry_module

    monkeypatch.setattr(registry_module, "_LOOK_UP_EACH_UP_TO", look_up_each_up_to)
    registry = registry_module.registry()
    for user_id in (1, 2, 3):
        assert await registry.claim(user_id, f"channel-{user_id}")
    # user 3's process died long ago: its entry is stale
    stale = registry_module.time.time() - registry_module.SOCKET_STALE_SECONDS * 2
    await registry._client().zadd(registry.online_key, {"3": stale})

    online = database_sync_to_async(broker.online)
    assert await online([1, 2, 3, 4, 2]) == {1, 2}
    assert await online([4]) == set()
    assert await online([]) == set()


async def test_projects_sharing_a_redis_keep_their_sockets_apart(shared_registry, settings):
    from notifications.realtime.presence import registry

    cache = settings.CACHES["default"]

    def project(name):
        # Two projects' prefixes, both within this test's own (tests/redis_keys.py).
        settings.CACHES = {"default": {**cache, "KEY_PREFIX": f"{cache['KEY_PREFIX']}:{name}"}}
        settled(settings)
        return registry()

    one = project("one")
    assert await one.claim(1, "channel-of-one")
    await one.count("connects")
    two = project("two")
    assert await database_sync_to_async(two.online)([1]) == set()
    assert (await database_sync_to_async(two.snapshot)())["open_sockets"] == 0
    assert (await database_sync_to_async(two.snapshot)())["connects"] == 0
    assert await database_sync_to_async(one.online)([1]) == {1}
    assert (await database_sync_to_async(one.snapshot)())["open_sockets"] == 1
