"""End to end: a real server process, real WebSocket clients, notify() from this process.

Everything between the two processes goes through the database and Redis, as in production.
Each test runs on daphne and on uvicorn with wsproto (``[daphne]``, ``[uvicorn]``).
"""

import asyncio
import contextlib
import json
import statistics
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.test import Client
from websockets.exceptions import ConnectionClosed, InvalidStatus

from notifications import services
from notifications.realtime.presence import registry
from tests.conftest import service_missing
from tests.sockets import close_code, open_socket, receive, session_of

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("same_redis_as_server", "close_sync_thread_connection"),
]

LATENCY_SENDS = 50


# --- helpers ---------------------------------------------------------------------------------


async def notify(user, title, **options):
    return await sync_to_async(services.notify)(user, title, **options)


async def send(ws, message):
    await ws.send(json.dumps(message))


async def hello(ws):
    message = await receive(ws)
    assert message["type"] == "hello"
    return message


async def nothing_within(ws, seconds):
    try:
        message = await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return True
    pytest.fail(f"unexpected message: {message}")


# --- tests ------------------------------------------------------------------------------------


async def test_cross_process_delivery_and_latency(server, alice):
    async with open_socket(server, await session_of(alice)) as ws:
        await hello(ws)
        batch = await notify(alice, "Export ready", url="/exports/7/")
        message = await receive(ws)
        assert message["type"] == "notification"
        assert message["notification"]["id"] == batch.ids[0]
        assert message["notification"]["title"] == "Export ready"
        assert message["unread_count"] == 1

        sent_at = {}
        latencies = []

        async def send_paced():
            for n in range(LATENCY_SENDS):
                sent_at[f"n{n}"] = time.perf_counter()
                await notify(alice, f"n{n}")
                await asyncio.sleep(0.02)

        async def collect():
            while len(latencies) < LATENCY_SENDS:
                message = await receive(ws, seconds=5)
                title = message["notification"]["title"]
                latencies.append(time.perf_counter() - sent_at[title])

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(send_paced())
            tasks.create_task(asyncio.wait_for(collect(), 15))

    median = statistics.median(latencies) * 1000
    p95 = statistics.quantiles(latencies, n=20)[-1] * 1000
    print(
        f"\nnotify() to receipt across processes over {LATENCY_SENDS} sends: "
        f"median {median:.1f} ms, p95 {p95:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )


async def test_other_users_get_nothing(server, alice, bob):
    async with (
        open_socket(server, await session_of(alice)) as alice_ws,
        open_socket(server, await session_of(bob)) as bob_ws,
    ):
        await hello(alice_ws)
        await hello(bob_ws)
        await notify(alice, "For alice only")
        assert (await receive(alice_ws))["notification"]["title"] == "For alice only"
        assert await nothing_within(bob_ws, 0.3)


async def test_two_tabs_stay_in_sync(server, alice):
    first, second, third = [(await notify(alice, title)).ids[0] for title in "abc"]
    session = await session_of(alice)
    async with open_socket(server, session) as tab1, open_socket(server, session) as tab2:
        assert (await hello(tab1))["unread_count"] == 3
        await hello(tab2)

        await send(tab1, {"type": "mark_read", "ids": [first]})
        for tab in (tab1, tab2):
            changed = await receive(tab)
            assert changed == {
                "type": "changed",
                "ids": [first],
                "state": "read",
                "up_to": None,
                "count": 1,
                "unread_count": 2,
                "unseen_count": 3,
            }

        # Up to the second: the third, newer than what this tab had shown, stays unread.
        await send(tab2, {"type": "mark_all_read", "up_to": second})
        for tab in (tab1, tab2):
            changed = await receive(tab)
            assert changed["type"] == "changed" and changed["state"] == "read"
            assert changed["ids"] == [second] and changed["up_to"] == second
            assert changed["unread_count"] == 1
    assert third > second


@pytest.mark.parametrize("session", [None, "not-a-session-key"], ids=["anonymous", "garbage"])
async def test_without_a_valid_session_closed_4401(server, session):
    async with open_socket(server, session) as ws:
        assert await close_code(ws) == 4401


async def test_foreign_origin_refused_at_handshake(server, alice):
    session = await session_of(alice)
    with pytest.raises(InvalidStatus) as refused:
        async with open_socket(server, session, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403


BAD_INPUT = [
    ("not json", "invalid_json"),
    ("[1, 2]", "invalid_message"),
    ('{"no": "type"}', "invalid_message"),
    ('{"type": "subscribe"}', "unknown_type"),
    ('{"type": "resume"}', "invalid_field"),
    ('{"type": "resume", "after": "7"}', "invalid_field"),
    ('{"type": "mark_read", "ids": "1,2"}', "invalid_field"),
    ('{"type": "mark_read", "ids": [-1]}', "invalid_field"),
    (json.dumps({"type": "mark_read", "ids": [1] * 501}), "invalid_field"),
    ('{"type": "mark_seen"}', "invalid_field"),
    ('{"type": "mark_seen", "up_to": true}', "invalid_field"),
    ('{"type": "ping", "id": [1]}', "invalid_field"),
    (b"\x00\x01", "binary_not_supported"),
]


async def test_bad_input_gets_errors_and_the_socket_survives(server, alice):
    async with open_socket(server, await session_of(alice)) as ws:
        await hello(ws)
        for frame, code in BAD_INPUT:
            await ws.send(frame)
            error = await receive(ws)
            assert error["type"] == "error", frame
            assert error["code"] == code, frame
            assert error["detail"]
        await send(ws, {"type": "ping", "id": "still-here"})
        assert await receive(ws) == {"type": "pong", "id": "still-here"}


async def test_oversized_message_closes_4413(server, alice):
    async with open_socket(server, await session_of(alice)) as ws:
        await hello(ws)
        await send(ws, {"type": "ping", "id": "x" * 4200})
        assert await close_code(ws) == 4413


async def places_settle_at(user, count: int) -> bool:
    """Whether the user's places in the shared registry come to ``count`` within 3 s."""
    current = registry()
    places = sync_to_async(lambda: current._sync().zcard(current.sockets_key(user.pk)))
    for _ in range(30):
        if await places() == count:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_text_frame_that_is_not_utf8_drops_only_that_socket(server, alice):
    """The server's WebSocket layer refuses it before the app sees it (RFC 6455 section 8.1):
    daphne and uvicorn's wsproto drop the connection (1006 for the client, or the 1007 close
    frame). The socket's place is given back like any other's, and the user's other socket stays
    open."""
    session = await session_of(alice)
    async with open_socket(server, session) as other:
        await hello(other)
        async with open_socket(server, session) as ws:
            await hello(ws)
            await ws.send(b'{"type": "ping", "id": "\xed\xa0\x80"}', text=True)
            assert await close_code(ws) in (None, 1006, 1007)
        assert await places_settle_at(alice, 1)
        await send(other, {"type": "ping", "id": "still-here"})
        assert await receive(other) == {"type": "pong", "id": "still-here"}


async def test_flooding_closes_4429(server, alice):
    async with open_socket(server, await session_of(alice)) as ws:
        await hello(ws)
        with contextlib.suppress(ConnectionClosed):  # the server may close mid-flood
            for n in range(30):
                await send(ws, {"type": "ping", "id": n})
        assert await close_code(ws) == 4429


async def test_resume_after_disconnect_gets_what_was_missed(server, alice):
    await notify(alice, "seen before")
    session = await session_of(alice)
    async with open_socket(server, session) as ws:
        last_id = (await hello(ws))["last_id"]
    missed = [(await notify(alice, f"missed {n}")).ids[0] for n in range(3)]

    async with open_socket(server, session) as ws:
        await hello(ws)
        await send(ws, {"type": "resume", "after": last_id})
        backlog = await receive(ws)
    assert backlog["type"] == "backlog" and backlog["complete"] is True
    ids = [item["id"] for item in backlog["notifications"]]
    assert ids == sorted(ids)  # oldest first
    # The backlog may reach back before last_id (the resume margin): the client drops those.
    new = [item for item in backlog["notifications"] if item["id"] > last_id]
    assert [item["id"] for item in new] == missed
    assert [item["title"] for item in new] == ["missed 0", "missed 1", "missed 2"]


async def test_rolled_back_notification_is_never_pushed(server, alice):
    def send_then_roll_back():
        with transaction.atomic():
            services.notify(alice, "never")
            transaction.set_rollback(True)

    async with open_socket(server, await session_of(alice)) as ws:
        await hello(ws)
        await sync_to_async(send_then_roll_back)()
        assert await nothing_within(ws, 0.5)
        await notify(alice, "after")
        message = await receive(ws)
        assert message["notification"]["title"] == "after"
        assert message["unread_count"] == 1


async def test_late_committing_notification_is_not_lost(server, alice):
    if connection.vendor != "postgresql":
        service_missing("the late-commit test needs PostgreSQL (DATABASE_URL)")
    started, release = threading.Event(), threading.Event()
    late_ids = []

    def send_late():
        try:
            with transaction.atomic():
                late_ids.extend(services.notify(alice, "late").ids)
                started.set()
                release.wait(10)
        finally:
            connection.close()

    session = await session_of(alice)
    thread = threading.Thread(target=send_late, daemon=True)
    thread.start()
    try:
        assert await asyncio.to_thread(started.wait, 5)
        async with open_socket(server, session) as ws:
            await hello(ws)
            await notify(alice, "early")
            message = await receive(ws)
            assert message["notification"]["title"] == "early"
            last_id = message["notification"]["id"]
    finally:
        release.set()
        await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()
    assert late_ids and late_ids[0] < last_id  # "late" took its id first, committed last

    async with open_socket(server, session) as ws:
        await hello(ws)
        await send(ws, {"type": "resume", "after": last_id})
        backlog = await receive(ws)
    assert backlog["type"] == "backlog"
    assert "late" in [item["title"] for item in backlog["notifications"]]


async def test_logout_closes_that_sessions_sockets(server, alice):
    client = Client()
    assert await sync_to_async(client.login)(username="alice", password="pw")
    other_session = await session_of(alice)
    session = client.cookies["sessionid"].value
    async with open_socket(server, session) as ws, open_socket(server, other_session) as other:
        await hello(ws)
        await hello(other)
        response = await sync_to_async(client.post)("/logout/")
        assert response.status_code == 302
        assert await close_code(ws) == 4401
        # Another session of the same user stays signed in.
        await send(other, {"type": "ping", "id": 1})
        assert await receive(other) == {"type": "pong", "id": 1}
    async with open_socket(server, session) as ws:
        assert await close_code(ws) == 4401  # the signed-out session cannot come back
