"""Which users get an email now, claimed so that no two workers send the same one.

A claim is one short transaction, serialized across workers by one lock (an advisory lock on
PostgreSQL, the write lock on SQLite): it creates a ``Digest`` per user due and points that
user's due notifications at it, in one UPDATE that only matches rows without a digest. Sending
happens after the claim commits, outside the lock, so workers send in parallel. A claim holds
until ``lease_until``: a worker that dies before recording the outcome leaves its digests to
whichever worker claims after that, which sends them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet

from ..conf import app_settings
from ..models import Channel, Digest, Email, Mute, Notification, id_list

# How long a claim holds before another worker may take it over (the sending worker died).
LEASE = timedelta(minutes=10)
# After a failure that may pass (the mail server was down), wait this long times the attempts.
RETRY_AFTER = timedelta(minutes=1)
# Attempts before a digest is given up (status failed).
MAX_ATTEMPTS = 5

_LOCK_KEY = 0x6E6F7466  # "notf": the advisory lock's key on PostgreSQL


def claim(now: datetime, limit: int, using: str = DEFAULT_DB_ALIAS) -> list[int]:
    """Claim up to ``limit`` digests to send: those a dead worker left, then new ones for the
    users whose notifications are due at ``now``. Returns their ids. At most eight queries."""
    with transaction.atomic(using=using):
        _lock(using)
        digests = Digest.objects.using(using)
        abandoned = list(
            digests.filter(status=Digest.Status.PENDING, lease_until__lte=now)
            .order_by("lease_until")
            .values_list("pk", "attempts")[:limit]
        )
        given_up = [pk for pk, attempts in abandoned if attempts >= MAX_ATTEMPTS]
        retried = [pk for pk, attempts in abandoned if attempts < MAX_ATTEMPTS]
        if given_up:
            digests.filter(pk__in=given_up).update(status=Digest.Status.FAILED, sent_at=now)
        if retried:
            digests.filter(pk__in=retried).update(
                lease_until=now + LEASE, attempts=F("attempts") + 1
            )
        # Those given up take no place: the batch fills up with new ones (else it would come
        # back short, not full, and users due now would wait for the next run's reason to run).
        room = limit - len(retried)
        return retried + (_claim_due(now, room, using) if room > 0 else [])


def _claim_due(now: datetime, limit: int, using: str) -> list[int]:
    due = Notification.objects.using(using).awaiting_email().filter(email_due_at__lte=now)
    # What users turned off for email leaves the queue for good (and the index with it).
    due.filter(Exists(_email_mutes(using))).update(email_due_at=None)
    recent = Digest.objects.using(using).filter(
        user_id=OuterRef("recipient_id"),
        kind=Digest.Kind.DIGEST,
        status__in=(Digest.Status.PENDING, Digest.Status.SENT),
        created_at__gt=now - app_settings.EMAIL_DIGEST_WINDOW,
    )
    sendable = due.filter(Q(email=Email.NOW) | ~Exists(recent))
    users = list(
        sendable.order_by()
        .values("recipient_id")
        .annotate(first=Min("email_due_at"), waiting=Count("pk", filter=Q(email=Email.DIGEST)))
        .order_by("first", "recipient_id")
        .values_list("recipient_id", "waiting")[:limit]
    )
    if not users:
        return []
    created = Digest.objects.using(using).bulk_create(
        [
            Digest(
                user_id=user_id,
                kind=Digest.Kind.DIGEST if waiting else Digest.Kind.NOW,
                created_at=now,
                lease_until=now + LEASE,
            )
            for user_id, waiting in users
        ]
    )
    ids = [digest.pk for digest in created]
    # A user whose window is closed gets only what is sent at once; the others everything due.
    # (From ``due``, not ``sendable``: the digests just created close every window.)
    in_digest = [user_id for user_id, waiting in users if waiting]
    due.filter(recipient_id__in=id_list([user_id for user_id, _ in users], using)).filter(
        Q(email=Email.NOW) | Q(recipient_id__in=id_list(in_digest, using))
    ).update(
        digest=Digest.objects.using(using)
        .filter(pk__in=id_list(ids, using), user_id=OuterRef("recipient_id"))
        .values("pk")[:1]
    )
    return ids


def _email_mutes(using: str) -> QuerySet[Mute]:
    """The mutes that keep the outer notification out of email: its user's, on the email
    channel, of everything, of its category, or of its level."""
    return Mute.objects.using(using).filter(
        Q(kind=Mute.Kind.ALL)
        | Q(kind=Mute.Kind.CATEGORY, value=OuterRef("category"))
        | Q(kind=Mute.Kind.LEVEL, value=OuterRef("level")),
        user_id=OuterRef("recipient_id"),
        channel=Channel.EMAIL,
    )


def _lock(using: str) -> None:
    """Hold the claim lock until the transaction ends."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        sql = "SELECT pg_advisory_xact_lock(%s)"
        params: tuple[int, ...] = (_LOCK_KEY,)
    elif connection.vendor == "sqlite":
        # Django's SQLite transactions are deferred: writing (nothing) takes the write lock now,
        # so a second claim waits here for the first to commit instead of reading beside it.
        sql, params = f"DELETE FROM {connection.ops.quote_name(Digest._meta.db_table)} WHERE 0", ()
    else:  # other databases: no lock, two workers may claim beside each other
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@dataclass
class Outcome:
    """What became of the digests a worker claimed."""

    sent: list[int]
    no_address: list[int]
    nothing_left: list[int]
    failed: list[int]
    retry: list[int]  # not sent for a reason that may pass; claimed again after a pause


def record(outcome: Outcome, now: datetime, using: str = DEFAULT_DB_ALIAS) -> None:
    """Write what became of each claimed digest: one UPDATE per kind of outcome there was."""
    digests = Digest.objects.using(using)
    finished = (
        (outcome.sent, Digest.Status.SENT),
        (outcome.no_address, Digest.Status.NO_ADDRESS),
        (outcome.nothing_left, Digest.Status.NOTHING_LEFT),
        (outcome.failed, Digest.Status.FAILED),
    )
    for ids, status in finished:
        if ids:
            digests.filter(pk__in=id_list(ids, using)).update(status=status, sent_at=now)
    if outcome.retry:
        # The pause grows with the attempts: one UPDATE per attempt count (at most MAX_ATTEMPTS).
        by_attempts: dict[int, list[int]] = {}
        for pk, attempts in digests.filter(pk__in=id_list(outcome.retry, using)).values_list(
            "pk", "attempts"
        ):
            by_attempts.setdefault(attempts, []).append(pk)
        for attempts, ids in by_attempts.items():
            digests.filter(pk__in=id_list(ids, using)).update(
                lease_until=now + RETRY_AFTER * attempts
            )


def next_due(now: datetime, using: str = DEFAULT_DB_ALIAS) -> datetime | None:
    """When there will next be something to claim (None: nothing waits). Three queries."""
    window = app_settings.EMAIL_DIGEST_WINDOW
    pending = Notification.objects.using(using).awaiting_email()
    candidates = [
        pending.filter(email_due_at__gt=now).aggregate(at=Min("email_due_at"))["at"],
        Digest.objects.using(using)
        .filter(status=Digest.Status.PENDING)
        .aggregate(at=Min("lease_until"))["at"],
    ]
    # Users due but waiting for their window: it opens a window after their latest digest.
    waiting = pending.filter(email_due_at__lte=now, email=Email.DIGEST).values("recipient_id")
    opened = (
        Digest.objects.using(using)
        .filter(
            user_id__in=waiting,
            kind=Digest.Kind.DIGEST,
            status__in=(Digest.Status.PENDING, Digest.Status.SENT),
            created_at__gt=now - window,
        )
        .aggregate(at=Min("created_at"))["at"]
    )
    candidates.append(None if opened is None else opened + window)
    return min((at for at in candidates if at is not None), default=None)
