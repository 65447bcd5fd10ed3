"""The version of a user's inbox, kept in the cache: what the unread count's ETag is made of
(``api/polling.py`` makes the ETag).

A user's version is two tokens: their own, replaced by every send to them and every change of
their state, and one shared by everybody, replaced instead of 100,000 own tokens when a send
reaches more than ``SHARED_BUMP_ABOVE`` users (every poller then fetches once, which a send that
large calls for anyway). Both are replaced after commit, in the step that pushes, so a poller
whose ``If-None-Match`` names the current version has nothing to learn and gets a 304 without a
database query. A token lost from the cache is replaced by a new random one: the next poll
fetches once, which is safe. With ``REDIS_URL`` the cache is Redis, shared by every process.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence

from django.core.cache import caches

from .cache import VERSIONS
from .conf import app_settings

logger = logging.getLogger("notifications")

# The user's own token, then the shared one.
Version = tuple[str, str]

_SHARED = f"{VERSIONS}all"
# A bump lost while the cache was unreachable would leave a stale version behind, answering 304
# while there is news; tokens that expire bound that to this long.
_TIMEOUT = 3600
# A send to more users than this makes every user's version stale with one cache write (the
# shared token) instead of one per user; every poller then fetches once.
SHARED_BUMP_ABOVE = 1000


def _key(user_id: int) -> str:
    return f"{VERSIONS}{int(user_id)}"


def _cache():
    return caches[app_settings.CACHE_ALIAS]


def current(user_id: int) -> Version:
    """The user's version, creating its tokens if the cache has none (random ones, not stored,
    if the cache is unreachable: the client then simply fetches again next time)."""
    cache = _cache()
    keys = (_key(user_id), _SHARED)
    try:
        found = cache.get_many(keys)
        for key in keys:
            if key not in found:
                cache.add(key, secrets.token_hex(8), timeout=_TIMEOUT)
        found = cache.get_many(keys)
    except Exception as error:
        logger.warning("notifications: cache unreachable for versions: %r", error)
        found = {}
    own, shared = (found.get(key) or secrets.token_hex(8) for key in keys)
    return own, shared


def keys(user_id: int) -> tuple[str, str]:
    """The cache keys a user's version is made of, for a caller that reads them along with
    keys of its own, in one round trip (then :func:`from_found`)."""
    return (_key(user_id), _SHARED)


def from_found(user_id: int, found: dict[str, str]) -> Version | None:
    """The user's version from what a ``get_many`` of :func:`keys` found, None if incomplete."""
    own_key, shared_key = keys(user_id)
    if own_key not in found or shared_key not in found:
        return None
    return found[own_key], found[shared_key]


def bump(user_ids: Sequence[int]) -> None:
    """Make whatever version these users' clients hold stale."""
    token = secrets.token_hex(8)  # one per call: distinct per call is all an ETag needs
    try:
        if len(user_ids) > SHARED_BUMP_ABOVE:
            _cache().set(_SHARED, token, timeout=_TIMEOUT)
        elif len(user_ids) == 1:  # one SET, where set_many is a transaction of two commands
            _cache().set(_key(user_ids[0]), token, timeout=_TIMEOUT)
        else:
            _cache().set_many({_key(user_id): token for user_id in user_ids}, timeout=_TIMEOUT)
    except Exception as error:
        logger.warning("notifications: could not bump versions: %r", error)
