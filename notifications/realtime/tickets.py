"""Short-lived, single-use tickets that let a client without cookies open the WebSocket.

A ticket is a random token, stored in the cache (Redis when ``REDIS_URL`` is set, so any process
can redeem it) under a hash of itself, mapped to the user id and the credential (session or DRF
token) that asked for it, for ``TICKET_TTL_SECONDS``: the socket it opens is bound to that
credential and closes with it. Redeeming deletes it; of two racing redemptions only the one
whose delete succeeds wins.
"""

from __future__ import annotations

import hashlib
import secrets

from django.core.cache import caches

from ..cache import TICKETS
from ..conf import app_settings
from .credentials import Credential


def _key(ticket: str) -> str:
    return TICKETS + hashlib.sha256(ticket.encode()).hexdigest()


def issue(user_id: int, credential: Credential | None = None) -> str:
    ticket = secrets.token_urlsafe(32)
    value: dict[str, int | str] = {"user": int(user_id)}
    if credential is not None:
        value |= {"kind": credential.kind, "key": credential.key}
    caches[app_settings.CACHE_ALIAS].set(
        _key(ticket), value, timeout=app_settings.TICKET_TTL_SECONDS
    )
    return ticket


def redeem(ticket: str) -> tuple[int, Credential | None] | None:
    """The user id the ticket was issued to and the credential that asked for it, once; None
    if unknown, expired or used."""
    if not ticket or len(ticket) > 100:
        return None
    cache = caches[app_settings.CACHE_ALIAS]
    key = _key(ticket)
    value = cache.get(key)
    if value is None or not cache.delete(key):
        return None
    credential = Credential(str(value["kind"]), str(value["key"])) if "kind" in value else None
    return int(value["user"]), credential
