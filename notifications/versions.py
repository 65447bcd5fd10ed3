"""A per-user version of the inbox, kept in the cache: the ETag of the unread count.

Every send and state change replaces the user's version (after commit, in the same step that
pushes), so a poller whose ``If-None-Match`` equals the current version has nothing to learn and
gets a 304 without a database query. A version lost from the cache is replaced by a new random
one: the next poll then fetches once, which is safe. With ``REDIS_URL`` the cache is Redis, so
every process sees the same versions.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable

from django.core.cache import caches

from .conf import app_settings

logger = logging.getLogger("notifications")

_PREFIX = "notifications:v:"
# A bump lost while the cache was unreachable would leave a stale version behind, answering 304
# while there is news; a version that expires bounds that to this long.
_TIMEOUT = 3600


def _key(user_id: int) -> str:
    return f"{_PREFIX}{int(user_id)}"


def _cache():
    return caches[app_settings.CACHE_ALIAS]


def current(user_id: int) -> str:
    """The user's version, creating one if the cache has none (a fresh random one, not stored,
    if the cache is unreachable: the client then simply fetches again next time)."""
    cache = _cache()
    try:
        version = cache.get(_key(user_id))
        if version is None:
            cache.add(_key(user_id), secrets.token_hex(8), timeout=_TIMEOUT)
            version = cache.get(_key(user_id))
    except Exception as error:
        logger.warning("notifications: cache unreachable for versions: %r", error)
        version = None
    return version or secrets.token_hex(8)


def peek(user_id: int) -> str | None:
    """The user's version if the cache has one (the 304 path must not create one)."""
    try:
        return _cache().get(_key(user_id))
    except Exception as error:
        logger.warning("notifications: cache unreachable for versions: %r", error)
        return None


def bump(user_ids: Iterable[int]) -> None:
    """Give each user a new version: whatever a client holds is now stale."""
    token = secrets.token_hex(8)  # one per call: distinct per call is all an ETag needs
    try:
        _cache().set_many({_key(user_id): token for user_id in user_ids}, timeout=_TIMEOUT)
    except Exception as error:
        logger.warning("notifications: could not bump versions: %r", error)
