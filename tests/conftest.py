import os
import socket
import uuid
from urllib.parse import urlparse

import pytest
from django.contrib.auth import get_user_model

from tests.redis_keys import PREFIX, delete_keys

pytest_plugins = [
    "tests.live",  # the server fixtures of the end-to-end and browser tests
    "tests.smtp",  # a real SMTP server for the email tests
    "tests.push_service",  # a push service for the Web Push tests
]

# CI sets this so that a test needing Redis (or another service) fails instead of skipping.
REQUIRE_SERVICES = os.environ.get("NOTIFICATIONS_REQUIRE_SERVICES") == "1"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def service_missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (NOTIFICATIONS_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


def redis_reachable(url: str = REDIS_URL) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 0.5):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def per_user_cache_keys_of_this_test_alone(monkeypatch):
    """Rate limits and credential notes are cached per user id, and user ids repeat from test to
    test (and from run to run in Redis): each test gets keys of its own, so that one test's
    writes do not throttle the next one's, nor its saved users block the next one's 304s."""
    from notifications import cache
    from notifications.api import credentials, throttling

    test = uuid.uuid4().hex
    monkeypatch.setattr(throttling, "THROTTLES", f"{cache.THROTTLES}{test}:")
    monkeypatch.setattr(credentials, "AUTH_USERS", f"{cache.AUTH_USERS}{test}:")
    monkeypatch.setattr(credentials, "AUTH_TOKENS", f"{cache.AUTH_TOKENS}{test}:")


@pytest.fixture
def redis_url() -> str:
    if not redis_reachable():
        service_missing(f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture(scope="session", autouse=True)
def redis_keys_removed_at_the_end():
    """The run's keys (tests/redis_keys.py) leave Redis with the run; no other key is touched."""
    yield
    if redis_reachable():
        delete_keys(REDIS_URL)


LAYERS = {
    "memory": lambda url: {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    "redis-pubsub": lambda url: {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": url}], "prefix": PREFIX},
    },
    "redis-core": lambda url: {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": url, "socket_timeout": None, "max_connections": 1000}],
            "prefix": PREFIX,
        },
    },
}


@pytest.fixture(params=list(LAYERS))
def channel_layer(request, settings):
    """Run the test over each channel layer: in memory, and both channels-redis layers."""
    name = request.param
    url = request.getfixturevalue("redis_url") if name.startswith("redis") else ""
    settings.CHANNEL_LAYERS = {"default": LAYERS[name](url)}
    return name


@pytest.fixture
def make_user(db):
    user_model = get_user_model()
    counter = iter(range(1, 1_000_000))

    def make(username: str | None = None, **fields):
        username = username or f"user{next(counter)}"
        return user_model.objects.create_user(username=username, password="pw", **fields)

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")
