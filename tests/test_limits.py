"""Per-user socket limit, idle timeout and counters, in one process and shared through Redis."""

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from notifications.realtime import presence
from notifications.realtime.presence import RedisRegistry, registry
from tests.redis_keys import redis_cache
from tests.test_consumers import open_socket, signed_in

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=["local", "redis"])
def registry_backend(request, settings):
    """The registry in this process, or in Redis (through the app's cache, under a key prefix of
    this test's own, so that it starts empty)."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        settings.CACHES = {"default": redis_cache(url, f"limits-{uuid.uuid4().hex[:8]}")}
    else:  # whatever the run's cache (Redis when REDIS_URL is set)
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    return request.param


async def test_sockets_per_user_are_limited(registry_backend, alice, bob, settings):
    settings.NOTIFICATIONS = {"MAX_SOCKETS_PER_USER": 2}
    first, _ = await signed_in(alice)
    second, _ = await signed_in(alice)
    third, connected, _ = await open_socket(alice)
    assert connected
    assert await third.receive_output(timeout=3) == {"type": "websocket.close", "code": 4409}
    bobs, _ = await signed_in(bob)  # the limit is per user
    await first.disconnect()
    again, _ = await signed_in(alice)  # a place was freed
    for communicator in (second, bobs, again):
        await communicator.disconnect()


async def test_no_limit_when_zero(alice, settings):
    settings.NOTIFICATIONS = {"MAX_SOCKETS_PER_USER": 0}
    sockets = [(await signed_in(alice))[0] for _ in range(5)]
    for communicator in sockets:
        await communicator.disconnect()


async def test_sockets_of_a_dead_process_fall_out(registry_backend, alice, settings, monkeypatch):
    settings.NOTIFICATIONS = {"MAX_SOCKETS_PER_USER": 1}
    monkeypatch.setattr(presence, "SOCKET_STALE_SECONDS", 1)
    # A socket whose process died: registered, never released, never refreshed.
    assert await registry().claim(alice.pk, "gone.process!channel")
    blocked, _, _ = await open_socket(alice)
    assert (await blocked.receive_output(timeout=3))["code"] == 4409
    await asyncio.sleep(1.2)
    communicator, _ = await signed_in(alice)
    await communicator.disconnect()


async def test_open_sockets_stay_claimed_past_the_stale_time(
    registry_backend, alice, settings, monkeypatch
):
    settings.NOTIFICATIONS = {"MAX_SOCKETS_PER_USER": 1}
    monkeypatch.setattr(presence, "SOCKET_STALE_SECONDS", 0.6)
    first, _ = await signed_in(alice)
    await asyncio.sleep(1.5)  # past the stale time: only the sweeps keep it claimed
    second, _, _ = await open_socket(alice)
    assert (await second.receive_output(timeout=3))["code"] == 4409
    await first.disconnect()


async def test_one_sweep_refreshes_every_socket_at_once(alice, bob, monkeypatch):
    from notifications.realtime.node import node

    monkeypatch.setattr(presence, "SOCKET_STALE_SECONDS", 3600)  # no sweep of its own here
    refreshed = []

    async def refresh(self, sockets, node_id):
        refreshed.append(sorted(user for user, _ in sockets))

    monkeypatch.setattr(type(registry()), "refresh", refresh)
    sockets = [(await signed_in(user))[0] for user in (alice, alice, bob)]
    await node().sweep.tick()
    assert refreshed == [sorted([alice.pk, alice.pk, bob.pk])]
    for communicator in sockets:
        await communicator.disconnect()
    await node().sweep.tick()
    assert len(refreshed) == 1  # nothing left to refresh


async def test_idle_sockets_are_closed(alice, settings):
    settings.NOTIFICATIONS = {"IDLE_TIMEOUT_SECONDS": 0.4}
    communicator, _ = await signed_in(alice)
    assert await communicator.receive_output(timeout=3) == {"type": "websocket.close", "code": 4408}


async def test_a_pinging_client_is_not_idle(alice, settings):
    settings.NOTIFICATIONS = {"IDLE_TIMEOUT_SECONDS": 0.6}
    communicator, _ = await signed_in(alice)
    for _ in range(4):
        await asyncio.sleep(0.25)
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_counters(registry_backend, alice, settings):
    before = await sync_to_async(registry().snapshot)()
    communicator, hello = await signed_in(alice)
    await communicator.send_json_to({"type": "resume", "after": 0})
    await communicator.receive_json_from(timeout=3)
    during = await sync_to_async(registry().snapshot)()
    assert during["connects"] == before["connects"] + 1
    assert during["resumes"] == before["resumes"] + 1
    assert during["open_sockets"] == before["open_sockets"] + 1
    anonymous, _, _ = await open_socket(None)
    await anonymous.receive_output(timeout=3)
    await communicator.disconnect()
    after = await sync_to_async(registry().snapshot)()
    assert after["auth_failures"] == before["auth_failures"] + 1
    assert after["open_sockets"] == before["open_sockets"]
    if registry_backend == "redis":
        assert isinstance(registry(), RedisRegistry)


def test_stats_command(registry_backend, capsys, settings):
    if registry_backend == "local":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    call_command("notifications_stats", "--json")
    assert '"open_sockets"' in capsys.readouterr().out
    call_command("notifications_stats")
    output = capsys.readouterr()
    assert "connects" in output.out
    assert ("this process" in output.err) == (registry_backend == "local")


async def test_an_unreachable_registry_closes_4013_so_the_client_retries(alice, settings):
    # Registered nowhere, the socket would not count as online and sends would skip it.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "notifications": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        },
    }
    settings.NOTIFICATIONS = {"CACHE_ALIAS": "notifications"}
    communicator, connected, _ = await open_socket(alice)
    assert connected
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4013}
