"""NotificationBatch is a Sequence: indexing and slicing read across the parts of a batch."""

import pytest

from notifications.models import Notification
from notifications.services.batch import NotificationBatch


def batch() -> NotificationBatch:
    first = NotificationBatch.of(Notification(title="first"), [(1, 10), (2, 11)])
    second = NotificationBatch.of(Notification(title="second"), [(3, 10)])
    return NotificationBatch.merge([first, NotificationBatch(), second])


def test_index_reads_across_parts():
    notifications = batch()
    assert [(n.pk, n.recipient_id, n.title) for n in notifications] == [
        (1, 10, "first"),
        (2, 11, "first"),
        (3, 10, "second"),
    ]
    assert notifications[2].pk == 3
    assert notifications[-1].title == "second"
    assert notifications[-3].pk == 1


def test_slices_and_bounds():
    notifications = batch()
    assert [n.pk for n in notifications[1:]] == [2, 3]
    assert [n.pk for n in notifications[::-1]] == [3, 2, 1]
    with pytest.raises(IndexError):
        notifications[3]
    with pytest.raises(IndexError):
        notifications[-4]


def test_repr_counts_the_rows():
    assert repr(batch()) == "<NotificationBatch: 3 notifications>"
    assert len(NotificationBatch()) == 0
