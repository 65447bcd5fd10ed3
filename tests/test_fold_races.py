"""Concurrent sends with one group_key fold into one unread row per recipient, counting each
send once, whatever the interleaving: on PostgreSQL and on SQLite."""

import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction

from notifications import services
from notifications.models import Notification

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "post:7:comments"
SENDERS = 6


def send_at_once(recipients, actors, in_callers_transaction: bool) -> list[BaseException]:
    """One thread per actor, each with its own connection and transaction, all sending to
    ``recipients`` with one group key at the same moment (a barrier); returns their errors.

    In a caller's transaction, each sender holds its transaction open a little after its
    send, so that the others' sends surely run while it is uncommitted."""
    barrier = threading.Barrier(len(actors))
    errors: list[BaseException] = []

    def send(actor):
        services.notify(recipients, f"{actor.username} commented", actor=actor, group_key=KEY)

    def sender(actor):
        try:
            connection.ensure_connection()
            barrier.wait(10)
            if in_callers_transaction:
                with transaction.atomic():
                    send(actor)
                    time.sleep(0.05)
            else:
                send(actor)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender, args=(actor,)) for actor in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def unread_groups(recipients) -> dict[int, list[int]]:
    """Each recipient's unread rows of the group: their group_count, oldest first."""
    rows = Notification.objects.filter(recipient__in=recipients, group_key=KEY).unread()
    found: dict[int, list[int]] = {user.pk: [] for user in recipients}
    for recipient_id, count in rows.order_by("id").values_list("recipient_id", "group_count"):
        found[recipient_id].append(count)
    return found


@pytest.mark.parametrize("in_callers_transaction", [False, True], ids=["autocommit", "atomic"])
@pytest.mark.parametrize("earlier", [0, 1], ids=["first-of-the-group", "onto-an-unread-one"])
def test_concurrent_folds_leave_one_unread_row_with_the_right_count(
    make_user, earlier, in_callers_transaction
):
    recipients = [make_user(f"reader{n}") for n in range(3)]
    actors = [make_user(f"writer{n}") for n in range(SENDERS)]
    # As in any process past its first send: the actor's content type is cached, so a sender's
    # transaction reads nothing before notify() (SQLite could not then take the write lock).
    ContentType.objects.get_for_model(get_user_model())
    for _ in range(earlier):
        services.notify(recipients, "the first comment", actor=actors[0], group_key=KEY)

    assert send_at_once(recipients, actors, in_callers_transaction) == []

    expected = SENDERS + earlier
    assert unread_groups(recipients) == {user.pk: [expected] for user in recipients}
    [row] = Notification.objects.filter(recipient=recipients[0])
    assert len({actor["id"] for actor in row.actors}) == 5  # the latest five writers, once each
