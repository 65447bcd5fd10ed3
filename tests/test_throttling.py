"""Rate limits on ticket issuing and on every write of the REST API: 429 as JSON with
Retry-After, counted per user in the app's cache, and so shared by every process."""

import asyncio
import time

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import BaseThrottle

from notifications import cache, services
from notifications.api import throttling
from notifications.api.throttling import window
from notifications.api.views import NotificationViewSet

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/api/notifications/"


def client_for(user):
    client = APIClient()
    client.force_login(user)
    return client


def out_of_the_end_of_a_window(scope, user, period, needed=10.0):
    """Tests count on one window: when fewer than ``needed`` seconds of it are left, wait for
    the next one."""
    _, left = window(scope, user.pk, period, time.time())
    if left < needed:
        time.sleep(left + 0.05)


def test_ticket_issuing_is_limited_with_a_json_429_and_retry_after(alice, bob, settings):
    settings.NOTIFICATIONS = {"THROTTLE_RATES": {"ticket": "2/minute"}}
    out_of_the_end_of_a_window("ticket", alice, 60)
    api = client_for(alice)
    assert [api.post(f"{BASE}ws-ticket/").status_code for _ in range(2)] == [200, 200]
    refused = api.post(f"{BASE}ws-ticket/")
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert "throttled" in refused.json()["detail"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Per user, and tickets have a budget of their own: reads and writes still go through.
    assert client_for(bob).post(f"{BASE}ws-ticket/").status_code == 200
    assert api.get(f"{BASE}unread-count/").status_code == 200
    assert api.post(f"{BASE}read-all/", {}, format="json").status_code == 200


def test_every_write_shares_one_budget_and_reads_are_not_limited(alice, settings):
    settings.NOTIFICATIONS = {"THROTTLE_RATES": {"write": "7/minute"}}
    out_of_the_end_of_a_window("write", alice, 60)
    first, second = (services.notify(alice, f"n{i}").ids[0] for i in range(2))
    api = client_for(alice)
    writes = [
        api.post(f"{BASE}{first}/read/"),
        api.post(f"{BASE}{first}/unread/"),
        api.post(f"{BASE}{first}/archive/"),
        api.post(f"{BASE}{first}/unarchive/"),
        api.post(f"{BASE}read-all/", {}, format="json"),
        api.post(f"{BASE}seen/", {"up_to": second}, format="json"),
        api.put(f"{BASE}preferences/", {"muted_categories": [], "muted_levels": []}, format="json"),
    ]
    assert [response.status_code for response in writes] == [200] * 7
    refused = api.delete(f"{BASE}{second}/")
    assert refused.status_code == 429 and "Retry-After" in refused
    assert api.get(BASE).status_code == 200
    assert api.get(f"{BASE}{second}/").status_code == 200
    assert api.get(f"{BASE}preferences/").status_code == 200
    assert api.get(f"{BASE}unread-count/").status_code == 200


def test_none_lifts_a_limit_and_the_projects_own_throttles_still_apply(
    alice, settings, monkeypatch
):
    settings.NOTIFICATIONS = {"THROTTLE_RATES": {"ticket": None}}
    api = client_for(alice)
    assert all(api.post(f"{BASE}ws-ticket/").status_code == 200 for _ in range(40))

    class NoReads(BaseThrottle):  # as a project's DEFAULT_THROTTLE_CLASSES would be
        def allow_request(self, request, view):
            return request.method != "GET"

    monkeypatch.setattr(NotificationViewSet, "throttle_classes", [NoReads])
    assert api.get(BASE).status_code == 429
    assert api.post(f"{BASE}ws-ticket/").status_code == 200


def test_an_unreachable_cache_lets_requests_through(alice, settings):
    settings.NOTIFICATIONS = {"THROTTLE_RATES": {"ticket": "1/minute"}}
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    api = APIClient()
    api.force_authenticate(alice)
    assert [api.post(f"{BASE}read-all/", {}, format="json").status_code for _ in range(3)] == [
        200
    ] * 3


@pytest.mark.parametrize(
    "rates",
    [
        {"tickets": "1/minute"},
        {"ticket": "fast"},
        {"ticket": "1/fortnight"},
        {"ticket": 5},
        ["1/minute"],
    ],
)
def test_bad_rates_are_a_system_check_error(settings, rates):
    from django.core.management.base import SystemCheckError

    settings.NOTIFICATIONS = {"THROTTLE_RATES": rates}
    with pytest.raises(SystemCheckError, match="THROTTLE_RATES"):
        call_command("check")


def test_the_schema_documents_the_429_of_every_limited_operation(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    limited = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "429" in operation.get("responses", {})
    }
    assert ("POST", f"{BASE}ws-ticket/") in limited
    assert ("DELETE", f"{BASE}{{id}}/") in limited
    assert ("PUT", f"{BASE}preferences/") in limited
    assert ("GET", f"{BASE}preferences/") not in limited
    assert ("GET", f"{BASE}unread-count/") not in limited
    assert ("POST", f"{BASE}push-subscriptions/") in limited
    assert ("GET", f"{BASE}push-subscriptions/") not in limited
    assert ("POST", f"{BASE}subscriptions/mute/") in limited
    assert ("PATCH", f"{BASE}subscriptions/{{id}}/") in limited
    assert ("GET", f"{BASE}subscriptions/") not in limited
    # The ticket, the eight writes, three of push subscriptions and five of following.
    assert len(limited) == 17


def test_windows_turn_over_at_a_moment_of_each_users_own():
    starts = {window("write", user_id, 60, 1_000_000.0)[1] for user_id in range(50)}
    assert len(starts) > 40
    number, left = window("write", 7, 60, 1_000_000.0)
    assert window("write", 7, 60, 1_000_000.0 + left + 0.001) == (
        number + 1,
        pytest.approx(60, abs=0.01),
    )


# --- across processes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(daphne):
    """Daphne alone: the budget is the app's, whichever server asks (tests.live's ``server``
    runs on each)."""
    return daphne


@pytest.mark.e2e
async def test_one_budget_across_processes(server, alice, same_redis_as_server, monkeypatch):
    """Tickets issued by this process and by daphne (its own process, the default 30/minute)
    count in the same Redis: the 31st is refused wherever it is asked for."""
    from channels.db import database_sync_to_async

    monkeypatch.setattr(throttling, "THROTTLES", cache.THROTTLES)  # as daphne counts
    token = await database_sync_to_async(Token.objects.create)(user=alice)
    here = APIClient()
    here.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    await asyncio.to_thread(out_of_the_end_of_a_window, "ticket", alice, 60, 20)

    def post_here():
        return here.post(f"{BASE}ws-ticket/").status_code

    async def post_to_daphne():
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            f"POST {BASE}ws-ticket/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Token {token.key}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        answer = await reader.read()
        writer.close()
        status = int(answer.split(b" ", 2)[1])
        return status, answer

    statuses = []
    for i in range(30):
        if i % 2:
            statuses.append((await post_to_daphne())[0])
        else:
            statuses.append(await database_sync_to_async(post_here)())
    assert statuses == [200] * 30
    status, answer = await post_to_daphne()
    assert status == 429 and b"Retry-After:" in answer and b'"detail"' in answer
    assert await database_sync_to_async(post_here)() == 429
