"""Web Push as tasks of Django's Tasks framework: the only module of push/ that enqueues.

Every committed send schedules :func:`send_pushes` for the notifications that go out as
pushes (``targets.py``), ``WEB_PUSH_BATCH_SIZE`` per task, so that several workers share a
large send. A push a push service could not take now (429, 5xx, no answer) is tried again
later, up to ``MAX_ATTEMPTS`` times, after the longer of its ``Retry-After`` and a pause that
grows with each attempt; a push past its TTL is not sent at all.

A push is a hint: the inbox holds the notification whatever becomes of it. The task is
enqueued after the send commits, so a process killed between the two loses that push (not
the notification, nor its email).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.utils import timezone

from ..conf import app_settings
from ..services.batch import NotificationBatch
from . import delivery, targets

try:  # Django 6
    from django.tasks import task
except ImportError:  # Django 5.2: the backport
    from django_tasks import task  # type: ignore[no-redef]

logger = logging.getLogger("notifications.push")

MAX_ATTEMPTS = 4
RETRY_AFTER_SECONDS = 30  # doubled at each attempt
MAX_RETRY_AFTER_SECONDS = 3600


@task()
def send_pushes(
    notification_ids: list[int], only: list[list[int]] | None = None, attempt: int = 1
) -> dict[str, int | float]:
    """Push these notifications (``only``: just these [notification, subscription] pairs)."""
    pairs = None if only is None else [(pair[0], pair[1]) for pair in only]
    try:
        report = delivery.send(notification_ids, pairs)
    except Exception:
        # The database went away, say: the whole task is tried again, as a push would be.
        _again(list(notification_ids), only, attempt, 0.0, f"{len(notification_ids)} notifications")
        raise
    if report.retry:
        retry(report, attempt)
    return report.as_dict()


def retry(report: delivery.Report, attempt: int) -> None:
    """Try the pushes a push service could not take again later, or give up on them."""
    ids = sorted({nid for nid, _ in report.retry})
    pairs = [[nid, sid] for nid, sid in report.retry]
    _again(ids, pairs, attempt, report.retry_after, f"{len(pairs)} pushes")


def _again(
    ids: list[int], only: list[list[int]] | None, attempt: int, asked: float, what: str
) -> None:
    """Enqueue attempt ``attempt + 1`` after the longer of ``asked`` (Retry-After) and a pause
    that doubles with each attempt; or give up after ``MAX_ATTEMPTS``."""
    if attempt >= MAX_ATTEMPTS:
        logger.warning("push: gave up on %s after %d attempts", what, attempt)
        return
    if not _can_defer():
        logger.warning("push: %s not retried: the task backend cannot defer", what)
        return
    pause = max(asked, RETRY_AFTER_SECONDS * 2 ** (attempt - 1))
    at = timezone.now() + timedelta(seconds=min(pause, MAX_RETRY_AFTER_SECONDS))
    _enqueue(ids, only, attempt + 1, at)


def schedule_sent(sender: Any, batch: NotificationBatch, **kwargs: Any) -> None:
    """``notification_sent`` receiver: enqueue the pushes of this batch. Never raises: a send
    must not fail because a push could not be scheduled."""
    if not app_settings.WEB_PUSH:
        return
    try:
        ids = targets.notifications_to_push(batch)
    except Exception:
        logger.exception("push: could not find who to push %d notifications to", len(batch))
        return
    size = app_settings.WEB_PUSH_BATCH_SIZE
    for start in range(0, len(ids), size):
        _enqueue(ids[start : start + size], None, 1, None)


def _enqueue(ids: list[int], only: list[list[int]] | None, attempt: int, at: Any) -> None:
    try:
        runner = send_pushes if at is None else send_pushes.using(run_after=at)
        runner.enqueue(ids, only, attempt)
    except Exception:
        logger.exception("push: could not enqueue the pushes of %d notifications", len(ids))


def _can_defer() -> bool:
    try:
        return bool(send_pushes.get_backend().supports_defer)
    except Exception:
        return False
