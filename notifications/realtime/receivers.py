"""Internal receivers, connected in ``AppConfig.ready()``: what was committed becomes pushes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .. import versions
from ..models import Notification
from ..protocol import serialize
from ..services.batch import NotificationBatch
from . import broker
from .budget import Budget, counted


def push_sent(sender: Any, batch: NotificationBatch, **kwargs: Any) -> None:
    """One event per recipient with a socket open, carrying all of this batch's notifications
    for them and their counts: each content is shaped once, the counts come from one query.

    Recipients with no socket anywhere get no push (a send to 100,000 users of whom 1,000 are
    online costs 1,000 group sends): they see the notification when they connect, from ``hello``
    and ``resume``, or when they poll.

    The Redis work (version bump, who is online, the pushes) waits at most
    ``PUSH_TIMEOUT_SECONDS`` in all (``budget.py``).
    """
    recipients = batch.recipient_ids
    with Budget() as budget:
        # Both in the cache's Redis. At most half the budget, so that a hung cache leaves the
        # channel layer its turn: who is online is then unknown, and everybody is pushed to.
        _, online = budget.call(
            f"the version bump and who is online ({counted(len(recipients), 'user')})",
            _bump_and_look_up,
            recipients,
            share=0.5,
        )
        by_user: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for prototype, rows in batch.parts():
            shape = serialize(prototype)
            for nid, recipient_id in rows:
                if online is None or recipient_id in online:
                    by_user[recipient_id].append({**shape, "id": nid})
        if not by_user:
            return
        with budget.paused():  # the database, not Redis
            counts = Notification.objects.counts_by_recipient(list(by_user))
        broker.send(
            [
                (
                    broker.user_group(user_id),
                    broker.created_event(items, *counts.get(user_id, (0, 0))),
                )
                for user_id, items in by_user.items()
            ],
            budget,
        )


def _bump_and_look_up(recipients: list[int]) -> set[int] | None:
    versions.bump(recipients)
    return broker.online(recipients)


def push_changed(
    sender: Any,
    user_id: int,
    ids: list[int],
    state: str,
    up_to: int | None = None,
    count: int | None = None,
    **kwargs: Any,
) -> None:
    """One compact ``changed`` frame for every socket of the user, however many rows changed:
    a change up to an id carries ``up_to`` instead of its ids once they are many."""
    counts = Notification.objects.for_user(user_id).counts()
    event = broker.changed_event(
        ids, state, counts["unread_count"], counts["unseen_count"], up_to=up_to, count=count
    )
    with Budget() as budget:
        budget.call("the version bump (1 user)", versions.bump, [user_id], share=0.5)
        broker.send([(broker.user_group(user_id), event)], budget)
