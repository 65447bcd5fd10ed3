"""After commit, a sender waits for Redis at most PUSH_TIMEOUT_SECONDS in all (version bump, who
is online, the pushes), and the push loop that runs the pushes is replaced when dead or stuck."""

import asyncio
import json
import logging
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from notifications import services
from notifications.realtime import broker, budget
from notifications.realtime.budget import Budget
from notifications.realtime.presence import registry
from tests.hung import HungServer
from tests.test_push import pubsub_layer, subscribed

GIVEN_UP = "Redis did not answer within"


@pytest.fixture
def hung():
    server = HungServer()
    yield server
    server.close()


def use_redis(settings, url: str) -> None:
    """The cache (hence the socket registry) and the channel layer, all at ``url``."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    }
    settings.CHANNEL_LAYERS = {"default": pubsub_layer(url)}


def given_up(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "notifications.push" and GIVEN_UP in record.getMessage()
    ]


# --- a Redis that accepts connections and never answers ----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_hung_redis_costs_each_send_one_budget_and_one_warning(hung, settings, alice, caplog):
    use_redis(settings, hung.url)
    settings.NOTIFICATIONS = {"PUSH_TIMEOUT_SECONDS": 0.5}
    caplog.set_level(logging.WARNING, logger="notifications")
    # More sends than there are worker threads: the later ones find every thread stuck on the
    # hung server (the cache's client has no timeout) and must not wait longer for it.
    for n in range(budget._Workers.LIMIT + 2):
        caplog.clear()
        started = time.monotonic()
        batch = services.notify(alice, f"sent while Redis hangs {n}")
        elapsed = time.monotonic() - started
        assert batch.ids  # committed: the database is the truth
        assert given_up(caplog) == [
            "notifications: Redis did not answer within 0.5 s after commit (PUSH_TIMEOUT_SECONDS);"
            " gave up waiting for: the version bump and who is online (1 user), 1 push. Clients"
            " catch up from the database"
        ]
        assert elapsed < 5, elapsed  # generous: unbounded, this was 9 s, or for ever
    assert not budget._workers()._queue  # what was given up left the queue


@pytest.mark.django_db(transaction=True)
def test_a_hung_redis_costs_a_state_change_one_budget_and_one_warning(
    hung, settings, alice, caplog
):
    nid = services.notify(alice, "read while Redis hangs").ids[0]
    use_redis(settings, hung.url)
    settings.NOTIFICATIONS = {"PUSH_TIMEOUT_SECONDS": 0.5}
    caplog.set_level(logging.WARNING, logger="notifications")
    started = time.monotonic()
    assert services.mark_read(alice, [nid]) == [nid]
    assert time.monotonic() - started < 5
    assert given_up(caplog) == [
        "notifications: Redis did not answer within 0.5 s after commit (PUSH_TIMEOUT_SECONDS);"
        " gave up waiting for: the version bump (1 user), 1 push. Clients catch up from the"
        " database"
    ]


def test_the_budget_defaults_to_one_second():
    assert Budget().seconds == 1


def test_database_time_is_not_charged_to_the_budget():
    spent = Budget(0.2)
    with spent.paused():
        time.sleep(0.3)
    assert spent.remaining() > 0.1


def test_a_call_that_fails_raises_to_the_sender_and_names_nothing(caplog):
    def broken():
        raise LookupError("no such thing")

    with pytest.raises(LookupError, match="no such thing"), Budget() as spent:
        spent.call("a broken call", broken)
    assert spent.given_up == [] and GIVEN_UP not in caplog.text


def test_an_exhausted_budget_gives_up_without_calling(caplog):
    called = []
    with Budget(0) as spent:
        assert spent.call("the last step", called.append, 1) == (False, None)
    assert called == []
    assert "gave up waiting for: the last step." in caplog.text


# --- the push loop -----------------------------------------------------------------------------


async def test_a_push_loop_whose_thread_died_is_replaced(redis_url, settings, caplog):
    settings.CHANNEL_LAYERS = {"default": pubsub_layer(redis_url, prefix="dead-loop")}
    group = broker.user_group(910_001)
    layer, channel = await subscribed([group])
    old = await sync_to_async(broker._push_loop)()
    old.loop.call_soon_threadsafe(old.loop.stop)  # run_forever() returns: the thread ends
    await asyncio.to_thread(old.thread.join, 5)
    assert not old.thread.is_alive()

    with caplog.at_level(logging.WARNING, logger="notifications"):
        await sync_to_async(broker.send)([(group, broker.revoke_event("first"))])
    event = await asyncio.wait_for(layer.receive(channel), 5)
    assert event["credential"] == "first"
    assert "replaced the push loop (its thread is gone); 0 jobs" in caplog.text
    assert GIVEN_UP not in caplog.text  # the send itself went through, at once
    new = broker._loop
    assert new is not old and new.thread.is_alive()

    caplog.clear()
    await sync_to_async(broker.send)([(group, broker.revoke_event("second"))])
    assert (await asyncio.wait_for(layer.receive(channel), 5))["credential"] == "second"
    assert broker._loop is new and not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_blocked_push_loop_is_replaced_and_its_job_runs_on_the_new_one(
    redis_url, settings, caplog
):
    settings.CHANNEL_LAYERS = {"default": pubsub_layer(redis_url, prefix="blocked-loop")}
    settings.NOTIFICATIONS = {"PUSH_TIMEOUT_SECONDS": 0.5}
    group = broker.user_group(910_002)
    layer, channel = await subscribed([group])
    old = await sync_to_async(broker._push_loop)()
    release = threading.Event()
    old.loop.call_soon_threadsafe(release.wait)  # a blocking call on the loop: it runs nothing else
    try:
        with caplog.at_level(logging.WARNING, logger="notifications"):
            await sync_to_async(broker.send)([(group, broker.revoke_event("first"))])
        # The send waited its budget for a job that never started; then the loop was replaced,
        # and the job was handed to the new loop, which published it.
        assert "replaced the push loop (it has not started a job given to it" in caplog.text
        assert "1 jobs it had not started go to the new one" in caplog.text
        assert given_up(caplog) and given_up(caplog)[0].endswith(
            "gave up waiting for: 1 push. Clients catch up from the database"
        )
        assert (await asyncio.wait_for(layer.receive(channel), 5))["credential"] == "first"
        new = broker._loop
        assert new is not old and new.loop in broker._publishers  # it published from the new loop

        caplog.clear()
        await sync_to_async(broker.send)([(group, broker.revoke_event("second"))])
        assert (await asyncio.wait_for(layer.receive(channel), 5))["credential"] == "second"
        assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    finally:
        release.set()
    # Unblocked, the retired loop does not run the job it handed over; it stops.
    await asyncio.to_thread(old.thread.join, 5)
    assert not old.thread.is_alive() and old.loop.is_closed()
    assert old.loop not in broker._publishers
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.5)


def pushed_frames(event, user):
    return broker.created_frames(event, {user.pk})[user.pk][0]


@pytest.mark.django_db(transaction=True)
async def test_after_a_blocked_push_loop_the_next_notify_is_pushed_again(
    redis_url, settings, alice, caplog
):
    use_redis(settings, redis_url)
    settings.NOTIFICATIONS = {"PUSH_TIMEOUT_SECONDS": 0.5}
    layer, channel = await subscribed([broker.user_group(alice.pk)])
    assert await registry().claim(alice.pk, channel)  # alice is online
    old = await sync_to_async(broker._push_loop)()
    release = threading.Event()
    old.loop.call_soon_threadsafe(release.wait)
    try:
        with caplog.at_level(logging.WARNING, logger="notifications"):
            await database_sync_to_async(services.notify)(alice, "while the loop is blocked")
            await database_sync_to_async(services.notify)(alice, "after")
        titles = [
            json.loads(frame)["notification"]["title"]
            for _ in range(2)
            for frame in pushed_frames(await asyncio.wait_for(layer.receive(channel), 5), alice)
        ]
        assert titles == ["while the loop is blocked", "after"]  # nothing lost, in order
        assert caplog.text.count("replaced the push loop") == 1
        assert broker._loop is not old
    finally:
        release.set()
        await registry().release(alice.pk, channel)


@pytest.mark.django_db(transaction=True)
async def test_a_push_the_sender_stopped_waiting_for_still_goes_out(
    redis_url, settings, monkeypatch
):
    """A fan-out that outlasts the budget (slow here on purpose) is not cut off: the sender
    returns after PUSH_TIMEOUT_SECONDS, the push finishes in the background."""
    settings.CHANNEL_LAYERS = {"default": pubsub_layer(redis_url)}
    settings.NOTIFICATIONS = {"PUSH_TIMEOUT_SECONDS": 0.2}
    layer, channel = await subscribed(["slow.group"])
    send, gate = broker.asend, threading.Event()

    async def slowly(messages):
        await asyncio.to_thread(gate.wait, 5)  # a fan-out still going when the budget ends
        return await send(messages)

    monkeypatch.setattr(broker, "asend", slowly)
    # Returns while the push is held at the gate: the sender did not wait for it...
    await sync_to_async(broker.send)([("slow.group", {"type": "notifications.test"})])
    gate.set()
    # ... and the push goes out all the same.
    message = await asyncio.wait_for(layer.receive(channel), 5)
    assert message["type"] == "notifications.test"
