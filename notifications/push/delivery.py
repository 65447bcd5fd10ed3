"""Send the pushes for a batch of notifications: encrypt each for each browser of its recipient
(RFC 8291, aes128gcm, through http-ece), sign for each push service (RFC 8292, through
py-vapid), post them (RFC 8030), and act on the answers.

A batch costs the same handful of queries whatever its size: the notifications, their actors
and targets, the subscriptions, the unread counts, and the bookkeeping. Posts run
``CONCURRENCY`` at a time on kept-alive connections: a push service answers in tens of
milliseconds, a batch of 500 one after the other would take many seconds.

The answers (RFC 8030 and what FCM, Mozilla, Apple and Windows do):

- 201 (or any 2xx): sent.
- 404 or 410: the browser unsubscribed or the subscription expired: its row goes.
- 429, 5xx, a timeout or a broken connection: the push is retried later (``tasks.py``).
- Anything else (400, 401, 403: the keys or the JWT; 413: the payload) is this server's
  problem, not the push service's: logged, not retried, the subscription kept.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import http_ece
import urllib3
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone

from ..models import Notification, PushSubscription, id_list
from . import payload, targets
from .keys import Signer, b64decode, signer

logger = logging.getLogger("notifications.push")

CONCURRENCY = 16
# Seconds to connect, and to wait for the answer.
TIMEOUT = urllib3.Timeout(connect=5.0, read=15.0)
GONE = (404, 410)
RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass
class Report:
    sent: int = 0
    gone: int = 0  # subscriptions removed: the push service no longer knows them
    failed: int = 0  # refused for good
    late: int = 0  # not sent: past its TTL or expiry, or seen, read or archived meanwhile
    retry: list[tuple[int, int]] = field(default_factory=list)  # (notification, subscription)
    retry_after: float = 0.0  # seconds, the longest a push service asked for

    def as_dict(self) -> dict[str, int | float]:
        return {
            "sent": self.sent,
            "gone": self.gone,
            "failed": self.failed,
            "late": self.late,
            "retry": len(self.retry),
            "retry_after": self.retry_after,
        }


@dataclass(frozen=True)
class _Push:
    notification_id: int
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class _Answer:
    push: _Push
    status: int | None  # None: no answer (timeout, connection)
    retry_after: float = 0.0
    detail: str = ""


def send(notification_ids: Sequence[int], only: Sequence[tuple[int, int]] | None = None) -> Report:
    """Push each of these notifications (still unseen, unread and live) to every browser its
    recipient subscribed with push on for it; ``only`` limits it to those (notification,
    subscription) pairs (a retry)."""
    report = Report()
    now = timezone.now()
    rows = list(
        Notification.objects.filter(id__in=id_list(list(notification_ids)))
        .live()
        .not_seen()
        .not_read()
        .unarchived()
        .with_related()
        .order_by("id")
    )
    report.late = len(set(notification_ids)) - len(rows)
    wanted = None if only is None else {tuple(pair) for pair in only}
    by_content: dict[tuple[str, str], list[Notification]] = defaultdict(list)
    for row in rows:
        by_content[row.category, row.level].append(row)
    pairs: list[tuple[Notification, PushSubscription]] = []
    for (category, level), group in by_content.items():
        recipients = list({row.recipient_id for row in group})
        browsers: dict[int, list[PushSubscription]] = defaultdict(list)
        for subscription in targets.subscriptions(recipients, category=category, level=level):
            browsers[subscription.user_id].append(subscription)
        for row in group:
            for subscription in browsers.get(row.recipient_id, []):
                if wanted is None or (row.pk, subscription.pk) in wanted:
                    pairs.append((row, subscription))
    if not pairs:
        return report
    counts = Notification.objects.counts_by_recipient(list({row.recipient_id for row, _ in pairs}))
    vapid = signer()
    pushes = []
    messages: dict[int, bytes] = {}
    for row, subscription in pairs:
        seconds = payload.ttl(row, now)
        if seconds is None:
            report.late += 1
            continue
        if row.pk not in messages:
            messages[row.pk] = payload.message(row, counts.get(row.recipient_id, (0, 0))[0])
        pushes.append(_prepare(row, subscription, messages[row.pk], seconds, vapid))
    answers = list(_executor().map(_post, pushes))
    _record(answers, report)
    return report


def _prepare(
    row: Notification, subscription: PushSubscription, message: bytes, ttl: int, vapid: Signer
) -> _Push:
    parts = urlsplit(subscription.endpoint)
    headers = {
        "TTL": str(ttl),
        "Urgency": payload.urgency(row),
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "Authorization": vapid.authorization(f"{parts.scheme}://{parts.netloc}"),
    }
    topic = payload.topic(row)
    if topic:
        headers["Topic"] = topic
    return _Push(
        row.pk,
        subscription.pk,
        subscription.endpoint,
        subscription.p256dh,
        subscription.auth,
        message,
        headers,
    )


def _post(push: _Push) -> _Answer:
    """Encrypt and post one push (in a worker thread). Never raises."""
    try:
        body = http_ece.encrypt(
            push.body,
            private_key=ec.generate_private_key(ec.SECP256R1()),  # a new key for every message
            dh=b64decode(push.p256dh),
            auth_secret=b64decode(push.auth),
            version="aes128gcm",
        )
    except Exception as error:  # a key that passed validation but http-ece refuses
        return _Answer(push, 0, detail=f"could not encrypt: {error!r}")
    try:
        response = _http().request(
            "POST",
            push.endpoint,
            body=body,
            headers=push.headers,
            timeout=TIMEOUT,
            redirect=False,  # the endpoint was checked, where it redirects to was not
            retries=False,
        )
    except urllib3.exceptions.HTTPError as error:
        return _Answer(push, None, detail=repr(error))
    return _Answer(
        push,
        response.status,
        retry_after=_seconds(response.headers.get("Retry-After")),
        detail=response.data[:200].decode(errors="replace") if response.status >= 300 else "",
    )


def _record(answers: list[_Answer], report: Report) -> None:
    """Count the answers, forget the subscriptions that are gone, note when the others were
    last pushed to: two queries at most."""
    delivered, gone = set(), set()
    for answer in answers:
        status = answer.status
        if status is not None and 200 <= status < 300:
            report.sent += 1
            delivered.add(answer.push.subscription_id)
        elif status in GONE:
            gone.add(answer.push.subscription_id)
        elif status is None or status in RETRY_STATUSES:
            report.retry.append((answer.push.notification_id, answer.push.subscription_id))
            report.retry_after = max(report.retry_after, answer.retry_after)
        else:
            report.failed += 1
            logger.error(
                "push: %s refused a push (HTTP %s): %s",
                urlsplit(answer.push.endpoint).hostname,
                status,
                answer.detail,
            )
    if gone:
        report.gone = len(gone)
        PushSubscription.objects.filter(pk__in=id_list(sorted(gone))).delete()
    if delivered:
        PushSubscription.objects.filter(pk__in=id_list(sorted(delivered))).update(
            pushed_at=timezone.now()
        )


def _seconds(value: str | None) -> float:
    """Retry-After in seconds (only the delta form: push services send that), 0 when absent or
    unreadable ("nan" and "inf" read as floats, and would break the retry's arithmetic)."""
    try:
        seconds = float(value) if value else 0.0
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


_pool: ThreadPoolExecutor | None = None
_connections: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()


def _http() -> urllib3.PoolManager:
    """Connections kept alive from one push to the next, ``CONCURRENCY`` per push service
    (urllib3 directly: requests costs three times its CPU per post)."""
    global _connections
    with _pool_lock:
        if _connections is None:
            _connections = urllib3.PoolManager(num_pools=50, maxsize=CONCURRENCY)
        return _connections


def _executor() -> ThreadPoolExecutor:
    """The threads that post, kept for the worker's life so that their connections are."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="notifications-push")
        return _pool
