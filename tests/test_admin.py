"""The Notification admin: the send page, the user admin's action, and the changelist at scale."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from notifications import admin as notifications_admin
from notifications import services, signals
from notifications.admin import forms as notifications_forms
from notifications.admin.changelist import CheckedChangelistAdmin
from notifications.admin.forms import SendNotificationForm
from notifications.models import Digest, Notification, is_primary_key

pytestmark = pytest.mark.django_db

SEND_URL = "/admin/notifications/notification/send/"
CHANGELIST_URL = "/admin/notifications/notification/"
USER_CHANGELIST_URL = "/admin/auth/user/"


def grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


@pytest.fixture
def sender(make_user):
    user = make_user("sender", is_staff=True)
    grant(user, "send_notification", "view_notification", "change_notification", "view_user")
    return user


@pytest.fixture
def sender_client(client, sender):
    client.force_login(sender)
    return client


def send_data(**fields):
    data = {"audience": "users", "title": "Hello", "body": "", "level": "info", "_send": "Send"}
    data.update(fields)
    return data


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def rows(**filters):
    return set(Notification.objects.filter(**filters).values_list("recipient_id", flat=True))


# --- permission --------------------------------------------------------------------------


def test_staff_without_the_permission_can_neither_send_nor_see_the_way_to(client, make_user):
    staff = make_user("staff", is_staff=True)
    grant(staff, "view_notification", "view_user")
    client.force_login(staff)

    assert client.get(SEND_URL).status_code == 403
    assert client.post(SEND_URL, send_data(users=[staff.pk])).status_code == 403
    assert Notification.objects.count() == 0
    assert SEND_URL not in client.get(CHANGELIST_URL).content.decode()
    assert "send_to_selected_users" not in client.get(USER_CHANGELIST_URL).content.decode()


def test_a_sender_sees_the_link_and_the_user_action(sender_client):
    assert sender_client.get(SEND_URL).status_code == 200
    assert SEND_URL in sender_client.get(CHANGELIST_URL).content.decode()
    assert "send_to_selected_users" in sender_client.get(USER_CHANGELIST_URL).content.decode()


def test_the_send_page_needs_a_staff_login(client, make_user):
    response = client.get(SEND_URL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- audiences ---------------------------------------------------------------------------


def test_send_to_selected_users(sender_client, make_user):
    alice, bob, _carol = make_user("alice"), make_user("bob"), make_user("carol")
    inactive = make_user("dora", is_active=False)

    response = sender_client.post(SEND_URL, send_data(users=[alice.pk, bob.pk, inactive.pk]))

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST_URL
    # Chosen by name, so sent even to an inactive user, as notify() does for explicit users.
    assert rows() == {alice.pk, bob.pk, inactive.pk}
    assert messages_of(response) == ["Sent the notification to 3 users."]


def test_send_to_groups_reaches_their_active_members_once(sender_client, make_user):
    staff, team = Group.objects.create(name="staff"), Group.objects.create(name="team")
    both, only_staff, only_team = make_user(), make_user(), make_user()
    inactive, outsider = make_user(is_active=False), make_user()
    both.groups.add(staff, team)
    only_staff.groups.add(staff)
    only_team.groups.add(team)
    inactive.groups.add(staff)
    del outsider

    response = sender_client.post(
        SEND_URL, send_data(audience="groups", groups=[staff.pk, team.pk], title="Policy")
    )

    assert response.status_code == 302
    assert sorted(Notification.objects.values_list("recipient_id", flat=True)) == sorted(
        [both.pk, only_staff.pk, only_team.pk]
    )
    assert messages_of(response) == ["Sent the notification to 3 users."]


def test_send_to_all_active_users(sender, sender_client, make_user):
    active = [make_user(), make_user()]
    make_user(is_active=False)

    response = sender_client.post(SEND_URL, send_data(audience="all", level="warning"))

    assert response.status_code == 302
    assert rows() == {sender.pk, *(user.pk for user in active)}
    assert rows(level="warning") == rows()


def test_a_send_is_pushed_once_after_commit(
    sender_client, make_user, django_capture_on_commit_callbacks
):
    users = [make_user() for _ in range(3)]
    batches = []

    def receiver(sender, batch, **kwargs):
        batches.append(batch)

    signals.notification_sent.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            sender_client.post(SEND_URL, send_data(users=[user.pk for user in users]))
    finally:
        signals.notification_sent.disconnect(receiver)
    assert len(batches) == 1
    assert sorted(batches[0].recipient_ids) == sorted(user.pk for user in users)


def test_a_sender_without_view_permission_returns_to_the_send_page(client, make_user):
    only_sender = make_user("only-sender", is_staff=True)
    grant(only_sender, "send_notification")
    client.force_login(only_sender)

    response = client.post(SEND_URL, send_data(users=[only_sender.pk]))

    assert response.status_code == 302
    assert response["Location"] == SEND_URL
    assert rows() == {only_sender.pk}


# --- preview, count, confirmation --------------------------------------------------------


def test_preview_shows_the_notification_as_text_and_the_count_and_sends_nothing(
    sender_client, make_user
):
    team = Group.objects.create(name="team")
    for _ in range(3):
        make_user().groups.add(team)
    data = send_data(
        audience="groups",
        groups=[team.pk],
        title="<b>Bold</b> move",
        body="<script>alert(1)</script>",
        url="/reports/7/",
        category="reports",
        level="success",
    )
    del data["_send"]
    data["_preview"] = "Preview"

    with CaptureQueriesContext(connection) as queries:
        response = sender_client.post(SEND_URL, data)

    html = response.content.decode()
    assert response.status_code == 200
    assert "&lt;b&gt;Bold&lt;/b&gt; move" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert "<code>/reports/7/</code>" in html
    assert re.search(r"goes to <strong>3</strong> users", html)
    assert Notification.objects.count() == 0
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1


def test_a_send_above_the_threshold_asks_for_confirmation_first(sender_client, make_user, settings):
    settings.NOTIFICATIONS = {"SEND_CONFIRM_ABOVE": 2}
    users = [make_user() for _ in range(3)]
    data = send_data(users=[user.pk for user in users], title="Big news")

    first = sender_client.post(SEND_URL, data)

    html = first.content.decode()
    assert first.status_code == 200
    assert "Confirm the send" in html
    assert re.search(r"goes to <strong>3</strong> users", html)
    assert Notification.objects.count() == 0

    token = re.search(r'name="confirmed" value="([0-9a-f]+)"', html).group(1)
    confirmed = sender_client.post(SEND_URL, {**data, "confirmed": token})

    assert confirmed.status_code == 302
    assert rows() == {user.pk for user in users}
    assert messages_of(confirmed) == ["Sent the notification to 3 users."]


def test_a_confirmation_does_not_carry_over_to_other_data(sender_client, make_user, settings):
    settings.NOTIFICATIONS = {"SEND_CONFIRM_ABOVE": 2}
    users = [make_user() for _ in range(4)]
    data = send_data(users=[user.pk for user in users[:3]], title="Big news")
    html = sender_client.post(SEND_URL, data).content.decode()
    token = re.search(r'name="confirmed" value="([0-9a-f]+)"', html).group(1)

    for changed in (
        {"title": "Other news"},
        {"users": [user.pk for user in users]},
        {"audience": "all"},
        {"confirmed": token[:-1] + "0"},
    ):
        response = sender_client.post(SEND_URL, {**data, "confirmed": token, **changed})
        assert response.status_code == 200, changed
        assert "Confirm the send" in response.content.decode()
    assert Notification.objects.count() == 0


def test_a_send_at_the_threshold_needs_no_confirmation(sender_client, make_user, settings):
    settings.NOTIFICATIONS = {"SEND_CONFIRM_ABOVE": 2}
    users = [make_user(), make_user()]
    response = sender_client.post(SEND_URL, send_data(users=[user.pk for user in users]))
    assert response.status_code == 302
    assert Notification.objects.count() == 2


# --- bad input ---------------------------------------------------------------------------


@pytest.fixture
def empty_group():
    group = Group.objects.create(name="ghosts")
    get_user_model().objects.create_user("ghost", is_active=False).groups.add(group)
    return group


BAD_CONTENT = [
    ({"title": ""}, "title"),
    ({"title": "   "}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"level": "panic"}, "level"),
    ({"level": ""}, "level"),
    ({"category": "has spaces"}, "category"),
    ({"category": "x" * 65}, "category"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "//evil.example/"}, "url"),
    ({"url": "relative/path"}, "url"),
    ({"url": "/a b"}, "url"),
    ({"title": "null \x00 byte"}, "title"),
    ({"body": "b" * 10001}, "body"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_CONTENT)
def test_bad_content_is_an_error_on_its_field_and_sends_nothing(
    sender, sender_client, fields, field
):
    response = sender_client.post(SEND_URL, send_data(users=[sender.pk], **fields))

    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == [field]
    assert Notification.objects.count() == 0


def test_every_bad_field_is_reported_at_once(sender, sender_client):
    bad = {"title": "", "level": "panic", "category": "a b", "url": "javascript:x"}
    response = sender_client.post(SEND_URL, send_data(users=[sender.pk], **bad))
    form = response.context["form"]
    assert sorted(form.errors) == sorted(bad)
    assert form.non_field_errors() == []
    assert Notification.objects.count() == 0


def test_content_errors_are_notifys_own_messages(sender, sender_client):
    response = sender_client.post(SEND_URL, send_data(users=[sender.pk], url="//evil.example/"))
    with pytest.raises(ValueError) as raised:
        services.notify(sender, "Hello", url="//evil.example/")
    message = str(raised.value).removeprefix("url: ")
    assert response.context["form"].errors["url"] == [message[0].upper() + message[1:]]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"audience": "everyone"}, "audience"),
        ({"audience": ""}, "audience"),
        ({"users": []}, "users"),
        ({"users": ["999999"]}, "users"),
        ({"users": ["not-a-number"]}, "users"),
        ({"audience": "groups", "groups": []}, "groups"),
        ({"audience": "groups", "groups": ["999999"]}, "groups"),
        ("empty_group", "groups"),
    ],
)
def test_a_bad_or_empty_audience_is_a_form_error_and_sends_nothing(
    sender_client, empty_group, fields, field
):
    if fields == "empty_group":
        fields = {"audience": "groups", "groups": [empty_group.pk]}
    response = sender_client.post(SEND_URL, send_data(**fields))

    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]
    assert Notification.objects.count() == 0


def test_all_active_users_when_there_is_none_is_a_form_error(make_user):
    # Through the form: a signed-in sender is an active user, so the page never sees this.
    make_user(is_active=False)
    form = SendNotificationForm(send_data(audience="all"))
    assert not form.is_valid()
    assert form.non_field_errors() == ["There are no active users."]


# --- query counts ------------------------------------------------------------------------


def send_queries(client, data, capture_on_commit):
    # Messages left unread pile up in their cookie, then spill into the session (more queries).
    client.cookies.pop("messages", None)
    with CaptureQueriesContext(connection) as queries, capture_on_commit(execute=True):
        response = client.post(SEND_URL, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return len(queries.captured_queries)


def test_the_query_count_of_a_send_does_not_grow_with_the_audience(
    sender_client, make_user, django_capture_on_commit_callbacks, settings
):
    # A send bumps one cache key per recipient; the default local-memory cache holds 300 and
    # would evict the session, whose reload would then count as one more query.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
    users = [make_user() for _ in range(500)]
    one, many = [users[0].pk], [user.pk for user in users]
    group_of_one, group_of_many = Group.objects.create(name="one"), Group.objects.create(name="all")
    users[0].groups.add(group_of_one)
    group_of_many.user_set.add(*users)
    capture = django_capture_on_commit_callbacks

    send_queries(sender_client, send_data(users=one), capture)  # warm the caches
    assert send_queries(sender_client, send_data(users=one), capture) == send_queries(
        sender_client, send_data(users=many), capture
    )
    assert send_queries(
        sender_client, send_data(audience="groups", groups=[group_of_one.pk]), capture
    ) == send_queries(
        sender_client, send_data(audience="groups", groups=[group_of_many.pk]), capture
    )
    before = Notification.objects.count()
    with_many = send_queries(sender_client, send_data(audience="all"), capture)
    assert Notification.objects.count() - before == 501  # the sender is active too
    get_user_model().objects.exclude(pk__in=[users[0].pk]).exclude(username="sender").update(
        is_active=False
    )
    assert send_queries(sender_client, send_data(audience="all"), capture) == with_many


# --- the user admin's action -------------------------------------------------------------


def test_the_user_action_leads_to_the_send_form_with_the_users_chosen(sender_client, make_user):
    alice, bob = make_user("alice"), make_user("bob")

    response = sender_client.post(
        USER_CHANGELIST_URL,
        {"action": "send_to_selected_users", "_selected_action": [alice.pk, bob.pk]},
    )

    assert response.status_code == 302
    assert response["Location"] == f"{SEND_URL}?users={alice.pk}%2C{bob.pk}"
    form_page = sender_client.get(response["Location"])
    assert form_page.context["form"].initial == {"users": [alice.pk, bob.pk]}
    html = form_page.content.decode()
    assert f'<option value="{alice.pk}" selected>alice</option>' in html
    assert f'<option value="{bob.pk}" selected>bob</option>' in html


def test_the_user_action_refuses_more_users_than_a_url_holds(sender_client, make_user, monkeypatch):
    monkeypatch.setattr(notifications_forms, "MAX_USERS_IN_URL", 2)
    users = [make_user() for _ in range(3)]
    response = sender_client.post(
        USER_CHANGELIST_URL,
        {"action": "send_to_selected_users", "_selected_action": [user.pk for user in users]},
    )
    assert response.status_code == 302
    assert response["Location"] == USER_CHANGELIST_URL
    assert "at most 2 users" in messages_of(response)[0]


def test_the_user_action_is_added_without_touching_the_class(admin_site_user_admin):
    assert notifications_admin.send_to_selected_users in admin_site_user_admin.actions
    assert notifications_admin.send_to_selected_users not in type(admin_site_user_admin).actions


@pytest.fixture
def admin_site_user_admin():
    from django.contrib import admin

    return admin.site.get_model_admin(get_user_model())


def test_the_query_string_chooses_users_and_skips_empty_parts(sender_client, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    response = sender_client.get(f"{SEND_URL}?users={alice.pk},,{bob.pk}, {alice.pk}")
    form = response.context["form"]
    assert form.initial == {"users": [alice.pk, bob.pk]} and not form.errors


HOSTILE_IDS = {
    "superscript two": "%C2%B2",
    "arabic-indic three": "%D9%A3",
    "5000 digits": "9" * 5000,
    "past 2**63": "99999999999999999999",
    "nul": "1%00",
    "lone surrogate": "%ED%A0%80",
    "letters": "x",
    "negative": "-3",
}


@pytest.mark.parametrize("bad", HOSTILE_IDS.values(), ids=HOSTILE_IDS.keys())
def test_what_is_no_user_id_in_the_query_string_is_an_error_on_the_field(
    sender_client, make_user, bad
):
    alice = make_user("alice")
    response = sender_client.get(f"{SEND_URL}?users={alice.pk},{bad}")
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial == {"users": [alice.pk]}  # the good ones are kept
    [error] = form.errors["users"]
    assert error.startswith("Not a user id: “") and len(error) < 60
    assert "Please correct the error below." in response.text
    assert f'value="{alice.pk}" selected' in response.text


def test_an_unknown_user_id_in_the_query_string_is_an_error_on_the_field(sender_client, make_user):
    alice = make_user("alice")
    response = sender_client.get(f"{SEND_URL}?users={alice.pk},0,424242")
    assert response.context["form"].errors["users"] == ["No user has the id 0, 424242."]


def test_more_users_than_a_link_holds_is_an_error(sender_client, make_user, monkeypatch):
    monkeypatch.setattr(notifications_forms, "MAX_USERS_IN_URL", 2)
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    response = sender_client.get(f"{SEND_URL}?users={alice.pk},{bob.pk},{carol.pk}")
    form = response.context["form"]
    assert form.errors["users"] == ["A link chooses at most 2 users; it had 3."]
    assert "users" not in form.initial


@pytest.mark.parametrize("field", ["users", "groups"])
@pytest.mark.parametrize(
    "bad",
    ["\u00b2", "\u0663", "9" * 5000, "99999999999999999999", "1\x00", "x", "-3", "1.0"],
    ids=["superscript", "arabic-indic", "5000-digits", "past-2**63", "nul", "x", "negative", "1.0"],
)
def test_what_is_no_id_in_the_users_or_groups_field_is_an_error_and_sends_nothing(
    sender_client, sender, make_user, field, bad
):
    # Every chosen one exists but the bad one: the error is the bad value's own.
    good = sender.pk if field == "users" else Group.objects.create(name="team").pk
    response = sender_client.post(SEND_URL, send_data(audience=field, **{field: [good, bad]}))
    assert response.status_code == 200
    [error] = response.context["form"].errors[field]
    assert "is not a valid value" in error or "not one of the available choices" in error
    assert len(error) < 100
    assert Notification.objects.count() == 0


USER_SEARCH_URL = "/admin/notifications/notification/send/users/"
USER_SEARCH = {
    "app_label": "notifications",
    "model_name": "notification",
    "field_name": "recipient",
}


def test_users_are_found_through_the_send_pages_own_autocomplete(sender_client, make_user):
    alice = make_user("alice")
    make_user("bob")
    page = sender_client.get(SEND_URL).text
    assert f'data-ajax--url="{USER_SEARCH_URL}"' in page
    response = sender_client.get(USER_SEARCH_URL, {**USER_SEARCH, "term": "ali"})
    assert response.status_code == 200
    assert response.json()["results"] == [{"id": str(alice.pk), "text": "alice"}]


@pytest.mark.parametrize("term", ["\x00", "ali\x00ce"])
def test_a_nul_byte_in_the_user_search_is_a_400(sender_client, term):
    response = sender_client.get(USER_SEARCH_URL, {**USER_SEARCH, "term": term})
    assert response.status_code == 400
    assert response.json() == {"error": "Null characters are not allowed."}


def test_the_user_search_needs_the_admins_permissions(client, make_user):
    client.force_login(make_user("staff", is_staff=True))  # no view permission on users
    response = client.get(USER_SEARCH_URL, {**USER_SEARCH, "term": "a"})
    assert response.status_code == 403


# --- the changelist ----------------------------------------------------------------------


def fill(make_user, count, users=10):
    recipients = [make_user() for _ in range(users)]
    for index in range(count):
        services.notify(recipients[index % users], f"Notification {index}", category="demo")
    return recipients


def changelist_queries(client, path=CHANGELIST_URL):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return [query["sql"] for query in queries.captured_queries]


# The changelist's queries, pinned: the user, their permissions (2: their own, their groups');
# the category filter's choices; the bounded count (or on PostgreSQL the planner's estimate);
# the page, with its recipients and digests joined; the date hierarchy's two ends. (The session
# comes from the cache.)
CHANGELIST_QUERIES = 8
# The digest log's, for a superuser (no permission queries): user; the bounded count (or the
# estimate); the page, with its users joined and each digest's notifications counted in a
# subquery.
DIGEST_CHANGELIST_QUERIES = 3


def unfiltered(count):
    """An unfiltered list on PostgreSQL asks the planner for its estimate first: one more query
    (then, for a table this small, the bounded count all the same)."""
    return count + (connection.vendor == "postgresql")


def test_the_changelist_query_count_does_not_grow_with_the_page(sender_client, make_user):
    fill(make_user, 10)
    changelist_queries(sender_client)  # warm the caches
    ten = changelist_queries(sender_client)
    fill(make_user, 90)
    hundred = changelist_queries(sender_client)
    assert len(ten) == len(hundred) == unfiltered(CHANGELIST_QUERIES)
    assert sender_client.get(CHANGELIST_URL).content.decode().count('class="action-select"') == 100


def test_every_filter_and_search_answers(sender_client, make_user):
    alice = fill(make_user, 5, users=1)[0]
    for query in (
        "?level__exact=info",
        "?category=demo",
        "?read=no",
        "?read=yes",
        "?created_at__gte=2000-01-01+00:00:00%2B00:00",
        f"?q={alice.username}",
        "?q=Notification",
        f"?recipient__id__exact={alice.pk}",
    ):
        response = sender_client.get(CHANGELIST_URL + query)
        assert response.status_code == 200, query
        assert "?e=1" not in response.get("Location", ""), query


def test_every_link_of_the_changelist_answers_unfiltered_by_nothing(sender_client, make_user):
    fill(make_user, 5, users=1)
    page = sender_client.get(CHANGELIST_URL).text
    links = set(re.findall(r'href="(\?[^"]*)"', page))
    assert len(links) > 8  # the filters' choices and the date hierarchy's
    for link in links:
        response = sender_client.get(CHANGELIST_URL + link.replace("&amp;", "&"))
        assert response.status_code == 200, link


BAD_FILTER_VALUES = {
    "year past 2**63": "created_at__year=99999999999999999999",
    "year 9999 (its end is 10000)": "created_at__year=9999",
    "month past 2**63": "created_at__year=2024&created_at__month=99999999999999999999",
    "nul in a choice": "level__exact=%00",
    "nul in a category": "category=a%00",
    "recipient id past 2**63": "recipient__id__exact=99999999999999999999",
    "recipient id in other digits": "recipient__id__exact=%D9%A3",
}


@pytest.mark.parametrize("query", BAD_FILTER_VALUES.values(), ids=BAD_FILTER_VALUES.keys())
def test_a_filter_value_no_query_can_take_shows_the_unfiltered_list_and_says_so(
    sender_client, make_user, query
):
    fill(make_user, 2, users=1)
    response = sender_client.get(f"{CHANGELIST_URL}?{query}", follow=True)
    assert response.redirect_chain == [(f"{CHANGELIST_URL}?e=1", 302)]
    assert len(response.context["cl"].result_list) == 2
    [message] = messages_of(response)
    assert message.startswith("The list could not be filtered by “") and "everything" in message


@pytest.mark.parametrize(
    "query",
    [
        "title__regex=(",
        "title__iregex=%5B",
        "data__contains=1",
        "actors__contains=1",
        "data__has_key=a",
        "id__range=1",
        "id__in=99999999999999999999",
        "recipient=99999999999999999999",
        "body__icontains=x",
        "level__in=info",
        "group_count__gte=1",
    ],
)
def test_lookups_the_changelists_links_never_make_are_a_400(sender_client, query):
    assert sender_client.get(f"{CHANGELIST_URL}?{query}").status_code == 400


@pytest.mark.parametrize("bad", ["\u00b2", "9" * 5000, "99999999999999999999", "x"])
def test_an_action_on_a_selection_that_is_no_ids_says_so_and_changes_nothing(
    sender_client, make_user, bad
):
    fill(make_user, 1, users=1)
    good = Notification.objects.get().pk
    response = sender_client.post(
        CHANGELIST_URL, {"action": "mark_read", "_selected_action": [good, bad]}, follow=True
    )
    assert response.status_code == 200
    assert messages_of(response)[0].startswith("Not ids of notifications: “")
    assert Notification.objects.filter(read_at__isnull=False).count() == 0


def test_the_mute_changelist_takes_its_filter_and_a_users_link_only(client, make_user):
    root = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(root)
    url = "/admin/notifications/mute/"
    assert client.get(f"{url}?kind__exact=level&user__id__exact={root.pk}").status_code == 200
    assert client.get(f"{url}?value__regex=(").status_code == 400
    assert client.get(f"{url}?kind__exact=%00").status_code == 302


def test_the_unfiltered_changelist_does_not_count_the_table(sender_client, make_user, monkeypatch):
    monkeypatch.setattr(notifications_admin.LargeTablePaginator, "exact_count_limit", 20)
    fill(make_user, 30)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE notifications_notification")
    queries = changelist_queries(sender_client)
    counts = [sql for sql in queries if "COUNT(" in sql.upper()]
    if connection.vendor == "postgresql":
        assert counts == []  # the planner's estimate
        assert any("reltuples" in sql for sql in queries)
    else:
        assert len(counts) == 1
        assert "LIMIT 21" in counts[0]  # a bounded count, never the whole table


def test_a_filtered_count_is_bounded(sender_client, make_user, monkeypatch):
    monkeypatch.setattr(notifications_admin.LargeTablePaginator, "exact_count_limit", 20)
    fill(make_user, 30)
    queries = changelist_queries(sender_client, CHANGELIST_URL + "?read=no")
    counts = [sql for sql in queries if "COUNT(" in sql.upper()]
    assert len(counts) == 1
    assert "LIMIT 21" in counts[0]
    assert "21 notifications" in sender_client.get(CHANGELIST_URL + "?read=no").content.decode()


def test_mark_read_and_unread_go_through_services_per_recipient(
    sender_client, make_user, django_capture_on_commit_callbacks
):
    alice, bob = fill(make_user, 4, users=2)
    ids = list(Notification.objects.values_list("pk", flat=True))
    changes = []

    def receiver(sender, user_id, ids, state, **kwargs):
        changes.append((user_id, sorted(ids), state))

    signals.notifications_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = sender_client.post(
                CHANGELIST_URL, {"action": "mark_read", "_selected_action": ids}
            )
        assert messages_of(response) == ["Marked 4 as read."]
        assert Notification.objects.filter(read_at__isnull=True).count() == 0
        with django_capture_on_commit_callbacks(execute=True):
            sender_client.post(CHANGELIST_URL, {"action": "mark_unread", "_selected_action": ids})
        assert Notification.objects.filter(read_at__isnull=False).count() == 0
    finally:
        signals.notifications_changed.disconnect(receiver)

    def own(user):
        return sorted(Notification.objects.filter(recipient=user).values_list("pk", flat=True))

    assert sorted(changes) == sorted(
        [
            (alice.pk, own(alice), "read"),
            (bob.pk, own(bob), "read"),
            (alice.pk, own(alice), "unread"),
            (bob.pk, own(bob), "unread"),
        ]
    )


def test_actions_refuse_a_selection_too_large(sender_client, make_user, monkeypatch):
    monkeypatch.setattr(notifications_admin.NotificationAdmin, "max_action_rows", 3)
    fill(make_user, 4)
    ids = list(Notification.objects.values_list("pk", flat=True))
    response = sender_client.post(CHANGELIST_URL, {"action": "mark_read", "_selected_action": ids})
    assert "at most 3" in messages_of(response)[0]
    assert Notification.objects.filter(read_at__isnull=False).count() == 0


def test_delete_goes_through_services(client, make_user, django_capture_on_commit_callbacks):
    superuser = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(superuser)
    alice, bob = fill(make_user, 4, users=2)
    ids = list(Notification.objects.values_list("pk", flat=True))
    changes = []

    def receiver(sender, user_id, ids, state, **kwargs):
        changes.append((user_id, state))

    signals.notifications_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                CHANGELIST_URL,
                {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
            )
    finally:
        signals.notifications_changed.disconnect(receiver)
    assert Notification.objects.count() == 0
    assert sorted(changes) == sorted([(alice.pk, "deleted"), (bob.pk, "deleted")])


def test_deleting_an_expired_notification_deletes_it(
    client, make_user, settings, django_capture_on_commit_callbacks
):
    superuser = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(superuser)
    alice = make_user("alice")
    soon = timezone.now() + timedelta(seconds=1)
    expired, other = (services.notify(alice, title, expires_at=soon).ids[0] for title in "ab")
    Notification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{CHANGELIST_URL}{expired}/delete/", {"post": "yes"}, follow=True)
    assert "was deleted successfully" in messages_of(response)[0]
    assert not Notification.objects.filter(pk=expired).exists()
    client.post(
        CHANGELIST_URL, {"action": "delete_selected", "_selected_action": [other], "post": "yes"}
    )
    assert Notification.objects.count() == 0


def test_notifications_are_read_only_and_not_added_in_the_admin(sender_client, make_user):
    fill(make_user, 1, users=1)
    notification = Notification.objects.get()
    change_url = reverse("admin:notifications_notification_change", args=[notification.pk])

    page = sender_client.get(change_url)
    assert page.status_code == 200
    assert 'name="title"' not in page.content.decode()  # shown, not editable
    sender_client.post(change_url, {"title": "Edited"})
    notification.refresh_from_db()
    assert notification.title == "Notification 0"
    assert sender_client.get(CHANGELIST_URL + "add/").status_code == 403


# --- the date hierarchy ------------------------------------------------------------------


def dated(make_user, *days):
    """One notification on each of ``days`` (aware datetimes), in id order."""
    user = make_user()
    for day in days:
        batch = services.notify(user, f"On {day:%Y-%m-%d}")
        Notification.objects.filter(pk__in=batch.ids).update(created_at=day)


def titles(levels):
    return [choice["title"] for choice in levels["choices"]]


def test_the_date_hierarchy_reads_no_more_than_the_ends_of_the_table(sender_client, make_user):
    fill(make_user, 5)
    queries = changelist_queries(sender_client)
    assert not [sql for sql in queries if "MIN(" in sql or "MAX(" in sql or "DISTINCT" in sql]


def test_the_date_hierarchy_offers_the_calendar_between_the_first_and_last_rows(
    sender_client, make_user
):
    dated(make_user, datetime(2024, 11, 20, tzinfo=UTC), datetime(2025, 2, 3, tzinfo=UTC))
    levels = sender_client.get(CHANGELIST_URL).context["date_levels"]
    assert titles(levels) == ["2024", "2025"]
    assert levels["choices"][0]["link"] == "?created_at__year=2024"

    in_2024 = sender_client.get(CHANGELIST_URL + "?created_at__year=2024").context["date_levels"]
    assert titles(in_2024) == ["November 2024", "December 2024"]
    assert in_2024["back"]["title"] == "All dates"

    november = sender_client.get(
        CHANGELIST_URL + "?created_at__year=2024&created_at__month=11"
    ).context["date_levels"]
    assert titles(november) == [f"November {day}" for day in range(20, 31)]
    assert november["choices"][0]["link"] == (
        "?created_at__day=20&created_at__month=11&created_at__year=2024"
    )

    one_day = sender_client.get(
        CHANGELIST_URL + "?created_at__year=2024&created_at__month=11&created_at__day=20"
    )
    assert titles(one_day.context["date_levels"]) == ["November 20"]
    assert "On 2024-11-20" in one_day.content.decode()
    assert "On 2025-02-03" not in one_day.content.decode()


def test_within_one_month_the_date_hierarchy_starts_at_its_days(sender_client, make_user):
    dated(make_user, datetime(2025, 2, 3, tzinfo=UTC), datetime(2025, 2, 5, tzinfo=UTC))
    levels = sender_client.get(CHANGELIST_URL).context["date_levels"]
    assert titles(levels) == ["February 3", "February 4", "February 5"]
    assert levels["back"] == {"link": "?created_at__year=2025", "title": "2025"}


def test_an_empty_table_has_an_empty_date_hierarchy(sender_client):
    assert sender_client.get(CHANGELIST_URL).context["date_levels"]["choices"] == []


# --- what the checks decide, without a request -------------------------------------------------


@pytest.mark.parametrize(
    ("model", "value", "expected"),
    [
        (Notification, "12", True),
        (Notification, 12, True),
        (Notification, "9223372036854775807", True),
        (Notification, "9223372036854775808", False),
        (Notification, "9" * 5000, False),
        (Notification, "-1", False),
        (Notification, "+1", False),
        (Notification, " 1", False),
        (Notification, "1_000", False),
        (Notification, "\u0663", False),
        (Notification, "\u00b2", False),
        (Notification, True, False),
        (Notification, 1.0, False),
        (Notification, None, False),
        (Session, "a-session-key", True),
        (Session, "a\x00key", False),
    ],
)
def test_is_primary_key_decides_without_a_query(model, value, expected, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert is_primary_key(model, value) is expected


def test_an_integer_key_of_a_type_the_database_does_not_know_is_taken_as_64_bits(monkeypatch):
    ops = connection.ops

    def unknown(internal_type):
        raise KeyError(internal_type)

    monkeypatch.setattr(ops, "integer_field_range", unknown)
    assert is_primary_key(Notification, str(2**63 - 1))
    assert not is_primary_key(Notification, str(2**63))


class EverythingFilter(admin.ListFilter):
    """A list filter that is neither a field's nor a SimpleListFilter."""

    title = "everything"

    def has_output(self):
        return False

    def expected_parameters(self):
        return ["everything"]

    def queryset(self, request, queryset):
        return queryset

    def choices(self, changelist):
        return []


def test_a_changelist_takes_the_parameters_of_every_kind_of_list_filter(rf):
    class Checked(CheckedChangelistAdmin):
        list_filter = [
            "level",
            ("created_at", admin.DateFieldListFilter),
            notifications_admin.CategoryFilter,
            EverythingFilter,
        ]
        date_hierarchy = "created_at"

    names = Checked(Notification, admin.AdminSite()).filter_parameters(rf.get("/"))
    assert names == {
        "level__exact",
        "level__isnull",
        "created_at__gte",
        "created_at__lt",
        "category",
        "everything",
        "created_at__year",
        "created_at__month",
        "created_at__day",
    }


# --- email ---------------------------------------------------------------------------------

DIGESTS_ON = {"EMAIL_DIGESTS": True, "BASE_URL": "https://example.com"}


def email_fields():
    return Notification.objects.values_list("email", "email_due_at").get()


def test_the_channel_choice_shows_only_with_email_digests(sender_client, settings):
    assert 'name="email"' not in sender_client.get(SEND_URL).text
    settings.NOTIFICATIONS = DIGESTS_ON
    page = sender_client.get(SEND_URL).text
    assert page.count('name="email"') == 4
    assert re.search(r'<input type="radio" name="email" value=""[^>]*checked', page)
    for label in ("As the site decides", "In-app only", "In-app and email at once"):
        assert label in page
    assert "In-app, and email if still unseen (digest)" in page


@pytest.mark.parametrize(
    ("posted", "level", "email", "due_after"),
    [
        ("", "info", "digest", timedelta(seconds=900)),  # the site decides: a digest
        ("", "error", "now", timedelta(0)),  # the site decides: error is in EMAIL_NOW_LEVELS
        ("none", "error", "", None),
        ("digest", "error", "digest", timedelta(seconds=900)),
        ("now", "info", "now", timedelta(0)),
    ],
)
def test_the_channel_choice_reaches_notify(
    sender_client, make_user, settings, posted, level, email, due_after
):
    settings.NOTIFICATIONS = {**DIGESTS_ON, "EMAIL_NOW_LEVELS": ["error"]}
    alice = make_user("alice")
    before = timezone.now()
    response = sender_client.post(SEND_URL, send_data(users=[alice.pk], level=level, email=posted))
    assert response.status_code == 302
    stored, due_at = email_fields()
    assert stored == email
    if due_after is None:
        assert due_at is None
    else:
        assert before + due_after <= due_at <= timezone.now() + due_after


def test_with_email_digests_off_a_posted_channel_is_ignored(sender_client, make_user):
    alice = make_user("alice")
    response = sender_client.post(SEND_URL, send_data(users=[alice.pk], email="now"))
    assert response.status_code == 302
    assert email_fields() == ("", None)


@pytest.mark.parametrize("bad", ["sms", "None", "NOW", "now\x00", "9" * 5000])
def test_a_bad_channel_is_a_form_error_and_sends_nothing(sender_client, make_user, settings, bad):
    settings.NOTIFICATIONS = DIGESTS_ON
    alice = make_user("alice")
    response = sender_client.post(SEND_URL, send_data(users=[alice.pk], email=bad))
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["email"]
    assert Notification.objects.count() == 0


def test_the_preview_says_which_channels(sender_client, make_user, settings):
    settings.NOTIFICATIONS = DIGESTS_ON
    alice = make_user("alice")
    data = {**send_data(users=[alice.pk]), "_preview": "Preview"}
    del data["_send"]
    page = sender_client.post(SEND_URL, {**data, "email": ""}).text
    assert (
        "Channels: <strong>As the site decides: In-app, and email if still unseen (digest)" in page
    )
    page = sender_client.post(SEND_URL, {**data, "email": "none"}).text
    assert "Channels: <strong>In-app only</strong>" in page
    settings.NOTIFICATIONS = {}
    assert "Channels:" not in sender_client.post(SEND_URL, data).text


def test_the_confirmation_says_which_channels_and_covers_them(sender_client, make_user, settings):
    settings.NOTIFICATIONS = {**DIGESTS_ON, "SEND_CONFIRM_ABOVE": 1}
    users = [make_user().pk for _ in range(2)]
    response = sender_client.post(SEND_URL, send_data(users=users, email="now"))
    page = response.text
    assert response.context["confirm"]
    assert "Channels: <strong>In-app and email at once</strong>" in page
    assert '<input type="hidden" name="email" value="now"' in page
    token = response.context["confirmation_token"]

    # The confirmation was of email at once: a digest instead asks again.
    again = sender_client.post(SEND_URL, send_data(users=users, email="digest", confirmed=token))
    assert again.context["confirm"]
    assert Notification.objects.count() == 0
    sent = sender_client.post(SEND_URL, send_data(users=users, email="now", confirmed=token))
    assert sent.status_code == 302
    assert set(Notification.objects.values_list("email", flat=True)) == {"now"}


def make_digest(user, status, sent_at=None):
    now = timezone.now()
    return Digest.objects.create(
        user=user, kind="digest", status=status, created_at=now, lease_until=now, sent_at=sent_at
    )


@pytest.fixture
def emailed_rows(make_user, settings):
    """One notification in each state the "emailed" column tells apart, by title."""
    settings.NOTIFICATIONS = DIGESTS_ON
    alice = make_user("alice", email="alice@example.com")
    sent_at = datetime(2024, 5, 6, 7, 8, tzinfo=UTC)
    states = {
        "in-app only": None,
        "waiting": None,
        "seen first": None,
        "pending": make_digest(alice, "pending"),
        "sent": make_digest(alice, "sent", sent_at),
        "no address": make_digest(alice, "no-address"),
        "failed": make_digest(alice, "failed"),
        "nothing left": make_digest(alice, "nothing-left"),
    }
    for title, digest in states.items():
        email = "none" if title == "in-app only" else "digest"
        [row] = services.notify(alice, title, email=email)
        Notification.objects.filter(pk=row.pk).update(digest=digest)
    Notification.objects.filter(title="seen first").update(seen_at=timezone.now())
    return sent_at


def test_the_emailed_column_tells_each_state(sender_client, emailed_rows):
    response = sender_client.get(CHANGELIST_URL)
    model_admin = admin.site.get_model_admin(Notification)
    shown = {row.title: model_admin.emailed(row) for row in response.context["cl"].result_list}
    assert shown == {
        "in-app only": None,
        "waiting": "waiting",
        "seen first": None,
        "pending": "pending",
        "sent": emailed_rows,
        "no address": "not sent: no address",
        "failed": "failed",
        "nothing left": None,
    }
    page = response.text
    assert '<td class="field-emailed">—</td>' in page
    assert '<td class="field-emailed">not sent: no address</td>' in page
    assert '<td class="field-emailed nowrap">May 6, 2024, 7:08 a.m.</td>' in page


@pytest.mark.parametrize(
    ("value", "titles"),
    [
        ("yes", {"sent"}),
        ("waiting", {"waiting", "pending"}),
        ("no", {"in-app only", "seen first", "no address", "failed", "nothing left"}),
    ],
)
def test_the_emailed_filter(sender_client, emailed_rows, value, titles):
    response = sender_client.get(f"{CHANGELIST_URL}?emailed={value}")
    assert {row.title for row in response.context["cl"].result_list} == titles


def test_the_change_page_shows_the_email_fields_read_only(sender_client, emailed_rows):
    row = Notification.objects.get(title="sent")
    page = sender_client.get(f"{CHANGELIST_URL}{row.pk}/change/").text
    for label in ("Email:", "Email due at:", "Digest status:", "Email sent at:"):
        assert label in page
    assert f'href="/admin/notifications/digest/{row.digest_id}/change/">sent</a>' in page
    assert "May 6, 2024, 7:08 a.m." in page
    assert 'name="email_due_at"' not in page  # read-only, as the whole page


def test_the_changelist_query_count_with_digests_is_pinned(sender_client, make_user, settings):
    """Session, user, permissions ... then the page: the digests come in its query (a join).
    A row more, with a digest of another status, adds no query."""
    settings.NOTIFICATIONS = DIGESTS_ON
    alice = make_user("alice")
    fill(make_user, 10)
    changelist_queries(sender_client)  # warm the caches
    ten = changelist_queries(sender_client)
    for status in ("pending", "sent", "no-address", "failed", "nothing-left"):
        [row] = services.notify(alice, status, email="digest")
        Notification.objects.filter(pk=row.pk).update(digest=make_digest(alice, status))
    fifteen = changelist_queries(sender_client)
    assert len(ten) == len(fifteen) == unfiltered(CHANGELIST_QUERIES)
    assert len(changelist_queries(sender_client, CHANGELIST_URL + "?emailed=no")) == (
        CHANGELIST_QUERIES
    )
    [page] = [sql for sql in fifteen if "notifications_digest" in sql]
    assert "LEFT OUTER JOIN" in page


# --- the digest admin: a log ---------------------------------------------------------------

DIGEST_URL = "/admin/notifications/digest/"


@pytest.fixture
def root_client(client, make_user):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def test_digests_are_read_only_even_for_superusers(root_client, emailed_rows):
    digest = Digest.objects.get(status="sent")
    model_admin = admin.site.get_model_admin(Digest)
    request = root_client.get(DIGEST_URL).wsgi_request
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, digest)
    assert not model_admin.has_delete_permission(request, digest)
    assert model_admin.get_actions(request) == {}

    assert root_client.get(f"{DIGEST_URL}add/").status_code == 403
    assert root_client.get(f"{DIGEST_URL}{digest.pk}/delete/").status_code == 403
    assert root_client.post(f"{DIGEST_URL}{digest.pk}/delete/", {"post": "yes"}).status_code == 403
    change = f"{DIGEST_URL}{digest.pk}/change/"
    page = root_client.get(change).text
    assert 'name="_save"' not in page and "<select" not in page
    assert root_client.post(change, {"status": "failed"}).status_code == 403
    root_client.post(DIGEST_URL, {"action": "delete_selected", "_selected_action": [digest.pk]})
    assert Digest.objects.filter(pk=digest.pk, status="sent").exists()
    assert "Add email digest" not in root_client.get(DIGEST_URL).text


def test_the_digest_list_counts_each_digests_notifications_in_its_own_query(
    root_client, emailed_rows
):
    alice = get_user_model().objects.get(username="alice")
    sent = Digest.objects.get(status="sent")
    services.notify(alice, "another", email="digest")
    Notification.objects.filter(title="another").update(digest=sent)
    changelist_queries(root_client, DIGEST_URL)  # warm the caches
    before = changelist_queries(root_client, DIGEST_URL)
    for _ in range(5):
        make_digest(alice, "failed")
    after = changelist_queries(root_client, DIGEST_URL)
    assert len(before) == len(after) == unfiltered(DIGEST_CHANGELIST_QUERIES)

    response = root_client.get(DIGEST_URL)
    counts = {digest.pk: digest.carried for digest in response.context["cl"].result_list}
    assert counts[sent.pk] == 2
    assert sorted(counts.values()).count(0) == 5
    link = f'href="{CHANGELIST_URL}?digest__id__exact={sent.pk}">2</a>'
    assert link in response.text
    carried = root_client.get(f"{CHANGELIST_URL}?digest__id__exact={sent.pk}")
    assert {row.title for row in carried.context["cl"].result_list} == {"sent", "another"}


@pytest.mark.parametrize("query", ["status__exact=failed", "kind__exact=now", "q=alice"])
def test_the_digest_list_filters(root_client, emailed_rows, query):
    response = root_client.get(f"{DIGEST_URL}?{query}")
    assert response.status_code == 200
    expected = {"status__exact=failed": 1, "kind__exact=now": 0, "q=alice": 5}[query]
    assert len(response.context["cl"].result_list) == expected


def test_the_mute_list_shows_and_filters_the_channel(root_client, make_user):
    alice = make_user("alice")
    services.set_preferences(alice, muted_categories=["news"])
    services.mute_email(alice, "billing")
    page = root_client.get("/admin/notifications/mute/?channel__exact=email")
    assert [(mute.channel, mute.value) for mute in page.context["cl"].result_list] == [
        ("email", "billing")
    ]
    assert '<td class="field-channel">email</td>' in page.text
