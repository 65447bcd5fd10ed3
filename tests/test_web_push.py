"""Web Push as a push service receives it: notify() to users with subscribed browsers, the
pushes encrypted, signed and posted to a push service written for the tests
(tests/push_service.py), which checks the VAPID JWT and the headers and decrypts each payload
with the browser's private key, independently of the library that encrypted it."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import redis
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications import services
from notifications.models import Notification, PushSubscription
from notifications.push import delivery, keys, payload, subscriptions, targets
from notifications.push.tasks import send_pushes
from notifications.realtime.presence import RedisRegistry, registry
from tests.push_service import PushService

SUBJECT = "mailto:ops@example.com"


@pytest.fixture(scope="module")
def vapid() -> tuple[str, str]:
    return keys.generate()


def immediate_backend() -> str:
    try:
        import django.tasks  # noqa: F401

        return "django.tasks.backends.immediate.ImmediateBackend"
    except ImportError:
        return "django_tasks.backends.immediate.ImmediateBackend"


@pytest.fixture
def push_on(settings, vapid):
    """Web Push on, its tasks run as they are enqueued (tests/settings.py queues them in the
    database for a worker)."""
    public, private = vapid
    settings.TASKS = {"default": {"BACKEND": immediate_backend()}}
    settings.NOTIFICATIONS = {
        "WEB_PUSH": True,
        "WEB_PUSH_VAPID_PUBLIC_KEY": public,
        "WEB_PUSH_VAPID_PRIVATE_KEY": private,
        "WEB_PUSH_VAPID_SUBJECT": SUBJECT,
        "WEB_PUSH_ALLOW_LOOPBACK_HTTP": True,
    }
    return settings


@pytest.fixture
def service(vapid):
    with PushService(expected_vapid_key=vapid[0]) as started:
        yield started


@pytest.fixture
def browser_of(service, push_on):
    """Subscribe a new browser of ``user`` at the push service, as the widget does."""

    def subscribe(user):
        browser = service.subscribe()
        subscriptions.save(user, subscriptions.clean(browser.as_json()), "Test browser")
        return browser

    return subscribe


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """notify(), with its after-commit receivers run (and so the push task: push_on)."""

    def send_(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return services.notify(*args, **kwargs)

    return send_


def by_endpoint(messages):
    return {message.endpoint: message for message in messages}


def test_each_browser_of_each_recipient_gets_the_notification_encrypted_and_signed(
    alice, bob, browser_of, service, send, vapid
):
    alice_laptop, alice_phone, bob_browser = browser_of(alice), browser_of(alice), browser_of(bob)
    send([alice, bob], "Build failed", "main is red", level="error", url="/builds/7")

    received = by_endpoint(service.wait_for(3))
    assert set(received) == {alice_laptop.endpoint, alice_phone.endpoint, bob_browser.endpoint}
    for browser, user in ((alice_laptop, alice), (alice_phone, alice), (bob_browser, bob)):
        message = received[browser.endpoint]
        shown = message.json()
        row = Notification.objects.get(recipient=user)
        assert shown["id"] == row.pk
        assert (shown["title"], shown["body"], shown["level"]) == (
            "Build failed",
            "main is red",
            "error",
        )
        assert shown["url"] == "/builds/7"
        assert shown["open"].startswith("/api/notifications/email/open/")
        assert shown["tag"] == f"notifications-{row.pk}"
        assert shown["count"] == 1 and shown["unread_count"] == 1
        assert message.headers["content-encoding"] == "aes128gcm"
        assert (message.urgency, message.ttl) == ("high", 86400)
        assert message.topic is None
        assert message.vapid_public_key == vapid[0]
        assert message.jwt_claims["aud"] == service.origin
        assert message.jwt_claims["sub"] == SUBJECT
    assert service.rejected == []
    assert PushSubscription.objects.filter(pushed_at__isnull=False).count() == 3


def test_urgency_and_ttl_follow_the_level_and_the_settings(
    alice, browser_of, service, send, push_on
):
    browser_of(alice)
    push_on.NOTIFICATIONS = {
        **push_on.NOTIFICATIONS,
        "WEB_PUSH_URGENCY": {"success": "very-low"},
        "WEB_PUSH_TTL_SECONDS": {"warning": 600},
    }
    for level in ("info", "success", "warning"):
        send(alice, f"A {level}", level=level)
    messages = {m.json()["level"]: m for m in service.wait_for(3)}
    assert (messages["info"].urgency, messages["info"].ttl) == ("low", 43200)
    assert (messages["success"].urgency, messages["success"].ttl) == ("very-low", 43200)
    assert (messages["warning"].urgency, messages["warning"].ttl) == ("normal", 600)


def test_expires_at_shortens_the_ttl(alice, browser_of, service, send):
    browser_of(alice)
    send(alice, "Flash sale", expires_at=timezone.now() + timedelta(minutes=10))
    (message,) = service.wait_for(1)
    assert 590 <= message.ttl <= 600


def test_a_user_with_a_socket_open_gets_no_push(alice, bob, browser_of, service, send):
    browser_of(alice), browser_of(bob)
    sockets = registry()
    if isinstance(sockets, RedisRegistry):
        # A registry in service for an hour: one just created does not know who is online yet.
        client = redis.Redis.from_url(sockets.url)
        client.zadd(sockets.online_key, {f"epoch:{time.time() - 3600}": float("inf")})
    assert async_to_sync(sockets.claim)(alice.pk, "a-socket-of-alice")
    try:
        send([alice, bob], "Hello")
        (message,) = service.wait_for(1)
    finally:
        async_to_sync(sockets.release)(alice.pk, "a-socket-of-alice")
    assert message.json()["id"] == Notification.objects.get(recipient=bob).pk
    send([alice, bob], "Again")
    assert len(service.wait_for(3)) == 3  # both, now that alice's socket is closed


def test_push_mutes_keep_pushes_away_but_not_the_inbox(alice, bob, browser_of, service, send):
    browser_of(alice), browser_of(bob)
    services.set_preferences(alice, channels={"push": {"muted_categories": ["builds"]}})
    services.set_preferences(bob, channels={"push": {"enabled": False}})
    send([alice, bob], "Build passed", category="builds")
    send([alice, bob], "Deploy done", category="deploys", level="success")
    (message,) = service.wait_for(1)
    assert message.json()["title"] == "Deploy done"
    assert Notification.objects.count() == 4  # everything is in the inboxes
    services.set_preferences(
        alice, channels={"push": {"muted_categories": [], "muted_levels": ["warning"]}}
    )
    send(alice, "Disk almost full", level="warning", category="builds")
    send(alice, "Build passed again", category="builds")
    assert [m.json()["title"] for m in service.wait_for(2)] == ["Deploy done", "Build passed again"]


def test_a_grouped_notification_replaces_the_last_on_the_device(alice, browser_of, service, send):
    browser_of(alice)
    send(alice, "bob commented", group_key="issue-7-comments")
    send(alice, "carol commented", group_key="issue-7-comments")
    first, second = service.wait_for(2)
    assert first.json()["tag"] == second.json()["tag"]
    assert first.json()["tag"].startswith("notifications-group-")
    assert first.topic == second.topic and first.topic is not None and len(first.topic) <= 32
    assert second.json()["count"] == 2
    send(alice, "A comment elsewhere", group_key="issue-8-comments")
    third = service.wait_for(3)[2]
    assert third.json()["tag"] != first.json()["tag"] and third.topic != first.topic


def test_a_browser_the_push_service_no_longer_knows_is_forgotten(alice, browser_of, service, send):
    gone, other, still = browser_of(alice), browser_of(alice), browser_of(alice)
    service.respond(gone, 410)
    service.respond(other, 404)
    send(alice, "Hello")
    (message,) = service.wait_for(1)
    assert message.endpoint == still.endpoint
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == [still.endpoint]


def test_what_a_push_service_cannot_take_now_is_retried_alone(alice, bob, browser_of, service):
    alice_browser, bob_browser = browser_of(alice), browser_of(bob)
    service.respond(alice_browser, 503, times=1)
    service.respond(bob_browser, 429, times=1, headers={"Retry-After": "120"})
    batch = services.notify([alice, bob], "Hello")
    report = delivery.send(batch.ids)
    assert (report.sent, len(report.retry), report.retry_after) == (0, 2, 120.0)
    late = services.notify(alice, "Not part of the retry")
    report = delivery.send(batch.ids, only=report.retry[:1])
    assert (report.sent, report.retry) == (1, [])
    assert [m.endpoint for m in service.received] == [alice_browser.endpoint]
    assert late.ids[0] not in [m.json()["id"] for m in service.received]


@pytest.mark.parametrize("header", ["nan", "inf", "-5", "Wed, 21 Oct 2015 07:28:00 GMT", ""])
def test_a_retry_after_that_is_no_number_of_seconds_counts_as_none(
    alice, browser_of, service, header
):
    browser = browser_of(alice)
    service.respond(browser, 429, times=1, headers={"Retry-After": header})
    report = delivery.send(services.notify(alice, "Hello").ids)
    assert (len(report.retry), report.retry_after) == (1, 0.0)


def test_retries_are_scheduled_with_a_growing_pause_and_then_given_up(
    alice, browser_of, service, push_on, caplog
):
    from django_tasks_db.models import DBTaskResult

    push_on.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    browser = browser_of(alice)
    service.respond(browser, 500)
    batch = services.notify(alice, "Hello")
    before = timezone.now()
    result = send_pushes.call(batch.ids)
    assert result["retry"] == 1
    (scheduled,) = DBTaskResult.objects.all()
    assert scheduled.args_kwargs["args"][1:] == [
        [[batch.ids[0], PushSubscription.objects.get().pk]],
        2,
    ]
    assert scheduled.run_after >= before + timedelta(seconds=30)
    DBTaskResult.objects.all().delete()
    send_pushes.call(batch.ids, None, 2)
    assert DBTaskResult.objects.get().run_after >= before + timedelta(seconds=60)
    DBTaskResult.objects.all().delete()
    send_pushes.call(batch.ids, None, 4)
    assert not DBTaskResult.objects.exists()
    assert "gave up on 1 pushes after 4 attempts" in caplog.text


def test_a_task_that_fails_is_tried_again_later(alice, browser_of, push_on, monkeypatch):
    from django.db import OperationalError
    from django_tasks_db.models import DBTaskResult

    push_on.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    browser_of(alice)
    batch = services.notify(alice, "Hello")

    def database_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(delivery, "send", database_gone)
    before = timezone.now()
    with pytest.raises(OperationalError):
        send_pushes.call(batch.ids)
    (scheduled,) = DBTaskResult.objects.all()
    assert scheduled.args_kwargs["args"] == [batch.ids, None, 2]
    assert scheduled.run_after >= before + timedelta(seconds=30)


def test_refusals_of_our_own_making_are_logged_and_not_retried(alice, browser_of, service, caplog):
    browser = browser_of(alice)
    service.respond(browser, 403)
    report = delivery.send(services.notify(alice, "Hello").ids)
    assert (report.sent, report.failed, report.retry) == (0, 1, [])
    assert PushSubscription.objects.count() == 1
    assert "refused a push (HTTP 403)" in caplog.text


def test_a_redirect_is_not_followed(alice, browser_of, service):
    browser = browser_of(alice)
    elsewhere = service.subscribe()
    service.respond(browser, 307, headers={"Location": elsewhere.endpoint})
    report = delivery.send(services.notify(alice, "Hello").ids)
    assert (report.sent, report.failed) == (0, 1)
    assert service.received == []


def test_an_unreachable_push_service_is_retried(alice, push_on):
    unreachable = PushService().start()
    browser = unreachable.subscribe()
    unreachable.stop()  # the port is closed now: connections are refused
    subscriptions.save(alice, subscriptions.clean(browser.as_json()))
    report = delivery.send(services.notify(alice, "Hello").ids)
    assert (report.sent, len(report.retry)) == (0, 1)


@pytest.mark.parametrize("change", ["seen", "read", "archived", "expired"])
def test_what_is_seen_read_archived_or_expired_before_the_task_runs_is_not_pushed(
    alice, browser_of, service, change
):
    browser_of(alice)
    batch = services.notify(alice, "Hello")
    rows = Notification.objects.filter(pk__in=batch.ids)
    if change == "expired":
        rows.update(expires_at=timezone.now() - timedelta(seconds=1))
    else:
        rows.update(**{f"{change}_at": timezone.now()})
    report = delivery.send(batch.ids)
    assert (report.sent, report.late) == (0, 1)
    assert service.received == []


def test_a_push_past_its_ttl_is_not_sent(alice, browser_of, service, push_on):
    browser_of(alice)
    batch = services.notify(alice, "Hello")  # info: 12 hours
    Notification.objects.filter(pk__in=batch.ids).update(
        created_at=timezone.now() - timedelta(hours=13)
    )
    assert delivery.send(batch.ids).late == 1
    push_on.NOTIFICATIONS = {**push_on.NOTIFICATIONS, "WEB_PUSH_TTL_SECONDS": {"info": 0}}
    fresh = services.notify(alice, "Now or never")
    assert delivery.send(fresh.ids).sent == 1
    assert service.received[0].ttl == 0


@pytest.mark.parametrize("text", ["a" * 20_000, "ü" * 10_000, "😀" * 5_000])
def test_a_long_body_is_shortened_to_fit_a_push(alice, browser_of, service, push_on, text):
    push_on.NOTIFICATIONS = {**push_on.NOTIFICATIONS, "MAX_BODY_CHARS": 20_000}
    browser_of(alice)
    url = "/very/long/" + "x" * 1900
    batch = services.notify(alice, "T" * 200, text, url=url)
    assert delivery.send(batch.ids).sent == 1
    (message,) = service.received
    assert len(message.payload) <= payload.MAX_PAYLOAD_BYTES
    shown = message.json()
    assert shown["body"].endswith("…") and text.startswith(shown["body"][:-1])
    assert len(shown["body"]) > 500
    assert shown["title"] == "T" * 200 and shown["open"]


def test_a_short_body_keeps_its_url():
    row = Notification(pk=1, title="Hi", body="short", url="/x" * 900, created_at=timezone.now())
    assert json.loads(payload.message(row, 0))["url"] == "/x" * 900


def test_a_batch_costs_as_many_queries_for_100_notifications_as_for_10(
    make_user, browser_of, service
):
    def queries_for(count):
        users = [make_user() for _ in range(count)]
        for user in users:
            browser_of(user)
        batch = services.notify(users, "Hello", actor=users[0], target=users[-1])
        with CaptureQueriesContext(connection) as queries:
            report = delivery.send(batch.ids)
        assert report.sent == count
        PushSubscription.objects.all().delete()
        return len(queries)

    small, large = queries_for(10), queries_for(100)
    assert small == large == 6


def test_finding_who_to_push_costs_as_many_queries_for_100_recipients_as_for_10(
    make_user, browser_of, service
):
    def queries_for(count):
        users = [make_user() for _ in range(count)]
        for user in users[::2]:
            browser_of(user)
        batch = services.notify(users, "Hello")
        with CaptureQueriesContext(connection) as queries:
            ids = targets.notifications_to_push(batch)
        assert len(ids) == count // 2
        return len(queries)

    assert queries_for(10) == queries_for(100) == 1


def test_nothing_happens_with_web_push_off(alice, service, send, settings):
    browser = service.subscribe()
    PushSubscription.objects.create(
        user=alice, endpoint=browser.endpoint, p256dh=browser.p256dh, auth=browser.auth
    )
    settings.NOTIFICATIONS = {}
    with CaptureQueriesContext(connection) as queries:
        send(alice, "Hello")
    assert not [q for q in queries if "pushsubscription" in q["sql"].lower()]
    assert service.received == []


def test_an_expired_subscription_is_not_pushed_to(alice, browser_of, service):
    browser_of(alice)
    PushSubscription.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert delivery.send(services.notify(alice, "Hello").ids).sent == 0


def test_signing_out_ends_the_pushes_to_that_browser_alone(alice, service, push_on):
    laptop, phone = Client(), Client()
    subscriptions_url = "/api/notifications/push-subscriptions/"
    for client in (laptop, phone):
        client.force_login(alice)
        browser = service.subscribe().as_json()
        response = client.post(subscriptions_url, browser, content_type="application/json")
        assert response.status_code == 201
    assert PushSubscription.objects.filter(user=alice).count() == 2
    laptop.logout()  # sends user_logged_out with the laptop's session, as a logout view does
    remaining = PushSubscription.objects.filter(user=alice)
    assert [row.endpoint for row in remaining] == [phone_endpoint(phone, subscriptions_url)]


def phone_endpoint(client, url):
    (row,) = client.get(url).json()
    return row["endpoint"]
