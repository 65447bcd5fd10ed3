"""The WebSocket consumer at ``/ws/notifications/``: an adapter from the socket protocol to
services and QuerySets. The protocol and its close codes are documented in docs/websocket.md."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import push, services
from .conf import app_settings
from .models import Counts, Notification
from .serializers import serialize

logger = logging.getLogger("notifications.consumers")

# Close codes (documented in docs/websocket.md).
CLOSE_UNAUTHENTICATED = 4401  # not signed in, or signed out / password changed since
CLOSE_TOO_LARGE = 4413  # a message over MAX_MESSAGE_BYTES
CLOSE_RATE_LIMITED = 4429  # more messages than MESSAGES_PER_SECOND allows
CLOSE_TRY_AGAIN = 1013  # the channel layer is unreachable: reconnect later and resume


class BadMessage(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class TokenBucket:
    """Allows ``rate`` messages a second on average, in bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    user_id: int | None = None
    session: str | None = None

    async def connect(self) -> None:
        # Accept first, then close with a code: refusing the handshake gives the browser a bare
        # 403 and no reason it can read.
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        # Join the group before reading counts and backlog, so nothing falls in between.
        if not await push.join(user.pk, self.channel_name):
            await self.close(code=CLOSE_TRY_AGAIN)
            return
        self.user_id = user.pk
        session = self.scope.get("session")
        self.session = push.session_digest(getattr(session, "session_key", None))
        self.bucket = TokenBucket(app_settings.MESSAGES_PER_SECOND, app_settings.MESSAGE_BURST)
        await self.send_json({"type": "hello", **await self._counts()})

    async def disconnect(self, code: int) -> None:
        if self.user_id is not None:
            await push.leave(self.user_id, self.channel_name)

    # --- from the client --------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user_id is None:
            return  # closing: a message that raced the close gets no answer
        size = len(bytes_data) if bytes_data is not None else len((text_data or "").encode())
        if size > app_settings.MAX_MESSAGE_BYTES:
            await self.close(code=CLOSE_TOO_LARGE)
            return
        if not self.bucket.take():
            await self.close(code=CLOSE_RATE_LIMITED)
            return
        try:
            await self._dispatch(text_data, bytes_data)
        except BadMessage as error:
            await self.send_json({"type": "error", "code": error.code, "detail": error.detail})

    async def _dispatch(self, text_data: str | None, bytes_data: bytes | None) -> None:
        if bytes_data is not None:
            raise BadMessage("binary_not_supported", "Send JSON text frames.")
        try:
            content = json.loads(text_data or "")
        except ValueError:
            raise BadMessage("invalid_json", "The message is not valid JSON.") from None
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            raise BadMessage("invalid_message", 'A message is a JSON object with a "type".')
        handler = self.handlers.get(content["type"])
        if handler is None:
            raise BadMessage("unknown_type", f"Unknown message type {content['type'][:50]!r}.")
        await handler(self, content)

    async def on_ping(self, content: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"type": "pong"}
        if "id" in content:
            ping_id = content["id"]
            if not (isinstance(ping_id, str | int) and not isinstance(ping_id, bool)) or (
                isinstance(ping_id, str) and len(ping_id) > 64
            ):
                raise BadMessage(
                    "invalid_field", "id: a string of at most 64 characters or an integer."
                )
            reply["id"] = ping_id
        await self.send_json(reply)

    async def on_resume(self, content: dict[str, Any]) -> None:
        after = _field(content, "after", services.clean_id)
        notifications, complete = await self._backlog(after)
        await self.send_json(
            {"type": "backlog", "notifications": notifications, "complete": complete}
        )

    async def on_mark_read(self, content: dict[str, Any]) -> None:
        await self._apply("read", services.mark_read, _field(content, "ids", services.clean_ids))

    async def on_mark_unread(self, content: dict[str, Any]) -> None:
        await self._apply(
            "unread", services.mark_unread, _field(content, "ids", services.clean_ids)
        )

    async def on_mark_all_read(self, content: dict[str, Any]) -> None:
        up_to = _field(content, "up_to", services.clean_id, required=False)
        await self._apply("read", lambda user_id: services.mark_read(user_id, up_to=up_to))

    async def on_mark_seen(self, content: dict[str, Any]) -> None:
        up_to = _field(content, "up_to", services.clean_id)
        await self._apply("seen", lambda user_id: services.mark_seen(user_id, up_to=up_to))

    handlers: dict[str, Callable[[Any, dict[str, Any]], Awaitable[None]]] = {
        "ping": on_ping,
        "resume": on_resume,
        "mark_read": on_mark_read,
        "mark_unread": on_mark_unread,
        "mark_all_read": on_mark_all_read,
        "mark_seen": on_mark_seen,
    }

    async def _apply(self, state: str, change: Callable[..., list[int]], *args: Any) -> None:
        # The answer is the `changed` event that every socket of the user receives after the
        # commit, this one included. When nothing changed there is no such event: answer here.
        changed = await database_sync_to_async(change)(self.user_id, *args)
        if not changed:
            counts = await self._counts()
            await self.send_json(
                {
                    "type": "changed",
                    "ids": [],
                    "state": state,
                    "unread_count": counts["unread_count"],
                    "unseen_count": counts["unseen_count"],
                }
            )

    # --- from the channel layer ------------------------------------------------------------

    async def notifications_created(self, event: dict[str, Any]) -> None:
        counts = {"unread_count": event["unread_count"], "unseen_count": event["unseen_count"]}
        for notification in event["notifications"]:
            await self.send_json({"type": "notification", "notification": notification, **counts})

    async def notifications_changed(self, event: dict[str, Any]) -> None:
        await self.send_json(
            {
                "type": "changed",
                "ids": event["ids"],
                "state": event["state"],
                "unread_count": event["unread_count"],
                "unseen_count": event["unseen_count"],
            }
        )

    async def notifications_revoke(self, event: dict[str, Any]) -> None:
        if event.get("session") in (None, self.session):
            await self.close(code=CLOSE_UNAUTHENTICATED)

    # --- database --------------------------------------------------------------------------

    @database_sync_to_async
    def _counts(self) -> Counts:
        return Notification.objects.for_user(self.user_id).counts()

    @database_sync_to_async
    def _backlog(self, after: int) -> tuple[list[dict[str, Any]], bool]:
        rows, complete = Notification.objects.for_user(self.user_id).backlog(after)
        return [serialize(row) for row in rows], complete


def _field(
    content: dict[str, Any], name: str, clean: Callable[..., Any], required: bool = True
) -> Any:
    if name not in content or content[name] is None:
        if required:
            raise BadMessage("invalid_field", f"{name}: this field is required.")
        return None
    try:
        return clean(content[name], name)
    except ValueError as error:
        raise BadMessage("invalid_field", str(error)) from None
