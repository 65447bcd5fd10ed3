"""api/notifications/metrics/: the counters in Prometheus' text format, for staff or a token."""

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from notifications.realtime.presence import registry
from tests.redis_keys import redis_cache

pytestmark = pytest.mark.django_db

URL = "/api/notifications/metrics/"
TOKEN = "a-scrapers-token-0123456789"


def scrape(client, **headers):
    response = client.get(URL, **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    values = {}
    for line in response.content.decode().splitlines():
        if not line.startswith("#"):
            name, value = line.split(" ")
            values[name] = int(value)
    return values


@pytest.fixture
def staff(make_user):
    client = Client()
    client.force_login(make_user("operator", is_staff=True))
    return client


def test_staff_read_the_counters_as_they_change(staff):
    before = scrape(staff)
    assert set(before) == {
        "notifications_connects_total",
        "notifications_auth_failures_total",
        "notifications_pushes_total",
        "notifications_resumes_total",
        "notifications_drops_total",
        "notifications_open_sockets",
    }
    registry().count_now("drops", 2)
    after = scrape(staff)
    assert after["notifications_drops_total"] == before["notifications_drops_total"] + 2
    assert after["notifications_pushes_total"] == before["notifications_pushes_total"]


def test_every_metric_has_help_and_type(staff):
    text = staff.get(URL).content.decode()
    for name in scrape(staff):
        kind = "gauge" if name == "notifications_open_sockets" else "counter"
        assert f"# TYPE {name} {kind}\n" in text and f"# HELP {name} " in text


def test_others_are_refused_with_json(alice):
    anonymous = Client()
    response = anonymous.get(URL)
    assert response.status_code == 403 and "METRICS_TOKEN" in response.json()["detail"]
    signed_in = Client()
    signed_in.force_login(alice)
    assert signed_in.get(URL).status_code == 403


def test_a_scraper_with_the_token(settings, staff):
    settings.NOTIFICATIONS = {"METRICS_TOKEN": TOKEN}
    scraper = Client()
    assert "notifications_open_sockets" in scrape(scraper, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    for header in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": TOKEN}):
        response = scraper.get(URL, **header)
        assert response.status_code == 401, header
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert "Authorization" in response.json()["detail"]
    assert staff.get(URL).status_code == 401  # with a token set, the token is the only way in


def test_only_get(staff):
    response = staff.post(URL)
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
    assert "not allowed" in response.json()["detail"]


def test_sockets_of_every_process_from_redis(staff, settings, redis_url):
    settings.CACHES = {"default": redis_cache(redis_url, "metrics")}
    before = scrape(staff)["notifications_open_sockets"]  # the session falls back to the database
    async_to_sync(registry().claim)(424242, "some-channel-elsewhere")
    assert scrape(staff)["notifications_open_sockets"] == before + 1
    async_to_sync(registry().release)(424242, "some-channel-elsewhere")


def test_redis_unreachable_is_a_503(settings):
    settings.NOTIFICATIONS = {"METRICS_TOKEN": TOKEN}  # no session: the cache is down
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    response = Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 503 and "cannot be read" in response.json()["detail"]
