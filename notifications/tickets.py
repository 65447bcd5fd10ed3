"""Short-lived, single-use tickets that let a client without cookies open the WebSocket.

A ticket is a random token, stored in the cache (Redis when ``REDIS_URL`` is set, so any process
can redeem it) under a hash of itself, mapped to the user id, for ``TICKET_TTL_SECONDS``.
Redeeming deletes it; of two racing redemptions only the one whose delete succeeds wins.
"""

from __future__ import annotations

import hashlib
import secrets

from django.core.cache import caches

from .conf import app_settings

_PREFIX = "notifications:ticket:"


def _key(ticket: str) -> str:
    return _PREFIX + hashlib.sha256(ticket.encode()).hexdigest()


def issue(user_id: int) -> str:
    ticket = secrets.token_urlsafe(32)
    caches[app_settings.CACHE_ALIAS].set(
        _key(ticket), int(user_id), timeout=app_settings.TICKET_TTL_SECONDS
    )
    return ticket


def redeem(ticket: str) -> int | None:
    """The user id the ticket was issued to, once; None if unknown, expired or used."""
    if not ticket or len(ticket) > 100:
        return None
    cache = caches[app_settings.CACHE_ALIAS]
    key = _key(ticket)
    user_id = cache.get(key)
    if user_id is None or not cache.delete(key):
        return None
    return user_id
