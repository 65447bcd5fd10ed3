"""Rate limits on what a signed-in user can repeat at will: ticket issuing and every write.

A DRF throttle per scope (``ticket``: ``POST ws-ticket/``; ``write``: every POST, PUT and
DELETE of the API), at the rates of ``NOTIFICATIONS["THROTTLE_RATES"]``. Over the limit the
answer is DRF's: ``429`` with ``{"detail": "Request was throttled. Expected available in N
seconds."}`` and ``Retry-After: N``.

Counted in the app's cache (``CACHE_ALIAS``: Redis with ``REDIS_URL``), so that every process
shares one count: a fixed window of the rate's period per user and scope, one ``add`` and one
atomic ``incr`` per request. Each user's windows start at a moment of their own (a hash of the
user and scope), so that windows do not all turn over at once. A cache that cannot be reached
lets requests through: the limit protects the server, it must not take the API down.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from typing import Any

from django.core.cache import caches
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from ..cache import THROTTLES
from ..conf import app_settings, parse_rate

logger = logging.getLogger("notifications")


def scope_of(action: str | None, method: str | None) -> str | None:
    """The throttle scope of a request to the notifications API, None for reads."""
    if action == "ws_ticket":
        return "ticket"
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        return "write"
    return None


def window(scope: str, user_id: Any, period: int, now: float) -> tuple[int, float]:
    """The number of the window ``now`` falls in for this user and scope, and the seconds left
    in it."""
    offset = zlib.crc32(f"{scope}:{user_id}".encode()) % (period * 1000) / 1000
    number, elapsed = divmod(now - offset, period)
    return int(number), period - elapsed


class NotificationsThrottle(BaseThrottle):
    """Allows each user ``N`` requests of one scope in each window of the rate's period."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.remaining = 0.0

    def allow_request(self, request: Request, view: Any) -> bool:
        limit = parse_rate(app_settings.THROTTLE_RATES.get(self.scope))
        user_id = getattr(request.user, "pk", None)
        if limit is None or user_id is None:
            return True
        allowed, period = limit
        number, self.remaining = window(self.scope, user_id, period, time.time())
        key = f"{THROTTLES}{self.scope}:{user_id}:{number}"
        cache = caches[app_settings.CACHE_ALIAS]
        try:
            cache.add(key, 0, timeout=period + 1)
            try:
                count = cache.incr(key)
            except ValueError:  # expired between the two calls
                cache.set(key, 1, timeout=period + 1)
                count = 1
        except Exception as error:
            logger.warning("notifications: cache unreachable for rate limits: %r", error)
            return True
        return count <= allowed

    def wait(self) -> float:
        return math.ceil(self.remaining)
