"""Who gets a push: recipients with a subscribed browser, push on for the notification's category
and level, and no socket open anywhere (the socket registry knows), since an open page shows the
notification itself."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.db.models import Q, QuerySet
from django.utils import timezone

from ..models import Channel, Mute, PushSubscription, id_list
from ..realtime import broker
from ..services.batch import NotificationBatch

logger = logging.getLogger("notifications.push")


def subscriptions(user_ids: Sequence[int], *, category: str, level: str) -> QuerySet:
    """The live subscriptions of those of ``user_ids`` whose push is on for this category and
    level. One query when evaluated."""
    muted = Q(kind=Mute.Kind.ALL) | Q(kind=Mute.Kind.LEVEL, value=level)
    if category:
        muted |= Q(kind=Mute.Kind.CATEGORY, value=category)
    push_mutes = Mute.objects.filter(muted, channel=Channel.PUSH)
    return (
        PushSubscription.objects.filter(user_id__in=id_list(list(user_ids)))
        .exclude(expires_at__lte=timezone.now())
        .exclude(user_id__in=push_mutes.values("user_id"))
    )


def notifications_to_push(batch: NotificationBatch) -> list[int]:
    """The ids of ``batch``'s notifications that go out as pushes: one query per distinct
    category and level in the batch (one, nearly always), then one look-up of who is online
    among the users that query found."""
    by_content: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for prototype, part in batch.parts():
        by_content[prototype.category, prototype.level].extend(part)
    candidates: list[tuple[int, int]] = []
    subscribed: set[int] = set()
    for (category, level), rows in by_content.items():
        recipients = list({recipient_id for _, recipient_id in rows})
        users = set(
            subscriptions(recipients, category=category, level=level)
            .order_by()
            .values_list("user_id", flat=True)
            .distinct()
        )
        subscribed |= users
        candidates.extend(row for row in rows if row[1] in users)
    if not candidates:
        return []
    online = _online(subscribed)
    return sorted(nid for nid, recipient_id in candidates if recipient_id not in online)


def _online(user_ids: Iterable[int]) -> set[int]:
    """Who has a socket open. When the registry cannot tell (Redis down, say), nobody: a push
    to a user who also has a page open shows twice, which beats not at all."""
    try:
        return broker.online(list(user_ids)) or set()
    except Exception:
        logger.exception("push: could not tell who is online; pushing to every subscriber")
        return set()
