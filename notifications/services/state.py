"""Changing what users did with their notifications: read, seen, archived, deleted."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, overload

from django.db import transaction
from django.utils import timezone

from ..conf import app_settings
from ..models import Notification, NotificationQuerySet, id_list
from ..protocol import clean_id, clean_ids
from . import outbox
from .outbox import Change

# A change "up to an id" works through the user's rows this many at a time: each of its
# statements reads or writes at most this many rows, however many the user has
# (bench/mark_all.py measures 200,000 unread rows).
RANGE_BATCH_SIZE = 5000


@overload
def mark_read(user: Any, ids: Iterable[int], *, up_to: int | None = None) -> list[int]: ...


@overload
def mark_read(user: Any, ids: None = None, *, up_to: int | None = None) -> Change: ...


def mark_read(
    user: Any, ids: Iterable[int] | None = None, *, up_to: int | None = None
) -> list[int] | Change:
    """Mark read the given notifications of ``user``; returns the ids that were unread. Ids
    that are not the user's are ignored.

    Without ``ids`` it is :func:`mark_all_read` (and returns what that returns)."""
    if ids is None:
        return mark_all_read(user, up_to=up_to)
    return _change(user, "read", ids, up_to, NotificationQuerySet.mark_read)


def mark_all_read(user: Any, *, up_to: int | None = None) -> Change:
    """Mark read every unread notification of ``user``, or only those up to ``up_to`` (what
    arrived after the user clicked stays unread). Returns the :class:`Change`: ``count``, and
    ``up_to`` the highest id it changed; ``ids`` only when few (see ``Change``)."""
    return _change_range(user, "read", up_to)


def mark_unread(user: Any, ids: Iterable[int]) -> list[int]:
    return _change(user, "unread", ids, None, NotificationQuerySet.mark_unread)


def mark_seen(user: Any, *, up_to: int | None) -> Change:
    """Mark seen everything of ``user`` up to ``up_to`` (the badge's unseen count drops to what
    arrived since). Returns the :class:`Change`, as :func:`mark_all_read` does."""
    return _change_range(user, "seen", up_to)


def archive(user: Any, ids: Iterable[int]) -> list[int]:
    return _change(user, "archived", ids, None, NotificationQuerySet.archive)


def unarchive(user: Any, ids: Iterable[int]) -> list[int]:
    return _change(user, "unarchived", ids, None, NotificationQuerySet.unarchive)


def delete(user: Any, ids: Iterable[int], *, expired_too: bool = False) -> list[int]:
    """Delete the given notifications of ``user``; with ``expired_too`` also those past their
    ``expires_at``, which the user no longer sees (the admin deletes those)."""
    return _change(
        user, "deleted", ids, None, lambda queryset: queryset.delete()[0], live=not expired_too
    )


# The rows a change would change: the others are already in that state. Stated positively (not
# as an exclude()) so that the "unread"/"unseen" partial indexes serve the "up to id" changes.
_PENDING: dict[str, Callable[[NotificationQuerySet], NotificationQuerySet]] = {
    "read": NotificationQuerySet.not_read,
    "unread": NotificationQuerySet.read,
    "seen": NotificationQuerySet.not_seen,
    "archived": NotificationQuerySet.unarchived,
    "unarchived": NotificationQuerySet.archived,
    "deleted": NotificationQuerySet.all,
}
# The column a change "up to an id" stamps.
_STAMPED = {"read": "read_at", "seen": "seen_at"}


def _change(
    user: Any,
    state: str,
    ids: Iterable[int],
    up_to: int | None,
    apply: Any,
    *,
    live: bool = True,
) -> list[int]:
    """A change of named ids: at most ``MAX_IDS_PER_MESSAGE`` of them (``clean_ids``)."""
    user_id = owner_id(user)
    queryset = Notification.objects.for_user(user_id, expired=not live)
    queryset = queryset.filter(id__in=clean_ids(ids))
    if up_to is not None:
        queryset = queryset.up_to(clean_id(up_to, "up_to"))
    queryset = _PENDING[state](queryset)
    with transaction.atomic():
        changed = list(queryset.order_by("id").values_list("id", flat=True))
        if changed:
            apply(Notification.objects.filter(id__in=id_list(changed)))
    if changed:
        outbox.queue_change(Change(user_id, changed, state))
    return changed


def _change_range(user: Any, state: str, up_to: int | None) -> Change:
    """Stamp every pending notification of the user up to ``up_to`` (all if None), in batches of
    ``RANGE_BATCH_SIZE`` by id, in one transaction: a SELECT ... FOR UPDATE of the next batch's
    ids (in id order, so that two concurrent changes lock in the same order), then an UPDATE of
    those ids. Only the batch's ids are held in memory; only a few are announced."""
    user_id = owner_id(user)
    pending = _PENDING[state](Notification.objects.for_user(user_id))
    if up_to is not None:
        pending = pending.up_to(clean_id(up_to, "up_to"))
    column = _STAMPED[state]
    now = timezone.now()  # one moment for every row of the change
    listed: list[int] = []
    count, after = 0, 0
    with transaction.atomic():
        while True:
            batch = list(
                pending.filter(id__gt=after)
                .order_by("id")
                .select_for_update()
                .values_list("id", flat=True)[:RANGE_BATCH_SIZE]
            )
            if not batch:
                break
            count += (
                _PENDING[state](Notification.objects.filter(id__in=id_list(batch)))
                .order_by()
                .update(**{column: now})
            )
            after = batch[-1]
            if len(listed) <= app_settings.MAX_IDS_PER_MESSAGE:
                listed += batch
            if len(batch) < RANGE_BATCH_SIZE:
                break
    if max(count, len(listed)) > app_settings.MAX_IDS_PER_MESSAGE:
        listed = []  # too many to list: up_to says it all
    change = Change(user_id, listed, state, up_to=after if count else None, count=count)
    if count:
        outbox.queue_change(change)
    return change


def owner_id(user: Any) -> int:
    user_id = getattr(user, "pk", user)
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise ValueError("user: a saved user or a user id is required")
    return user_id
