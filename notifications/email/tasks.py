"""The email work as tasks of Django's Tasks framework: the only module that enqueues.

``django.tasks`` on Django 6, the ``django-tasks`` backport on 5.2. The app writes no queue,
scheduler or worker: ``TASKS`` decides where the work runs (the database backend and
``manage.py db_worker`` by default, RQ or another backend at scale).

How due digests are found: every committed send that may email schedules
:func:`send_due_emails` for when its notifications fall due (at once for those sent at once),
unless a run is already scheduled at or before that moment. Each run sends one batch, then
schedules the next run: at once when the batch was full (another worker can take it), else
when something next falls due (a notification, a user's digest window, a dead worker's
claim). Extra runs are harmless (a run with nothing due costs a few queries); claims.py says
why no digest is sent twice or skipped.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.core.cache import caches
from django.utils import timezone

from .. import cache
from ..conf import app_settings
from ..models import Email
from . import claims, delivery

try:  # Django 6
    from django.tasks import task, task_backends
except ImportError:  # Django 5.2: the backport
    from django_tasks import task, task_backends  # type: ignore[no-redef,assignment]

logger = logging.getLogger("notifications.email")


@task()
def send_due_emails() -> dict[str, int | bool]:
    """Send one batch of due emails, then schedule the next run."""
    try:
        report = delivery.send_batch()
    except Exception:
        # The database went away, say: the chain of runs must not end with this one.
        schedule(timezone.now() + claims.RETRY_AFTER)
        raise
    now = timezone.now()
    schedule(now if report.full else claims.next_due(now))
    return report.as_dict()


def deferring_problem() -> str | None:
    """Why the email task's backend cannot run it later (None: it can)."""
    try:
        backend = task_backends[send_due_emails.backend]
    except Exception as error:
        return f"the task backend {send_due_emails.backend!r} does not load ({error})"
    if not backend.supports_defer:
        return f"the task backend {type(backend).__name__} cannot run a task later (run_after)"
    return None


def schedule(at: datetime | None) -> None:
    """Have :func:`send_due_emails` run at ``at`` (None: nothing to do), unless a run is already
    scheduled between now and then. Never raises: a send must not fail because the task
    backend is down (the next send, or a run of ``send_email_digests``, catches up)."""
    if at is None:
        return
    now = timezone.now()
    store = caches[app_settings.CACHE_ALIAS]
    try:
        scheduled = store.get(cache.EMAIL_SCHEDULE)
        if isinstance(scheduled, float) and now.timestamp() <= scheduled <= at.timestamp():
            return
        if at <= now:
            send_due_emails.enqueue()
        else:
            send_due_emails.using(run_after=at).enqueue()
        seconds_ahead = max((at - now).total_seconds(), 0)
        store.set(cache.EMAIL_SCHEDULE, at.timestamp(), timeout=seconds_ahead + 60)
    except Exception:
        logger.exception("email: could not schedule the email task for %s", at.isoformat())


def schedule_sent(sender: Any, batch: Any, **kwargs: Any) -> None:
    """``notification_sent`` receiver: schedule the run that will email this batch."""
    due = [
        prototype.email_due_at
        for prototype, _ in batch.parts()
        if prototype.email != Email.NONE and prototype.email_due_at is not None
    ]
    if due:
        schedule(min(due))
