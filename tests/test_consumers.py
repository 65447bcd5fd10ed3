"""The WebSocket consumer, through the project's real ASGI stack (origin check, session auth),
over the in-memory layer and both channels-redis layers."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async as sync_to_async  # closes its connections
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from notifications import services
from notifications.models import Notification
from notifications.realtime.consumer import NotificationConsumer
from project.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")  # what a browser sends with that origin's socket


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(user=None, *, origin=ORIGIN, cookie: bytes | None = None):
    headers = [HOST, origin] if origin else [HOST]
    if user is not None:
        cookie = await sync_to_async(session_cookie)(user)
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


async def signed_in(user):
    communicator, connected, _ = await open_socket(user)
    assert connected
    hello = await communicator.receive_json_from(timeout=3)
    assert hello["type"] == "hello"
    return communicator, hello


async def send(user, title, **options):
    return await sync_to_async(services.notify)(user, title, **options)


async def test_hello_carries_counts_and_last_id(channel_layer, alice):
    batch = await send(alice, "First")
    communicator, hello = await signed_in(alice)
    assert hello == {"type": "hello", "unread_count": 1, "unseen_count": 1, "last_id": batch.ids[0]}
    await communicator.disconnect()


async def test_hello_for_a_user_with_nothing(channel_layer, alice):
    communicator, hello = await signed_in(alice)
    assert hello == {"type": "hello", "unread_count": 0, "unseen_count": 0, "last_id": None}
    await communicator.disconnect()


async def test_anonymous_is_accepted_then_closed_4401(channel_layer):
    communicator, connected, _ = await open_socket()
    assert connected
    assert await communicator.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}


async def test_bad_session_cookie_is_closed_4401(channel_layer):
    communicator, connected, _ = await open_socket(cookie=b"sessionid=not-a-session")
    assert connected
    assert (await communicator.receive_output(timeout=3))["code"] == 4401


async def test_foreign_origin_is_refused_at_handshake(channel_layer, alice):
    evil = (b"origin", b"https://evil.example")
    communicator, connected, _ = await open_socket(alice, origin=evil)
    # Closed before accept(): daphne answers the handshake with HTTP 403 (see the e2e test).
    assert not connected


async def test_notification_reaches_every_socket_of_the_user_and_no_one_else(
    channel_layer, alice, bob
):
    tab1, _ = await signed_in(alice)
    tab2, _ = await signed_in(alice)
    other, _ = await signed_in(bob)
    batch = await send(
        alice, "Export ready", url="/exports/7/", category="exports", level="success"
    )
    for tab in (tab1, tab2):
        message = await tab.receive_json_from(timeout=3)
        assert message["type"] == "notification"
        assert message["unread_count"] == 1 and message["unseen_count"] == 1
        notification = message["notification"]
        assert notification["id"] == batch.ids[0]
        assert notification["title"] == "Export ready"
        assert notification["url"] == "/exports/7/"
        assert notification["level"] == "success" and notification["category"] == "exports"
        assert notification["read_at"] is None
        assert notification["created_at"].endswith("Z")
    assert await other.receive_nothing(timeout=0.3)
    for communicator in (tab1, tab2, other):
        await communicator.disconnect()


async def test_payload_matches_the_serializer_including_actor(channel_layer, alice, bob):
    communicator, _ = await signed_in(alice)
    await send(alice, "Bob waved", actor=bob, target=bob, data={"n": 1})
    message = await communicator.receive_json_from(timeout=3)
    stored = await sync_to_async(Notification.objects.get)()
    from notifications.protocol import serialize

    assert message["notification"] == await sync_to_async(serialize)(stored)
    assert message["notification"]["actor"] == {
        "type": "auth.user",
        "id": str(bob.pk),
        "display": "bob",
    }
    await communicator.disconnect()


async def test_rolled_back_notification_is_never_pushed(channel_layer, alice):
    from django.db import transaction

    communicator, _ = await signed_in(alice)

    def send_then_fail():
        with transaction.atomic():
            services.notify(alice, "Never")
            transaction.set_rollback(True)

    await sync_to_async(send_then_fail)()
    assert await communicator.receive_nothing(timeout=0.5)
    assert await sync_to_async(Notification.objects.count)() == 0
    await communicator.disconnect()


async def test_push_waits_for_commit_and_batches_the_transaction(channel_layer, alice):
    from django.db import transaction

    communicator, _ = await signed_in(alice)
    pushed_inside: list[bool] = []

    def send_two():
        with transaction.atomic():
            services.notify(alice, "One")
            services.notify(alice, "Two")
            pushed_inside.append(False)

    await sync_to_async(send_two)()
    first = await communicator.receive_json_from(timeout=3)
    second = await communicator.receive_json_from(timeout=3)
    assert [first["notification"]["title"], second["notification"]["title"]] == ["One", "Two"]
    # Both arrive with the counts after the whole transaction.
    assert first["unread_count"] == second["unread_count"] == 2
    await communicator.disconnect()


async def test_ping_pong(channel_layer, alice):
    communicator, _ = await signed_in(alice)
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.send_json_to({"type": "ping", "id": "abc"})
    assert await communicator.receive_json_from() == {"type": "pong", "id": "abc"}
    await communicator.send_json_to({"type": "ping", "id": 7})
    assert await communicator.receive_json_from() == {"type": "pong", "id": 7}
    await communicator.disconnect()


async def test_resume_returns_what_was_missed_oldest_first(channel_layer, alice):
    first = await send(alice, "Seen before")
    missed = [(await send(alice, f"Missed {i}")).ids[0] for i in range(3)]
    communicator, _ = await signed_in(alice)
    await communicator.send_json_to({"type": "resume", "after": first.ids[0]})
    backlog = await communicator.receive_json_from(timeout=3)
    assert backlog["type"] == "backlog" and backlog["complete"] is True
    ids = [n["id"] for n in backlog["notifications"]]
    assert ids == missed
    assert ids == sorted(ids)
    await communicator.disconnect()


async def test_resume_is_incomplete_past_the_limit(channel_layer, alice, settings):
    settings.NOTIFICATIONS = {"BACKLOG_LIMIT": 2, "RESUME_MARGIN_SECONDS": 1}
    for i in range(3):
        await send(alice, f"n{i}")
    communicator, _ = await signed_in(alice)
    await communicator.send_json_to({"type": "resume", "after": 0})
    backlog = await communicator.receive_json_from(timeout=3)
    assert len(backlog["notifications"]) == 2 and backlog["complete"] is False
    await communicator.disconnect()


async def test_resume_never_returns_another_users_rows(channel_layer, alice, bob):
    await send(bob, "Bob's")
    communicator, _ = await signed_in(alice)
    await communicator.send_json_to({"type": "resume", "after": 0})
    assert (await communicator.receive_json_from(timeout=3))["notifications"] == []
    await communicator.disconnect()


async def test_mark_read_is_answered_on_every_socket_of_the_user(channel_layer, alice, bob):
    batch = await send(alice, "Read me")
    bobs = await send(bob, "Not yours")
    tab1, _ = await signed_in(alice)
    tab2, _ = await signed_in(alice)
    await tab1.send_json_to({"type": "mark_read", "ids": [batch.ids[0], bobs.ids[0]]})
    for tab in (tab1, tab2):
        changed = await tab.receive_json_from(timeout=3)
        assert changed == {
            "type": "changed",
            "ids": batch.ids,  # bob's id is not alice's to change
            "state": "read",
            "up_to": None,
            "count": 1,
            "unread_count": 0,
            "unseen_count": 1,
        }
    assert await sync_to_async(Notification.objects.filter(pk=bobs.ids[0], read_at=None).exists)()
    await tab1.send_json_to({"type": "mark_unread", "ids": batch.ids})
    for tab in (tab1, tab2):
        assert (await tab.receive_json_from(timeout=3))["state"] == "unread"
    for tab in (tab1, tab2):
        await tab.disconnect()


async def test_mark_all_read_is_race_safe_with_up_to(channel_layer, alice):
    old = [(await send(alice, f"old {i}")).ids[0] for i in range(2)]
    new = await send(alice, "arrived after the click")
    communicator, _ = await signed_in(alice)
    await communicator.send_json_to({"type": "mark_all_read", "up_to": old[-1]})
    changed = await communicator.receive_json_from(timeout=3)
    assert changed["ids"] == old and changed["state"] == "read" and changed["unread_count"] == 1
    assert await sync_to_async(Notification.objects.filter(pk=new.ids[0], read_at=None).exists)()
    await communicator.send_json_to({"type": "mark_all_read"})
    assert (await communicator.receive_json_from(timeout=3))["unread_count"] == 0
    await communicator.disconnect()


async def test_mark_seen_clears_the_badge(channel_layer, alice):
    batch = await send(alice, "New")
    communicator, hello = await signed_in(alice)
    assert hello["unseen_count"] == 1
    await communicator.send_json_to({"type": "mark_seen", "up_to": batch.ids[0]})
    changed = await communicator.receive_json_from(timeout=3)
    assert (
        changed["state"] == "seen" and changed["unseen_count"] == 0 and changed["unread_count"] == 1
    )
    await communicator.disconnect()


async def test_a_change_that_changes_nothing_is_still_answered(channel_layer, alice):
    communicator, _ = await signed_in(alice)
    await communicator.send_json_to({"type": "mark_read", "ids": [123456]})
    assert await communicator.receive_json_from(timeout=3) == {
        "type": "changed",
        "ids": [],
        "state": "read",
        "up_to": None,
        "count": 0,
        "unread_count": 0,
        "unseen_count": 0,
    }
    await communicator.send_json_to({"type": "mark_all_read"})
    assert (await communicator.receive_json_from(timeout=3))["count"] == 0
    await communicator.disconnect()


async def test_mark_all_read_of_many_sends_one_compact_frame_to_every_socket(
    channel_layer, alice, settings
):
    settings.NOTIFICATIONS = {"MAX_IDS_PER_MESSAGE": 5}

    def many():
        Notification.objects.bulk_create(Notification(recipient=alice, title="x") for _ in range(8))
        return list(Notification.objects.filter(recipient=alice).values_list("id", flat=True))

    ids = await sync_to_async(many)()
    tab1, _ = await signed_in(alice)
    tab2, _ = await signed_in(alice)
    await tab1.send_json_to({"type": "mark_all_read", "up_to": max(ids)})
    for tab in (tab1, tab2):
        assert await tab.receive_json_from(timeout=3) == {
            "type": "changed",
            "ids": [],  # more than MAX_IDS_PER_MESSAGE: up_to says which
            "state": "read",
            "up_to": max(ids),
            "count": 8,
            "unread_count": 0,
            "unseen_count": 8,
        }
        assert await tab.receive_nothing(timeout=0.2)  # one frame, not one per batch or id
    await tab1.send_json_to({"type": "mark_seen", "up_to": max(ids)})
    for tab in (tab1, tab2):
        changed = await tab.receive_json_from(timeout=3)
        assert (changed["state"], changed["up_to"], changed["count"]) == ("seen", max(ids), 8)
    for tab in (tab1, tab2):
        await tab.disconnect()


BAD_MESSAGES = [
    ("not json", "invalid_json"),
    ("[1, 2]", "invalid_message"),
    ('{"no": "type"}', "invalid_message"),
    ('{"type": 5}', "invalid_message"),
    ('{"type": "explode"}', "unknown_type"),
    ('{"type": "resume"}', "invalid_field"),
    ('{"type": "resume", "after": "ten"}', "invalid_field"),
    ('{"type": "resume", "after": -1}', "invalid_field"),
    ('{"type": "resume", "after": true}', "invalid_field"),
    ('{"type": "resume", "after": 1.5}', "invalid_field"),
    ('{"type": "mark_read"}', "invalid_field"),
    ('{"type": "mark_read", "ids": "1,2"}', "invalid_field"),
    ('{"type": "mark_read", "ids": [1, "x"]}', "invalid_field"),
    ('{"type": "mark_read", "ids": {"a": 1}}', "invalid_field"),
    ('{"type": "mark_unread", "ids": [null]}', "invalid_field"),
    ('{"type": "mark_all_read", "up_to": "all"}', "invalid_field"),
    ('{"type": "mark_seen"}', "invalid_field"),
    ('{"type": "ping", "id": {"deep": 1}}', "invalid_field"),
    ('{"type": "ping", "id": "' + "x" * 65 + '"}', "invalid_field"),
    # Hostile: nesting past the parser's recursion limit, numbers no id can be, NUL bytes and
    # lone surrogates (valid JSON escapes), non-ASCII digits, wrong types everywhere.
    ("[" * 4000, "invalid_json"),
    ('{"type": "ping", "id": ' + "[" * 2000 + "]" * 2000 + "}", "invalid_json"),
    # Deeper than 32 levels, anywhere: refused whether or not this Python's decoder could read it.
    ('{"type": "ping", "x": ' + "[" * 33 + "]" * 33 + "}", "invalid_json"),
    ('{"type": "ping", "x": ' + '{"a":' * 40 + "1" + "}" * 40 + "}", "invalid_json"),
    ('{"type": "resume", "after": ' + "9" * 4050 + "}", "invalid_field"),
    ('{"type": "resume", "after": 1e400}', "invalid_field"),
    ('{"type": "resume", "after": 99999999999999999999}', "invalid_field"),
    ('{"type": "resume", "after": 0, "cursor": "²"}', "invalid_field"),
    ('{"type": "resume", "after": "٣"}', "invalid_field"),
    ('{"type": "mark_read", "ids": [1e400]}', "invalid_field"),
    (r'{"type": "\u0000ping"}', "unknown_type"),
    (r'{"type": "\ud800"}', "unknown_type"),
    (r'{"type": "ping", "id": "\ud800\u0000"}', None),
    ('{"type": "\ud800 raw"}', "unknown_type"),  # not an escape: a lone surrogate in the text
    ('{"type": "mark_seen", "up_to": [[[[1]]]]}', "invalid_field"),
]


@pytest.mark.parametrize(("raw", "code"), BAD_MESSAGES)
async def test_bad_input_gets_an_error_and_the_socket_stays_open(raw, code, alice, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    communicator, _ = await signed_in(alice)
    await communicator.send_to(text_data=raw)
    answer = await communicator.receive_json_from(timeout=3)
    if code is None:  # odd but valid: echoed back, escaped
        assert answer == {"type": "pong", "id": "\ud800\x00"}
    else:
        assert answer["type"] == "error" and answer["code"] == code and answer["detail"]
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_a_frame_nested_up_to_the_limit_is_read(alice, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    communicator, _ = await signed_in(alice)
    deepest = '{"type": "ping", "id": 7, "x": ' + "[" * 31 + "]" * 31 + "}"  # 32 with the frame
    await communicator.send_to(text_data=deepest)
    assert await communicator.receive_json_from(timeout=3) == {"type": "pong", "id": 7}
    await communicator.disconnect()


async def test_too_many_ids_is_an_error(alice, settings):
    settings.NOTIFICATIONS = {"MAX_IDS_PER_MESSAGE": 3}
    communicator, _ = await signed_in(alice)
    await communicator.send_json_to({"type": "mark_read", "ids": [1, 2, 3, 4]})
    error = await communicator.receive_json_from(timeout=3)
    assert error["code"] == "invalid_field" and "at most 3" in error["detail"]
    await communicator.disconnect()


async def test_binary_frames_get_an_error(alice):
    communicator, _ = await signed_in(alice)
    await communicator.send_to(bytes_data=b"\x00\x01")
    assert (await communicator.receive_json_from(timeout=3))["code"] == "binary_not_supported"
    await communicator.disconnect()


async def test_oversized_message_closes_4413(alice, settings):
    settings.NOTIFICATIONS = {"MAX_MESSAGE_BYTES": 100}
    communicator, _ = await signed_in(alice)
    await communicator.send_to(text_data=json.dumps({"type": "ping", "id": "x" * 200}))
    assert await communicator.receive_output(timeout=3) == {"type": "websocket.close", "code": 4413}


async def test_flooding_closes_4429(alice, settings):
    settings.NOTIFICATIONS = {"MESSAGES_PER_SECOND": 1, "MESSAGE_BURST": 3}
    communicator, _ = await signed_in(alice)
    for _ in range(3):
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_output(timeout=3) == {"type": "websocket.close", "code": 4429}


async def test_logout_closes_that_sessions_sockets_only(channel_layer, alice):
    client = Client()
    await sync_to_async(client.force_login)(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    this_session, _, _ = await open_socket(cookie=cookie)
    await this_session.receive_json_from(timeout=3)
    other_device, _ = await signed_in(alice)
    await sync_to_async(client.post)("/logout/")
    assert await this_session.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
    assert await other_device.receive_nothing(timeout=0.3)
    await other_device.disconnect()


async def test_password_change_closes_every_socket_of_the_user(channel_layer, alice, bob):
    tab1, _ = await signed_in(alice)
    tab2, _ = await signed_in(alice)
    bobs, _ = await signed_in(bob)

    def change_password():
        user = get_user_model().objects.get(pk=alice.pk)
        user.set_password("a new password")
        user.save()

    await sync_to_async(change_password)()
    for tab in (tab1, tab2):
        assert await tab.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
    assert await bobs.receive_nothing(timeout=0.3)
    await bobs.disconnect()


async def test_a_session_from_before_the_password_change_cannot_reconnect(alice):
    cookie = await sync_to_async(session_cookie)(alice)

    def change_password():
        alice.set_password("another one")
        alice.save()

    await sync_to_async(change_password)()
    communicator, connected, _ = await open_socket(cookie=cookie)
    assert connected
    assert (await communicator.receive_output(timeout=3))["code"] == 4401


async def test_disconnect_leaves_the_group(channel_layer, alice):
    communicator, _ = await signed_in(alice)
    await communicator.disconnect()
    await send(alice, "After the socket left")  # must not fail or block
    await asyncio.sleep(0.05)


def test_consumer_is_the_routed_one():
    from notifications.routing import websocket_urlpatterns

    assert websocket_urlpatterns[0].callback.consumer_class is NotificationConsumer


async def test_connect_costs_two_queries(alice, monkeypatch):
    from django.db.backends.utils import CursorWrapper

    cookie = await sync_to_async(session_cookie)(alice)  # cached_db: the session is in the cache
    statements = []
    execute = CursorWrapper.execute

    def counted(self, sql, params=None):
        statements.append(sql)
        return execute(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", counted)  # every thread's connection
    communicator, connected, _ = await open_socket(cookie=cookie)
    assert connected
    assert (await communicator.receive_json_from(timeout=3))["type"] == "hello"
    monkeypatch.undo()
    await communicator.disconnect()
    # the user (session auth), then the counts of hello
    assert len(statements) == 2, statements
