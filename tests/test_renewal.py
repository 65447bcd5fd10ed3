"""Group memberships that a layer forgets (realtime/renewal.py): channels_redis' core layer and
the in-memory layer drop a channel from a group ``group_expiry`` after adding it, and a restarted
Redis forgets them all. The process holds its users' groups and the group of all processes for as
long as sockets are open, so it adds them again: a socket open longer than that still gets its
pushes, and not through gap detection (which would bring them late, marked ``recovered``)."""

import asyncio

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model

from notifications.realtime import broker, watchdog
from notifications.realtime.node import Node, node
from tests.redis_keys import PREFIX, layer_config
from tests.test_consumers import send, signed_in
from tests.test_watchdog import still_open

pytestmark = pytest.mark.django_db(transaction=True)

CORE = "channels_redis.core.RedisChannelLayer"


def core_layer(url: str, prefix: str = PREFIX, **config) -> dict:
    layer = layer_config(CORE, url, prefix=prefix, **config)
    layer["CONFIG"]["hosts"] = [{"address": url, "socket_timeout": None}]
    return layer


EXPIRING = {
    "memory": lambda url: {
        "BACKEND": "channels.layers.InMemoryChannelLayer",
        "CONFIG": {"group_expiry": 1},
    },
    "redis-core": lambda url: core_layer(url, group_expiry=1),
}


@pytest.fixture
def pushes_only(settings):
    """Gap detection would bring a lost push within the test too: this tells them apart."""
    settings.NOTIFICATIONS = {"GAP_CHECK_SECONDS": 600}


@pytest.fixture(params=list(EXPIRING))
def expiring_layer(request, settings, pushes_only):
    url = request.getfixturevalue("redis_url") if request.param.startswith("redis") else ""
    settings.CHANNEL_LAYERS = {"default": EXPIRING[request.param](url)}


async def pushed(communicator, title: str) -> bool:
    """Whether a push (not a recovery) of ``title`` reaches the socket within 3 s."""
    while True:
        message = await communicator.receive_json_from(timeout=3)
        if message["type"] == "notification":
            return message["notification"]["title"] == title and "recovered" not in message


async def many_users_with(user, make_user) -> list:
    others = await sync_to_async(
        lambda: [make_user() for _ in range(broker.FAN_OUT_FROM_USERS - 1)]
    )()
    return [user, *others]


def audience(users):
    return get_user_model().objects.filter(pk__in=[user.pk for user in users])


async def test_a_socket_open_longer_than_group_expiry_still_gets_its_pushes(
    expiring_layer, alice, make_user
):
    users = await many_users_with(alice, make_user)
    communicator, _ = await signed_in(alice)
    await asyncio.sleep(2.5)  # the first memberships are more than a lifetime old
    await send(alice, "to alice alone")
    assert await pushed(communicator, "to alice alone")
    await send(audience(users), "to many")  # through the group of all processes
    assert await pushed(communicator, "to many")
    # The watchdog's heartbeat groups were renewed too: it saw no lapse and closed nothing.
    assert await still_open(communicator)
    await communicator.disconnect()


async def test_a_new_socket_puts_the_process_back_in_a_group_the_layer_forgot(
    channel_layer, pushes_only, alice
):
    first, _ = await signed_in(alice)
    # As a restarted Redis would, while the user's first socket stays open.
    await get_channel_layer().group_discard(broker.user_group(alice.pk), node().hub.channel)
    second, _ = await signed_in(alice)
    await send(alice, "after the lapse")
    assert await pushed(first, "after the lapse")
    assert await pushed(second, "after the lapse")
    await first.disconnect()
    await second.disconnect()


async def test_memberships_the_layer_forgot_are_renewed_as_soon_as_the_watchdog_notices(
    redis_url, settings, pushes_only, monkeypatch, alice, make_user
):
    """The sockets of the host that forgot are closed (4013) and resume; here they are kept
    open, as a socket that opens while the others close would be, to see that the process is in
    its groups again without waiting for the next renewal (a quarter of a day)."""
    prefix = f"{PREFIX}:renewal"
    settings.CHANNEL_LAYERS = {"default": core_layer(redis_url, prefix=prefix)}
    monkeypatch.setattr(watchdog, "LAYER_CHECK_SECONDS", 0.1)
    losses: list[str] = []
    monkeypatch.setattr(Node, "lose_shard", lambda self, shard, why: losses.append(why))
    users = await many_users_with(alice, make_user)
    communicator, _ = await signed_in(alice)
    await asyncio.sleep(0.5)

    client = redis.Redis.from_url(redis_url)
    forgotten = list(client.scan_iter(match=f"{prefix}:group:*"))
    assert len(forgotten) >= 3  # alice's group, the group of all processes, a heartbeat group
    client.delete(*forgotten)
    client.close()
    for _ in range(50):
        if any("forgot" in why for why in losses):
            break
        await asyncio.sleep(0.1)
    assert any("forgot" in why for why in losses)
    await asyncio.sleep(0.3)

    await send(alice, "to alice alone")
    assert await pushed(communicator, "to alice alone")
    await send(audience(users), "to many")
    assert await pushed(communicator, "to many")
    await communicator.disconnect()


def test_only_layers_that_forget_memberships_are_renewed(settings):
    url = "redis://127.0.0.1:6379/0"  # never connected to
    settings.CHANNEL_LAYERS = {
        "default": layer_config("channels_redis.pubsub.RedisPubSubChannelLayer", url)
    }
    assert broker.membership_lifetime() is None
    settings.CHANNEL_LAYERS = {"default": core_layer(url, group_expiry=3600)}
    assert broker.membership_lifetime() == 3600
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert broker.membership_lifetime() == 86400
    settings.CHANNEL_LAYERS = {"default": core_layer(url, group_expiry=0)}
    assert broker.membership_lifetime() is None  # nothing a renewal could keep


async def test_a_renewal_stops_at_the_first_add_the_layer_refuses(
    expiring_layer, make_user, monkeypatch
):
    users = await sync_to_async(lambda: [make_user() for _ in range(3)])()
    sockets = [(await signed_in(user))[0] for user in users]
    asked = []

    async def refused(user_id, channel_name, attempts=3):
        asked.append((user_id, attempts))
        return False

    monkeypatch.setattr(broker, "join", refused)
    await node().hub.renew()
    assert len(asked) == 1 and asked[0][1] == 1  # one user, one attempt: the next renewal retries
    assert node().hub.joined == {user.pk for user in users}  # still members until it lapses
    for communicator in sockets:
        await communicator.disconnect()


async def test_renewal_stops_with_the_last_socket(expiring_layer, alice):
    communicator, _ = await signed_in(alice)
    renewal = node().renewal.task
    assert renewal is not None and not renewal.done()
    await communicator.disconnect()
    await asyncio.wait_for(renewal, timeout=3)
    assert node().hub.channel is None
