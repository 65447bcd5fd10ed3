"""The Origin check of cookie WebSockets (notifications/realtime/origins.py): scheme, host and
port, through the project's real ASGI stack, and through a real daphne and uvicorn for the
handshake's HTTP 403."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from websockets.exceptions import InvalidStatus

from notifications.checks import check_websocket_origins
from notifications.realtime import tickets
from notifications.realtime.origins import own_origin, parse_origin
from project.asgi import application
from tests.sockets import open_socket, session_of
from tests.test_consumers import session_cookie

pytestmark = [pytest.mark.django_db(transaction=True)]


async def handshake(user, origin, host=b"127.0.0.1:8000", extra=()):
    """Whether a cookie socket of ``user`` opens from ``origin`` (None: no Origin header)."""
    headers = [(b"host", host), (b"cookie", await database_sync_to_async(session_cookie)(user))]
    if origin is not None:
        headers.append((b"origin", origin))
    communicator = WebsocketCommunicator(
        application, "/ws/notifications/", headers=[*headers, *extra]
    )
    connected, _ = await communicator.connect()
    if connected:
        assert (await communicator.receive_json_from(timeout=3))["type"] == "hello"
        await communicator.disconnect()
    return connected


async def test_the_sockets_own_origin_is_allowed(alice):
    assert await handshake(alice, b"http://127.0.0.1:8000")
    assert await handshake(alice, b"http://LOCALHOST:8000", host=b"localhost:8000")
    assert await handshake(alice, b"http://[::1]:8000", host=b"[::1]:8000")
    assert await handshake(alice, b"http://127.0.0.1", host=b"127.0.0.1:80")  # default port


@pytest.mark.parametrize(
    "origin",
    [
        b"http://127.0.0.1:8001",  # an allowed host, another port: another server
        b"https://127.0.0.1:8000",  # an allowed host, another scheme than the socket's
        b"http://127.0.0.1",  # port 80, not 8000
        b"https://evil.example",  # not in ALLOWED_HOSTS
        b"http://evil.example:8000",
        b"null",  # sandboxed frames, file:// pages
        b"http://127.0.0.1:8000/path",
        b"http://user@127.0.0.1:8000",
        b"ws://127.0.0.1:8000",
        b"http://127.0.0.1:99999",
        b"",
    ],
)
async def test_any_other_origin_is_refused_at_the_handshake(alice, origin):
    assert not await handshake(alice, origin)


async def test_a_cookie_socket_without_origin_is_refused(alice):
    assert not await handshake(alice, None)


async def test_two_origin_headers_are_refused(alice):
    assert not await handshake(
        alice, b"http://127.0.0.1:8000", extra=[(b"origin", b"https://evil.example")]
    )


async def test_a_ticket_socket_needs_no_origin_and_ignores_a_foreign_one(alice):
    for headers in ([], [(b"origin", b"https://evil.example")]):
        ticket = await database_sync_to_async(tickets.issue)(alice.pk)
        communicator = WebsocketCommunicator(
            application, f"/ws/notifications/?ticket={ticket}", headers=headers
        )
        connected, _ = await communicator.connect()
        assert connected
        assert (await communicator.receive_json_from(timeout=3))["type"] == "hello"
        await communicator.disconnect()


async def test_behind_a_tls_proxy_the_socket_is_secure_as_django_says(alice, settings):
    https = b"https://127.0.0.1:8000"
    forwarded = [(b"x-forwarded-proto", b"https")]
    # Without SECURE_PROXY_SSL_HEADER nothing says the socket is secure: an https page is
    # another origin (as Django's CSRF check sees it too).
    assert not await handshake(alice, https, extra=forwarded)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert await handshake(alice, https, extra=forwarded)
    assert not await handshake(alice, b"http://127.0.0.1:8000", extra=forwarded)
    assert not await handshake(alice, https)  # the proxy did not say https


async def test_the_forwarded_host_counts_only_when_django_is_told_to_use_it(alice, settings):
    origin = b"http://localhost:8000"
    forwarded = [(b"x-forwarded-host", b"localhost:8000")]
    assert not await handshake(alice, origin, host=b"127.0.0.1:9000", extra=forwarded)
    settings.USE_X_FORWARDED_HOST = True
    assert await handshake(alice, origin, host=b"127.0.0.1:9000", extra=forwarded)


async def test_explicit_origins_are_exact_and_replace_the_default(alice, settings):
    settings.NOTIFICATIONS = {
        "WEBSOCKET_ORIGINS": ["https://app.example.com", "http://127.0.0.1:9000"]
    }
    assert await handshake(alice, b"https://app.example.com")
    assert await handshake(alice, b"https://APP.example.com:443")  # the same origin
    assert await handshake(alice, b"http://127.0.0.1:9000")
    assert not await handshake(alice, b"http://127.0.0.1:8000")  # the socket's own: not listed
    assert not await handshake(alice, b"https://app.example.com:8443")
    assert not await handshake(alice, b"http://app.example.com")
    assert not await handshake(alice, b"https://sub.app.example.com")


async def test_a_wildcard_host_lets_any_host_in_but_still_checks_scheme_and_port(alice, settings):
    settings.ALLOWED_HOSTS = ["*"]
    assert await handshake(alice, b"http://anything.example:8000")
    assert not await handshake(alice, b"http://anything.example:8001")
    assert not await handshake(alice, b"https://anything.example:8000")


async def test_a_pattern_of_allowed_hosts_works_as_in_django(alice, settings):
    settings.ALLOWED_HOSTS = [".example.com"]
    assert await handshake(alice, b"http://www.example.com:8000", host=b"example.com:8000")
    assert not await handshake(alice, b"http://example.org:8000", host=b"example.com:8000")


async def test_in_debug_with_no_allowed_hosts_the_local_ones_are_allowed(alice, settings):
    settings.DEBUG, settings.ALLOWED_HOSTS = True, []
    assert await handshake(alice, b"http://localhost:8000", host=b"localhost:8000")
    assert not await handshake(alice, b"http://example.com:8000", host=b"example.com:8000")


def test_origins_parse_as_scheme_host_and_port():
    assert parse_origin("https://Example.COM") == ("https", "example.com", 443)
    assert parse_origin("http://example.com:8080") == ("http", "example.com", 8080)
    assert parse_origin("http://[::1]:8000") == ("http", "[::1]", 8000)
    for bad in ("example.com", "https://example.com/", "ftp://example.com", "https://", "null"):
        assert parse_origin(bad) is None
    scope = {"headers": [], "server": ["::1", 8000]}
    assert own_origin(scope) == ("http", "[::1]", 8000)
    assert own_origin({"headers": []}) is None


# --- the system checks ---------------------------------------------------------------------


def test_a_wildcard_in_allowed_hosts_without_explicit_origins_warns(settings):
    settings.ALLOWED_HOSTS = ["example.com", "*"]
    [warning] = check_websocket_origins()
    assert warning.id == "notifications.W005"
    settings.NOTIFICATIONS = {"WEBSOCKET_ORIGINS": ["https://example.com"]}
    assert check_websocket_origins() == []
    settings.NOTIFICATIONS = {}
    settings.ALLOWED_HOSTS = ["example.com"]
    assert check_websocket_origins() == []


@pytest.mark.parametrize(
    "origins", ["https://example.com", ["example.com"], ["https://example.com/app"], [None]]
)
def test_bad_explicit_origins_are_a_system_check_error(settings, origins):
    settings.NOTIFICATIONS = {"WEBSOCKET_ORIGINS": origins}
    with pytest.raises(SystemCheckError, match="WEBSOCKET_ORIGINS"):
        call_command("check")


# --- through daphne and uvicorn -------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:{other}", "https://127.0.0.1:{port}", "https://evil.example"]
)
async def test_the_server_answers_a_refused_origin_with_403(server, alice, origin):
    session = await session_of(alice)
    origin = origin.format(port=server.port, other=server.port + 1)
    with pytest.raises(InvalidStatus) as refused:
        async with open_socket(server, session, origin=origin):
            pass
    assert refused.value.response.status_code == 403
