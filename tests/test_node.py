"""The process's node: whatever happens to a socket, the place it held is given back, and nobody
is locked out by what another socket did, by a wiped registry or by a process that died."""

import asyncio
import time
import uuid

import pytest
import redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from rest_framework.test import APIClient

from notifications import services
from notifications.models import Notification
from notifications.realtime import broker
from notifications.realtime.consumer import NotificationConsumer
from notifications.realtime.node import node
from notifications.realtime.presence import NODE_STALE_SECONDS, registry
from tests.redis_keys import layer_config, redis_cache
from tests.test_consumers import open_socket, send, signed_in

pytestmark = [pytest.mark.django_db(transaction=True)]

LIMIT = 3


@pytest.fixture
def redis_registry(redis_url, settings):
    """Registry and channel layer in Redis, as in production, under a key prefix of this test's
    own (so the registry starts empty)."""
    settings.CACHES = {"default": redis_cache(redis_url, f"node-{uuid.uuid4().hex[:8]}")}
    settings.CHANNEL_LAYERS = {
        "default": layer_config("channels_redis.pubsub.RedisPubSubChannelLayer", redis_url)
    }
    settings.NOTIFICATIONS = {"MAX_SOCKETS_PER_USER": LIMIT}
    return redis_url


async def aboom(*args, **kwargs):
    raise RuntimeError("injected")


async def trigger_nothing(communicator, user):
    pass


async def trigger_notification(communicator, user):
    await send(user, "to the broken handler")


async def trigger_change(communicator, user):
    notification = await send(user, "to change")
    await communicator.receive_json_from(timeout=3)  # its push, before the handler breaks
    await database_sync_to_async(services.mark_read)(user, [notification[0].pk])


async def trigger_revoke(communicator, user):
    await database_sync_to_async(broker.send)([broker.to_user(user.pk, broker.revoke_event("x"))])


def breaks_on_changes(push):
    async def broken(self, frames, ids):
        if any('"type": "changed"' in frame for frame in frames):
            raise RuntimeError("injected")
        await push(self, frames, ids)

    return broken


def client_message(type_, **fields):
    async def trigger(communicator, user):
        await communicator.send_json_to({"type": type_, **fields})

    return trigger


# (what breaks, how to make it run)
BREAKS = {
    "connect": ("_counts", trigger_nothing),
    "ping": ("handlers:ping", client_message("ping")),
    "resume": ("handlers:resume", client_message("resume", after=0)),
    "mark_read": ("handlers:mark_read", client_message("mark_read", ids=[1])),
    "mark_unread": ("handlers:mark_unread", client_message("mark_unread", ids=[1])),
    "mark_all_read": ("handlers:mark_all_read", client_message("mark_all_read")),
    "mark_seen": ("handlers:mark_seen", client_message("mark_seen", up_to=1)),
    "serializing a backlog": ("_backlog", client_message("resume", after=0)),
    "a pushed notification": ("push", trigger_notification),
    "a pushed change": ("push:changed", trigger_change),
    "a revocation": ("revoked", trigger_revoke),
}


@pytest.mark.parametrize("where", list(BREAKS))
async def test_whatever_a_handler_raises_the_socket_closes_4500_and_gives_its_place_back(
    where, redis_registry, alice, monkeypatch
):
    target, trigger = BREAKS[where]
    before = await database_sync_to_async(registry().snapshot)()
    with monkeypatch.context() as patch:
        if target.startswith("handlers:"):
            patch.setitem(NotificationConsumer.handlers, target.partition(":")[2], aboom)
        elif target == "push:changed":
            patch.setattr(
                NotificationConsumer, "push", breaks_on_changes(NotificationConsumer.push)
            )
        else:
            patch.setattr(NotificationConsumer, target, aboom)
        communicator, connected, _ = await open_socket(alice)
        assert connected
        if where != "connect":
            assert (await communicator.receive_json_from(timeout=3))["type"] == "hello"
        await trigger(communicator, alice)
        while (output := await communicator.receive_output(timeout=5))["type"] != "websocket.close":
            pass  # frames sent before the handler broke
        assert output == {"type": "websocket.close", "code": 4500}
        await communicator.disconnect()
    assert node().sockets == {}
    after = await database_sync_to_async(registry().snapshot)()
    assert after["open_sockets"] == before["open_sockets"]
    # Every place was given back: the user opens as many sockets as the limit allows.
    sockets = [(await signed_in(alice))[0] for _ in range(LIMIT)]
    for communicator in sockets:
        await communicator.disconnect()


async def test_a_disconnect_that_raises_still_gives_the_place_back(
    redis_registry, alice, monkeypatch
):
    monkeypatch.setattr(NotificationConsumer, "disconnect", aboom)
    for _ in range(LIMIT + 2):
        communicator, _ = await signed_in(alice)
        await communicator.disconnect()
    assert node().sockets == {}
    monkeypatch.undo()
    sockets = [(await signed_in(alice))[0] for _ in range(LIMIT)]
    for communicator in sockets:
        await communicator.disconnect()


async def test_sockets_of_a_process_that_stopped_beating_free_their_places(redis_registry, alice):
    """A daphne killed with SIGKILL never releases its sockets; once its node has been silent for
    NODE_STALE_SECONDS they no longer count against the user's limit (nor as open)."""
    for index in range(LIMIT):
        assert await registry().claim(alice.pk, f"ghost-{index}", "killed-node")
    blocked, _, _ = await open_socket(alice)
    assert (await blocked.receive_output(timeout=3))["code"] == 4409
    current = registry()
    silent_since = time.time() - NODE_STALE_SECONDS - 1
    await current._client().zadd(current.nodes_key, {"killed-node": silent_since})
    assert (await database_sync_to_async(current.snapshot)())["open_sockets"] == 0
    communicator, _ = await signed_in(alice)
    assert (await database_sync_to_async(current.snapshot)())["open_sockets"] == 1
    await communicator.disconnect()


def set_epoch_age(seconds: float) -> None:
    current = registry()
    client = redis.Redis.from_url(current.url)
    for member in client.zrangebyscore(current.online_key, "+inf", "+inf"):
        client.zrem(current.online_key, member)
    client.zadd(current.online_key, {f"epoch:{time.time() - seconds}": float("inf")})


def wipe_this_tests_keys(settings) -> None:
    client = redis.Redis.from_url(registry().url)
    for key in client.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}:*"):
        client.delete(key)


async def test_a_wiped_registry_pushes_to_everyone_until_sockets_are_claimed_again(
    redis_registry, alice, bob, settings
):
    online = database_sync_to_async(broker.online)
    communicator, _ = await signed_in(alice)
    await node().sweep.tick()
    await database_sync_to_async(set_epoch_age)(3600)  # a registry in service for an hour
    assert await online([alice.pk, bob.pk]) == {alice.pk}

    # What cache.clear() or a Redis restart does to the registry (on a Redis of the suite's own
    # it would be exactly that; a shared one keeps others' keys).
    await database_sync_to_async(wipe_this_tests_keys)(settings)
    assert await online([alice.pk, bob.pk]) is None  # nobody knows: push to everyone
    await send(alice, "while the registry is unknown")
    message = await communicator.receive_json_from(timeout=3)
    assert message["notification"]["title"] == "while the registry is unknown"

    await node().sweep.tick()  # the node's next beat sees a new epoch and claims again at once
    current = registry()
    client = redis.Redis.from_url(current.url)
    assert client.zscore(current.online_key, str(alice.pk)) is not None
    await database_sync_to_async(set_epoch_age)(3600)  # ... and once the grace has passed
    assert await online([alice.pk, bob.pk]) == {alice.pk}
    await communicator.disconnect()


async def join_refused(user_id, channel_name, attempts=3):
    return False  # as broker.join() answers after its attempts on an unreachable layer


@pytest.mark.parametrize(
    ("join", "code"), [(join_refused, 4013), (aboom, 4500)], ids=["refused", "raises"]
)
async def test_a_join_that_fails_closes_the_socket_and_gives_the_place_back(
    join, code, redis_registry, alice, monkeypatch
):
    monkeypatch.setattr(broker, "join", join)
    for _ in range(LIMIT + 1):
        communicator, connected, _ = await open_socket(alice)
        assert connected
        assert (await communicator.receive_output(timeout=5))["code"] == code
    assert node().sockets == {} and node().users == {}
    monkeypatch.undo()
    sockets = [(await signed_in(alice))[0] for _ in range(LIMIT)]
    for communicator in sockets:
        await communicator.disconnect()


async def test_a_socket_the_node_closed_while_it_joined_does_not_stay_joined(
    alice, monkeypatch, settings
):
    """The server was told to stop (or the layer was lost) while the socket was joining its
    group: it is closed like the others, and its group membership and place are undone."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.NOTIFICATIONS = {"MAX_SOCKETS_PER_USER": LIMIT}
    real_join = broker.join
    joined = []
    join_returned = asyncio.Event()

    async def join_while_the_layer_is_lost(user_id, channel_name, attempts=3):
        closing = asyncio.ensure_future(node().close_all(4013, "lost while joining"))
        await asyncio.sleep(0.05)  # the close is under way (it waits for the join to leave)
        assert not closing.done()
        result = await real_join(user_id, channel_name, attempts)
        joined.append(channel_name)
        join_returned.set()
        return result

    monkeypatch.setattr(broker, "join", join_while_the_layer_is_lost)
    communicator, connected, _ = await open_socket(alice)
    assert connected
    assert (await communicator.receive_output(timeout=5))["code"] == 4013
    await asyncio.wait_for(join_returned.wait(), 3)  # the close came before the join returned
    await asyncio.sleep(0.05)  # and its undoing
    assert node().sockets == {}
    assert joined[0] not in get_channel_layer().groups.get(broker.user_group(alice.pk), {})
    monkeypatch.undo()
    sockets = [(await signed_in(alice))[0] for _ in range(LIMIT)]
    for communicator in sockets:
        await communicator.disconnect()


async def test_losing_a_shard_that_carries_no_socket_closes_nothing(alice):
    communicator, _ = await signed_in(alice)
    shard = broker.shard_of(broker.user_group(alice.pk))
    node().lose_shard(shard + 1, "another shard")
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()


async def test_a_background_task_that_fails_is_logged(alice, caplog):
    async def broken():
        raise RuntimeError("background failure")

    task = node().spawn(broken())
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    assert "a background task failed" in caplog.text
    assert "background failure" in caplog.text
    assert task not in node().tasks


async def test_background_tasks_are_referenced_until_they_finish(alice):
    communicator, _ = await signed_in(alice)
    started = asyncio.Event()

    async def work():
        started.set()
        await asyncio.sleep(0.05)

    task = node().spawn(work())
    assert task in node().tasks
    await started.wait()
    await task
    assert task not in node().tasks
    await communicator.disconnect()


# --- resume makes progress ---------------------------------------------------------------------


async def burst(user, count: int) -> list[int]:
    def write():
        return [services.notify(user, f"burst {i}")[0].pk for i in range(count)]

    return await database_sync_to_async(write)()


async def test_a_burst_of_ten_backlog_limits_inside_the_margin_resumes_completely_once(
    alice, settings
):
    """The client saw the middle of a burst of 10 x BACKLOG_LIMIT: paging with the cursor brings
    the rest, each row once, in a bounded number of round trips, and the pages never count
    against the message rate (the burst allowance here is far below the pages needed)."""
    settings.NOTIFICATIONS = {"BACKLOG_LIMIT": 10, "MESSAGES_PER_SECOND": 1, "MESSAGE_BURST": 2}
    ids = await burst(alice, 100)
    communicator, _ = await signed_in(alice)
    after, cursor, received, round_trips = ids[49], None, [], 0
    while True:
        message = {"type": "resume", "after": after}
        if cursor is not None:
            message["cursor"] = cursor
        await communicator.send_json_to(message)
        backlog = await communicator.receive_json_from(timeout=3)
        round_trips += 1
        assert backlog["type"] == "backlog"
        received += [item["id"] for item in backlog["notifications"]]
        if backlog["complete"]:
            assert "cursor" not in backlog
            break
        cursor = backlog["cursor"]
    assert round_trips == 10
    assert sorted(received) == sorted(set(ids) - {after}) and len(received) == 99
    await communicator.send_json_to({"type": "ping"})  # still within its message budget
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_a_cursor_that_was_not_handed_out_costs_the_message_budget(alice, settings):
    settings.NOTIFICATIONS = {"BACKLOG_LIMIT": 10, "MESSAGES_PER_SECOND": 1, "MESSAGE_BURST": 2}
    await burst(alice, 30)
    communicator, _ = await signed_in(alice)
    for _ in range(2):
        await communicator.send_json_to({"type": "resume", "after": 0, "cursor": 5})
        assert (await communicator.receive_json_from(timeout=3))["type"] == "backlog"
    await communicator.send_json_to({"type": "resume", "after": 0, "cursor": 5})
    assert await communicator.receive_output(timeout=3) == {"type": "websocket.close", "code": 4429}


def test_rest_after_pages_through_the_same_burst_exactly_once(alice, settings):
    settings.NOTIFICATIONS = {"RESUME_MARGIN_SECONDS": 60}
    ids = [services.notify(alice, f"burst {i}")[0].pk for i in range(100)]
    client = APIClient()
    client.force_authenticate(alice)
    url, received, requests = f"/api/notifications/?after={ids[49]}&page_size=10", [], 0
    while url:
        page = client.get(url).json()
        requests += 1
        received += [item["id"] for item in page["results"]]
        url = page["next"]
    assert requests == 10
    assert sorted(received) == sorted(set(ids) - {ids[49]}) and len(received) == 99
    assert Notification.objects.count() == 100


def with_a_vanished_actor(user) -> int:
    """A notification whose actor's model is gone: its app was uninstalled, its content type
    left behind."""
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.create(app_label="uninstalled", model="vanished")
    return Notification.objects.create(
        recipient=user,
        title="from a vanished model",
        actor_content_type=content_type,
        actor_object_id="7",
    ).pk


async def test_a_notification_whose_actor_model_is_gone_locks_nobody_out(alice, settings):
    settings.NOTIFICATIONS = {"GAP_CHECK_SECONDS": 0.4}
    communicator, _ = await signed_in(alice)
    nid = await database_sync_to_async(with_a_vanished_actor)(alice)
    recovered = await communicator.receive_json_from(timeout=3)  # gap detection serializes it
    assert recovered["notification"]["id"] == nid
    assert recovered["notification"]["actor"] == {
        "type": "uninstalled.vanished",
        "id": "7",
        "display": "",
    }
    await communicator.send_json_to({"type": "resume", "after": 0})
    backlog = await communicator.receive_json_from(timeout=3)
    assert [item["id"] for item in backlog["notifications"]] == [nid]
    await communicator.disconnect()

    client = APIClient()
    await database_sync_to_async(client.force_authenticate)(alice)
    response = await database_sync_to_async(client.get)("/api/notifications/")
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["results"]] == [nid]


async def test_a_layer_that_cannot_give_a_channel_is_answered_4013(alice, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0"}]},  # nothing listens
        }
    }
    communicator, connected, _ = await open_socket(alice)
    assert connected
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4013}
    assert node().sockets == {}
