"""push.send(): what the installed channel layer receives, from sync code, through the push loop."""

import asyncio
import json
import logging
import threading

import pytest
import redis
import redis.asyncio.connection
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from notifications.realtime import broker
from tests.redis_keys import PREFIX


def pubsub_layer(url: str, hosts: int = 1, **config) -> dict:
    # Pub/sub channels ignore the database number: two "hosts" on one server still exercise how
    # messages are spread over hosts (each host is its own connection and pipeline).
    # The run's prefix on the channels: another run on the same Redis hears none of these.
    hosts_ = [{"address": f"{url.rsplit('/', 1)[0]}/{n}"} for n in range(hosts)]
    return {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": hosts_, "prefix": PREFIX} | config,
    }


async def subscribed(groups: list[str]) -> tuple[object, str]:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, channel)
    return layer, channel


@pytest.mark.parametrize(
    "config",
    [{}, {"prefix": f"{PREFIX}-custom"}, {"symmetric_encryption_keys": ["a secret"]}, {"hosts": 2}],
    ids=["default", "prefix", "encrypted", "two-hosts"],
)
async def test_pipelined_publishes_reach_the_layers_subscribers(config, redis_url, settings):
    hosts = config.pop("hosts", 1)
    settings.CHANNEL_LAYERS = {"default": pubsub_layer(redis_url, hosts, **config)}
    groups = [broker.user_group(n) for n in range(900_001, 900_021)]
    layer, channel = await subscribed(groups)
    messages = [(group, broker.changed_event([n], "read", n, 0)) for n, group in enumerate(groups)]

    await sync_to_async(broker.send)(messages)

    received = [await asyncio.wait_for(layer.receive(channel), 3) for _ in groups]
    frames = sorted((json.loads(event["frame"]) for event in received), key=lambda f: f["ids"])
    assert [frame["ids"] for frame in frames] == [[n] for n in range(len(groups))]
    assert all(event["type"] == broker.CHANGED for event in received)


def test_sends_from_many_threads_reuse_the_push_loops_connections(redis_url, settings, monkeypatch):
    settings.CHANNEL_LAYERS = {"default": pubsub_layer(redis_url, prefix=f"{PREFIX}-reuse")}
    connects = []
    connect = redis.asyncio.connection.AbstractConnection.connect

    async def counted(self):
        connects.append(self)
        await connect(self)

    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "connect", counted)
    errors = []

    def sender(n):
        try:
            for _ in range(5):
                broker.send([(broker.user_group(n), broker.revoke_event())])
        except Exception as error:  # pragma: no cover - the assertion reports it
            errors.append(error)

    def round_of_sends():
        threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return len({id(connection) for connection in connects})

    round_of_sends()  # opens what the push loop's pool needs for 8 concurrent senders
    opened = round_of_sends()  # and reuses them: a second round adds none past that
    assert errors == []
    # A loop per send (async_to_sync from a thread) used to open a connection per send: 80 here.
    # However the rounds interleave, 8 concurrent senders never need more than 8.
    assert opened <= 8


class StuckLayer:
    """A channel layer whose sends never finish (a Redis that accepts and never answers)."""

    extensions = ["groups"]

    def __init__(self, **kwargs):
        pass

    async def group_send(self, group, message):
        await asyncio.sleep(3600)


def test_a_stuck_layer_costs_the_sender_a_bounded_wait_and_no_exception(settings, caplog):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.test_push.StuckLayer"}}
    settings.NOTIFICATIONS = {"PUSH_TIMEOUT_SECONDS": 0.2}
    with caplog.at_level(logging.WARNING, logger="notifications.push"):
        broker.send([(broker.user_group(1), broker.revoke_event())])
    assert "gave up waiting for: 1 push." in caplog.text


def test_a_layer_that_refuses_connections_is_logged_not_raised(settings, caplog):
    settings.CHANNEL_LAYERS = {"default": pubsub_layer("redis://127.0.0.1:1/0")}
    with caplog.at_level(logging.WARNING, logger="notifications.push"):
        broker.send([(broker.user_group(1), broker.revoke_event())] * 3)
    assert "3 of 3 pushes failed" in caplog.text
