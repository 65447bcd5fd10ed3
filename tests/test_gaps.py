"""Gap detection: a notification that reached the table without reaching a connected socket (a
lost push, a sender that died right after COMMIT, a row another program wrote) reaches it within
GAP_CHECK_SECONDS, once, without a reconnect; at a cost per process, not per socket."""

import asyncio
import json
import threading
import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from notifications import services
from notifications.models import Notification, database_now
from notifications.realtime import broker, gaps
from notifications.realtime.node import node
from tests.test_consumers import send, signed_in

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fast_checks(settings):
    """Checks every 0.2 s, on the run's channel layer (Redis when REDIS_URL is set)."""
    settings.NOTIFICATIONS = {"GAP_CHECK_SECONDS": 0.4}


async def frames(communicator, seconds: float) -> list[dict]:
    """Every frame the socket receives within ``seconds``."""
    received = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        # receive_output() would cancel the application when it times out: look first.
        if await communicator.receive_nothing(timeout=min(left, 0.1), interval=0.01):
            continue
        output = await communicator.receive_output(timeout=1)
        received.append(json.loads(output["text"]))
    return received


def written_by_another_program(user, title: str) -> int:
    """A row that reached the table with no push at all."""
    return Notification.objects.create(recipient=user, title=title).pk


async def test_a_row_no_push_announced_reaches_every_socket_of_its_user_once(
    fast_checks, alice, bob
):
    first, _ = await signed_in(alice)
    second, _ = await signed_in(alice)
    bobs, _ = await signed_in(bob)
    nid = await database_sync_to_async(written_by_another_program)(alice, "silent")
    for communicator in (first, second):
        [message] = await frames(communicator, 2)  # several checks pass meanwhile: still once
        assert message["type"] == "notification" and message["recovered"] is True
        assert message["notification"]["id"] == nid
        assert message["notification"]["title"] == "silent"
        assert message["unread_count"] == 1
    assert await frames(bobs, 0.3) == []
    for communicator in (first, second, bobs):
        await communicator.disconnect()


async def test_a_pushed_notification_is_not_sent_again(fast_checks, alice):
    communicator, _ = await signed_in(alice)
    await send(alice, "pushed")
    [message] = await frames(communicator, 2)
    assert "recovered" not in message
    await communicator.disconnect()


async def test_what_a_backlog_brought_is_not_sent_again(fast_checks, alice):
    nid = await database_sync_to_async(written_by_another_program)(alice, "before the socket")
    communicator, _ = await signed_in(alice)
    await communicator.send_json_to({"type": "resume", "after": 0})
    [backlog] = await frames(communicator, 2)
    assert [item["id"] for item in backlog["notifications"]] == [nid]
    await communicator.disconnect()


async def test_a_push_that_arrives_after_its_row_was_recovered_is_not_sent_again(
    fast_checks, alice
):
    """The push of a broadcast can still be on its way (queued in the layer, behind thousands of
    other sockets) when a check finds its row: the socket gets it once."""
    communicator, _ = await signed_in(alice)
    nid = await database_sync_to_async(written_by_another_program)(alice, "late push")
    [recovered] = await frames(communicator, 1)
    assert recovered["notification"]["id"] == nid and recovered["recovered"] is True
    shape = {"title": "late push"}
    late = broker.created_messages([(shape, [(alice.pk, nid, 1, 1)])])
    await node().hub.deliver(late[0][1])
    assert await frames(communicator, 0.5) == []
    newer = await database_sync_to_async(written_by_another_program)(alice, "next")
    both = broker.created_messages([(shape, [(alice.pk, nid, 2, 2), (alice.pk, newer, 2, 2)])])
    await node().hub.deliver(both[0][1])
    [message] = await frames(communicator, 1)  # pushed or recovered, whichever came first
    assert message["notification"]["id"] == newer
    await communicator.disconnect()


async def test_the_push_of_a_row_a_backlog_brought_still_brings_its_counts(alice):
    """A backlog carries no counts: the push of one of its rows, arriving after it, is sent all
    the same (the client drops it by id and takes its counts). Dropped, the badge stayed at 0
    (the demo page's browser test caught it)."""
    communicator, _ = await signed_in(alice)
    nid = await database_sync_to_async(written_by_another_program)(alice, "in the backlog")
    await communicator.send_json_to({"type": "resume", "after": 0})
    [backlog] = await frames(communicator, 0.5)
    assert [item["id"] for item in backlog["notifications"]] == [nid]
    assert "unread_count" not in backlog
    push = broker.created_messages([({"title": "in the backlog"}, [(alice.pk, nid, 1, 1)])])
    await node().hub.deliver(push[0][1])
    [message] = await frames(communicator, 0.5)
    assert message["type"] == "notification" and message["notification"]["id"] == nid
    assert (message["unread_count"], message["unseen_count"]) == (1, 1)
    await communicator.disconnect()


async def test_a_push_that_arrives_while_a_check_reads_its_row_is_sent_once(
    fast_checks, alice, monkeypatch
):
    """The check found the row unsent, and the push comes while it reads the row's shape: the
    check then leaves it to the push."""
    communicator, _ = await signed_in(alice)
    real, hub = gaps._shapes_and_counts, node().hub
    pushed = []

    def shapes_while_the_push_arrives(ids, user_ids):
        if not pushed:
            [nid] = ids
            event = broker.created_messages([({"title": "raced"}, [(alice.pk, nid, 1, 1)])])
            async_to_sync(hub.deliver)(event[0][1])  # on the server's loop, meanwhile
            pushed.append(nid)
        return real(ids, user_ids)

    monkeypatch.setattr(gaps, "_shapes_and_counts", shapes_while_the_push_arrives)
    nid = await database_sync_to_async(written_by_another_program)(alice, "raced")
    [message] = await frames(communicator, 2)
    assert pushed == [nid]
    assert message["notification"]["id"] == nid and "recovered" not in message
    await communicator.disconnect()


async def test_a_lost_push_is_recovered(fast_checks, alice, monkeypatch):
    communicator, _ = await signed_in(alice)

    async def lost(messages):
        return 0  # as a layer that dropped everything

    monkeypatch.setattr(broker, "asend", lost)
    monkeypatch.setattr(broker, "_push_loop", None)  # any other path would fail loudly
    [nid] = [n.pk for n in await send(alice, "lost in the layer")]
    [message] = await frames(communicator, 2)
    assert message["notification"]["id"] == nid and message["recovered"] is True
    await communicator.disconnect()


async def test_a_row_that_commits_after_several_checks_is_recovered(fast_checks, alice):
    """The sender took its id (and inserted_at) before the socket's checks ran, and committed
    after them; the push never came (the sender died right after COMMIT)."""
    inserted, release, done = threading.Event(), threading.Event(), threading.Event()
    ids = []

    def sender():
        try:
            with transaction.atomic():
                ids.append(written_by_another_program(alice, "committed late"))
                inserted.set()
                release.wait(10)
        finally:
            connection.close()
            done.set()

    communicator, _ = await signed_in(alice)
    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    assert await asyncio.to_thread(inserted.wait, 5)
    assert await frames(communicator, 1.5) == []  # three checks: nothing visible yet
    release.set()
    assert await asyncio.to_thread(done.wait, 5)
    [message] = await frames(communicator, 2)
    assert message["notification"]["id"] == ids[0] and message["recovered"] is True
    await communicator.disconnect()


async def test_an_expired_or_deleted_row_is_not_recovered(fast_checks, alice):
    communicator, _ = await signed_in(alice)

    def write_and_remove():
        gone = Notification.objects.create(recipient=alice, title="deleted")
        Notification.objects.filter(pk=gone.pk).delete()
        Notification.objects.create(recipient=alice, title="expired", expires_at=timezone.now())

    await database_sync_to_async(write_and_remove)()
    assert await frames(communicator, 1.5) == []
    await communicator.disconnect()


def test_a_check_costs_the_same_few_queries_whatever_the_number_of_users(
    make_user, django_assert_num_queries
):
    users = [make_user() for _ in range(30)]
    for user in users:
        services.notify(user, "hello")
    since = timezone.now() - timedelta(minutes=5)
    with django_assert_num_queries(1):
        database_now()
    with django_assert_num_queries(1):
        rows = gaps._written_since([user.pk for user in users], since)
    assert len(rows) == 30
    ids = [nid for nid, _ in rows]
    with django_assert_num_queries(2):  # the rows (no actor or target to prefetch), the counts
        shapes, counts = gaps._shapes_and_counts(ids, [user.pk for user in users])
    assert set(shapes) == set(ids) and all(counts[user.pk] == (1, 1) for user in users)


async def test_one_check_sends_nothing_when_nothing_is_missing(settings, alice, bob):
    settings.NOTIFICATIONS = {"GAP_CHECK_SECONDS": 3600}  # checks run by hand here
    sockets = [(await signed_in(user))[0] for user in (alice, alice, bob)]
    await send(alice, "pushed")
    await sockets[0].receive_json_from(timeout=3)
    await sockets[1].receive_json_from(timeout=3)
    assert await node().gaps.check() == 0
    await database_sync_to_async(written_by_another_program)(bob, "missed")
    assert await node().gaps.check() == 1
    assert await node().gaps.check() == 0
    for communicator in sockets:
        await communicator.disconnect()


async def test_a_check_the_database_refuses_is_made_up_by_the_next(
    fast_checks, alice, monkeypatch, caplog
):
    """While the database cannot be reached, rows written meanwhile wait for the first check
    that works, which reaches back to the last one that did."""
    communicator, _ = await signed_in(alice)
    failures = iter([OperationalError("database down"), RuntimeError("a bug")])
    real_now = gaps.database_now

    def now_after_two_failures():
        for failure in failures:
            raise failure
        return real_now()

    monkeypatch.setattr(gaps, "database_now", now_after_two_failures)
    nid = await database_sync_to_async(written_by_another_program)(alice, "while down")
    [message] = await frames(communicator, 2)
    assert message["notification"]["id"] == nid and message["recovered"] is True
    assert "gap detection cannot reach the database" in caplog.text
    assert "a gap detection check failed" in caplog.text
    await communicator.disconnect()


async def test_a_socket_a_recovered_frame_could_not_reach_gets_it_at_the_next_check(
    fast_checks, alice, monkeypatch
):
    communicator, _ = await signed_in(alice)
    [socket] = node().sockets.values()
    real_send = socket.send
    refused = []

    async def send_that_fails_once(*args, **kwargs):
        if not refused:
            refused.append(kwargs)
            raise ConnectionResetError("the transport is busy")
        return await real_send(*args, **kwargs)

    monkeypatch.setattr(socket, "send", send_that_fails_once)
    nid = await database_sync_to_async(written_by_another_program)(alice, "second try")
    [message] = await frames(communicator, 2)
    assert refused and message["notification"]["id"] == nid
    await communicator.disconnect()


def test_a_check_with_no_greeted_socket_asks_nothing_more(alice, django_assert_num_queries):
    async def check():
        return await node().gaps.check()

    with django_assert_num_queries(1):  # the database's clock, then nobody to look after
        assert async_to_sync(check)() == 0


def test_a_socket_forgets_the_ids_it_was_sent_once_no_window_can_hold_them():
    recent = gaps.RecentIds()
    recent.add([1, 2])
    horizon = time.monotonic()
    recent.add([3])
    recent.forget_before(horizon)
    assert 1 not in recent and 2 not in recent and 3 in recent
    recent.forget_before(horizon)  # nothing older left: unchanged
    assert 3 in recent
