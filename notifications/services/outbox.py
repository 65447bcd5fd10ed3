"""Holds what a transaction sent or changed until it commits, then announces it.

All ``notify()`` calls of one transaction land in one outbox and are announced by one
``notification_sent`` signal, so the push that follows is one batched channel-layer call, not
one per call. Work done inside a savepoint that is rolled back must never be announced: Django
drops an ``on_commit`` callback registered inside a savepoint when that savepoint rolls back, so
each savepoint level gets an outbox of its own, flushed by callbacks registered at that level.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, transaction

from .. import signals
from ..models import Notification
from .batch import NotificationBatch

logger = logging.getLogger("notifications")

_ATTRIBUTE = "_notifications_outboxes"


@dataclass(frozen=True)
class Change:
    """One committed change of the state of one user's notifications, as announced.

    A change of named ids has ``up_to`` None and lists them all in ``ids`` (at most
    ``MAX_IDS_PER_MESSAGE``). A change of everything up to an id (mark all read, mark seen) has
    ``up_to``: the highest id it changed; every notification of the user up to that id is then
    in ``state``. Its ``ids`` lists the changed ids only while there are at most
    ``MAX_IDS_PER_MESSAGE`` of them (else it is empty): 200,000 of them would make a frame of
    1.5 MB. ``count`` is how many changed, always.
    """

    user_id: int
    ids: list[int]
    state: str
    up_to: int | None = None
    count: int = -1  # -1: len(ids)

    def __post_init__(self) -> None:
        if self.count < 0:
            object.__setattr__(self, "count", len(self.ids))


@dataclass
class _Outbox:
    sent: list[NotificationBatch] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Registered with on_commit; kept so we can tell later whether Django still holds it.
        self.callback = self.flush
        self.slot = -1  # where in run_on_commit it was last registered

    def pending(self, run_on_commit: list[Any]) -> bool:
        """Whether Django still holds this outbox's callback. A commit clears ``run_on_commit``
        and a savepoint rollback drops its tail, so looking where it was last registered is
        enough (rather than searching a list that grows with every call)."""
        return 0 <= self.slot < len(run_on_commit) and run_on_commit[self.slot][1] is self.callback

    def flush(self) -> None:
        sent, changes = self.sent, self.changes
        self.sent, self.changes = [], []  # a second run (see _enqueue) announces nothing twice
        if sent:
            merged = NotificationBatch.merge(sent)
            signals.notification_sent.send_robust(sender=Notification, batch=merged)
        for change in changes:
            signals.notifications_changed.send_robust(
                sender=Notification,
                user_id=change.user_id,
                ids=change.ids,
                state=change.state,
                up_to=change.up_to,
                count=change.count,
            )


def queue_sent(batch: NotificationBatch, using: str = DEFAULT_DB_ALIAS) -> None:
    """Announce ``batch`` when the caller's transaction commits (at once in autocommit mode).

    Call it after the rows are written and the writer's own atomic block has exited, so that the
    outbox belongs to the caller's savepoint level and collects every call at that level.
    """
    _enqueue(using, lambda outbox: outbox.sent.append(batch))


def queue_change(change: Change, using: str = DEFAULT_DB_ALIAS) -> None:
    """Announce ``change`` when the caller's transaction commits, like :func:`queue_sent`."""
    _enqueue(using, lambda outbox: outbox.changes.append(change))


def _enqueue(using: str, add: Callable[[_Outbox], None]) -> None:
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        outbox = _Outbox()
        add(outbox)
        outbox.flush()
        return
    outboxes: dict[tuple[str | None, ...], _Outbox] = connection.__dict__.setdefault(_ATTRIBUTE, {})
    for key in [k for k, box in outboxes.items() if not box.pending(connection.run_on_commit)]:
        del outboxes[key]  # flushed already, or dropped with a rolled-back savepoint
    key = tuple(connection.savepoint_ids)
    if key not in outboxes:
        outboxes[key] = _Outbox()
    # Registered on every call, not once: TestCase.captureOnCommitCallbacks() takes only the
    # callbacks registered during its block. The first run at commit flushes everything queued;
    # the later runs find the outbox empty.
    transaction.on_commit(outboxes[key].callback, using=using, robust=True)
    outboxes[key].slot = len(connection.run_on_commit) - 1
    add(outboxes[key])
