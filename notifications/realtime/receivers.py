"""Internal receivers, connected in ``AppConfig.ready()``: what was committed becomes pushes."""

from __future__ import annotations

from typing import Any

from .. import versions
from ..models import Notification
from ..protocol import serialize
from ..services.batch import NotificationBatch
from . import broker
from .budget import Budget, counted


def push_sent(sender: Any, batch: NotificationBatch, **kwargs: Any) -> None:
    """The batch's notifications for its recipients with a socket open, with their counts:
    each content is shaped once, the counts come from one query, and the events go to the
    users' groups or, for many users, once to every process (``broker.created_messages``).

    Recipients with no socket anywhere get no push (a send to 100,000 users of whom 1,000 are
    online pushes 1,000 rows): they see the notification when they connect, from ``hello`` and
    ``resume``, or when they poll.

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
        parts: list[tuple[dict[str, Any], list[tuple[int, int]]]] = []
        users: set[int] = set()
        for prototype, rows in batch.parts():
            mine = [
                (recipient_id, nid)
                for nid, recipient_id in rows
                if online is None or recipient_id in online
            ]
            if mine:
                parts.append((serialize(prototype), mine))
                users.update(recipient_id for recipient_id, _ in mine)
        if not parts:
            return
        with budget.paused():  # the database, not Redis
            counts = Notification.objects.counts_by_recipient(list(users))
        messages = broker.created_messages(
            [
                (shape, [(user_id, nid, *counts.get(user_id, (0, 0))) for user_id, nid in mine])
                for shape, mine in parts
            ]
        )
        broker.send(messages, budget)


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
        broker.send([broker.to_user(user_id, event)], budget)
