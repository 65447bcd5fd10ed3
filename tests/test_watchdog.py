"""The channel-layer watchdog: a gap in its heartbeats or a failed send means pushes may be lost."""

import asyncio

import pytest

from notifications import push
from notifications.watchdog import Watchdog


@pytest.fixture
def fast(settings):
    settings.NOTIFICATIONS = {"LAYER_CHECK_SECONDS": 0.05}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


async def wait_for(event: asyncio.Event, seconds: float = 2) -> bool:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def test_heartbeats_that_arrive_lose_nothing(fast):
    watchdog, lost = Watchdog(), asyncio.Event()
    watchdog.watch("socket", lost.set)
    assert not await wait_for(lost, 0.5)
    assert watchdog.sent > 3 and watchdog.expected > 3
    watchdog.unwatch("socket")


async def test_a_gap_in_the_heartbeats_is_a_loss(fast):
    watchdog, lost = Watchdog(), asyncio.Event()
    watchdog.watch("socket", lost.set)
    await asyncio.sleep(0.2)
    await push.send_heartbeat(watchdog.group, watchdog.sent + 3)  # as if two went missing
    assert await wait_for(lost)
    assert watchdog.watched == {}  # everyone was told once


async def test_a_heartbeat_that_cannot_be_sent_is_a_loss(fast, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0"}]},  # nothing listens
        }
    }
    watchdog, lost = Watchdog(), asyncio.Event()
    watchdog.watch("socket", lost.set)
    assert await wait_for(lost)
