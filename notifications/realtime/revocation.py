"""When the right to open a socket ends, its sockets hear of it, in every process.

Receivers, connected in ``AppConfig.ready()``, that tell the sockets after the change commits:

- a logout: that session's sockets close (4401);
- a user deleted: all their sockets close (4401);
- a user saved (a new or unusable password, deactivated; anything but a ``last_login``
  update): every socket of the user checks its credentials again (realtime/credentials.py).
  Those of other sessions close with 4401; the changer's own, whose session Django rotated to
  keep it signed in, closes with 4440 and its client reconnects with the new cookie. This one
  waits until the request that made the change has answered, so that by then that session has
  its new key and hash;
- a DRF token deleted: the sockets opened with a ticket it asked for close (4401);
- a login replacing a session (another user signing in in the same browser): that session's
  sockets close, with 4401 if the new user is another one (4440 if the same).

Each also stamps the user in the registry, so that a socket that was authenticated just before
and joined its user's group just after checks its credentials (consumer.py). What no signal
tells (a session flushed by other code, or expired; a row changed by raw SQL) each node finds by
checking its sockets every ``CREDENTIALS_CHECK_SECONDS`` (realtime/credential_checks.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core import signals as request_signals
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from . import broker
from .budget import Budget
from .credentials import digest
from .presence import registry

logger = logging.getLogger("notifications")


@dataclass
class _Request:
    session_key: str | None  # from the request's cookie, before any view could change it
    deferred: list[Callable[[], None]] = field(default_factory=list)


# The request being served by this thread. A thread, not a context variable: under ASGI Django
# sends request_started from a task of its own (a context variable set there is lost), but runs
# every sync step of one request (the signals, the view, the response's close) on one thread.
_local = threading.local()


def _current() -> _Request | None:
    return getattr(_local, "request", None)


def request_started(sender: Any, environ: Any = None, scope: Any = None, **kwargs: Any) -> None:
    _local.request = _Request(_session_cookie(environ, scope))


def request_finished(sender: Any, **kwargs: Any) -> None:
    current = _current()
    if current is None:
        return
    _local.request = None
    for deferred in current.deferred:
        try:
            deferred()
        except Exception:
            logger.exception("notifications: telling sockets of a credential change failed")


def _session_cookie(environ: Any, scope: Any) -> str | None:
    header = ""
    if environ is not None:
        header = environ.get("HTTP_COOKIE", "")
    elif scope is not None:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                header = value.decode("latin-1")
                break
    try:
        morsel = SimpleCookie(header).get(settings.SESSION_COOKIE_NAME)
    except CookieError:
        return None
    return morsel.value if morsel is not None else None


def _after_commit(tell: Callable[[], None], *, after_the_request: bool = False) -> None:
    def committed() -> None:
        current = _current()
        if after_the_request and current is not None:
            current.deferred.append(tell)
        else:
            tell()

    transaction.on_commit(committed, robust=True)


def _tell(user_id: int, event: dict[str, Any]) -> None:
    with Budget() as budget:
        try:
            budget.call("the revocation stamp (1 user)", _stamp, user_id, share=0.5)
        except Exception as error:  # sockets joining now may miss it; the checks catch them
            logger.warning("notifications: could not stamp a revocation: %r", error)
        broker.send([broker.to_user(user_id, event)], budget)


def _stamp(user_id: int) -> None:
    registry().note_revocation(user_id)


# --- the receivers ---------------------------------------------------------------------------


def logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Close the sockets this session opened (other sessions of the user stay signed in)."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is None or not session_key:
        return
    credential = digest("session", session_key)
    _after_commit(lambda: _tell(user.pk, broker.revoke_event(credential)))


def logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A login in a browser whose session belonged to someone (another user, or the same one
    before Django rotated its key): that session's sockets are told."""
    current = _current()
    replaced = current.session_key if current is not None else None
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if not replaced or replaced == session_key:
        return
    event = broker.replaced_event(digest("session", replaced), user.pk)
    _after_commit(
        lambda: broker.send([(broker.REPLACED_SESSIONS_GROUP, event)]), after_the_request=True
    )


def user_saved(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # a new user has no socket; a login changes nothing a socket stands on
    user_id = instance.pk
    _after_commit(lambda: _tell(user_id, broker.recheck_event()), after_the_request=True)


def user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    user_id = instance.pk
    _after_commit(lambda: _tell(user_id, broker.revoke_event()))


def token_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    user_id, credential = instance.user_id, digest("token", instance.key)
    _after_commit(lambda: _tell(user_id, broker.revoke_event(credential)))


def connect_receivers() -> None:
    """Called from ``AppConfig.ready()``."""
    uid = "notifications.realtime.revocation"
    request_signals.request_started.connect(request_started, dispatch_uid=uid)
    request_signals.request_finished.connect(request_finished, dispatch_uid=uid)
    user_logged_out.connect(logged_out, dispatch_uid=uid)
    user_logged_in.connect(logged_in, dispatch_uid=uid)
    post_save.connect(user_saved, sender=get_user_model(), dispatch_uid=uid)
    post_delete.connect(user_deleted, sender=get_user_model(), dispatch_uid=uid)
    if apps.is_installed("rest_framework.authtoken"):
        # Here: importing the model of an app that is not installed raises.
        from rest_framework.authtoken.models import Token

        post_delete.connect(token_deleted, sender=Token, dispatch_uid=uid)
