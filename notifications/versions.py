"""A per-user version of the inbox, kept in the cache: the ETag of the unread count.

Every send and state change replaces the user's version (after commit, in the same step that
pushes), so a poller whose ``If-None-Match`` equals the current version has nothing to learn and
gets a 304 without a database query. A version lost from the cache is replaced by a new random
one: the next poll then fetches once, which is safe. With ``REDIS_URL`` the cache is Redis, so
every process sees the same versions.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from django.core.cache import caches

from .conf import app_settings

_PREFIX = "notifications:v:"


def _key(user_id: int) -> str:
    return f"{_PREFIX}{int(user_id)}"


def _cache():
    return caches[app_settings.CACHE_ALIAS]


def current(user_id: int) -> str:
    """The user's version, creating one if the cache has none."""
    cache = _cache()
    version = cache.get(_key(user_id))
    if version is None:
        cache.add(_key(user_id), secrets.token_hex(8), timeout=None)
        version = cache.get(_key(user_id))
    return version


def peek(user_id: int) -> str | None:
    """The user's version if the cache has one (the 304 path must not create one)."""
    return _cache().get(_key(user_id))


def bump(user_ids: Iterable[int]) -> None:
    """Give each user a new version: whatever a client holds is now stale."""
    token = secrets.token_hex(8)  # one per call: distinct per call is all an ETag needs
    _cache().set_many({_key(user_id): token for user_id in user_ids}, timeout=None)
