"""The unread count's 304 is answered without a database query, from credentials noted in the
cache (notifications/api/credentials.py), and never for credentials revoked since: a session
older than a password change, a deactivated or deleted user, a deleted token."""

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from notifications import cache, services
from notifications.api import credentials

pytestmark = pytest.mark.django_db(transaction=True)

COUNT = "/api/notifications/unread-count/"


def session_client(user):
    client = Client()
    client.force_login(user)
    return client


def token_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


CLIENTS = {"session": session_client, "token": token_client}


def polling(client):
    """The client's current ETag, after checking that it is answered with a 304 now."""
    etag = client.get(COUNT)["ETag"]
    with CaptureQueriesContext(connection) as queries:
        assert client.get(COUNT, HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert len(queries) == 0
    return etag


def refused(client, etag):
    return client.get(COUNT, HTTP_IF_NONE_MATCH=etag).status_code in (401, 403)


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_deactivated_user_gets_no_304(alice, kind):
    client = CLIENTS[kind](alice)
    etag = polling(client)
    alice.is_active = False
    alice.save()
    assert refused(client, etag)


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_deleted_user_gets_no_304(alice, kind):
    client = CLIENTS[kind](alice)
    etag = polling(client)
    get_user_model().objects.filter(pk=alice.pk).delete()  # signals fire for each user
    assert refused(client, etag)


def test_a_session_older_than_a_password_change_gets_no_304(alice):
    old, new = session_client(alice), None
    etag = polling(old)
    alice.set_password("a new one")
    alice.save()
    assert refused(old, etag)
    new = session_client(alice)  # signed in with the new password: trusted once seen
    assert new.get(COUNT, HTTP_IF_NONE_MATCH=etag).status_code == 200
    caches["default"].delete(credentials.user_key(alice.pk))  # the tombstone's time is up
    assert polling(new)
    assert refused(old, etag)  # and the old session stays out


def test_a_deleted_token_gets_no_304_at_once(alice):
    client = token_client(alice)
    etag = polling(client)
    Token.objects.filter(user=alice).delete()
    assert client.get(COUNT, HTTP_IF_NONE_MATCH=etag).status_code == 401


def test_revocation_waits_for_the_commit_and_a_request_in_between_cannot_undo_it(alice):
    client = session_client(alice)
    etag = polling(client)
    with transaction.atomic():
        alice.is_active = False
        alice.save()
        # Not committed yet: what is committed is still an active user.
        assert caches["default"].get(credentials.user_key(alice.pk)) != "!revoked"
    # A request that read the active user before the commit, and notes it after: refused.
    stale = credentials.user_key(alice.pk)
    assert caches["default"].add(stale, "a hash read before", timeout=300) is False
    assert refused(client, etag)


def test_a_login_elsewhere_keeps_the_304_of_other_sessions(alice):
    client = session_client(alice)
    etag = polling(client)
    session_client(alice)  # saves last_login only
    assert client.get(COUNT, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_a_session_of_a_backend_no_longer_configured_gets_no_304(alice, settings):
    client = session_client(alice)
    etag = polling(client)
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.AllowAllUsersModelBackend"]
    assert refused(client, etag)


def test_a_change_that_bypasses_model_signals_is_seen_when_the_note_expires(alice):
    """QuerySet.update() sends no signal: the 304 can go on until the note expires
    (credentials.TRUST_SECONDS), as docs/api.md says; it reveals nothing meanwhile."""
    client = session_client(alice)
    etag = polling(client)
    get_user_model().objects.filter(pk=alice.pk).update(password="changed behind our back")
    assert client.get(COUNT, HTTP_IF_NONE_MATCH=etag).status_code == 304
    caches["default"].delete(credentials.user_key(alice.pk))  # expired
    assert refused(client, etag)


def test_news_still_means_a_200_for_trusted_credentials(alice):
    client = session_client(alice)
    etag = polling(client)
    services.notify(alice, "news")
    response = client.get(COUNT, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200 and response.json()["unread_count"] == 1


# --- across processes: revoked here, refused by daphne ----------------------------------------


@pytest.fixture(scope="module")
def server(daphne):
    """Daphne alone: polling is plain HTTP (tests.live's ``server`` runs on each server)."""
    return daphne


@pytest.mark.e2e
async def test_revocations_reach_every_process(
    server, alice, bob, same_redis_as_server, monkeypatch
):
    import http.client

    from tests.sockets import session_of

    for name in ("AUTH_USERS", "AUTH_TOKENS"):  # the keys daphne uses
        monkeypatch.setattr(credentials, name, getattr(cache, name))
    session = await session_of(alice)
    token = await database_sync_to_async(Token.objects.create)(user=bob)

    def get(headers):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", COUNT, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response.status, response.getheader("ETag")

    def poll(credential):
        status, etag = get(credential)
        assert status == 200
        assert get({**credential, "If-None-Match": etag})[0] == 304
        return etag

    def password_changed():
        alice.set_password("changed in another process")
        alice.save()

    by_session = {"Cookie": f"sessionid={session}"}
    by_token = {"Authorization": f"Token {token.key}"}
    alices = await database_sync_to_async(poll)(by_session)
    bobs = await database_sync_to_async(poll)(by_token)
    await database_sync_to_async(password_changed)()
    await database_sync_to_async(token.delete)()
    status, _ = await database_sync_to_async(get)({**by_session, "If-None-Match": alices})
    assert status in (401, 403)
    status, _ = await database_sync_to_async(get)({**by_token, "If-None-Match": bobs})
    assert status == 401
