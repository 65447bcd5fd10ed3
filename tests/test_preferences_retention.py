"""Preferences (muting categories and levels) and retention (expiry, pruning)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from notifications import services
from notifications.models import Mute, Notification
from notifications.realtime import broker

pytestmark = pytest.mark.django_db

PREFS = "/api/notifications/preferences/"


@pytest.fixture
def api(alice):
    client = APIClient()
    client.force_authenticate(alice)
    return client


# --- preferences -------------------------------------------------------------------------------


def test_preferences_round_trip(api, settings):
    settings.NOTIFICATIONS = {"UNMUTABLE_CATEGORIES": ["security"]}
    assert api.get(PREFS).json() == {
        "muted_categories": [],
        "muted_levels": [],
        "unmutable_categories": ["security"],
        "channels": {
            "email": {"enabled": True, "muted_categories": [], "muted_levels": []},
            "push": {"enabled": True, "muted_categories": [], "muted_levels": []},
        },
        "email_available": False,
        "push_available": False,
    }
    body = {"muted_categories": ["marketing", "digest"], "muted_levels": ["info"]}
    response = api.put(PREFS, body, format="json")
    assert response.status_code == 200
    assert response.json()["muted_categories"] == ["digest", "marketing"]
    assert api.get(PREFS).json()["muted_levels"] == ["info"]
    api.put(PREFS, {"muted_categories": [], "muted_levels": []}, format="json")
    assert api.get(PREFS).json()["muted_categories"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"muted_categories": ["security"], "muted_levels": []}, "muted_categories"),
        ({"muted_categories": ["not a slug"], "muted_levels": []}, "muted_categories"),
        ({"muted_categories": "marketing", "muted_levels": []}, "muted_categories"),
        ({"muted_categories": [], "muted_levels": ["fatal"]}, "muted_levels"),
        ({"muted_categories": []}, "muted_levels"),
        ({"muted_categories": ["x"] * 101, "muted_levels": []}, "muted_categories"),
    ],
)
def test_bad_preferences_are_400_and_change_nothing(api, settings, body, field):
    settings.NOTIFICATIONS = {"UNMUTABLE_CATEGORIES": ["security"]}
    api.put(PREFS, {"muted_categories": ["digest"], "muted_levels": []}, format="json")
    response = api.put(PREFS, body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert api.get(PREFS).json()["muted_categories"] == ["digest"]


def test_preferences_need_authentication():
    assert APIClient().get(PREFS).status_code in (401, 403)


def test_notify_leaves_muted_users_out(alice, bob, make_user, settings):
    settings.NOTIFICATIONS = {"UNMUTABLE_CATEGORIES": ["security"]}
    carol = make_user("carol")
    services.set_preferences(alice, muted_categories=["digest"], muted_levels=[])
    services.set_preferences(bob, muted_categories=[], muted_levels=["info"])
    users = get_user_model().objects.all()
    # alice muted the category, bob the level
    assert services.notify(users, "Weekly", category="digest").recipient_ids == [carol.pk]
    assert sorted(services.notify(users, "Alarm", level="error").recipient_ids) == sorted(
        [alice.pk, bob.pk, carol.pk]
    )
    # An explicit list: a muted user is left out, without an error.
    assert services.notify([alice, carol], "Digest", category="digest").recipient_ids == [carol.pk]
    # An unknown id is still an error.
    with pytest.raises(ValueError, match="no user with id 999999"):
        services.notify([alice.pk, 999999], "Digest", category="digest")


def test_an_unmutable_category_reaches_users_who_muted_it_before(alice, settings):
    Mute.objects.create(user=alice, kind=Mute.Kind.CATEGORY, value="security")
    settings.NOTIFICATIONS = {"UNMUTABLE_CATEGORIES": ["security"]}
    assert services.notify(alice, "New login", category="security").recipient_ids == [alice.pk]


def test_a_level_mute_never_silences_an_unmutable_category(alice, bob, settings):
    settings.NOTIFICATIONS = {"UNMUTABLE_CATEGORIES": ["security"]}
    services.set_preferences(alice, muted_categories=[], muted_levels=["warning"])
    Mute.objects.create(user=bob, kind=Mute.Kind.CATEGORY, value="security")
    users = get_user_model().objects.filter(pk__in=[alice.pk, bob.pk])
    sent = services.notify(users, "New login", category="security", level="warning")
    assert sorted(sent.recipient_ids) == sorted([alice.pk, bob.pk])
    named = services.notify(alice, "Password changed", category="security", level="warning")
    assert named.recipient_ids == [alice.pk]
    assert set(services.audience(users, category="security", level="warning")) == {alice, bob}
    # Any other category still obeys the level mute.
    assert services.notify(users, "Disk full", level="warning").recipient_ids == [bob.pk]


@pytest.mark.django_db(transaction=True)
def test_fan_out_with_preferences_keeps_a_flat_query_count(bob, monkeypatch):
    # Who is online is unknown (as in a Redis registry younger than its grace period): everybody
    # is pushed to, their counts in one query, in both sends alike.
    monkeypatch.setattr(broker, "online", lambda user_ids: None)
    user_model = get_user_model()
    users = user_model.objects.bulk_create(user_model(username=f"p{i}") for i in range(3000))
    Mute.objects.bulk_create(
        Mute(user=user, kind=Mute.Kind.CATEGORY, value="digest") for user in users[::3]
    )
    counts = {}
    for size in (10, 3000):
        audience = user_model.objects.filter(username__startswith="p").order_by("pk")[:size]
        ids = list(audience.values_list("pk", flat=True))
        with CaptureQueriesContext(connection) as queries:
            batch = services.notify(ids, "Digest", category="digest")
        counts[size] = len(queries)
        assert len(batch) == size - len(range(0, size, 3))
    assert counts[10] == counts[3000]


def test_admin_count_reflects_mutes(alice, bob):
    from notifications.admin.forms import SendNotificationForm

    services.set_preferences(alice, muted_categories=["digest"], muted_levels=[])
    form = SendNotificationForm(
        data={"audience": "all", "title": "Weekly", "level": "info", "category": "digest"}
    )
    assert form.is_valid(), form.errors
    assert form.recipient_count == 1  # bob; alice muted the category


# --- retention ---------------------------------------------------------------------------------


def test_expired_notifications_are_not_listed_counted_or_resumed(alice):
    soon = timezone.now() + timedelta(seconds=30)
    kept = services.notify(alice, "Stays").ids[0]
    gone = services.notify(alice, "Goes", expires_at=soon).ids[0]
    Notification.objects.filter(pk=gone).update(expires_at=timezone.now() - timedelta(seconds=1))
    mine = Notification.objects.for_user(alice)
    assert list(mine.values_list("id", flat=True)) == [kept]
    assert mine.counts()["unread_count"] == 1
    rows, _ = mine.backlog(0)
    assert [row.pk for row in rows] == [kept]
    client = APIClient()
    client.force_authenticate(alice)
    assert client.get(f"/api/notifications/{gone}/").status_code == 404


@pytest.mark.parametrize(
    ("expires_at", "message"),
    [
        ("tomorrow", "expires_at: must be a datetime"),
        (timezone.now() - timedelta(seconds=1), "expires_at: must be in the future"),
        (timezone.now().replace(tzinfo=None) + timedelta(days=1), "timezone-aware"),
    ],
)
def test_bad_expires_at(alice, expires_at, message):
    with pytest.raises(ValueError, match=message):
        services.notify(alice, "x", expires_at=expires_at)
    assert Notification.objects.count() == 0


def make_aged(user, days, **fields):
    notification = Notification.objects.create(recipient=user, title=f"{days} days old", **fields)
    Notification.objects.filter(pk=notification.pk).update(
        created_at=timezone.now() - timedelta(days=days)
    )
    return notification.pk


def prune(*args):
    out, err = StringIO(), StringIO()
    call_command("prune_notifications", *args, stdout=out, stderr=err)
    return out.getvalue()


def test_prune_older_than(alice):
    old, new = make_aged(alice, 40), make_aged(alice, 5)
    assert "Would delete 1 notifications" in prune("--older-than", "30", "--dry-run")
    assert Notification.objects.count() == 2
    assert "Deleted 1 notifications" in prune("--older-than", "30")
    assert list(Notification.objects.values_list("pk", flat=True)) == [new]
    assert old != new


def test_prune_read_only_and_expired(alice):
    read_old = make_aged(alice, 40, read_at=timezone.now())
    unread_old = make_aged(alice, 40)
    expired = make_aged(alice, 1, expires_at=timezone.now() - timedelta(minutes=1))
    output = prune("--older-than", "30", "--read-only", "--batch-size", "1")
    assert "Deleted 2 notifications" in output and "in 2 batches" in output
    remaining = set(Notification.objects.values_list("pk", flat=True))
    assert remaining == {unread_old} and read_old not in remaining and expired not in remaining


def test_prune_uses_the_retention_setting(alice, settings):
    make_aged(alice, 10)
    settings.NOTIFICATIONS = {"RETENTION_DAYS": 7}
    assert "Deleted 1 notifications" in prune()


@pytest.mark.parametrize("value", ["-3", "0", "ten", "1.5"])
def test_bad_older_than_is_a_clear_error(value):
    with pytest.raises(CommandError, match="older-than"):
        call_command("prune_notifications", "--older-than", value)


def test_read_only_without_an_age_is_an_error():
    with pytest.raises(CommandError, match="--read-only needs --older-than"):
        call_command("prune_notifications", "--read-only")


# --- preferences per channel (email) -----------------------------------------------------------


def test_email_preferences_round_trip_and_leave_in_app_alone(api, alice, settings):
    settings.NOTIFICATIONS = {"UNMUTABLE_CATEGORIES": ["security"]}
    api.put(PREFS, {"muted_categories": ["digest"], "muted_levels": []}, format="json")
    body = {
        "muted_categories": ["digest"],
        "muted_levels": [],
        "channels": {
            "email": {"enabled": True, "muted_categories": ["security"], "muted_levels": ["info"]}
        },
    }
    response = api.put(PREFS, body, format="json")
    assert response.status_code == 200
    assert response.json()["channels"] == {
        "email": {"enabled": True, "muted_categories": ["security"], "muted_levels": ["info"]},
        "push": {"enabled": True, "muted_categories": [], "muted_levels": []},
    }
    # An unmutable category may be muted for email; in-app it still reaches alice.
    assert services.notify(alice, "Sign-in", category="security")
    # A PUT without channels leaves them as they are; one channel key changes only itself.
    api.put(PREFS, {"muted_categories": [], "muted_levels": []}, format="json")
    api.put(
        PREFS,
        {"muted_categories": [], "muted_levels": [], "channels": {"email": {"enabled": False}}},
        format="json",
    )
    assert api.get(PREFS).json()["channels"]["email"] == {
        "enabled": False,
        "muted_categories": ["security"],
        "muted_levels": ["info"],
    }
    assert set(Mute.objects.filter(user=alice).values_list("channel", "kind", "value")) == {
        ("email", "all", ""),
        ("email", "category", "security"),
        ("email", "level", "info"),
    }


@pytest.mark.parametrize(
    ("channels", "field"),
    [
        ({"email": {"enabled": "false"}}, "channels.email.enabled"),
        ({"email": {"enabled": 0}}, "channels.email.enabled"),
        ({"email": {"enabled": None}}, "channels.email.enabled"),
        ({"email": {"muted_categories": ["not a slug"]}}, "channels.email.muted_categories"),
        ({"email": {"muted_categories": ["a\x00b"]}}, "channels.email.muted_categories"),
        ({"email": {"muted_categories": ["ä"]}}, "channels.email.muted_categories"),
        ({"email": {"muted_categories": "comments"}}, "channels.email.muted_categories"),
        ({"email": {"muted_categories": ["x"] * 101}}, "channels.email.muted_categories"),
        ({"email": {"muted_levels": ["fatal"]}}, "channels.email.muted_levels"),
        ({"email": {"muted_levels": [1]}}, "channels.email.muted_levels"),
        ({"email": []}, "channels.email"),
        ({"email": "off"}, "channels.email"),
        ([], "channels"),
        ("email", "channels"),
        ({"email": {"muted_categories": [[[[[["deep"]]]]]]}}, "channels.email.muted_categories"),
        ({"email": {"enabled": 10**400}}, "channels.email.enabled"),
    ],
)
def test_bad_email_preferences_are_400_naming_the_field_and_change_nothing(api, channels, field):
    good = {"muted_categories": [], "muted_levels": [], "channels": {"email": {"enabled": False}}}
    api.put(PREFS, good, format="json")
    body = {"muted_categories": [], "muted_levels": [], "channels": channels}
    response = api.put(PREFS, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert api.get(PREFS).json()["channels"]["email"]["enabled"] is False


def test_email_preferences_service_refuses_what_the_api_refuses(alice):
    for channels, message in [
        ({"sms": {"enabled": False}}, "channels: 'sms' is not a channel"),
        ({"email": {"enabled": "no"}}, "channels.email.enabled: must be true or false"),
        ({"email": {"muted_levels": ["fatal"]}}, "channels.email.muted_levels: must be among"),
        ({"email": {"muted_categories": [""]}}, "channels.email.muted_categories: '' is not"),
    ]:
        with pytest.raises(ValueError, match=message):
            services.set_preferences(alice, channels=channels)
    assert not Mute.objects.filter(user=alice).exists()


def test_mute_email_twice_is_one_mute(alice):
    services.mute_email(alice, "comments")
    services.mute_email(alice, "comments")
    services.mute_email(alice, "")
    assert services.preferences(alice)["channels"]["email"] == {
        "enabled": False,
        "muted_categories": ["comments"],
        "muted_levels": [],
    }


def test_email_mutes_never_keep_a_notification_out_of_the_inbox(alice):
    services.set_preferences(
        alice, channels={"email": {"enabled": False, "muted_categories": ["comments"]}}
    )
    assert len(services.notify(alice, "Hi", category="comments")) == 1


@pytest.mark.parametrize("email", ["never", "", "NOW", 1, True])
def test_notify_refuses_an_unknown_email_choice(alice, email):
    with pytest.raises(ValueError, match="^email: must be None or one of none, digest, now"):
        services.notify(alice, "Hi", email=email)
    assert not Notification.objects.exists()


def test_what_notify_plans_for_email(alice, settings):
    settings.NOTIFICATIONS = {
        "EMAIL_DIGESTS": True,
        "BASE_URL": "https://example.com",
        "EMAIL_AFTER_SECONDS": 600,
        "EMAIL_NOW_LEVELS": ["error"],
        "EMAIL_NOW_CATEGORIES": ["security"],
    }
    before = timezone.now()

    def plan(**options):
        [row] = services.notify(alice, "Hi", **options)
        row = Notification.objects.get(pk=row.pk)
        return row.email, row.email_due_at

    assert plan()[0] == "digest"
    assert plan()[1] >= before + timedelta(seconds=600)
    assert plan(level="error")[0] == "now"
    assert plan(category="security")[0] == "now"
    assert plan(level="error", email="digest")[0] == "digest"
    assert plan(email="none") == ("", None)
    settings.NOTIFICATIONS = {"EMAIL_DIGESTS": False}
    assert plan(email="now") == ("", None)  # email is off for the site


def test_an_unknown_channel_is_ignored_over_rest_as_unknown_fields_are(api, alice):
    body = {"muted_categories": [], "muted_levels": [], "channels": {"push\x00": {"x": 1}}}
    response = api.put(PREFS, body, format="json")
    assert response.status_code == 200
    assert response.json()["channels"] == {
        "email": {"enabled": True, "muted_categories": [], "muted_levels": []},
        "push": {"enabled": True, "muted_categories": [], "muted_levels": []},
    }
    assert not Mute.objects.filter(user=alice).exists()
