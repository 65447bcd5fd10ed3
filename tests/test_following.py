"""Following objects and muting them: the services, and what notify() makes of them."""

import asyncio

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from notifications import services
from notifications.models import Follow, Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(db):
    """Any saved model instance can be followed; a Group stands in for a project's document."""
    return Group.objects.create(name="Design doc")


@pytest.fixture
def other_document(db):
    return Group.objects.create(name="Budget")


def titles(user):
    return list(Notification.objects.filter(recipient=user).values_list("title", flat=True))


def test_following_is_idempotent_and_keeps_the_first_reason(alice, document):
    first = services.follow(alice, document, reason="author")
    again = services.follow(alice, document, reason="participated")
    assert again.pk == first.pk and again.reason == "author"
    assert list(services.followers(document)) == [alice]
    assert Follow.objects.count() == 1


def test_a_user_id_works_as_well_as_a_user(alice, document):
    services.follow(alice.pk, document)
    assert services.unfollow(alice.pk, document) is True
    assert services.unfollow(alice.pk, document) is False
    assert not Follow.objects.exists()


def test_followers_are_per_object_and_leave_out_inactive_users(
    alice, bob, make_user, document, other_document
):
    gone = make_user("gone", is_active=False)
    for user in (alice, gone):
        services.follow(user, document)
    services.follow(bob, other_document)
    assert list(services.followers(document)) == [alice]
    assert list(services.followers(other_document)) == [bob]


def test_follow_all_follows_many_in_two_statements_and_keeps_reasons(
    alice, bob, make_user, document, django_assert_num_queries
):
    carol = make_user("carol")
    services.follow(alice, document, reason="author")
    services.mute_object(bob, document)  # muted, not following: gets a reason, stays muted
    with django_assert_num_queries(4):  # a savepoint, the update, the insert, the release
        services.follow_all([alice, bob, carol], document, reason="mentioned")
    reasons = dict(Follow.objects.values_list("user__username", "reason"))
    assert reasons == {"alice": "author", "bob": "mentioned", "carol": "mentioned"}
    assert set(services.followers(document)) == {alice, carol}


def test_follow_all_takes_a_queryset_or_a_group(alice, bob, document):
    team = Group.objects.create(name="team")
    bob.groups.add(team)
    services.follow_all(get_user_model().objects.filter(pk=alice.pk), document, reason="author")
    services.follow_all(team, document, reason="participated")
    assert set(services.followers(document)) == {alice, bob}
    services.follow_all([], document, reason="participated")  # nothing to do, no error
    services.follow_all([999_999], document, reason="participated")  # no such user: skipped
    assert Follow.objects.count() == 2


def test_sending_to_followers_leaves_out_the_actor_and_who_muted_it(
    alice, bob, make_user, document
):
    carol, dave = make_user("carol"), make_user("dave")
    for user in (alice, bob, carol, dave):
        services.follow(user, document, reason="participated")
    services.mute_object(carol, document)
    batch = services.notify(
        services.followers(document), "New comment", actor=alice, target=document, exclude=alice
    )
    assert sorted(batch.recipient_ids) == sorted([bob.pk, dave.pk])


def test_a_muted_object_silences_every_send_about_it_whoever_sends(alice, bob, document):
    services.mute_object(alice, document)
    services.notify([alice, bob], "About the doc", target=document, category="comments")
    services.notify([alice, bob], "About the doc, urgently", target=document, level="error")
    services.notify([alice, bob], "Something else")
    assert titles(alice) == ["Something else"]
    assert len(titles(bob)) == 3


def test_unmuting_restores_following(alice, document):
    services.follow(alice, document, reason="author")
    services.mute_object(alice, document)
    assert list(services.followers(document)) == []
    assert services.unmute_object(alice, document) is True
    assert services.unmute_object(alice, document) is False
    assert list(services.followers(document)) == [alice]
    assert Follow.objects.get().reason == "author"


def test_unmuting_what_was_only_muted_leaves_no_row(alice, document):
    services.mute_object(alice, document)
    again = services.mute_object(alice, document)
    assert again.muted_at is not None and Follow.objects.count() == 1
    services.unmute_object(alice, document)
    assert not Follow.objects.exists()


def test_unfollowing_keeps_a_mute(alice, document):
    services.follow(alice, document)
    services.mute_object(alice, document)
    assert services.unfollow(alice, document) is True
    row = Follow.objects.get()
    assert row.reason == "" and row.muted_at is not None
    services.notify(alice, "Still muted", target=document)
    assert titles(alice) == []


def test_an_unmutable_category_reaches_who_muted_the_object(alice, document, settings):
    settings.NOTIFICATIONS = {"UNMUTABLE_CATEGORIES": ["security"]}
    services.mute_object(alice, document)
    services.notify(alice, "Shared publicly", target=document, category="security")
    assert titles(alice) == ["Shared publicly"]


def test_exclude_takes_users_ids_and_querysets_and_ignores_strangers(alice, bob, make_user):
    carol = make_user("carol")
    everyone = [alice, bob, carol]
    assert set(services.notify(everyone, "1", exclude=alice).recipient_ids) == {bob.pk, carol.pk}
    assert set(services.notify(everyone, "2", exclude=[alice.pk, 999999]).recipient_ids) == {
        bob.pk,
        carol.pk,
    }
    users = get_user_model().objects.filter(username__in=["bob", "carol"])
    assert set(services.notify(everyone, "3", exclude=users).recipient_ids) == {alice.pk}
    assert services.notify(alice, "4", exclude=alice).recipient_ids == []


@pytest.mark.parametrize("bad", ["alice", 0, -1, True, 1.5, [None]])
def test_a_bad_exclude_is_a_value_error_naming_it(alice, bad):
    with pytest.raises(ValueError, match="^exclude:"):
        services.notify(alice, "Never", exclude=bad)
    assert not Notification.objects.exists()


def test_the_audience_the_admin_counts_leaves_out_the_same_users(alice, bob, document):
    services.mute_object(bob, document)
    users = services.audience([alice, bob], target=document)
    assert list(users) == [alice]
    assert list(services.audience([alice, bob], exclude=alice)) == [bob]


@pytest.mark.parametrize(
    "call",
    [
        lambda obj: services.follow(None, obj),
        lambda obj: services.follow("alice", obj),
        lambda obj: services.follow(Group(name="unsaved user?"), obj),
        lambda obj: services.follow(1, Group(name="unsaved")),
        lambda obj: services.follow(1, "not a model"),
        lambda obj: services.follow(1, obj, reason=""),
        lambda obj: services.follow(1, obj, reason="has space"),
        lambda obj: services.follow(1, obj, reason="x" * 65),
        lambda obj: services.follow(1, obj, reason="caf\u00e9"),
        lambda obj: services.follow(1, obj, reason="\x00"),
        lambda obj: services.follow_all([1], obj, reason=""),
        lambda obj: services.follow_all(["x"], obj, reason="manual"),
        lambda obj: services.mute_object(1, None),
        lambda obj: services.unfollow(1, None),
        lambda obj: services.unmute_object(None, obj),
    ],
)
def test_bad_arguments_are_value_errors_and_write_nothing(alice, document, call):
    with pytest.raises(ValueError):
        call(document)
    assert not Follow.objects.exists()


def test_following_inside_a_rolled_back_transaction_leaves_nothing(alice, document):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.follow(alice, document)
        services.mute_object(alice, document)
        raise RuntimeError
    assert not Follow.objects.exists()


def test_a_user_deleted_takes_their_follows_along(alice, document):
    services.follow(alice, document)
    alice.delete()
    assert not Follow.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_async_functions_do_the_same(alice, document):
    async def scenario():
        await services.afollow(alice, document, reason="author")
        await services.afollow_all([alice.pk], document, reason="participated")
        await services.amute_object(alice, document)
        assert await services.aunmute_object(alice, document) is True
        assert [user async for user in services.followers(document)] == [alice]
        assert await services.aunfollow(alice, document) is True

    asyncio.run(scenario())
    assert not Follow.objects.exists()


@pytest.mark.parametrize("count", [10, 10_000])
def test_sending_to_followers_is_one_statement_for_10_and_10_000(
    count, alice, document, django_assert_num_queries
):
    user_model = get_user_model()
    user_model.objects.bulk_create(
        [user_model(username=f"follower{i}") for i in range(count)], batch_size=2000
    )
    users = user_model.objects.filter(username__startswith="follower")
    with django_assert_num_queries(4):  # a savepoint, the update, the insert, the release
        services.follow_all(users, document, reason="participated")
    services.mute_object(users.order_by("pk").first(), document)
    services.follow(alice, document, reason="author")
    with transaction.atomic(), django_assert_num_queries(1):
        batch = services.notify(
            services.followers(document), "New comment", target=document, exclude=alice
        )
    assert len(batch) == count - 1
    assert not Notification.objects.filter(recipient=alice).exists()


def test_prune_deletes_the_follows_of_objects_that_are_gone(alice, bob, document, other_document):
    from io import StringIO

    from django.contrib.contenttypes.models import ContentType
    from django.core.management import call_command

    services.follow(alice, document)
    services.mute_object(bob, document)
    services.follow(alice, other_document)
    services.follow(alice, bob)  # another model: a user
    stale_type = ContentType.objects.create(app_label="uninstalled", model="thing")
    Follow.objects.create(user=alice, content_type=stale_type, object_id="1", reason="manual")
    document.delete()

    def prune(*args):
        out = StringIO()
        call_command("prune_notifications", *args, stdout=out, stderr=StringIO())
        return out.getvalue()

    assert "Would delete 3 follows of objects that are gone." in prune("--dry-run")
    assert Follow.objects.count() == 5
    assert "Deleted 3 follows of objects that are gone." in prune()
    assert sorted(str(row.target) for row in Follow.objects.all()) == ["Budget", "bob"]


@pytest.mark.parametrize(
    "nobody",
    [
        lambda: get_user_model().objects.none(),
        lambda: get_user_model().objects.filter(username__in=[]),
    ],
)
def test_an_audience_that_is_empty_by_construction_writes_nothing(alice, document, nobody):
    services.follow_all(nobody(), document, reason="mentioned")
    assert services.notify(nobody(), "To no one").ids == []
    assert services.notify(nobody(), "To no one, grouped", group_key="g").ids == []
    assert services.notify(alice, "Not excluding anyone", exclude=nobody()).recipient_ids == [
        alice.pk
    ]
    assert not Follow.objects.exists()
