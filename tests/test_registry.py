"""The socket registry's answers when Redis cannot answer (never an exception where a socket or a
send would pay for it: "cannot say" instead), and who is online for an audience of any size."""

import asyncio
import time
import uuid

import pytest
import redis

from notifications.realtime import presence
from notifications.realtime.presence import (
    EPOCH_GRACE_SECONDS,
    LocalRegistry,
    RedisRegistry,
    _epoch_age,
)
from tests.redis_keys import key_prefix

UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens there


@pytest.fixture
def fresh(redis_url):
    """A registry in the run's Redis under a namespace of this test's own."""
    current = RedisRegistry(redis_url, key_prefix(f"registry-{uuid.uuid4().hex[:8]}"))
    yield current
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{current.stats_key.rpartition(':')[0]}:*"):
        client.delete(key)


async def test_an_unreachable_registry_says_it_cannot_say_and_raises_nothing(caplog):
    unreachable = RedisRegistry(UNREACHABLE, "nowhere")
    assert await unreachable.claim(1, "channel", "node") is None
    await unreachable.release(1, "channel", "node")
    await unreachable.refresh([(1, "channel")], "node")
    assert await unreachable.beat("node") is None
    assert await unreachable.revoked_at(1) is None
    assert unreachable.online([1, 2]) is None
    assert unreachable.online(list(range(1000))) is None
    await unreachable.count("pushes")
    unreachable.count_now("pushes")
    assert caplog.text.count("socket registry unreachable") >= 7
    assert caplog.text.count("counters unreachable") == 2


def test_what_only_a_caller_can_decide_about_raises():
    """A revocation note (its caller bounds the wait and logs) and the stats command's
    snapshot (which says that Redis cannot be reached) raise."""
    unreachable = RedisRegistry(UNREACHABLE, "nowhere")
    with pytest.raises(redis.ConnectionError):
        unreachable.note_revocation(1)
    with pytest.raises(redis.ConnectionError):
        unreachable.snapshot()


def age(current: RedisRegistry, seconds: float) -> None:
    """Make the registry's epoch ``seconds`` old."""
    client = current._sync()
    for member in client.zrangebyscore(current.online_key, "+inf", "+inf"):
        client.zrem(current.online_key, member)
    client.zadd(current.online_key, {f"epoch:{time.time() - seconds}": float("inf")})


@pytest.mark.parametrize("audience", [10, 2000], ids=["each looked up", "the online set read"])
async def test_nobody_is_known_offline_until_the_registry_has_been_up_for_the_grace(
    fresh, audience
):
    users = list(range(1, audience + 1))
    assert fresh.online(users) is None  # no epoch yet: this read starts one
    assert fresh.online(users) is None  # a new epoch: nodes may not have claimed yet
    assert await fresh.claim(3, "a-channel", "a-node")
    age(fresh, EPOCH_GRACE_SECONDS + 1)
    assert fresh.online(users) == {3}
    assert fresh.online([*users, 3, 3]) == {3}  # repeated ids


def test_an_epoch_that_cannot_be_read_counts_as_new():
    assert _epoch_age(b"epoch:not-a-time") == 0.0
    assert _epoch_age("epoch:\x00") == 0.0
    assert 9 < _epoch_age(f"epoch:{time.time() - 10}") < 11


async def test_the_per_process_registry_limits_and_forgets_stale_sockets(settings, monkeypatch):
    settings.NOTIFICATIONS = {"MAX_SOCKETS_PER_USER": 2}
    monkeypatch.setattr(presence, "SOCKET_STALE_SECONDS", 0.2)
    local = LocalRegistry()
    assert await local.claim(1, "a") and await local.claim(1, "b")
    assert not await local.claim(1, "c")
    assert await local.claim(1, "a")  # claiming again is a refresh, not a new place
    await local.release(1, "b")
    assert await local.claim(1, "c")
    await asyncio.sleep(0.25)
    await local.refresh([(1, "c")])  # only "c" is said to be alive
    assert await local.claim(1, "d")  # "a" went stale
    assert local.snapshot()["open_sockets"] == 2
    assert await local.beat("node") == "local"
    local.note_revocation(1)
    assert await local.revoked_at(1) is not None and await local.revoked_at(2) is None
