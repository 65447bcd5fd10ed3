"""Send what is due: claim a batch of digests, render them, send them over one connection to
the mail server, and record what became of each. The email task and ``manage.py
send_email_digests`` both run :func:`send_batch`."""

from __future__ import annotations

import logging
import smtplib
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import cast

from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Count, F, Min, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from ..conf import app_settings
from ..models import Digest, Notification, id_list
from . import claims, messages

logger = logging.getLogger("notifications.email")


@dataclass
class Report:
    """What one batch did (counts of digests)."""

    claimed: int = 0
    sent: int = 0
    no_address: int = 0
    nothing_left: int = 0
    failed: int = 0
    retry: int = 0
    full: bool = False  # as many claimed as a batch holds: more may be due

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


def send_batch(
    now: datetime | None = None, limit: int | None = None, using: str = DEFAULT_DB_ALIAS
) -> Report:
    """Claim up to ``limit`` (``EMAIL_BATCH_SIZE``) due digests and send them. The queries do
    not grow with the batch: the claim, the users, the rows shown, their counts, the rows'
    actors and targets (one per model), and one UPDATE per kind of outcome."""
    started = timezone.now()
    now = now or started
    limit = limit or app_settings.EMAIL_BATCH_SIZE
    ids = claims.claim(now, limit, using)
    report = Report(claimed=len(ids), full=len(ids) >= limit)
    if not ids:
        return report
    digests = list(
        Digest.objects.using(using).filter(pk__in=id_list(ids, using)).select_related("user")
    )
    shown, totals = _contents(ids, using)
    outcome = claims.Outcome([], [], [], [], [])
    connection = mail.get_connection(fail_silently=False)
    try:
        # What needs no mail server first: with the server down these are still recorded.
        sendable = []
        for digest in digests:
            total, category = totals.get(digest.pk, (0, ""))
            address = messages.address_of(digest.user)
            if not total:
                outcome.nothing_left.append(digest.pk)
            elif not address:
                outcome.no_address.append(digest.pk)
            else:
                sendable.append((digest, address, total, category))
        if sendable:
            connection.open()
        for digest, address, total, category in sendable:
            _send_one(connection, digest, address, shown[digest.pk], total, category, outcome)
    except Exception:
        # The connection is gone (the server went away, or never answered): the rest waits.
        unsent = _unrecorded(outcome, digests)
        logger.exception("email: %d digests not sent, retried later", len(unsent))
        outcome.retry.extend(unsent)
    finally:
        try:
            connection.close()
        except Exception:  # closing a dead connection: nothing to lose
            logger.debug("email: closing the connection failed", exc_info=True)
        # On the batch's clock (``now``), moved on by the time sending took: a retry's pause
        # then counts from the moment the claim was made, whatever ``now`` the caller gave.
        claims.record(outcome, now + (timezone.now() - started), using)
    report.sent = len(outcome.sent)
    report.no_address = len(outcome.no_address)
    report.nothing_left = len(outcome.nothing_left)
    report.failed = len(outcome.failed)
    report.retry = len(outcome.retry)
    return report


def _unrecorded(outcome: claims.Outcome, digests: list[Digest]) -> list[int]:
    recorded = {
        *outcome.sent,
        *outcome.no_address,
        *outcome.nothing_left,
        *outcome.failed,
        *outcome.retry,
    }
    return [digest.pk for digest in digests if digest.pk not in recorded]


def _send_one(
    connection: BaseEmailBackend,
    digest: Digest,
    address: str,
    shown: list[Notification],
    total: int,
    category: str,
    outcome: claims.Outcome,
) -> None:
    try:
        message = messages.build(digest, address, shown, total, category)
    except Exception:  # a template of the project's that fails: this one waits, the rest go
        logger.exception("email: digest %s could not be rendered", digest.pk)
        outcome.retry.append(digest.pk)
        return
    message.connection = connection
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as refused:
        codes = [code for code, _ in refused.recipients.values()]
        _undelivered(digest, address, codes, outcome)
        return
    except smtplib.SMTPDataError as refused:  # this message refused; the session goes on
        _undelivered(digest, address, [refused.smtp_code], outcome)
        return
    except (ValueError, smtplib.SMTPNotSupportedError) as error:
        # An address no message can carry (a newline in it, a local part the server cannot
        # take): this user's alone, never the batch's.
        logger.warning("email: digest %s cannot go to %r (%s)", digest.pk, address, error)
        outcome.failed.append(digest.pk)
        return
    outcome.sent.append(digest.pk)


def _undelivered(digest: Digest, address: str, codes: list[int], outcome: claims.Outcome) -> None:
    """The server refused this message: for good (5xx) or for now (4xx, tried again later)."""
    permanent = all(code >= 500 for code in codes)
    logger.warning("email: %s refused (%s)", address, ", ".join(map(str, codes)))
    (outcome.failed if permanent else outcome.retry).append(digest.pk)


def _contents(
    ids: list[int], using: str
) -> tuple[dict[int, list[Notification]], dict[int, tuple[int, str]]]:
    """Each digest's newest rows still unseen (at most ``messages.SHOWN``), and how many it
    carries with their category if they share one. Seen, read or archived since the claim:
    left out."""
    carried = (
        Notification.objects.using(using)
        .filter(digest_id__in=id_list(ids, using))
        .not_seen()
        .not_read()
        .unarchived()
        .live()
    )
    totals = {
        digest_id: (count, category if categories == 1 else "")
        for digest_id, count, categories, category in carried.order_by()
        .values("digest_id")
        .annotate(
            count=Count("pk"), categories=Count("category", distinct=True), category=Min("category")
        )
        .values_list("digest_id", "count", "categories", "category")
    }
    rank = Window(RowNumber(), partition_by=[F("digest_id")], order_by=F("id").desc())
    rows = (
        carried.annotate(rank=rank)
        .filter(rank__lte=messages.SHOWN)
        .with_related()
        .order_by("digest_id", "-id")
    )
    shown: dict[int, list[Notification]] = defaultdict(list)
    for row in rows:
        shown[cast(int, row.digest_id)].append(row)
    return shown, totals
