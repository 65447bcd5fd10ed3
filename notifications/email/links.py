"""The links an email carries: absolute, signed, each token good for one purpose only.

``open`` marks one notification read and seen, then redirects to its ``url``; ``unsubscribe``
turns email off for one category (or for everything) of one user, with no sign-in (RFC 8058).
A token says which notification or user it is for; the salt says what it may do, so one kind
cannot be used as the other.
"""

from __future__ import annotations

from typing import Any

from django.core import signing
from django.urls import reverse

from ..conf import app_settings
from ..models import is_category

_OPEN = "notifications.email.open"
_UNSUBSCRIBE = "notifications.email.unsubscribe"


def absolute(path: str) -> str:
    """``path`` on the site, as ``BASE_URL`` names it."""
    return app_settings.BASE_URL + path


def open_url(notification_id: int) -> str:
    return absolute(open_path(notification_id))


def open_path(notification_id: int) -> str:
    """The open link as a path on the site: what a push carries (its service worker runs on the
    site, so needs no ``BASE_URL``)."""
    token = signing.dumps(notification_id, salt=_OPEN)
    return reverse("notifications-api:email-open", args=[token])


def unsubscribe_url(user_id: int, category: str) -> str:
    """Turns off ``category``'s email for the user; "" turns off every email."""
    token = signing.dumps([user_id, category], salt=_UNSUBSCRIBE)
    return absolute(reverse("notifications-api:email-unsubscribe", args=[token]))


def preferences_url() -> str:
    return absolute(app_settings.PREFERENCES_PATH)


def read_open(token: str) -> int:
    """The notification id an open link is for. Raises ``signing.BadSignature``."""
    value = signing.loads(token, salt=_OPEN)
    if not _is_id(value):
        raise signing.BadSignature("not a notification id")
    return value


def read_unsubscribe(token: str) -> tuple[int, str]:
    """(user id, category or "") an unsubscribe link is for. Raises ``signing.BadSignature``."""
    value = signing.loads(token, salt=_UNSUBSCRIBE)
    if not (
        isinstance(value, list) and len(value) == 2 and _is_id(value[0]) and is_category(value[1])
    ):
        raise signing.BadSignature("not an unsubscribe token")
    return value[0], value[1]


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
