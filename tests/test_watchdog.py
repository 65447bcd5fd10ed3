"""The channel-layer watchdog: a gap in a shard's heartbeats, or a heartbeat that cannot be sent,
means pushes to the groups on that shard may be lost: their sockets are closed with 4013."""

import asyncio
import json

import pytest
from channels.layers import get_channel_layer

from notifications.realtime import broker, watchdog
from notifications.realtime.node import node
from tests.test_consumers import open_socket, send, signed_in
from tests.test_faults import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fast(settings, monkeypatch):
    monkeypatch.setattr(watchdog, "LAYER_CHECK_SECONDS", 0.05)
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


async def closed_with(communicator, seconds: float = 5) -> int | None:
    while True:
        output = await communicator.receive_output(timeout=seconds)
        if output["type"] == "websocket.close":
            return output.get("code")


async def still_open(communicator) -> bool:
    await communicator.send_json_to({"type": "ping", "id": "alive?"})
    while True:  # past any notification (gap detection may send this socket recent ones)
        output = await communicator.receive_output(timeout=3)
        if output["type"] != "websocket.send":
            return False
        message = json.loads(output["text"])
        if message["type"] != "notification":
            return message == {"type": "pong", "id": "alive?"}


async def test_heartbeats_that_arrive_lose_nothing(fast, alice):
    communicator, _ = await signed_in(alice)
    await asyncio.sleep(0.5)
    watchdog = node().watchdog
    assert watchdog.sent[0] > 3 and watchdog.expected[0] > 3
    assert await still_open(communicator)
    await communicator.disconnect()


async def test_a_gap_in_the_heartbeats_closes_the_sockets_4013(fast, alice):
    communicator, _ = await signed_in(alice)
    await asyncio.sleep(0.2)
    watchdog = node().watchdog
    # As if two heartbeats went missing.
    await broker.send_heartbeat(watchdog.groups[0], "unused", 0, watchdog.sent[0] + 3)
    assert await closed_with(communicator) == 4013
    assert node().sockets == {}


async def test_a_heartbeat_that_cannot_be_sent_closes_the_sockets_4013(fast, alice, settings):
    communicator, _ = await signed_in(alice)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0"}]},  # nothing listens
        }
    }
    node().watchdog.task.cancel()  # a new run, on the unreachable layer
    await asyncio.sleep(0)
    node().watchdog.ensure_running()
    assert await closed_with(communicator) == 4013


async def restart_watchdog() -> None:
    node().watchdog.task.cancel()
    await asyncio.sleep(0)
    node().watchdog.ensure_running()


async def heard_again() -> bool:
    counted = node().watchdog.expected[0]
    await asyncio.sleep(0.3)
    return node().watchdog.expected[0] > counted


async def test_a_layer_that_gives_no_channel_to_watch_with_closes_the_sockets_4013(
    fast, alice, monkeypatch
):
    communicator, _ = await signed_in(alice)
    failures = iter([OSError("layer down")])
    real_new_channel = broker.new_channel

    async def new_channel_that_fails_once():
        for failure in failures:
            raise failure
        return await real_new_channel()

    monkeypatch.setattr(broker, "new_channel", new_channel_that_fails_once)
    await restart_watchdog()
    assert await closed_with(communicator) == 4013


async def test_heartbeats_that_stop_arriving_close_the_sockets_4013(fast, alice, monkeypatch):
    """A subscription that died without an error: heartbeats are sent and never arrive."""
    communicator, _ = await signed_in(alice)
    await asyncio.sleep(0.2)

    async def lost(*args):
        pass

    monkeypatch.setattr(broker, "send_heartbeat", lost)
    await asyncio.sleep(0.2)  # heartbeats sent before are heard; then nothing more arrives
    node().watchdog.last_beat[0] -= 60  # as if a minute had passed in silence
    assert await closed_with(communicator) == 4013


async def test_a_layer_that_forgot_the_groups_members_closes_the_sockets_4013(fast, alice):
    """A control message (which the core layer sends straight to the watchdog's channel, right
    after the group heartbeat) arrived ahead of its heartbeat: the layer lost the group's
    members. (Here it travels through the group: the watchdog reads it the same way.)"""
    communicator, _ = await signed_in(alice)
    await asyncio.sleep(0.2)
    watchdog = node().watchdog
    control = {"type": broker.HEARTBEAT, "shard": 0, "seq": watchdog.expected[0] + 1}
    await get_channel_layer().group_send(watchdog.groups[0], {**control, "control": True})
    assert await closed_with(communicator) == 4013


async def test_heartbeats_of_no_known_shard_or_late_controls_change_nothing(fast, alice):
    communicator, _ = await signed_in(alice)
    await asyncio.sleep(0.2)
    watchdog = node().watchdog
    layer = get_channel_layer()
    for shard in (-1, 1, 10**30):
        await layer.group_send(watchdog.groups[0], {"type": broker.HEARTBEAT, "shard": shard})
    late = {"type": broker.HEARTBEAT, "shard": 0, "seq": 1, "control": True}  # its beat came
    await layer.group_send(watchdog.groups[0], late)
    assert await heard_again()
    assert await still_open(communicator)
    await communicator.disconnect()


async def test_a_receive_that_fails_is_tried_again(fast, alice, monkeypatch):
    communicator, _ = await signed_in(alice)
    real_receive = broker.receive
    down = True
    failed = 0

    async def receive_while_down(channel):
        nonlocal failed
        if down:
            failed += 1
            raise OSError("layer down")
        return await real_receive(channel)

    monkeypatch.setattr(broker, "receive", receive_while_down)
    await restart_watchdog()
    await asyncio.sleep(0.2)
    down = False
    assert failed >= 2
    assert await heard_again()
    await communicator.disconnect()


def test_there_is_one_heartbeat_group_per_shard_and_it_lives_there(settings):
    for backend in (
        "channels_redis.pubsub.RedisPubSubChannelLayer",
        "channels_redis.core.RedisChannelLayer",
    ):
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": backend,
                "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0" for port in (1, 2, 3)]},
            }
        }
        groups = broker.heartbeat_groups("token")
        assert len(groups) == 3
        assert [broker.shard_of(group) for group in groups] == [0, 1, 2]


@pytest.fixture(params=["pubsub", "core"])
def two_redis_servers(request, tmp_path, settings, monkeypatch):
    servers = [RedisServer(tmp_path / name) for name in ("a", "b")]
    for server in servers:
        server.directory.mkdir()
        server.start()
    hosts = [server.url for server in servers]
    if request.param == "pubsub":
        layer = {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": hosts},
        }
    else:
        layer = {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": url, "socket_timeout": None} for url in hosts]},
        }
    settings.CHANNEL_LAYERS = {"default": layer}
    # A push sent on a connection the restart broke fails: gap detection delivers it instead.
    monkeypatch.setattr(watchdog, "LAYER_CHECK_SECONDS", 0.1)
    settings.NOTIFICATIONS = {"GAP_CHECK_SECONDS": 1}
    yield servers
    for server in servers:
        server.stop()


async def pushed_after_reconnecting(user, attempts: int = 8) -> bool:
    """What a client does after a 4013: reconnect (with a pause), and hear of new sends, pushed or
    recovered by gap detection. Heartbeats lost while a server was down are noticed over the
    next few periods, which may close a socket that reconnected meanwhile once more (before or
    after its hello)."""
    for attempt in range(attempts):
        await asyncio.sleep(0.5)
        communicator, connected, _ = await open_socket(user)
        assert connected
        greeting = await communicator.receive_output(timeout=5)
        if greeting["type"] == "websocket.close":  # closed before its hello: try again
            assert greeting == {"type": "websocket.close", "code": 4013}
            continue
        assert json.loads(greeting["text"])["type"] == "hello"
        await asyncio.sleep(0.3)
        await send(user, f"after the restart ({attempt})")
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.send":
            await communicator.disconnect()
            return json.loads(output["text"])["type"] == "notification"
        assert output == {"type": "websocket.close", "code": 4013}
    return False


async def test_restarting_either_of_two_redis_servers_closes_the_sockets_it_carried(
    two_redis_servers, make_user, settings
):
    """Each user's group lives on one of the two servers. One that goes down loses what it
    would carry meanwhile: its sockets are told (4013) and, once it is back, reconnecting, hear of
    new sends again. With the pub/sub layer the other server's sockets stay open, unless the
    restarted one carries the group of all processes; with the core layer every message of a
    process passes through one server's list, and restarting that one tells every socket.

    The server stays down until the sockets are told: redis-py 8.2 retries a command through a
    restart of a few hundred milliseconds and resubscribes, and then nothing is lost and nothing
    needs telling (the heartbeats all arrive, late, in order)."""
    pubsub = "pubsub" in settings.CHANNEL_LAYERS["default"]["BACKEND"]
    users = {}
    for _ in range(40):
        user = await asyncio.to_thread(make_user)
        users.setdefault(broker.shard_of(broker.user_group(user.pk)), user)
        if len(users) == 2:
            break
    for restarted in (0, 1):
        sockets = {shard: (await signed_in(user))[0] for shard, user in users.items()}
        await asyncio.sleep(0.5)  # the watchdog is beating on both shards
        two_redis_servers[restarted].stop()
        assert await closed_with(sockets[restarted], 15) == 4013
        two_redis_servers[restarted].start()
        other = 1 - restarted
        # Sends to many users pass through the group of all processes: losing its server tells
        # every socket.
        if pubsub and broker.shard_of(broker.NODES_GROUP) != restarted:
            assert await still_open(sockets[other])
        await sockets[other].disconnect()
        assert await pushed_after_reconnecting(users[restarted])
        assert await pushed_after_reconnecting(users[other])
