"""The credentials the unread count's ``304`` trusts without a database query, and their revocation.

``GET unread-count/`` answers ``304 Not Modified`` before DRF runs when the client's ``ETag`` is
current (polling.py). Who asks must then be known without loading the user, so the full path (a
``200``, after DRF authenticated the request against the database) leaves a note in the cache:

- per user, ``notifications:auth:user:<id>``: the user's session auth hash (what
  ``AbstractBaseUser.get_session_auth_hash()`` derives from the password hash) at that moment;
- per token, ``notifications:auth:token:<sha256 of the key>``: the token's user id.

A session is trusted when its user has a note and the session's ``HASH_SESSION_KEY`` equals the
noted hash, with a backend of ``AUTHENTICATION_BACKENDS``: the check Django's ``get_user()``
makes, on the note instead of the row. A token is trusted when it has a note and so has its user.
Anything else goes the full way (DRF, the database) and is answered as DRF decides.

Notes are revoked when what they vouch for changes: when a user is saved (a new password, a
deactivation, anything but ``last_login``) or deleted, and when a token is saved or deleted,
the note becomes a tombstone once the transaction commits, for ``REVOKED_SECONDS``; notes are
written with ``cache.add``, which a tombstone refuses, so that a request that read the user just
before the change cannot put the old note back. What bypasses model signals (``QuerySet.update()``,
raw SQL, another program writing the table) is caught when the note expires, after
``TRUST_SECONDS``. A ``304`` tells nothing but "unchanged since your ETag": see docs/api.md.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.cache import caches
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request

from ..cache import AUTH_TOKENS, AUTH_USERS
from ..conf import app_settings

logger = logging.getLogger("notifications")

_REVOKED = "!revoked"
# How long a note vouches for a user or a token without being seen to change.
TRUST_SECONDS = 300
# How long a revoked note stays refused: longer than any request that read the user before.
REVOKED_SECONDS = 60


def user_key(user_id: Any) -> str:
    return f"{AUTH_USERS}{user_id}"


def token_key(token: str) -> str:
    return AUTH_TOKENS + hashlib.sha256(token.encode()).hexdigest()


def _cache() -> Any:
    return caches[app_settings.CACHE_ALIAS]


def _token_of(request: HttpRequest) -> str | None:
    """The key of a ``Token`` Authorization header, parsed as DRF's TokenAuthentication does."""
    parts = request.headers.get("Authorization", "").split()
    if len(parts) == 2 and parts[0].lower() == TokenAuthentication.keyword.lower():
        return parts[1]
    return None


def _hash_of(user: Any) -> str:
    get_hash = getattr(user, "get_session_auth_hash", None)
    return get_hash() if get_hash is not None else ""


# --- the 304 path ---------------------------------------------------------------------------


def trusted(
    request: HttpRequest, classes: Sequence[type], user_id: int, also: Sequence[str] = ()
) -> dict[str, Any] | None:
    """If the request's credentials are trusted to be ``user_id``'s (see the module), what the
    cache holds of the keys ``also``, read in the same round trip; else None."""
    token_note: str | None = None
    if request.headers.get("Authorization"):
        token = _token_of(request)
        if token is None or TokenAuthentication not in classes:
            return None
        token_note = token_key(token)
    elif SessionAuthentication not in classes or not _session_is_users(request, user_id):
        return None
    keys = [user_key(user_id), *also, *([token_note] if token_note else [])]
    try:
        found = _cache().get_many(keys)
    except Exception as error:
        logger.warning("notifications: cache unreachable for credentials: %r", error)
        return None
    note = found.pop(user_key(user_id), None)
    if not isinstance(note, str) or note == _REVOKED:
        return None
    if token_note is not None:
        if found.pop(token_note, None) != user_id:
            return None  # unknown, revoked, or another user's token
    elif note and not constant_time_compare(note, _session(request).get(HASH_SESSION_KEY) or ""):
        return None  # the session predates a password change (or was never this user's)
    return found


def _session(request: HttpRequest) -> Any:
    return getattr(request, "session", None) or {}


def _session_is_users(request: HttpRequest, user_id: int) -> bool:
    session = _session(request)
    raw = session.get(SESSION_KEY)
    if raw is None or session.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return False
    try:
        return get_user_model()._meta.pk.to_python(raw) == user_id
    except Exception:  # a session holding something that is no id of this model
        return False


# --- the full path --------------------------------------------------------------------------


def remember(request: Request) -> None:
    """Note the credentials DRF just authenticated, so that the next 304 can trust them."""
    authenticator = request.successful_authenticator
    user = request.user
    notes: dict[str, Any] = {}
    if isinstance(authenticator, SessionAuthentication):
        notes[user_key(user.pk)] = _hash_of(user)
    elif isinstance(authenticator, TokenAuthentication):
        token = _token_of(request)
        if token is not None:
            notes[user_key(user.pk)] = _hash_of(user)
            notes[token_key(token)] = user.pk
    try:
        for key, value in notes.items():
            _cache().add(key, value, timeout=TRUST_SECONDS)
    except Exception as error:
        logger.warning("notifications: cache unreachable for credentials: %r", error)


# --- revocation -----------------------------------------------------------------------------


def revoke(keys: Sequence[str], using: str | None = None) -> None:
    """Make these notes tombstones once the current transaction commits (at once outside one)."""

    def tombstones() -> None:
        try:
            _cache().set_many(dict.fromkeys(keys, _REVOKED), timeout=REVOKED_SECONDS)
        except Exception as error:
            # Unreachable: the notes cannot be read either, and expire on their own.
            logger.warning("notifications: could not revoke credential notes: %r", error)

    transaction.on_commit(tombstones, using=using, robust=True)


def user_changed(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # a new user has no note; a login changes nothing a note vouches for
    revoke([user_key(instance.pk)], kwargs.get("using"))


def user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    revoke([user_key(instance.pk)], kwargs.get("using"))


def token_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    if kwargs.get("created"):
        return
    revoke([token_key(instance.key)], kwargs.get("using"))


def connect_receivers() -> None:
    """Revoke the notes when users and tokens change (called from ``AppConfig.ready()``)."""
    user_model = get_user_model()
    post_save.connect(user_changed, sender=user_model, dispatch_uid="notifications.auth.user")
    post_delete.connect(user_deleted, sender=user_model, dispatch_uid="notifications.auth.user")
    if apps.is_installed("rest_framework.authtoken"):
        # Here: importing the model of an app that is not installed raises.
        from rest_framework.authtoken.models import Token

        for signal in (post_save, post_delete):
            signal.connect(token_changed, sender=Token, dispatch_uid="notifications.auth.token")
