"""One delivery per process (realtime/hub.py): the process's one channel is in the groups of the
users it has sockets of, an event is received once per process however many sockets it reaches,
and a send to many users is one message per process."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model

from notifications.models import Notification
from notifications.realtime import broker
from notifications.realtime.consumer import NotificationConsumer
from notifications.realtime.node import node
from tests.test_consumers import open_socket, send, signed_in

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def received(monkeypatch):
    """The events the hub received from the layer, in order."""
    events = []
    real = broker.receive

    async def counting(channel):
        event = await real(channel)
        events.append(event)
        return event

    monkeypatch.setattr(broker, "receive", counting)
    return events


@pytest.fixture
def in_memory(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def created(events):
    return [event for event in events if event["type"] == broker.CREATED]


async def frames_until_quiet(communicator):
    frames = []
    while not await communicator.receive_nothing(timeout=0.3):
        frames.append(await communicator.receive_json_from())
    return frames


async def test_a_send_to_many_users_reaches_the_process_once_and_each_socket_once(
    channel_layer, make_user, received
):
    users = await sync_to_async(lambda: [make_user() for _ in range(broker.FAN_OUT_FROM_USERS)])()
    offline = await sync_to_async(make_user)()
    sockets = {user.pk: (await signed_in(user))[0] for user in users}
    second_tab, _ = await signed_in(users[0])
    audience = get_user_model().objects.filter(pk__in=[u.pk for u in [*users, offline]])
    batch = await send(audience, "to everyone")
    rows = Notification.objects.filter(id__in=batch.ids).values_list("recipient_id", "id")
    ids = dict(await sync_to_async(list)(rows))
    for user_id, communicator in [*sockets.items(), (users[0].pk, second_tab)]:
        frames = await frames_until_quiet(communicator)
        assert [frame["notification"]["id"] for frame in frames] == [ids[user_id]]
        assert frames[0]["notification"]["title"] == "to everyone"
        assert (frames[0]["unread_count"], frames[0]["unseen_count"]) == (1, 1)
    assert len(created(received)) == 1  # one message for the process, not one per user
    for communicator in [*sockets.values(), second_tab]:
        await communicator.disconnect()


async def test_a_send_to_one_user_is_received_once_for_all_of_their_sockets(
    channel_layer, alice, bob, received
):
    tabs = [(await signed_in(alice))[0] for _ in range(3)]
    other, _ = await signed_in(bob)
    await send(alice, "hello alice")
    for tab in tabs:
        (frame,) = await frames_until_quiet(tab)
        assert frame["notification"]["title"] == "hello alice"
    assert await other.receive_nothing(timeout=0.2)
    (event,) = created(received)
    assert event["user"] == alice.pk
    for communicator in [*tabs, other]:
        await communicator.disconnect()


async def test_sockets_share_the_processs_one_channel(in_memory, alice, bob):
    sockets = [(await signed_in(user))[0] for user in (alice, alice, bob)]
    groups = get_channel_layer().groups
    channel = node().hub.channel
    assert set(groups[broker.user_group(alice.pk)]) == {channel}
    assert set(groups[broker.user_group(bob.pk)]) == {channel}
    assert set(groups[broker.NODES_GROUP]) == {channel}
    assert len({s.channel_name for s in node()}) == 3  # each socket still has a name of its own
    for communicator in sockets:
        await communicator.disconnect()


async def test_the_channel_leaves_a_group_with_its_users_last_socket_and_stops_with_the_last(
    in_memory, alice, bob
):
    groups = get_channel_layer().groups
    first, second = (await signed_in(alice))[0], (await signed_in(alice))[0]
    third, _ = await signed_in(bob)
    task = node().hub.task
    await first.disconnect()
    assert groups.get(broker.user_group(alice.pk))  # her other tab still listens
    await second.disconnect()
    assert not groups.get(broker.user_group(alice.pk))
    assert node().hub.joined == {bob.pk}
    await third.disconnect()
    assert not groups.get(broker.user_group(bob.pk))
    assert node().hub.task is None and node().hub.channel is None
    await asyncio.sleep(0.05)
    assert task.cancelled() and not groups.get(broker.NODES_GROUP)
    # ... and the next socket starts it again.
    again, _ = await signed_in(alice)
    await send(alice, "back")
    assert (await again.receive_json_from(timeout=3))["notification"]["title"] == "back"
    await again.disconnect()


async def test_sockets_opening_and_closing_at_once_leave_the_users_group_right(in_memory, alice):
    async def open_and_close():
        communicator, _ = await signed_in(alice)
        await communicator.disconnect()

    for _ in range(3):
        staying = asyncio.ensure_future(signed_in(alice))
        await asyncio.gather(*(open_and_close() for _ in range(5)))
        communicator, _ = await staying
        assert node().hub.joined == {alice.pk}
        assert set(get_channel_layer().groups[broker.user_group(alice.pk)]) == {node().hub.channel}
        await send(alice, "still there")
        assert (await communicator.receive_json_from(timeout=3))["type"] == "notification"
        await communicator.disconnect()


async def test_a_push_that_comes_before_hello_is_sent_right_after_it(in_memory, alice, monkeypatch):
    counts = NotificationConsumer.__dict__["_counts"]  # database_sync_to_async: a descriptor

    async def counts_while_a_notification_is_sent(self):
        await send(alice, "during the greeting")
        await asyncio.sleep(0.1)  # its push reaches the socket now, before hello
        return await counts.__get__(self, type(self))()

    monkeypatch.setattr(NotificationConsumer, "_counts", counts_while_a_notification_is_sent)
    communicator, connected, _ = await open_socket(alice)
    assert connected
    hello = await communicator.receive_json_from(timeout=3)
    assert hello["type"] == "hello" and hello["unread_count"] == 1
    pushed = await communicator.receive_json_from(timeout=3)
    assert pushed["notification"]["title"] == "during the greeting"
    await communicator.disconnect()


async def test_a_layer_that_fails_the_process_closes_its_sockets_4013_and_the_next_ones_work(
    in_memory, alice, bob, monkeypatch
):
    real = broker.receive
    failing = asyncio.Event()

    async def receive(channel):
        if failing.is_set():
            failing.clear()
            raise ConnectionError("injected")
        return await real(channel)

    monkeypatch.setattr(broker, "receive", receive)
    sockets = [(await signed_in(user))[0] for user in (alice, bob)]
    failing.set()
    await send(alice, "lost")  # wakes the hub, whose next receive fails
    await send(alice, "lost too")
    for communicator in sockets:
        frames = []
        while (output := await communicator.receive_output(timeout=3))["type"] != "websocket.close":
            frames.append(json.loads(output["text"]))
        assert output["code"] == 4013
        await communicator.disconnect()
    again, _ = await signed_in(alice)
    await send(alice, "after")
    assert (await again.receive_json_from(timeout=3))["notification"]["title"] == "after"
    await again.disconnect()


async def test_a_delivery_that_fails_closes_that_socket_4500_and_spares_the_rest(
    in_memory, alice, bob, monkeypatch
):
    push = NotificationConsumer.push

    async def breaks_for_alice(self, frames, ids):
        if self.user_id == alice.pk:
            raise RuntimeError("injected")
        await push(self, frames, ids)

    monkeypatch.setattr(NotificationConsumer, "push", breaks_for_alice)
    hers, _ = await signed_in(alice)
    his, _ = await signed_in(bob)
    await send(get_user_model().objects.filter(pk__in=[alice.pk, bob.pk]), "both")
    assert await hers.receive_output(timeout=3) == {"type": "websocket.close", "code": 4500}
    assert (await his.receive_json_from(timeout=3))["notification"]["title"] == "both"
    await send(bob, "the hub goes on")
    assert (await his.receive_json_from(timeout=3))["notification"]["title"] == "the hub goes on"
    for communicator in (hers, his):
        await communicator.disconnect()


# --- the events ---------------------------------------------------------------------------------


def test_a_few_users_get_an_event_each_and_many_one_per_process_in_chunks(monkeypatch):
    shape = {"id": None, "title": "t"}
    few = broker.created_messages([(shape, [(1, 10, 1, 1), (2, 11, 1, 1)])])
    assert [group for group, _ in few] == [broker.user_group(1), broker.user_group(2)]
    assert few[0][1] == {"type": broker.CREATED, "user": 1, "parts": [[shape, [[1, 10, 1, 1]]]]}

    monkeypatch.setattr(broker, "ROWS_PER_EVENT", 10)
    rows = [(user, 100 + user, 2, 3) for user in range(broker.FAN_OUT_FROM_USERS)]
    many = broker.created_messages([(shape, rows)])
    assert {group for group, _ in many} == {broker.NODES_GROUP}
    assert [len(event["parts"][0][1]) for _, event in many] == [10, 10, 10, 2]
    local = {3, 31}
    frames = {}
    for _, event in many:
        frames |= broker.created_frames(event, local)
    assert set(frames) == local
    assert json.loads(frames[31][0][0]) == {
        "type": "notification",
        "notification": {"id": 131, "title": "t"},
        "unread_count": 2,
        "unseen_count": 3,
    }
    assert frames[31][1] == [131]


def test_a_revocation_names_its_user():
    group, event = broker.to_user(7, broker.revoke_event("x"))
    assert group == broker.user_group(7) and event["user"] == 7
