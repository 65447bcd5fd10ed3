"""The cookie socket's authentication (``notifications.auth.SessionAuthMiddleware``) gives the
inner application what Channels' ``AuthMiddlewareStack`` gives it, for good cookies and hostile
ones alike: Channels' stack is the oracle, run on the same scope."""

import pytest
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from notifications.auth import SessionAuthMiddleware

pytestmark = [pytest.mark.django_db(transaction=True)]


class Seen:
    """An inner application that keeps the scope it was given and the send it was handed."""

    def __init__(self) -> None:
        self.scope: dict | None = None
        self.send = None

    async def __call__(self, scope, receive, send):
        self.scope, self.send = scope, send


async def through(stack, cookie: bytes | None) -> tuple[dict, object]:
    seen = Seen()
    headers = [(b"host", b"127.0.0.1:8000")]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    scope = {"type": "websocket", "path": "/ws/notifications/", "headers": headers}

    async def send(message):
        pass

    await stack(seen)(scope, None, send)
    assert seen.scope is not None
    return seen.scope, (seen.send, send)


def summary(scope: dict) -> tuple:
    user, session = scope["user"], scope["session"]
    return (
        scope["cookies"],
        session.session_key,
        dict(session.items()),
        user.is_authenticated,
        user.pk,
        user.is_anonymous,
    )


@database_sync_to_async
def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@database_sync_to_async
def change_password(user) -> None:
    user.set_password("a new one, elsewhere")
    user.save()


@database_sync_to_async
def deactivate(user) -> None:
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)


async def test_a_good_session_gives_its_user_as_channels_does(alice):
    cookie = f"theme=dark; sessionid={await session_cookie(alice)}".encode()
    ours, (send_given, original) = await through(SessionAuthMiddleware, cookie)
    theirs, _ = await through(AuthMiddlewareStack, cookie)
    assert summary(ours) == summary(theirs)
    assert ours["user"].pk == alice.pk and ours["cookies"]["theme"] == "dark"
    assert send_given is original  # no wrapper on the path of every frame


async def test_a_session_from_before_a_password_change_is_anonymous(alice):
    cookie = f"sessionid={await session_cookie(alice)}".encode()
    await change_password(alice)
    ours, _ = await through(SessionAuthMiddleware, cookie)
    theirs, _ = await through(AuthMiddlewareStack, cookie)
    assert not ours["user"].is_authenticated
    assert summary(ours)[3:] == summary(theirs)[3:]


async def test_an_inactive_users_session_is_anonymous(alice):
    cookie = f"sessionid={await session_cookie(alice)}".encode()
    await deactivate(alice)
    ours, _ = await through(SessionAuthMiddleware, cookie)
    assert not ours["user"].is_authenticated


# A 10 KB key is looked up as any other (Django's HTTP sessions do the same); the cache warns
# that memcached would refuse such a key.
@pytest.mark.filterwarnings("ignore::django.core.cache.backends.base.CacheKeyWarning")
@pytest.mark.parametrize(
    "cookie",
    [
        None,
        b"",
        b"sessionid=",
        b"sessionid=nosuchsession0123456789abcdefghij",
        b"sessionid=\x00\x00",
        "sessionid=١٢٣٤٥٦٧٨٩".encode(),
        "sessionid=ünïcödé; other=ü".encode(),
        b"sessionid=" + b"9" * 10_000,
        b"sessionid=a; sessionid=b; ;;; =; ==",
        b'sessionid="quoted\\"value"',
        b"\xff\xfe\xfd",
    ],
)
async def test_a_missing_or_hostile_cookie_is_anonymous_as_with_channels(cookie):
    ours, _ = await through(SessionAuthMiddleware, cookie)
    theirs, _ = await through(AuthMiddlewareStack, cookie)
    assert not ours["user"].is_authenticated
    assert summary(ours) == summary(theirs)
