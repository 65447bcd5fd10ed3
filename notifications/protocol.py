"""The wire protocol, all of it: what the REST API and the WebSocket at ``/ws/notifications/`` send
and accept. docs/websocket.md describes it, and the widget (static/notifications/widget/sync.js,
socket.js) speaks it; both name this module as their one source.

- the notification as JSON, one shape for both transports (``serialize``, and
  ``NotificationSerializer`` for the API and its schema);
- ids: the largest (``MAX_ID``), how a message's ids are read (``clean_id``, ``clean_ids``), and
  how a REST parameter's are (``IdField``);
- how deeply JSON a client sent may nest (``MAX_JSON_DEPTH``), for REST bodies and socket frames;
- the socket: its close codes, the frames the server sends, the messages a client sends and how
  they are read (``parse``), and the error codes of ``error`` frames.

It builds and reads messages and nothing else: no socket, no channel layer, no request (shaping a
notification reads only what its row and its prefetched relations hold). The consumer
(realtime/consumer.py) carries these messages over the socket and the REST views over HTTP;
neither names a field of its own. The events processes send each other through the channel
layer are not part of it (realtime/broker.py): no client ever sees one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, cast

from django.contrib.contenttypes.models import ContentType
from rest_framework import serializers

from .conf import app_settings
from .models import Notification

# --- close codes ----------------------------------------------------------------------------
# Daphne only sends 1000 and 3000-4999, so the standard 1011, 1012 and 1013 become 4500, 4012 and
# 4013.

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

# --- message types ---------------------------------------------------------------------------

# Server to client.
HELLO = "hello"
NOTIFICATION = "notification"
CHANGED = "changed"
BACKLOG = "backlog"
PONG = "pong"
ERROR = "error"
SERVER_FRAMES = (HELLO, NOTIFICATION, CHANGED, BACKLOG, PONG, ERROR)

# Client to server.
RESUME = "resume"
MARK_READ = "mark_read"
MARK_UNREAD = "mark_unread"
MARK_ALL_READ = "mark_all_read"
MARK_SEEN = "mark_seen"
PING = "ping"
CLIENT_MESSAGES = (RESUME, MARK_READ, MARK_UNREAD, MARK_ALL_READ, MARK_SEEN, PING)

# What a ``changed`` frame says the notifications now are.
STATES = ("read", "unread", "seen", "archived", "unarchived", "deleted")

# The ``code`` of an ``error`` frame. The socket stays open after every one of them.
INVALID_JSON = "invalid_json"  # not JSON, or nested deeper than MAX_JSON_DEPTH
INVALID_MESSAGE = "invalid_message"  # not an object, or no string "type"
UNKNOWN_TYPE = "unknown_type"
INVALID_FIELD = "invalid_field"  # missing, wrong type or out of range; the detail names it
BINARY_NOT_SUPPORTED = "binary_not_supported"
UNAVAILABLE = "unavailable"  # the server cannot reach its database: try again
ERROR_CODES = (
    INVALID_JSON,
    INVALID_MESSAGE,
    UNKNOWN_TYPE,
    INVALID_FIELD,
    BINARY_NOT_SUPPORTED,
    UNAVAILABLE,
)
UNAVAILABLE_DETAIL = "The server cannot reach its database; try again shortly."

# --- server to client ------------------------------------------------------------------------


def encode(frame: dict[str, Any]) -> str:
    """A frame as the text the socket sends (as ``AsyncJsonWebsocketConsumer.send_json()``)."""
    return json.dumps(frame)


def hello_frame(unread: int, unseen: int, last_id: int | None) -> dict[str, Any]:
    """The first frame of every socket: the counts, and the user's newest id (None: none)."""
    return {"type": HELLO, "unread_count": unread, "unseen_count": unseen, "last_id": last_id}


def notification_frame(
    notification: dict[str, Any], unread: int, unseen: int, *, recovered: bool = False
) -> dict[str, Any]:
    """A new notification (as ``serialize`` shapes it) and the counts with it; ``recovered``
    marks one that gap detection found this socket had missed."""
    frame: dict[str, Any] = {
        "type": NOTIFICATION,
        "notification": notification,
        "unread_count": unread,
        "unseen_count": unseen,
    }
    if recovered:
        frame["recovered"] = True
    return frame


class NotificationFrames:
    """``encode(notification_frame({**shape, "id": nid}, unread, unseen))`` for many ids and
    counts of one notification's shape (a send to many users), the shape encoded once: the
    same text, a few string joins per recipient instead of a JSON encoding."""

    __slots__ = ("_head", "_tail")

    def __init__(self, shape: dict[str, Any]) -> None:
        rest = encode({key: value for key, value in shape.items() if key != "id"})[1:-1]
        self._head = encode({"type": NOTIFICATION})[:-1] + ', "notification": {"id": '
        self._tail = (", " + rest if rest else "") + '}, "unread_count": '

    def __call__(self, nid: int, unread: int, unseen: int) -> str:
        return f'{self._head}{int(nid)}{self._tail}{int(unread)}, "unseen_count": {int(unseen)}}}'


def changed_frame(
    ids: list[int],
    state: str,
    unread: int,
    unseen: int,
    *,
    up_to: int | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    """Notifications of the user are now in ``state`` (one of ``STATES``). ``up_to`` set means
    every one of them up to that id is (``ids`` then lists them only when few)."""
    return {
        "type": CHANGED,
        "ids": ids,
        "state": state,
        "up_to": up_to,
        "count": len(ids) if count is None else count,
        "unread_count": unread,
        "unseen_count": unseen,
    }


def backlog_frame(notifications: Sequence[dict[str, Any]], complete: bool) -> dict[str, Any]:
    """A page of the answer to ``resume``, oldest first. An incomplete one carries the
    ``cursor`` to send with the same ``after`` for the next page: the last id of this one."""
    frame: dict[str, Any] = {
        "type": BACKLOG,
        "notifications": notifications,
        "complete": complete,
    }
    if not complete:
        frame["cursor"] = notifications[-1]["id"]
    return frame


def pong_frame(ping_id: str | int | None = None) -> dict[str, Any]:
    """The answer to ``ping``: its ``id`` echoed, if it had one."""
    return {"type": PONG} if ping_id is None else {"type": PONG, "id": ping_id}


def error_frame(code: str, detail: str) -> dict[str, Any]:
    return {"type": ERROR, "code": code, "detail": detail}


# --- client to server ------------------------------------------------------------------------


class ProtocolError(Exception):
    """A message the server will not act on: answered with an ``error`` frame of ``code``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def frame(self) -> dict[str, Any]:
        return error_frame(self.code, self.detail)


# One class per client message, its fields as ``parse`` checked them, its ``type`` on the class.


@dataclass(frozen=True, slots=True)
class Resume:
    """A backlog of what is newer than ``after`` (and what committed late just before it);
    ``cursor``: the page after the one that handed it out."""

    type: ClassVar[str] = RESUME
    after: int
    cursor: int | None = None


@dataclass(frozen=True, slots=True)
class MarkRead:
    type: ClassVar[str] = MARK_READ
    ids: list[int]  # at most MAX_IDS_PER_MESSAGE


@dataclass(frozen=True, slots=True)
class MarkUnread:
    type: ClassVar[str] = MARK_UNREAD
    ids: list[int]


@dataclass(frozen=True, slots=True)
class MarkAllRead:
    type: ClassVar[str] = MARK_ALL_READ
    up_to: int | None = None  # None: everything unread; else only what existed up to this id


@dataclass(frozen=True, slots=True)
class MarkSeen:
    type: ClassVar[str] = MARK_SEEN
    up_to: int


@dataclass(frozen=True, slots=True)
class Ping:
    type: ClassVar[str] = PING
    id: str | int | None = None  # echoed in the pong; None: the ping had none


ClientMessage = Resume | MarkRead | MarkUnread | MarkAllRead | MarkSeen | Ping

MAX_PING_ID_LENGTH = 64


def parse(text_data: str | None, bytes_data: bytes | None = None) -> ClientMessage:
    """One message from a client (a text frame, or a binary one), read and checked; raises
    ``ProtocolError`` for anything else. Its size and rate are the consumer's to check."""
    content = decode(text_data, bytes_data)
    read = _READERS.get(content["type"])
    if read is None:
        raise ProtocolError(UNKNOWN_TYPE, f"Unknown message type {content['type'][:50]!r}.")
    return read(content)


def decode(text_data: str | None, bytes_data: bytes | None = None) -> dict[str, Any]:
    """A frame as a JSON object with a string ``type``, or ``ProtocolError``."""
    if bytes_data is not None:
        raise ProtocolError(BINARY_NOT_SUPPORTED, "Send JSON text frames.")
    try:
        content = json.loads(text_data or "")
    except (ValueError, RecursionError):  # RecursionError: brackets nested too deep
        raise ProtocolError(INVALID_JSON, "The message is not valid JSON.") from None
    if too_deep(content):
        raise ProtocolError(INVALID_JSON, f"The message is {TOO_DEEP}.")
    if not isinstance(content, dict) or not isinstance(content.get("type"), str):
        raise ProtocolError(INVALID_MESSAGE, 'A message is a JSON object with a "type".')
    return content


def _field(content: dict[str, Any], name: str, clean: Any, required: bool = True) -> Any:
    """``content[name]`` as ``clean`` reads it; null counts as absent."""
    if content.get(name) is None:
        if required:
            raise ProtocolError(INVALID_FIELD, f"{name}: this field is required.")
        return None
    try:
        return clean(content[name], name)
    except ValueError as error:
        raise ProtocolError(INVALID_FIELD, str(error)) from None


def _ping_id(content: dict[str, Any]) -> str | int | None:
    if "id" not in content:
        return None
    ping_id = content["id"]
    if not (isinstance(ping_id, str | int) and not isinstance(ping_id, bool)) or (
        isinstance(ping_id, str) and len(ping_id) > MAX_PING_ID_LENGTH
    ):
        raise ProtocolError(
            INVALID_FIELD, f"id: a string of at most {MAX_PING_ID_LENGTH} characters or an integer."
        )
    return ping_id


_READERS: dict[str, Callable[[dict[str, Any]], ClientMessage]] = {
    RESUME: lambda content: Resume(
        _field(content, "after", clean_id), _field(content, "cursor", clean_id, required=False)
    ),
    MARK_READ: lambda content: MarkRead(_field(content, "ids", clean_ids)),
    MARK_UNREAD: lambda content: MarkUnread(_field(content, "ids", clean_ids)),
    MARK_ALL_READ: lambda content: MarkAllRead(_field(content, "up_to", clean_id, required=False)),
    MARK_SEEN: lambda content: MarkSeen(_field(content, "up_to", clean_id)),
    PING: lambda content: Ping(_ping_id(content)),
}

# --- ids ---------------------------------------------------------------------------------------

MAX_ID = 2**63 - 1  # the largest a bigint column holds


def clean_id(value: Any, name: str = "id") -> int:
    """An id given as a number (JSON, or Python): an int from 0 to ``MAX_ID``, never a bool."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ValueError(f"{name}: must be an integer from 0 to 2**63-1")
    return value


def clean_ids(values: Any, name: str = "ids") -> list[int]:
    """A list of ids, each as ``clean_id`` reads it, at most ``MAX_IDS_PER_MESSAGE`` of them."""
    if isinstance(values, str | bytes | dict) or not isinstance(values, Iterable):
        raise ValueError(f"{name}: must be a list of integers")
    ids = [clean_id(value, name) for value in values]
    if len(ids) > app_settings.MAX_IDS_PER_MESSAGE:
        raise ValueError(f"{name}: at most {app_settings.MAX_IDS_PER_MESSAGE} ids at a time")
    return ids


class IdField(serializers.IntegerField):
    """An id in a REST query string or body: from 0 to ``MAX_ID``, with DRF's messages. Sent as
    text, only ASCII digits: Python's int() would read "٣" (an Arabic-Indic three) as 3, and no
    client means that."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=0, max_value=MAX_ID, **kwargs)

    def to_internal_value(self, data: float | int | str) -> int:
        if isinstance(data, str) and not data.isascii():
            self.fail("invalid")
        return super().to_internal_value(data)


# --- JSON input ----------------------------------------------------------------------------------
# Python's JSON decoder recurses once per nesting level: before Python 3.12 a few thousand
# brackets raised RecursionError, since then they parse. No message of the API or the socket
# nests deeper than two levels, so anything deeper than MAX_JSON_DEPTH is refused, on every
# Python, before a serializer or a handler sees it: REST bodies (api/parsers.py) and socket
# frames (``decode``) alike.

MAX_JSON_DEPTH = 32
TOO_DEEP = f"nested deeper than {MAX_JSON_DEPTH} levels"


def too_deep(value: Any) -> bool:
    """Whether ``value`` (decoded JSON) nests lists and objects deeper than ``MAX_JSON_DEPTH``."""
    return json_depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH


def json_depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0), counted up to ``limit + 1``.

    Iterative, so that measuring a deep document cannot itself exhaust the stack.
    """
    deepest = 0
    pending = [(value, 1)]
    while pending and deepest <= limit:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in item)
    return deepest


# --- the notification as JSON ------------------------------------------------------------------
# One shape for the REST API and the WebSocket alike. The serializer's declared fields document it
# (and feed the OpenAPI schema); ``serialize`` builds the same dict directly, because the push
# path shapes every row of a large fan-out and DRF's field-by-field machinery would dominate it.
# Everything it returns is JSON-native.


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def object_ref(content_type_id: int | None, object_id: str, obj: Any) -> dict[str, str] | None:
    """An actor or target: ``{"type": "app_label.model", "id": "...", "display": "..."}``."""
    if content_type_id is None:
        return None
    try:
        content_type = ContentType.objects.get_for_id(content_type_id)  # cached after the first
    except ContentType.DoesNotExist:  # deleted behind the ORM's back: nothing left to name
        return None
    return {
        "type": f"{content_type.app_label}.{content_type.model}",
        "id": str(object_id),
        "display": "" if obj is None else str(obj),
    }


class ObjectRefSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="app_label.model of the object")
    id = serializers.CharField(help_text="its primary key, as text")
    display = serializers.CharField(help_text="str() of the object, empty if it is gone")


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    title = serializers.CharField(read_only=True)
    body = serializers.CharField(read_only=True)
    level = serializers.ChoiceField(
        choices=cast(Any, Notification._meta.get_field("level").choices)
    )
    category = serializers.CharField(read_only=True)
    url = serializers.CharField(read_only=True)
    actor = ObjectRefSerializer(read_only=True, allow_null=True)
    target = ObjectRefSerializer(read_only=True, allow_null=True)
    # The serializer's metaclass moves declared fields aside: .data stays DRF's property.
    data = serializers.DictField(read_only=True)  # type: ignore[assignment]
    created_at = serializers.DateTimeField(read_only=True)
    read_at = serializers.DateTimeField(read_only=True, allow_null=True)
    seen_at = serializers.DateTimeField(read_only=True, allow_null=True)
    archived_at = serializers.DateTimeField(read_only=True, allow_null=True)
    group_key = serializers.CharField(read_only=True, help_text="empty unless grouped")
    group_count = serializers.IntegerField(
        read_only=True, help_text="how many notifications this one stands for (1 unless grouped)"
    )
    actors = ObjectRefSerializer(
        many=True, read_only=True, help_text="grouped: the latest five actors, newest first"
    )

    def to_representation(self, instance: Notification) -> dict[str, Any]:
        return serialize(instance)


def serialize(notification: Notification) -> dict[str, Any]:
    """A notification as the contract's JSON object (a plain dict of JSON-native values)."""
    return {
        "id": notification.pk,
        "title": notification.title,
        "body": notification.body,
        "level": notification.level,
        "category": notification.category,
        "url": notification.url,
        "actor": object_ref(
            notification.actor_content_type_id, notification.actor_object_id, notification.actor
        ),
        "target": object_ref(
            notification.target_content_type_id, notification.target_object_id, notification.target
        ),
        "data": notification.data,
        "created_at": _timestamp(notification.created_at),
        "read_at": _timestamp(notification.read_at),
        "seen_at": _timestamp(notification.seen_at),
        "archived_at": _timestamp(notification.archived_at),
        "group_key": notification.group_key,
        "group_count": notification.group_count,
        "actors": notification.actors,
    }
