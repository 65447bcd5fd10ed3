"""Grouping: a notification with a group_key folds into the recipient's unread one of that key."""

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from notifications import services
from notifications.models import Notification
from tests.test_consumers import signed_in

pytestmark = pytest.mark.django_db

POST = "post:7:comments"


def comment(recipients, actor, key=POST):
    return services.notify(
        recipients, f"{actor.username} commented on your post", actor=actor, group_key=key
    )


def test_folds_into_the_unread_one_with_a_new_id(alice, bob, make_user):
    carol = make_user("carol")
    first = comment(alice, bob).ids[0]
    second = comment(alice, carol).ids[0]
    assert second > first  # a new id: resume and `after` see it
    [row] = Notification.objects.for_user(alice)
    assert row.pk == second and row.group_count == 2
    assert [actor["display"] for actor in row.actors] == ["carol", "bob"]
    assert not Notification.objects.filter(pk=first).exists()


def test_the_json_carries_the_group(alice, bob):
    comment(alice, bob)
    comment(alice, bob)
    client = APIClient()
    client.force_authenticate(alice)
    [item] = client.get("/api/notifications/").json()["results"]
    assert item["group_key"] == POST and item["group_count"] == 2
    assert item["actors"] == [{"type": "auth.user", "id": str(bob.pk), "display": "bob"}]
    services.notify(alice, "ungrouped")
    plain = client.get("/api/notifications/").json()["results"][0]
    assert (plain["group_key"], plain["group_count"], plain["actors"]) == ("", 1, [])


def test_read_archived_or_other_keys_do_not_fold(alice, bob):
    read = comment(alice, bob).ids[0]
    services.mark_read(alice, [read])
    archived = comment(alice, bob).ids[0]
    services.archive(alice, [archived])
    comment(alice, bob, key="other")
    fresh = comment(alice, bob)
    assert Notification.objects.filter(recipient=alice).count() == 4
    assert Notification.objects.get(pk=fresh.ids[0]).group_count == 1


def test_fold_per_recipient_in_one_send(alice, bob, make_user):
    carol, dave = make_user("carol"), make_user("dave")
    comment([alice], dave)
    batch = comment([alice, bob], carol)  # alice folds, bob gets a first one
    counts = dict(Notification.objects.values_list("recipient_id", "group_count"))
    assert counts == {alice.pk: 2, bob.pk: 1}
    assert sorted(batch.recipient_ids) == sorted([alice.pk, bob.pk])
    assert {n.recipient_id: n.group_count for n in batch} == {alice.pk: 2, bob.pk: 1}


def test_fold_queries_do_not_grow_with_the_audience(bob, make_user):
    small = [make_user(f"s{i}") for i in range(2)]
    large = [make_user(f"l{i}") for i in range(40)]
    comment(small, bob)
    comment(large, bob)
    with CaptureQueriesContext(connection) as few:
        comment(small, bob)
    with CaptureQueriesContext(connection) as many:
        comment(large, bob)
    assert len(few) == len(many)


@pytest.mark.parametrize("key", ["", "   ", 5, "k" * 201])
def test_bad_group_key(alice, key):
    with pytest.raises(ValueError, match="group_key"):
        services.notify(alice, "x", group_key=key)
    assert Notification.objects.count() == 0


@pytest.mark.django_db(transaction=True)
async def test_sockets_and_resume_learn_of_the_fold(alice, bob):
    first = (await database_sync_to_async(comment)(alice, bob)).ids[0]
    communicator, _ = await signed_in(alice)
    folded = (await database_sync_to_async(comment)(alice, bob)).ids[0]
    message = await communicator.receive_json_from(timeout=3)
    notification = message["notification"]
    assert notification["id"] == folded and notification["group_count"] == 2
    assert message["unread_count"] == 1  # replaced, not added
    # A client that had shown `first` and was away: resuming from it hands over the fold.
    await communicator.send_json_to({"type": "resume", "after": first})
    backlog = await communicator.receive_json_from(timeout=3)
    assert [n["id"] for n in backlog["notifications"]] == [folded]
    await communicator.disconnect()


def test_the_admin_shows_the_group(alice, bob, make_user):
    from django.test import Client

    staff = make_user("boss", is_staff=True, is_superuser=True)
    comment(alice, bob)
    folded = comment(alice, bob).ids[0]
    client = Client()
    client.force_login(staff)
    page = client.get(f"/admin/notifications/notification/{folded}/change/")
    assert page.status_code == 200
    assert POST in page.content.decode() and "Grouping" in page.content.decode()
