"""The fixed parts of the socket protocol: close codes, and the frames built outside a consumer.

docs/websocket.md documents all of it. Daphne only sends close codes 1000 and 3000-4999, so the
standard 1011, 1012 and 1013 become 4500, 4012 and 4013.
"""

from __future__ import annotations

import json
from typing import Any

CLOSE_SERVICE_RESTART = 4012  # the server is shutting down: reconnect soon and resume
CLOSE_TRY_AGAIN = 4013  # Redis or the database is unreachable, or pushes may have been lost
CLOSE_UNAUTHENTICATED = 4401  # not signed in, or signed out / password changed since
CLOSE_IDLE = 4408  # nothing received for IDLE_TIMEOUT_SECONDS
CLOSE_TOO_MANY_SOCKETS = 4409  # the user already has MAX_SOCKETS_PER_USER open sockets
CLOSE_TOO_LARGE = 4413  # a message over MAX_MESSAGE_BYTES
CLOSE_RATE_LIMITED = 4429  # more messages than MESSAGES_PER_SECOND allows
# The session behind the socket is gone: ended, or rotated by the user's own login or password
# change. Reconnect soon: the browser's cookie decides whether it is still signed in.
CLOSE_REAUTHENTICATE = 4440
CLOSE_INTERNAL_ERROR = 4500  # the server failed on this socket: reconnect and resume


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame)  # as AsyncJsonWebsocketConsumer.send_json() would


def notification_frame(
    notification: dict[str, Any], unread: int, unseen: int, *, recovered: bool = False
) -> str:
    """A ``notification`` frame; ``recovered`` marks one that gap detection found missing."""
    frame: dict[str, Any] = {
        "type": "notification",
        "notification": notification,
        "unread_count": unread,
        "unseen_count": unseen,
    }
    if recovered:
        frame["recovered"] = True
    return encode(frame)
