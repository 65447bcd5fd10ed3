"""A socket lives exactly as long as the right to open it, in every process: two server processes
(a daphne and a uvicorn), sockets on both, and each way that right ends (docs/security.md lists
them)."""

import asyncio
import json
import re

import pytest
import requests
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.contrib.sessions.backends.cached_db import SessionStore
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token
from websockets.asyncio.client import connect

from notifications.realtime import broker
from notifications.realtime.node import node
from tests.conftest import REDIS_URL, redis_reachable, service_missing
from tests.live import use_the_servers_redis
from tests.servers import DaphneServer, UvicornServer, database_url
from tests.sockets import close_code, open_socket, receive, session_of

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "an-old-password-1"


@pytest.fixture(scope="module")
def servers(django_db_setup, tmp_path_factory):
    """A daphne and a uvicorn on the test database and Redis, checking credentials every second."""
    if not redis_reachable():
        service_missing(f"Redis is not reachable at {REDIS_URL}")
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "REDIS_URL": REDIS_URL,
        "DATABASE_URL": database_url(connection.settings_dict),
        "TEST_NOTIFICATIONS": json.dumps({"CREDENTIALS_CHECK_SECONDS": 1}),
    }
    directory = tmp_path_factory.mktemp("revocation")
    started = [kind(env, directory / f"{kind.name}.log") for kind in (DaphneServer, UvicornServer)]
    try:
        for server in started:
            server.start()
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def shared_redis(servers, settings):
    """This process speaks to the servers' channel layer and cache, as a web process would."""
    use_the_servers_redis(settings)


@pytest.fixture
def alice(make_user):
    return make_user("alice", is_staff=True)


def _set_password(user):
    user.set_password(PASSWORD)
    user.save()


async def greeted(ws) -> None:
    assert (await receive(ws))["type"] == "hello"


async def still_open(ws) -> bool:
    await ws.send(json.dumps({"type": "ping", "id": "still?"}))
    while True:
        message = await receive(ws)
        if message["type"] == "pong":
            return message == {"type": "pong", "id": "still?"}


async def sockets_of(servers, session):
    """A socket on each server, greeted."""
    opened = [await open_socket(server, session).__aenter__() for server in servers]
    for ws in opened:
        await greeted(ws)
    return opened


async def all_closed_with(sockets, code, seconds=10):
    codes = await asyncio.gather(*(close_code(ws, seconds) for ws in sockets))
    return codes == [code] * len(sockets)


async def cannot_reconnect(server, session) -> bool:
    async with open_socket(server, session) as ws:
        return await close_code(ws) == 4401


# --- the user changes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    ["deactivated", "deleted", "given an unusable password", "given a new password"],
)
async def test_a_user_change_closes_every_socket_in_every_process(
    change, servers, shared_redis, alice
):
    sessions = [await session_of(alice), await session_of(alice)]
    sockets = [ws for session in sessions for ws in await sockets_of(servers, session)]

    def apply():
        if change == "deactivated":
            alice.is_active = False
            alice.save()
        elif change == "deleted":
            alice.delete()
        elif change == "given an unusable password":
            alice.set_unusable_password()
            alice.save()
        else:  # outside any request: no session of hers keeps signed in
            _set_password(alice)

    await database_sync_to_async(apply)()
    assert await all_closed_with(sockets, 4401)
    for session in sessions:
        assert await cannot_reconnect(servers[0], session)


async def test_a_change_of_something_else_closes_nothing(servers, shared_redis, alice):
    sockets = await sockets_of(servers, await session_of(alice))

    def rename():
        alice.first_name = "Alice"
        alice.save()

    await database_sync_to_async(rename)()
    await asyncio.sleep(1.5)  # the recheck has come and gone, and a periodic check
    assert all([await still_open(ws) for ws in sockets])


# --- sessions ----------------------------------------------------------------------------------


async def test_logout_closes_that_sessions_sockets_everywhere_and_no_others(
    servers, shared_redis, alice
):
    client = Client()
    await sync_to_async(client.force_login)(alice)
    session = client.cookies["sessionid"].value
    sockets = await sockets_of(servers, session)
    others = await sockets_of(servers, await session_of(alice))
    await sync_to_async(client.post)("/logout/")
    assert await all_closed_with(sockets, 4401)
    assert all([await still_open(ws) for ws in others])


@pytest.mark.parametrize("how", ["flushed by other code", "expired"])
async def test_a_session_that_ends_without_a_signal_closes_its_sockets(
    how, servers, shared_redis, alice
):
    session = await session_of(alice)
    sockets = await sockets_of(servers, session)

    def end():
        store = SessionStore(session_key=session)
        if how == "expired":
            store.set_expiry(1)
            store.save()
        else:
            store.delete()

    await database_sync_to_async(end)()
    # Found by the periodic check: the session is gone (4440), and the client that comes back
    # with its cookie is refused (4401).
    assert await all_closed_with(sockets, 4440)
    assert await cannot_reconnect(servers[1], session)


async def test_another_users_login_in_the_same_browser_closes_the_first_users_sockets(
    servers, shared_redis, alice, make_user
):
    bob = await database_sync_to_async(make_user)("bob")
    browser = Client()
    await sync_to_async(browser.force_login)(alice)
    alices = await sockets_of(servers, browser.cookies["sessionid"].value)
    response = await sync_to_async(browser.post)(
        "/login/", {"username": bob.username, "password": "pw"}
    )
    assert response.status_code == 302
    assert await all_closed_with(alices, 4401)
    bobs = await sockets_of(servers, browser.cookies["sessionid"].value)
    for ws in bobs:
        await ws.close()


async def test_a_password_change_keeps_the_changers_browser_and_closes_the_others(
    servers, shared_redis, alice
):
    """Through daphne, as a browser does it: Django keeps the changer's session signed in (with
    a new key); its sockets reconnect with the new cookie. Every other session is signed out."""
    await database_sync_to_async(_set_password)(alice)
    changer, other = requests.Session(), requests.Session()
    base = f"http://127.0.0.1:{servers[0].port}"
    for browser in (changer, other):
        form = browser.get(f"{base}/login/")
        response = browser.post(
            f"{base}/login/",
            {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": _csrf(form.text)},
            allow_redirects=False,
        )
        assert response.status_code == 302
    changers = await sockets_of(servers, changer.cookies["sessionid"])
    others = await sockets_of(servers, other.cookies["sessionid"])

    form = changer.get(f"{base}/admin/password_change/")
    response = changer.post(
        f"{base}/admin/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-password-2",
            "new_password2": "a-new-password-2",
            "csrfmiddlewaretoken": _csrf(form.text),
        },
        allow_redirects=False,
    )
    assert response.status_code == 302
    assert await all_closed_with(others, 4401)
    assert await cannot_reconnect(servers[1], other.cookies["sessionid"])
    # The changer's: rotated, so told to come back (4440), and welcome with the new cookie.
    assert await all_closed_with(changers, 4440)
    again = await sockets_of(servers, changer.cookies["sessionid"])
    assert all([await still_open(ws) for ws in again])


def _csrf(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


# --- tickets -----------------------------------------------------------------------------------


def ticket_socket(server, ticket):
    return connect(
        f"ws://127.0.0.1:{server.port}/ws/notifications/?ticket={ticket}",
        proxy=None,
        open_timeout=5,
        close_timeout=2,
    )


async def test_a_ticket_socket_closes_with_the_token_that_asked_for_it(
    servers, shared_redis, alice
):
    token = await database_sync_to_async(Token.objects.create)(user=alice)
    sockets = []
    for server in servers:
        response = await asyncio.to_thread(
            requests.post,
            f"http://127.0.0.1:{server.port}/api/notifications/ws-ticket/",
            headers={"Authorization": f"Token {token.key}"},
        )
        ws = await ticket_socket(server, response.json()["ticket"]).__aenter__()
        await greeted(ws)
        sockets.append(ws)
    await database_sync_to_async(token.delete)()
    assert await all_closed_with(sockets, 4401)


async def test_a_ticket_socket_closes_with_the_session_that_asked_for_it(
    servers, shared_redis, alice
):
    client = Client()
    await sync_to_async(client.force_login)(alice)
    response = await sync_to_async(client.post)("/api/notifications/ws-ticket/")
    ws = await ticket_socket(servers[1], response.json()["ticket"]).__aenter__()
    await greeted(ws)
    await sync_to_async(client.post)("/logout/")
    assert await close_code(ws, 10) == 4401


# --- the race at connect -----------------------------------------------------------------------


async def test_a_revocation_between_authentication_and_joining_is_not_missed(
    alice, settings, monkeypatch
):
    """The socket is authenticated, then the user is deactivated (the revocation goes to a group
    the socket has not joined yet), then it joins: it must not stay open."""
    from tests.test_consumers import open_socket as open_in_process

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    join = broker.join

    async def deactivated_meanwhile(user_id, channel_name, attempts=3):
        def deactivate():
            alice.is_active = False
            alice.save()

        await database_sync_to_async(deactivate)()
        return await join(user_id, channel_name, attempts)

    monkeypatch.setattr(broker, "join", deactivated_meanwhile)
    communicator, connected, _ = await open_in_process(alice)
    assert connected
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    assert node().sockets == {}
