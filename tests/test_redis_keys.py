"""The suite keeps to its own keys in Redis (tests/redis_keys.py): everything it writes, in this
process and in the server processes it starts, is under the run's prefix, and what it removes at
the end is exactly that. A Redis shared with anyone else keeps their keys."""

import time
from pathlib import Path

import pytest
import redis
from asgiref.sync import sync_to_async
from django.test import Client

from notifications import services
from notifications.realtime.presence import registry
from tests.redis_keys import PREFIX, delete_keys, layer_config, redis_cache
from tests.servers import DaphneServer
from tests.sockets import open_socket, receive, session_of
from tests.test_faults import own_servers, private_redis, use_redis  # noqa: F401 (the fixture)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_sync_thread_connection"),
]

FOREIGN = {"someone-else:session:1": "theirs", "asgi:group:theirs": "theirs", "plain": "theirs"}


@pytest.fixture
def daphne_for(tmp_path):
    """The keys are the app's, whichever server runs it: daphne is enough."""
    with own_servers(DaphneServer, tmp_path) as start:
        yield start


async def test_every_key_the_suite_writes_carries_its_prefix_and_only_those_are_removed(
    request, settings, alice
):
    """On a Redis of this test's own, so that every key in it can be accounted for."""
    own_redis = request.getfixturevalue("private_redis")
    start_daphne = request.getfixturevalue("daphne_for")
    client = redis.Redis.from_url(own_redis.url)
    client.mset(FOREIGN)
    use_redis(settings, own_redis.url)
    server = await sync_to_async(start_daphne)({"REDIS_URL": own_redis.url})
    session = await session_of(alice)
    async with open_socket(server, session) as ws:
        assert (await receive(ws))["type"] == "hello"  # the registry claims a place
        # The push travels on a pub/sub channel named after the prefix.
        channels = client.pubsub_channels()
        assert channels and all(name.startswith(PREFIX.encode()) for name in channels), channels
        await sync_to_async(services.notify)(alice, "through the shared Redis")
        assert (await receive(ws))["type"] == "notification"
        api = Client()
        api.cookies["sessionid"] = session
        assert (await sync_to_async(api.post)("/api/notifications/ws-ticket/")).status_code == 200
    # A core layer (lists and group sets) and a cache of a test's own make keys too.
    settings.CHANNEL_LAYERS = {
        "default": layer_config("channels_redis.core.RedisChannelLayer", own_redis.url)
    }
    settings.CACHES = {"default": redis_cache(own_redis.url, "a-test-of-its-own")}
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    await layer.group_add("g", "specific.x!y")
    await layer.send("specific.x!y", {"type": "t"})
    # A registry in service (its epoch old): it knows nobody is online, so the send pushes
    # nothing through the push loop's own connections (close_pools() below closes this loop's).
    current = registry()
    client.zadd(current.online_key, {f"epoch:{time.time() - 3600}": float("inf")})
    await sync_to_async(services.notify)(alice, "a version bump through the test's cache")
    await layer.close_pools()

    ours = {key for key in client.keys("*") if key.decode() not in FOREIGN}
    assert len(ours) >= 5  # sessions, tickets, versions, the registry, the layer's keys
    assert all(key.startswith(PREFIX.encode()) for key in ours), sorted(ours)
    assert delete_keys(own_redis.url) == len(ours)
    assert {key.decode() for key in client.keys("*")} == set(FOREIGN)
    client.close()


def test_no_test_flushes_a_redis_database_or_switches_to_another():
    tests = Path(__file__).parent
    for path in [*tests.glob("*.py"), *tests.glob("browser/*.py")]:
        if path.name == Path(__file__).name:
            continue
        text = path.read_text().lower()
        for word in ("flushdb", "flushall", '[0] + "/'):
            assert word not in text, f"{path.name} uses {word}"
