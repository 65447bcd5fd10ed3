"""The admin and following: sending to an object's followers, the follows' list, and
FollowersInline on a project's own ModelAdmin.

The followed objects here are auth groups: a model with an admin of its own, as a project's
documents would have.
"""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import path

from notifications import services
from notifications.admin import FollowersInline
from notifications.admin.forms import followed_types
from notifications.models import Follow, Mute, Notification
from notifications.realtime import broker
from project import urls as project_urls
from tests.test_admin import grant

pytestmark = pytest.mark.django_db

SEND_URL = "/admin/notifications/notification/send/"
FOLLOWS_URL = "/admin/notifications/follow/"

# A project's own admin site, whose group admin shows the followers (the urls of the tests that
# use it: ``pytest.mark.urls(__name__)``).
site = admin.AdminSite(name="project_admin")


@admin.register(Group, site=site)
class GroupWithFollowersAdmin(GroupAdmin):
    inlines = [FollowersInline]


urlpatterns = [*project_urls.urlpatterns, path("project-admin/", site.urls)]


@pytest.fixture
def sender(make_user):
    user = make_user("sender", is_staff=True)
    grant(user, "send_notification", "view_notification", "view_follow", "view_group")
    return user


@pytest.fixture
def sender_client(client, sender):
    client.force_login(sender)
    return client


@pytest.fixture
def root_client(client, make_user):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def team():
    return Group.objects.create(name="Team")


@pytest.fixture
def group_type():
    return ContentType.objects.get_for_model(Group)


@pytest.fixture
def people(make_user, team):
    """Who follows the team, who muted it, and who does not hear of it for other reasons."""
    other = Group.objects.create(name="Other")
    people = {name: make_user(name) for name in ("ann", "ben", "cat", "dan", "eve")}
    people["fay"] = make_user("fay", is_active=False)
    services.follow(people["ann"], team, reason="author")
    services.follow(people["ben"], team, reason="participated")
    services.follow(people["cat"], team)
    services.mute_object(people["cat"], team)  # follows, and muted it
    services.mute_object(people["dan"], team)  # muted it without following
    services.follow(people["eve"], other)  # another object's follower
    services.follow(people["fay"], team)  # inactive
    return people


def followers_data(content_type, obj_id, **fields):
    data = {
        "audience": "followers",
        "object_type": content_type.pk,
        "object_id": obj_id,
        "title": "New comment",
        "body": "",
        "level": "info",
        "_send": "Send",
    }
    data.update(fields)
    return data


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def recipients(**filters):
    return set(Notification.objects.filter(**filters).values_list("recipient_id", flat=True))


# --- sending to the followers of an object ---------------------------------------------------


def test_send_to_followers_reaches_those_who_follow_and_did_not_mute_it(
    sender_client, people, team, group_type
):
    response = sender_client.post(SEND_URL, followers_data(group_type, team.pk))

    assert response.status_code == 302, response.content.decode()[:3000]
    assert recipients() == {people["ann"].pk, people["ben"].pk}
    assert messages_of(response) == ["Sent the notification to 2 users."]
    # The notification is about the object: it leads there, and muting it stops the next ones.
    assert set(Notification.objects.values_list("target_content_type", "target_object_id")) == {
        (group_type.pk, str(team.pk))
    }


def test_a_follower_who_muted_the_category_is_left_out_too(sender_client, people, team, group_type):
    Mute.objects.create(user=people["ben"], kind=Mute.Kind.CATEGORY, value="comments")
    response = sender_client.post(
        SEND_URL, followers_data(group_type, team.pk, category="comments")
    )
    assert response.status_code == 302
    assert recipients() == {people["ann"].pk}


def test_the_send_to_followers_is_one_insert_whatever_their_number(
    sender_client, make_user, team, group_type, django_capture_on_commit_callbacks, monkeypatch
):
    # Who is online is unknown (as in a Redis registry younger than its grace period, which an
    # earlier test's wipe can leave for 15 s): everybody is pushed to, their counts in one query.
    monkeypatch.setattr(broker, "online", lambda user_ids: None)

    def send_queries():
        sender_client.cookies.pop("messages", None)
        with (
            CaptureQueriesContext(connection) as queries,
            django_capture_on_commit_callbacks(execute=True),
        ):
            response = sender_client.post(SEND_URL, followers_data(group_type, team.pk))
        assert response.status_code == 302
        return [query["sql"] for query in queries.captured_queries]

    services.follow(make_user(), team)
    send_queries()  # warm the caches
    one = send_queries()
    services.follow_all([make_user() for _ in range(30)], team, reason="participated")
    many = send_queries()
    assert len(one) == len(many), "\n".join(["one:", *one, "many:", *many])
    inserts = [sql for sql in many if sql.upper().startswith("INSERT INTO")]
    assert len(inserts) == 1 and "SELECT" in inserts[0].upper()
    assert Notification.objects.count() == 1 + 1 + 31  # the warm-up's, one, many


def test_the_preview_counts_the_same_users_and_names_the_object(
    sender_client, people, team, group_type
):
    data = followers_data(group_type, team.pk)
    del data["_send"]
    response = sender_client.post(SEND_URL, {**data, "_preview": "Preview"})

    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r"goes to <strong>2</strong> users", html)
    assert "They follow group “Team” and have not muted it." in html
    assert Notification.objects.count() == 0


def test_a_large_send_to_followers_asks_for_confirmation_bound_to_the_object(
    sender_client, people, team, group_type, settings, make_user
):
    settings.NOTIFICATIONS = {"SEND_CONFIRM_ABOVE": 1}
    other = Group.objects.get(name="Other")
    services.follow(make_user(), other)
    data = followers_data(group_type, team.pk)

    first = sender_client.post(SEND_URL, data)
    html = first.content.decode()
    assert "Confirm the send" in html
    assert re.search(r"goes to <strong>2</strong> users", html)
    token = re.search(r'name="confirmed" value="([0-9a-f]+)"', html).group(1)
    # The confirmation of one object's followers is none for another's.
    again = sender_client.post(SEND_URL, {**data, "object_id": other.pk, "confirmed": token})
    assert "Confirm the send" in again.content.decode()
    assert Notification.objects.count() == 0

    confirmed = sender_client.post(SEND_URL, {**data, "confirmed": token})
    assert confirmed.status_code == 302
    assert recipients() == {people["ann"].pk, people["ben"].pk}


def test_the_type_choices_are_the_followed_and_the_followable_types_in_one_query(
    sender_client, people, settings, django_assert_num_queries
):
    settings.NOTIFICATIONS = {"FOLLOWABLE_MODELS": ["Auth.Permission"]}
    with django_assert_num_queries(1):
        types = {(ct.app_label, ct.model) for ct in followed_types()}
    assert types == {("auth", "group"), ("auth", "permission")}

    html = sender_client.get(SEND_URL).content.decode()
    select = re.search(r'<select name="object_type".*?</select>', html, re.S).group(0)
    assert "Group (Authentication and Authorization)" in select
    assert "Permission (Authentication and Authorization)" in select
    assert "User (" not in select


# --- bad input: a form error on its field, never a 500 ----------------------------------------


def stale_type():
    """A content type whose model is gone (its app uninstalled), that still has a follow."""
    return ContentType.objects.create(app_label="gone", model="thing")


BAD_TYPES = ["", "٣", "1\x00", "9" * 5000, str(2**63), "-1", "1.5", "x", "user-type", "stale"]
BAD_IDS = ["", "٣", "1\x00", "\x00", "9" * 5000, str(2**63), str(2**64), "-1", "1.5", "abc",
           "999999", "²"]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_TYPES)
def test_a_bad_object_type_is_an_error_on_its_field(
    sender_client, people, team, group_type, bad, make_user, django_user_model
):
    if bad == "user-type":  # a type no one follows, and not followable
        bad = ContentType.objects.get_for_model(django_user_model).pk
    elif bad == "stale":
        stale = stale_type()
        Follow.objects.create(user=make_user(), content_type=stale, object_id="1", reason="x")
        bad = stale.pk
    response = sender_client.post(SEND_URL, followers_data(group_type, team.pk, object_type=bad))

    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["object_type"]
    assert Notification.objects.count() == 0


@pytest.mark.parametrize("bad", BAD_IDS)
def test_an_object_id_that_is_no_such_object_is_an_error_on_its_field(
    sender_client, people, group_type, bad
):
    response = sender_client.post(SEND_URL, followers_data(group_type, bad))

    assert response.status_code == 200
    [error] = response.context["form"].errors["object_id"]
    assert list(response.context["form"].errors) == ["object_id"]
    assert error.startswith(("Enter the id", "“", "No group has the id", "Null characters"))
    assert "9" * 100 not in error  # a long value is shortened
    assert Notification.objects.count() == 0


def test_an_object_without_followers_is_an_error_on_the_id(sender_client, people, group_type):
    lonely = Group.objects.create(name="Lonely")
    response = sender_client.post(SEND_URL, followers_data(group_type, lonely.pk))
    assert response.context["form"].errors == {
        "object_id": ["No active user follows group “Lonely”."]
    }
    assert Notification.objects.count() == 0


def test_an_object_whose_followers_all_muted_it_is_an_error_on_the_id(
    sender_client, people, team, group_type
):
    for name in ("ann", "ben"):
        services.mute_object(people[name], team)
    response = sender_client.post(SEND_URL, followers_data(group_type, team.pk))
    assert response.context["form"].errors == {
        "object_id": ["No active user follows group “Team” without having muted it."]
    }
    assert Notification.objects.count() == 0


def test_followers_who_all_muted_the_category_are_an_error_on_the_id(
    sender_client, people, team, group_type
):
    for name in ("ann", "ben"):
        Mute.objects.create(user=people[name], kind=Mute.Kind.CATEGORY, value="comments")
    response = sender_client.post(
        SEND_URL, followers_data(group_type, team.pk, category="comments")
    )
    assert response.context["form"].errors == {
        "object_id": ["Every follower of group “Team” muted this category or level."]
    }
    assert Notification.objects.count() == 0


def test_the_followers_fields_are_ignored_for_another_audience(sender, sender_client, people):
    response = sender_client.post(
        SEND_URL,
        {"audience": "users", "users": [sender.pk], "object_type": "", "object_id": "x",
         "title": "Hi", "level": "info", "_send": "Send"},
    )  # fmt: skip
    assert response.status_code == 302
    assert recipients() == {sender.pk}
    assert Notification.objects.get().target is None


# --- the pre-filled link --------------------------------------------------------------------


def test_a_followers_link_opens_the_page_with_the_object_chosen(
    sender_client, people, team, group_type
):
    response = sender_client.get(f"{SEND_URL}?followers_of={group_type.pk}:{team.pk}")

    form = response.context["form"]
    assert response.status_code == 200
    assert form.initial == {
        "audience": "followers",
        "object_type": str(group_type.pk),
        "object_id": str(team.pk),
    }
    assert not form.errors
    html = response.content.decode()
    assert re.search(r'value="followers"[^>]* checked>', html)
    assert f'<option value="{group_type.pk}" selected>' in html
    assert "Now: group “Team”." in html


@pytest.mark.parametrize(
    ("link", "field"),
    [
        ("nothing", "object_type"),
        ("{type}", "object_type"),
        ("999999:{team}", "object_type"),
        ("%D9%A3:{team}", "object_type"),
        ("{type}%00:{team}", "object_type"),
        (":{team}", "object_type"),
        ("{type}:", "object_id"),
        ("{type}:999999", "object_id"),
        ("{type}:%00", "object_id"),
        ("{type}:" + "9" * 5000, "object_id"),
        ("{type}:%D9%A3", "object_id"),
    ],
)
def test_a_bad_followers_link_says_so_on_the_field(
    sender_client, people, team, group_type, link, field
):
    query = link.format(type=group_type.pk, team=team.pk)
    response = sender_client.get(f"{SEND_URL}?followers_of={query}")

    assert response.status_code == 200
    assert list(response.context["errors"]) and list(response.context["form"].errors) == [field]
    assert "errornote" in response.content.decode()


# --- the follows' list ----------------------------------------------------------------------


def changelist(client, query=""):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{FOLLOWS_URL}{query}")
    assert response.status_code == 200, response.get("Location")
    return response, len(queries.captured_queries)


def test_the_list_shows_each_follow_with_its_object_linked(root_client, people, team):
    response, _ = changelist(root_client)

    html = response.content.decode()
    rows = response.context["cl"].result_list
    assert len(rows) == 6
    assert html.count(f'<a href="/admin/auth/group/{team.pk}/change/">Team</a>') == 5
    for header in ("User", "Object", "Reason", "Following", "Muted", "Created at"):
        assert f">{header}<" in html or f">{header}</a>" in html, header
    assert 'class="field-reason">author<' in html


def test_an_object_that_is_gone_shows_as_its_type_and_id(root_client, make_user):
    Follow.objects.create(user=make_user(), content_type=stale_type(), object_id="7", reason="x")
    html, _ = changelist(root_client)
    assert "gone.thing 7 (gone)" in html.content.decode()


# The list's queries for a superuser, pinned: the user; the object-type filter's choices (one
# query, an index probe per type); the reason filter's sample; the bounded count (or on
# PostgreSQL the planner's estimate first); the page, its users and types joined; the page's
# objects, one query per type among them. (The session comes from the cache.)
FOLLOWS_QUERIES = 6


def unfiltered(count):
    return count + (connection.vendor == "postgresql")


def test_the_list_query_count_does_not_grow_with_the_page(root_client, make_user, team):
    services.follow(make_user(), team)
    changelist(root_client)  # warm the caches
    _, one = changelist(root_client)
    for number in range(19):
        services.follow(make_user(), Group.objects.create(name=f"g{number}"), reason=f"r{number}")
    response, twenty = changelist(root_client)
    assert len(response.context["cl"].result_list) == 20
    assert one == twenty == unfiltered(FOLLOWS_QUERIES)


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("?reason=author", {"ann"}),
        ("?following=yes", {"ann", "ben", "cat", "eve", "fay"}),
        ("?following=no", {"dan"}),
        ("?muted=yes", {"cat", "dan"}),
        ("?muted=no", {"ann", "ben", "eve", "fay"}),
        ("?q=ben", {"ben"}),
        ("?q=be", set()),  # exactly the username
        ("?content_type__id__exact={type}", {"ann", "ben", "cat", "dan", "eve", "fay"}),
        ("?content_type__id__exact={type}&object_id={other}", {"eve"}),
        ("?muted=no&content_type__id__exact={type}&object_id={team}", {"ann", "ben", "fay"}),
    ],
)
def test_the_list_filters(root_client, people, team, group_type, query, names):
    other = Group.objects.get(name="Other")
    response, _ = changelist(root_client, query.format(type=group_type.pk, team=team.pk,
                                                       other=other.pk))  # fmt: skip
    assert {row.user.username for row in response.context["cl"].result_list} == names


def test_the_object_type_filter_offers_the_followed_types(root_client, people, group_type):
    html = changelist(root_client)[0].content.decode()
    assert f'href="?content_type__id__exact={group_type.pk}"' in html
    assert "Group (Authentication and Authorization)" in html


def test_one_objects_followers_are_titled_and_lead_to_the_send_page(
    sender_client, people, team, group_type
):
    query = f"?content_type__id__exact={group_type.pk}&object_id={team.pk}"
    response, _ = changelist(sender_client, query)

    html = response.content.decode()
    assert "Followers of group “Team”" in html
    send = f"{SEND_URL}?followers_of={group_type.pk}%3A{team.pk}"
    assert f'href="{send}"' in html
    assert f'href="/admin/auth/group/{team.pk}/change/">Open the object</a>' in html
    page = sender_client.get(send)
    assert page.context["form"].initial["object_id"] == str(team.pk)


def test_the_send_link_shows_only_to_those_who_may_send(client, make_user, people, team):
    viewer = make_user("viewer", is_staff=True)
    grant(viewer, "view_follow")
    client.force_login(viewer)
    query = f"?content_type__id__exact={ContentType.objects.get_for_model(Group).pk}"
    response, _ = changelist(client, f"{query}&object_id={team.pk}")
    assert "Followers of group “Team”" in response.content.decode()
    assert "followers_of" not in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "content_type__id__exact=%D9%A3",
        "content_type__id__exact=99999999999999999999",
        "content_type__id__exact=1%00",
        "object_id=1%00",
        "user__id__exact=%C2%B2",
        "reason=a%00",
    ],
)
def test_a_filter_value_no_query_can_take_shows_the_unfiltered_list(root_client, people, query):
    response = root_client.get(f"{FOLLOWS_URL}?{query}", follow=True)
    assert response.redirect_chain == [(f"{FOLLOWS_URL}?e=1", 302)]
    assert len(response.context["cl"].result_list) == 6


@pytest.mark.parametrize("query", ["object_id__regex=(", "reason__startswith=a", "muted_at=1"])
def test_lookups_the_list_never_makes_are_a_400(root_client, query):
    assert root_client.get(f"{FOLLOWS_URL}?{query}").status_code == 400


def test_follows_are_read_only_but_may_be_deleted(root_client, people, team):
    follow = Follow.objects.get(user=people["ann"])
    assert root_client.get(f"{FOLLOWS_URL}add/").status_code == 403
    change = f"{FOLLOWS_URL}{follow.pk}/change/"
    page = root_client.get(change).content.decode()
    assert 'name="_save"' not in page and "<select" not in page
    assert f'<a href="/admin/auth/group/{team.pk}/change/">Team</a>' in page
    assert root_client.post(change, {"reason": "other"}).status_code == 403
    assert "Add follow" not in root_client.get(FOLLOWS_URL).content.decode()

    response = root_client.post(f"{FOLLOWS_URL}{follow.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Follow.objects.filter(pk=follow.pk).exists()
    assert people["ann"] not in services.followers(team)


# --- FollowersInline on a project's own ModelAdmin ------------------------------------------


def inline_page(client, group):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/project-admin/auth/group/{group.pk}/change/")
    assert response.status_code == 200
    return response.content.decode(), len(queries.captured_queries)


@pytest.mark.urls(__name__)
def test_the_inline_shows_an_objects_followers_read_only(sender_client, people, team, group_type):
    html, _ = inline_page(sender_client, team)

    group = re.search(r'id="notifications-follow-content_type-object_id-group".*?</table>',
                      html, re.S).group(0)  # fmt: skip
    table = re.search(r"<tbody>.*</tbody>", group, re.S).group(0)
    for name in ("ann", "ben", "cat", "dan", "fay"):
        assert f"<p>{name}</p>" in table, name
    assert "<p>eve</p>" not in table  # another object's
    assert re.findall(r'<input(?![^>]*type="hidden")[^>]*>', table) == []
    # No row may be added (the script offers "Add another" below MAX_NUM_FORMS) nor deleted.
    assert 'object_id-MAX_NUM_FORMS" value="0"' in group
    assert "Delete?" not in group
    followers = f"/admin/notifications/follow/?content_type__id__exact={group_type.pk}"
    assert f'href="{followers}&amp;object_id={team.pk}"' in html
    assert f'href="{SEND_URL}?followers_of={group_type.pk}%3A{team.pk}"' in html


@pytest.mark.urls(__name__)
def test_the_inline_needs_the_view_permission_and_links_send_only_for_senders(
    client, make_user, people, team
):
    viewer = make_user("viewer", is_staff=True)
    grant(viewer, "view_group", "change_group")
    client.force_login(viewer)
    assert "<p>ann</p>" not in inline_page(client, team)[0]

    grant(viewer, "view_follow")
    viewer = type(viewer).objects.get(pk=viewer.pk)  # forget the cached permissions
    client.force_login(viewer)
    html = inline_page(client, team)[0]
    assert "<p>ann</p>" in html
    assert "followers_of" not in html


@pytest.mark.urls(__name__)
def test_the_inline_costs_the_same_queries_for_one_follower_or_twenty(
    sender_client, make_user, team
):
    services.follow(make_user(), team)
    inline_page(sender_client, team)  # warm the caches
    _, one = inline_page(sender_client, team)
    services.follow_all([make_user() for _ in range(19)], team, reason="participated")
    html, twenty = inline_page(sender_client, team)
    assert one == twenty
    assert html.count('class="field-reason"') == 20


@pytest.mark.urls(__name__)
def test_the_inline_shows_the_newest_rows_only(root_client, make_user, team, monkeypatch):
    monkeypatch.setattr(FollowersInline, "max_rows", 3)
    users = [make_user() for _ in range(5)]
    for user in users:
        services.follow(user, team)
    html, _ = inline_page(root_client, team)
    assert html.count('class="field-reason"') == 3
    assert all(f"<p>{user.username}</p>" in html for user in users[2:])
    assert "All its followers, in the list of follows" in html
    # Saving the group leaves its follows alone.
    response = root_client.post(
        f"/project-admin/auth/group/{team.pk}/change/",
        {"name": "Team 2", "notifications-follow-content_type-object_id-TOTAL_FORMS": "3",
         "notifications-follow-content_type-object_id-INITIAL_FORMS": "3"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Group.objects.get(pk=team.pk).name == "Team 2"
    assert Follow.objects.of(team).count() == 5
