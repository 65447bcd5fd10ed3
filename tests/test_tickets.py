"""Ticket-authenticated sockets: no Origin needed, single use, bound to the user; and the REST API's
state changes reach the user's sockets."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

from notifications import services
from notifications.realtime import tickets
from project.asgi import application
from tests.test_consumers import ORIGIN, open_socket, signed_in

pytestmark = [pytest.mark.django_db(transaction=True)]


async def with_ticket(ticket, headers=()):
    communicator = WebsocketCommunicator(
        application, f"/ws/notifications/?ticket={ticket}", headers=list(headers)
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_a_ticket_connects_without_origin_and_is_single_use(channel_layer, alice):
    ticket = await database_sync_to_async(tickets.issue)(alice.pk)
    communicator = await with_ticket(ticket)
    hello = await communicator.receive_json_from(timeout=3)
    assert hello["type"] == "hello"
    batch = await database_sync_to_async(services.notify)(alice, "via ticket")
    assert (await communicator.receive_json_from(timeout=3))["notification"]["id"] == batch.ids[0]
    again = await with_ticket(ticket)
    assert await again.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


async def test_a_ticket_from_the_api(channel_layer, alice):
    def issue():
        client = APIClient()
        client.force_login(alice)
        return client.post("/api/notifications/ws-ticket/").json()["ticket"]

    communicator = await with_ticket(await database_sync_to_async(issue)())
    assert (await communicator.receive_json_from(timeout=3))["type"] == "hello"
    await communicator.disconnect()


@pytest.mark.parametrize("ticket", ["", "made-up", "x" * 500])
async def test_a_bad_ticket_is_closed_4401(ticket, alice):
    communicator = await with_ticket(ticket)
    assert await communicator.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}


async def test_an_expired_ticket_is_closed_4401(alice, settings):
    ticket = await database_sync_to_async(tickets.issue)(alice.pk)
    await database_sync_to_async(tickets.redeem)(ticket)  # as good as expired: gone from the cache
    communicator = await with_ticket(ticket, [ORIGIN])
    assert (await communicator.receive_output(timeout=3))["code"] == 4401


async def test_an_inactive_users_ticket_is_closed_4401(make_user):
    user = await database_sync_to_async(make_user)("dormant", is_active=False)
    ticket = await database_sync_to_async(tickets.issue)(user.pk)
    communicator = await with_ticket(ticket)
    assert (await communicator.receive_output(timeout=3))["code"] == 4401


async def test_cookies_without_origin_are_still_refused(alice):
    communicator, connected, _ = await open_socket(alice, origin=None)
    assert not connected


async def test_api_changes_reach_every_socket_of_the_user(channel_layer, alice):
    [nid] = (await database_sync_to_async(services.notify)(alice, "x")).ids
    tab, _ = await signed_in(alice)

    def read_through_the_api():
        client = APIClient()
        client.force_login(alice)
        assert client.post(f"/api/notifications/{nid}/read/").status_code == 200
        assert client.post(f"/api/notifications/{nid}/archive/").status_code == 200
        assert client.delete(f"/api/notifications/{nid}/").status_code == 204

    await database_sync_to_async(read_through_the_api)()
    for state in ("read", "archived", "deleted"):
        changed = await tab.receive_json_from(timeout=3)
        assert (
            changed["type"] == "changed" and changed["ids"] == [nid] and changed["state"] == state
        )
    assert changed["unread_count"] == 0
    await tab.disconnect()
