"""What a socket was opened with, and whether that still holds: a socket lives exactly as long as
the right to open it.

A cookie socket is bound to its session; a ticket socket to the session or the token that asked
for the ticket. Whether a credential still holds is what Django's ``get_user()`` (and DRF's
token authentication) would answer now: the session exists and has not expired, names this user
through a configured backend with the user's current session auth hash; the token exists and is
this user's; the user exists and is active. :func:`verdicts` answers that for many sockets at
once, in a few queries whatever their number (sessions of the db, cache and cached_db engines
are read in one round trip each). docs/security.md lists what closes a socket, and when.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.cache import caches
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from ..protocol import CLOSE_REAUTHENTICATE, CLOSE_UNAUTHENTICATED
from ..users import is_active


@dataclass(frozen=True)
class Credential:
    """A session or a token. Its key stays in this process; events name it by :attr:`digest`."""

    kind: str  # "session" or "token"
    key: str

    @property
    def digest(self) -> str:
        return digest(self.kind, self.key)


def digest(kind: str, key: str) -> str:
    """A stand-in for a credential in events, which travel through Redis in clear."""
    return hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()[:32]


def verdicts(sockets: Sequence[tuple[int, Credential | None]]) -> list[int | None]:
    """For each (user id, credential) pair, ``None`` if it still holds, else the close code:
    4401 when it certainly no longer does, 4440 when its session is gone (logged out elsewhere,
    or rotated by the user's own password change or login: the client's cookie decides)."""
    users = {
        user.pk: user
        for user in get_user_model()._default_manager.filter(
            pk__in={user_id for user_id, _ in sockets}
        )
    }
    sessions = _sessions([c.key for _, c in sockets if c is not None and c.kind == "session"])
    tokens = _tokens([c.key for _, c in sockets if c is not None and c.kind == "token"])
    answers: list[int | None] = []
    for user_id, credential in sockets:
        user = users.get(user_id)
        if user is None or not is_active(user):
            answers.append(CLOSE_UNAUTHENTICATED)
        elif credential is None:
            answers.append(None)  # a ticket from another kind of authentication: the user only
        elif credential.kind == "token":
            answers.append(None if tokens.get(credential.key) == user_id else CLOSE_UNAUTHENTICATED)
        else:
            answers.append(_session_verdict(sessions.get(credential.key), user))
    return answers


def _session_verdict(data: dict[str, Any] | None, user: Any) -> int | None:
    if not data:
        return CLOSE_REAUTHENTICATE
    if data.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return CLOSE_UNAUTHENTICATED
    try:
        same_user = get_user_model()._meta.pk.to_python(data.get(SESSION_KEY)) == user.pk
    except Exception:  # something that is no id of this model
        same_user = False
    if not same_user:
        return CLOSE_UNAUTHENTICATED
    session_hash = data.get(HASH_SESSION_KEY) or ""
    if not hasattr(user, "get_session_auth_hash"):
        return None
    hashes = [user.get_session_auth_hash()]
    fallbacks = getattr(user, "get_session_auth_fallback_hash", None)
    if fallbacks is not None:  # SECRET_KEY_FALLBACKS, as Django's get_user() accepts them
        hashes += list(fallbacks())
    if any(constant_time_compare(session_hash, known) for known in hashes):
        return None
    return CLOSE_UNAUTHENTICATED


# --- reading many sessions at once ------------------------------------------------------------


def session_store() -> Any:
    """The ``SessionStore`` class of ``SESSION_ENGINE``."""
    return import_module(settings.SESSION_ENGINE).SessionStore


def _sessions(keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The data of every live session among ``keys`` (missing and expired ones left out)."""
    keys = list(dict.fromkeys(key for key in keys if key))
    if not keys:
        return {}
    engine = settings.SESSION_ENGINE
    store = session_store()
    found: dict[str, dict[str, Any]] = {}
    if engine in ("django.contrib.sessions.backends.cache", _CACHED_DB):
        cache = caches[settings.SESSION_CACHE_ALIAS]
        prefixed = {store.cache_key_prefix + key: key for key in keys}
        for cache_key, data in cache.get_many(list(prefixed)).items():
            if data:
                found[prefixed[cache_key]] = data
        if engine != _CACHED_DB:
            return found
    if engine in ("django.contrib.sessions.backends.db", _CACHED_DB):
        missing = [key for key in keys if key not in found]
        model = store.get_model_class()
        rows = model.objects.filter(session_key__in=missing, expire_date__gt=timezone.now())
        for key, encoded in rows.values_list("session_key", "session_data"):
            data = store(key).decode(encoded)
            if data:
                found[key] = data
        return found
    for key in keys:  # file, signed cookies, a project's own engine: one at a time
        data = store(session_key=key).load()
        if data:
            found[key] = data
    return found


_CACHED_DB = "django.contrib.sessions.backends.cached_db"


def _tokens(keys: Iterable[str]) -> dict[str, int]:
    """``{token key: user id}`` of the DRF tokens among ``keys`` that still exist."""
    keys = list(dict.fromkeys(keys))
    if not keys or not apps.is_installed("rest_framework.authtoken"):
        return {}
    # Here: importing the model of an app that is not installed raises.
    from rest_framework.authtoken.models import Token

    return dict(Token.objects.filter(key__in=keys).values_list("key", "user_id"))
