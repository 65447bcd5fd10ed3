"""The QuerySet API: counts, and the backlog that resume and `after` rely on."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import services
from notifications.models import Notification, is_category

pytestmark = pytest.mark.django_db


def make(user, title, *, ago: float = 0, **fields):
    """A row written ``ago`` seconds ago (by both clocks: the app's and the database's)."""
    at = timezone.now() - timedelta(seconds=ago)
    return Notification.objects.create(
        recipient=user, title=title, **{"created_at": at, "inserted_at": at, **fields}
    )


def test_counts_ignore_archived_and_other_users(alice, bob):
    make(alice, "unread")
    make(alice, "read", read_at=timezone.now())
    make(alice, "seen", seen_at=timezone.now())
    make(alice, "archived", archived_at=timezone.now())
    last = make(alice, "read and seen", read_at=timezone.now(), seen_at=timezone.now())
    make(bob, "bob's")
    assert Notification.objects.for_user(alice).counts() == {
        "unread_count": 2,  # "unread" and "seen"
        "unseen_count": 2,  # "unread" and "read"
        "last_id": last.pk,
    }


def test_counts_for_a_user_with_nothing(alice, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert Notification.objects.for_user(alice).counts() == {
            "unread_count": 0,
            "unseen_count": 0,
            "last_id": None,
        }


def test_counts_by_recipient_in_one_query(alice, bob, make_user, django_assert_num_queries):
    carol = make_user("carol")
    make(alice, "a")
    make(alice, "b", read_at=timezone.now())
    make(bob, "c", seen_at=timezone.now())
    with django_assert_num_queries(1):
        counts = Notification.objects.counts_by_recipient([alice.pk, bob.pk, carol.pk])
    assert counts == {alice.pk: (1, 2), bob.pk: (1, 0)}
    with django_assert_num_queries(1):
        assert Notification.objects.counts_by_recipient([alice.pk]) == {alice.pk: (1, 2)}
    assert Notification.objects.counts_by_recipient([carol.pk]) == {}


def test_counts_by_recipient_leave_out_expired_ones_as_counts_does(alice, bob):
    make(alice, "live")
    expired = make(alice, "expired")
    Notification.objects.filter(pk=expired.pk).update(expires_at=timezone.now())
    make(bob, "expired only")
    Notification.objects.filter(recipient=bob).update(expires_at=timezone.now())
    counts = Notification.objects.counts_by_recipient([alice.pk, bob.pk])
    assert counts == {alice.pk: (1, 1)}  # pushes carry what hello and the API say
    assert Notification.objects.counts_by_recipient([bob.pk]) == {}
    assert Notification.objects.for_user(alice).counts()["unread_count"] == 1


def test_backlog_returns_newer_rows_oldest_first(alice):
    seen = make(alice, "seen", ago=600)
    newer = [make(alice, f"new {i}") for i in range(3)]
    rows, complete = Notification.objects.for_user(alice).backlog(seen.pk)
    assert [row.pk for row in rows] == [row.pk for row in newer] and complete


def test_backlog_catches_a_row_that_committed_after_a_newer_one_was_shown(alice, settings):
    """Ids are taken at insert, visibility comes at commit: "late" took its id before "shown"
    but committed after the client saw "shown". A resume from "shown" must still return it."""
    settings.NOTIFICATIONS = {"RESUME_MARGIN_SECONDS": 60}
    make(alice, "long ago", ago=3600)
    late = make(alice, "late", ago=5)
    shown = make(alice, "shown", ago=4)
    # Give "late" a smaller id than "shown" without relying on insert order.
    Notification.objects.filter(pk=late.pk).update(id=shown.pk + 1)
    Notification.objects.filter(pk=shown.pk).update(id=shown.pk + 2)
    Notification.objects.filter(pk=shown.pk + 1).update(id=shown.pk)
    late_id, shown_id = shown.pk, shown.pk + 2
    rows, _ = Notification.objects.for_user(alice).backlog(shown_id)
    titles = [row.title for row in rows]
    assert "late" in titles  # found by the margin, though its id is below `after`
    assert "long ago" not in titles  # older than the margin
    assert late_id < shown_id


def test_backlog_margin_is_measured_from_the_clients_last_row(alice, settings):
    settings.NOTIFICATIONS = {"RESUME_MARGIN_SECONDS": 10}
    old = make(alice, "old", ago=100)
    anchor = make(alice, "anchor", ago=50)
    rows, _ = Notification.objects.for_user(alice).backlog(anchor.pk)
    assert rows == []  # "old" is outside the margin, and the client has the anchor itself
    assert old.pk < anchor.pk


def test_backlog_after_an_id_the_user_never_had(alice, bob):
    bobs = make(bob, "bob's")
    mine = make(alice, "mine")
    rows, _ = Notification.objects.for_user(alice).backlog(bobs.pk)
    assert [row.pk for row in rows] == [mine.pk]


def test_backlog_limit_and_complete_flag(alice):
    for i in range(5):
        make(alice, f"n{i}")
    rows, complete = Notification.objects.for_user(alice).backlog(0, limit=3)
    assert len(rows) == 3 and not complete
    rows, complete = Notification.objects.for_user(alice).backlog(0, limit=5)
    assert len(rows) == 5 and complete


def test_backlog_pages_through_a_burst_inside_the_margin_exactly_once(alice, settings):
    """Ten times BACKLOG_LIMIT rows written within the margin, the client having shown one in
    the middle: paging with the cursor (not resuming from the newest id received, which would
    recompute the margin and return the same rows forever) ends, and brings every row once."""
    settings.NOTIFICATIONS = {"BACKLOG_LIMIT": 10, "RESUME_MARGIN_SECONDS": 60}
    burst = [make(alice, f"n{i}", ago=30 - i * 0.01) for i in range(100)]
    after = burst[49].pk
    received, cursor, pages = [], None, 0
    while True:
        rows, complete = Notification.objects.for_user(alice).backlog(after, cursor=cursor)
        pages += 1
        received += [row.pk for row in rows]
        if complete:
            break
        cursor = rows[-1].pk
    assert pages == 10  # 49 rows of the margin below `after`, 50 above, 10 a page
    assert len(received) == len(set(received)) == 99
    assert set(received) == {row.pk for row in burst} - {after}


def test_imported_rows_with_old_created_at_do_not_widen_the_margin(alice, settings):
    """Imported rows keep their old created_at. Two imports a few seconds apart in 2020 terms
    but hours apart in fact, with live rows between them: resuming from the second must not
    re-send the live rows (a margin measured on created_at spans them all). inserted_at, which
    only the database writes, is what the margin is measured on."""
    settings.NOTIFICATIONS = {"RESUME_MARGIN_SECONDS": 60}
    long_ago = timezone.now() - timedelta(days=2000)
    first = make(
        alice, "imported 1", created_at=long_ago, inserted_at=timezone.now() - timedelta(hours=2)
    )
    live = [make(alice, f"live {i}", ago=3600) for i in range(5)]
    second = make(alice, "imported 2", created_at=long_ago + timedelta(seconds=30))
    rows, complete = Notification.objects.for_user(alice).backlog(second.pk)
    assert rows == [] and complete
    assert first.pk < live[0].pk < second.pk


def test_rows_from_before_inserted_at_existed_are_never_in_a_margin(alice, settings):
    settings.NOTIFICATIONS = {"RESUME_MARGIN_SECONDS": 60}
    old = [make(alice, f"old {i}", inserted_at=None) for i in range(3)]
    rows, _ = Notification.objects.for_user(alice).backlog(old[-1].pk)
    assert rows == []
    new = make(alice, "new")
    rows, _ = Notification.objects.for_user(alice).backlog(old[1].pk)
    assert [row.pk for row in rows] == [old[2].pk, new.pk]


def test_inserted_at_comes_from_the_database_clock(alice):
    row = services.notify(alice, "clocked")[0]
    stored = Notification.objects.get(pk=row.pk)
    assert stored.inserted_at is not None
    assert abs((stored.inserted_at - timezone.now()).total_seconds()) < 60


def test_backlog_query_count_does_not_grow(alice, bob, django_assert_num_queries):
    services.notify(alice, "warm", actor=bob)
    for i in range(30):
        services.notify(alice, f"n{i}", actor=bob, target=bob)
    with django_assert_num_queries(4):  # anchor, rows, then actors and targets prefetched
        rows, _ = Notification.objects.for_user(alice).backlog(0)
        assert all(row.actor == bob for row in rows)


def test_up_to_and_state_filters(alice):
    first = make(alice, "first")
    make(alice, "second")
    assert list(Notification.objects.for_user(alice).up_to(first.pk)) == [first]
    assert Notification.objects.for_user(alice).up_to(None).count() == 2
    assert Notification.objects.for_user(alice).mark_read() == 2
    assert Notification.objects.for_user(alice).read().count() == 2
    assert Notification.objects.for_user(alice).mark_unread() == 2
    assert Notification.objects.for_user(alice).archive() == 2
    assert Notification.objects.for_user(alice).archived().count() == 2
    assert Notification.objects.for_user(alice).unarchive() == 2
    assert Notification.objects.for_user(alice).unarchived().count() == 2


def test_an_object_whose_model_is_gone_reads_as_missing_one_by_one_and_prefetched(alice):
    from tests.test_node import with_a_vanished_actor

    nid = with_a_vanished_actor(alice)
    assert Notification.objects.get(pk=nid).actor is None
    [row] = Notification.objects.filter(pk=nid).with_related()
    assert row.actor is None and row.target is None


def test_the_badge_leaves_archived_ones_out_and_the_state_filters_do_not(alice):
    first = make(alice, "first")
    make(alice, "second")
    Notification.objects.filter(pk=first.pk).archive()
    mine = Notification.objects.for_user(alice)
    assert (mine.unread().count(), mine.unseen().count()) == (1, 1)
    assert (mine.not_read().count(), mine.not_seen().count()) == (2, 2)
    assert mine.mark_seen() == 2
    assert (mine.unseen().count(), mine.not_seen().count(), mine.unread().count()) == (0, 0, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", True), ("billing", True), ("a-b_C9", True), ("x" * 64, True), ("x" * 65, False)]
    + [("a b", False), ("a\n", False), ("é", False), ("a.b", False), (None, False), (3, False)],
)
def test_what_a_category_is_is_said_once(value, expected):
    assert is_category(value) is expected
