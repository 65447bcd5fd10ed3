"""What one push says, and the headers it travels with (RFC 8030).

The payload is the notification's contract shape (``protocol.serialize``) cut down to what the
service worker shows and needs for a click, so that it fits a push: push services take 4,096
bytes of encrypted body, which leaves 3,993 bytes of plaintext in one aes128gcm record. A long
body is shortened to fit, and a long ``url`` left out: the ``open`` link, which redirects to it,
is always there.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from ..conf import app_settings
from ..email.links import open_path
from ..models import Notification
from ..protocol import serialize

# Below the 3,993 bytes one record carries, with room to spare for the JSON's own growth.
MAX_PAYLOAD_BYTES = 3800
ELLIPSIS = "…"
# A push with a TTL of 0 is for now or never: a retry this much later is too late.
NOW_OR_NEVER_SECONDS = 60


def message(notification: Notification, unread_count: int) -> bytes:
    """The JSON the service worker receives for ``notification`` (UTF-8 bytes)."""
    shape = serialize(notification)
    content = {
        "id": shape["id"],
        "title": shape["title"],
        "body": shape["body"],
        "level": shape["level"],
        "category": shape["category"],
        "url": shape["url"],
        "open": open_path(notification.pk),
        "tag": tag(notification),
        "count": shape["group_count"],
        "created_at": shape["created_at"],
        "unread_count": unread_count,
    }
    encoded = _encode(content)
    if len(encoded) > MAX_PAYLOAD_BYTES and content["url"]:
        content["url"] = ""
        encoded = _encode(content)
    while len(encoded) > MAX_PAYLOAD_BYTES and content["body"]:
        # Cut the excess in UTF-8 bytes, never inside a character; escapes (quotes, newlines)
        # weigh more in JSON than in the text, which another round takes care of.
        body = content["body"].removesuffix(ELLIPSIS).encode()
        keep = len(body) - (len(encoded) - MAX_PAYLOAD_BYTES) - len(ELLIPSIS.encode())
        shortened = body[: max(keep, 0)].decode(errors="ignore")
        content["body"] = shortened + ELLIPSIS if shortened else ""
        encoded = _encode(content)
    return encoded


def _encode(content: dict[str, Any]) -> bytes:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def tag(notification: Notification) -> str:
    """The same for every notification of one group, so that a newer one replaces the older on
    the device (the Notification API's ``tag``)."""
    if notification.group_key:
        digest = hashlib.sha256(notification.group_key.encode()).hexdigest()[:24]
        return f"notifications-group-{digest}"
    return f"notifications-{notification.pk}"


def topic(notification: Notification) -> str | None:
    """RFC 8030's ``Topic`` for a grouped notification: a push service that still holds an
    undelivered push of the same group replaces it. At most 32 base64url characters."""
    if not notification.group_key:
        return None
    digest = hashlib.sha256(notification.group_key.encode()).digest()[:24]
    return base64.urlsafe_b64encode(digest).decode()


def ttl(notification: Notification, now: datetime) -> int | None:
    """Seconds a push service keeps the push for an offline device: the level's, less the time
    since the notification was sent, and never past its ``expires_at``. None: too late to send
    (a retry past them)."""
    configured = app_settings.WEB_PUSH_TTL_SECONDS[notification.level]
    age = max((now - notification.created_at).total_seconds(), 0)
    if configured == 0:
        seconds = 0 if age < NOW_OR_NEVER_SECONDS else None
    else:
        seconds = configured - int(age) if age < configured else None
    if seconds is not None and notification.expires_at is not None:
        remaining = int((notification.expires_at - now).total_seconds())
        seconds = min(seconds, remaining) if remaining > 0 else None
    return seconds


def urgency(notification: Notification) -> str:
    return app_settings.WEB_PUSH_URGENCY[notification.level]
