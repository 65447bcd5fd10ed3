"""Whether the credential a socket was opened with still holds (realtime/credentials.py),
answered as Django's ``get_user()`` and DRF's token authentication would answer it now, with
every session engine Django ships, and in a fixed number of queries however many sockets."""

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from notifications.protocol import CLOSE_REAUTHENTICATE, CLOSE_UNAUTHENTICATED
from notifications.realtime.credentials import Credential, _session_verdict, digest, verdicts

pytestmark = pytest.mark.django_db

ENGINES = {
    name: f"django.contrib.sessions.backends.{name}"
    for name in ("db", "cache", "cached_db", "file", "signed_cookies")
}


@pytest.fixture(params=list(ENGINES))
def engine(request, settings, tmp_path):
    settings.SESSION_ENGINE = ENGINES[request.param]
    settings.SESSION_FILE_PATH = str(tmp_path)
    return request.param


def logged_in(user, settings) -> Client:
    client = Client()
    client.force_login(user)
    return client


def session_of(client: Client, settings) -> Credential:
    return Credential("session", client.cookies[settings.SESSION_COOKIE_NAME].value)


def test_a_live_session_holds_with_every_engine(engine, settings, alice):
    session = session_of(logged_in(alice, settings), settings)
    assert verdicts([(alice.pk, session)]) == [None]


def test_a_session_that_ended_asks_the_client_to_reauthenticate(engine, settings, alice):
    client = logged_in(alice, settings)
    session = session_of(client, settings)
    client.logout()
    if engine == "signed_cookies":  # the cookie is the session: it cannot be ended on the server
        assert verdicts([(alice.pk, session)]) == [None]
    else:
        assert verdicts([(alice.pk, session)]) == [CLOSE_REAUTHENTICATE]


def test_a_password_change_ends_the_older_sessions_with_every_engine(engine, settings, alice):
    session = session_of(logged_in(alice, settings), settings)
    alice.set_password("another secret")
    alice.save()
    assert verdicts([(alice.pk, session)]) == [CLOSE_UNAUTHENTICATED]


def test_a_cached_db_session_the_cache_lost_is_read_from_the_database(settings, alice):
    settings.SESSION_ENGINE = ENGINES["cached_db"]
    from django.contrib.sessions.backends.cached_db import KEY_PREFIX
    from django.core.cache import caches

    session = session_of(logged_in(alice, settings), settings)
    caches[settings.SESSION_CACHE_ALIAS].delete(KEY_PREFIX + session.key)
    assert verdicts([(alice.pk, session)]) == [None]


def test_an_expired_database_session_asks_the_client_to_reauthenticate(settings, alice):
    settings.SESSION_ENGINE = ENGINES["db"]
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    session = session_of(logged_in(alice, settings), settings)
    Session.objects.filter(session_key=session.key).update(expire_date=timezone.now())
    assert verdicts([(alice.pk, session)]) == [CLOSE_REAUTHENTICATE]


def test_a_secret_key_rotation_keeps_the_sessions_it_signed(settings, alice):
    settings.SESSION_ENGINE = ENGINES["db"]
    session = session_of(logged_in(alice, settings), settings)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-for-this-test-alone-0123456789-abcdefghijklmnop"
    assert verdicts([(alice.pk, session)]) == [None]
    settings.SECRET_KEY_FALLBACKS = []  # the session's data no longer reads: no session at all
    assert verdicts([(alice.pk, session)]) == [CLOSE_REAUTHENTICATE]


def stored_session(settings, **data) -> Credential:
    """A database session holding ``data`` as it is, however odd."""
    settings.SESSION_ENGINE = ENGINES["db"]
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store.update(data)
    store.create()
    return Credential("session", store.session_key)


def test_a_session_that_names_another_user_does_not_hold(settings, alice, bob):
    session = stored_session(
        settings,
        **{
            SESSION_KEY: str(bob.pk),
            BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
            HASH_SESSION_KEY: bob.get_session_auth_hash(),
        },
    )
    assert verdicts([(alice.pk, session), (bob.pk, session)]) == [CLOSE_UNAUTHENTICATED, None]


@pytest.mark.parametrize("user_id", ["not a number", "١٢", "", None, "9" * 40, "1\x00"])
def test_a_session_whose_user_id_is_no_id_does_not_hold(settings, alice, user_id):
    session = stored_session(
        settings,
        **{
            SESSION_KEY: user_id,
            BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
            HASH_SESSION_KEY: alice.get_session_auth_hash(),
        },
    )
    assert verdicts([(alice.pk, session)]) == [CLOSE_UNAUTHENTICATED]


def test_a_session_from_a_backend_no_longer_configured_does_not_hold(settings, alice):
    session = stored_session(
        settings,
        **{
            SESSION_KEY: str(alice.pk),
            BACKEND_SESSION_KEY: "somewhere.else.Backend",
            HASH_SESSION_KEY: alice.get_session_auth_hash(),
        },
    )
    assert verdicts([(alice.pk, session)]) == [CLOSE_UNAUTHENTICATED]


def test_a_session_without_a_hash_does_not_hold(settings, alice):
    session = stored_session(
        settings,
        **{SESSION_KEY: str(alice.pk), BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0]},
    )
    assert verdicts([(alice.pk, session)]) == [CLOSE_UNAUTHENTICATED]


def test_a_user_model_without_session_hashes_is_trusted_on_its_session_alone(settings):
    class PlainUser:  # not an AbstractBaseUser: Django's get_user() checks no hash either
        pk = 7

    data = {SESSION_KEY: "7", BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0]}
    assert _session_verdict(data, PlainUser()) is None


def test_tokens_hold_while_they_exist_and_only_for_their_user(alice, bob):
    token = Token.objects.create(user=alice)
    credential = Credential("token", token.key)
    assert verdicts([(alice.pk, credential), (bob.pk, credential)]) == [None, CLOSE_UNAUTHENTICATED]
    token.delete()
    assert verdicts([(alice.pk, credential)]) == [CLOSE_UNAUTHENTICATED]


def test_a_token_is_refused_once_the_token_app_is_gone(settings, alice):
    credential = Credential("token", Token.objects.create(user=alice).key)
    settings.INSTALLED_APPS = [
        app for app in settings.INSTALLED_APPS if app != "rest_framework.authtoken"
    ]
    assert verdicts([(alice.pk, credential)]) == [CLOSE_UNAUTHENTICATED]


def test_an_inactive_or_deleted_user_holds_nothing(alice, bob):
    alice.is_active = False
    alice.save()
    bob_id = bob.pk
    bob.delete()
    assert verdicts([(alice.pk, None), (bob_id, None)]) == [CLOSE_UNAUTHENTICATED] * 2


def test_a_socket_from_another_kind_of_authentication_holds_with_its_user(alice):
    assert verdicts([(alice.pk, None)]) == [None]


def test_many_sockets_are_judged_in_a_fixed_number_of_queries(settings, make_user):
    settings.SESSION_ENGINE = ENGINES["db"]
    users = [make_user() for _ in range(30)]
    sockets = []
    for user in users:
        sockets.append((user.pk, session_of(logged_in(user, settings), settings)))
        sockets.append((user.pk, Credential("token", Token.objects.create(user=user).key)))
    with CaptureQueriesContext(connection) as queries:
        assert verdicts(sockets) == [None] * len(sockets)
    assert len(queries) == 3  # users, sessions, tokens


def test_events_name_a_credential_by_a_digest_never_by_its_key():
    credential = Credential("session", "s3cr3t-session-key")
    assert "s3cr3t" not in credential.digest
    assert (
        credential.digest
        == digest("session", "s3cr3t-session-key")
        != digest("token", "s3cr3t-session-key")
    )
    assert len(credential.digest) == 32
