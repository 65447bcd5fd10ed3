"""The WebSocket consumer at ``/ws/notifications/``: an adapter from the socket protocol to
services and QuerySets. The protocol and its close codes are documented in docs/websocket.md."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import DatabaseError

from . import push, services, shutdown
from .conf import app_settings
from .gcfreeze import freezer
from .liveness import liveness
from .models import Counts, Notification
from .registry import PROCESS, registry
from .serializers import serialize
from .watchdog import watchdog

# One line per event, as key=value pairs: connect, auth_failure, resume, drop, disconnect.
events = logging.getLogger("notifications.events")

# Close codes (documented in docs/websocket.md). Daphne only sends 1000 and 3000-4999, so the
# standard 1012 (service restart) and 1013 (try again later) become 4012 and 4013.
CLOSE_SERVICE_RESTART = 4012  # the server is shutting down: reconnect soon and resume
CLOSE_TRY_AGAIN = 4013  # Redis or the database is unreachable: reconnect later and resume
CLOSE_UNAUTHENTICATED = 4401  # not signed in, or signed out / password changed since
CLOSE_IDLE = 4408  # nothing received for IDLE_TIMEOUT_SECONDS
CLOSE_TOO_MANY_SOCKETS = 4409  # the user already has MAX_SOCKETS_PER_USER open sockets
CLOSE_TOO_LARGE = 4413  # a message over MAX_MESSAGE_BYTES
CLOSE_RATE_LIMITED = 4429  # more messages than MESSAGES_PER_SECOND allows


class BadMessage(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class TokenBucket:
    """Allows ``rate`` messages a second on average, in bursts of up to ``burst``."""

    __slots__ = ("rate", "burst", "tokens", "updated")  # one per socket

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

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            # Daphne cancels every application when it shuts down, and disconnect() never runs:
            # tell the client to come back soon (it will resume), and clean up what we can.
            if self.user_id is not None:
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": CLOSE_SERVICE_RESTART})
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._forget(), 1)
            raise

    async def connect(self) -> None:
        # Accept first, then close with a code: refusing the handshake gives the browser a bare
        # 403 and no reason it can read.
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await registry().count("auth_failures")
            events.info("event=auth_failure process=%s path=%s", PROCESS, self.scope.get("path"))
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        claimed = await registry().claim(user.pk, self.channel_name)
        if claimed is None:
            # Unregistered, the socket would not count as online, and a send would skip it.
            await self._drop(CLOSE_TRY_AGAIN, user.pk, "registry_unreachable")
            return
        if not claimed:
            await self._drop(CLOSE_TOO_MANY_SOCKETS, user.pk, "too_many_sockets")
            return
        # Join the group before reading counts and backlog, so nothing falls in between.
        if not await push.join(user.pk, self.channel_name):
            await registry().release(user.pk, self.channel_name)
            await self._drop(CLOSE_TRY_AGAIN, user.pk, "channel_layer_unreachable")
            return
        self.user_id = user.pk
        session = self.scope.get("session")
        self.session = push.session_digest(getattr(session, "session_key", None))
        self.bucket = TokenBucket(app_settings.MESSAGES_PER_SECOND, app_settings.MESSAGE_BURST)
        self.last_heard = time.monotonic()
        liveness().watch(self)
        watchdog().watch(self, self._channel_layer_lost)
        freezer().ensure_running(lambda: bool(watchdog().watched))
        shutdown.install(_close_all_for_restart)
        try:
            counts = await self._counts()
        except DatabaseError as error:
            events.warning("event=database_error process=%s error=%r", PROCESS, error)
            await self._drop(CLOSE_TRY_AGAIN, self.user_id, "database_unavailable")
            await self._forget()
            return
        await self.send_json({"type": "hello", **counts})
        await registry().count("connects")
        events.info(
            "event=connect process=%s user=%s channel=%s", PROCESS, user.pk, self.channel_name
        )

    async def disconnect(self, code: int) -> None:
        if self.user_id is not None:
            events.info("event=disconnect process=%s user=%s code=%s", PROCESS, self.user_id, code)
            await self._forget()

    async def _forget(self) -> None:
        user_id, self.user_id = self.user_id, None
        liveness().unwatch(self)
        watchdog().unwatch(self)
        if user_id is not None:
            await push.leave(user_id, self.channel_name)
            await registry().release(user_id, self.channel_name)

    def _channel_layer_lost(self) -> None:
        # Pushes may have been lost: close so that the client reconnects and resumes.
        asyncio.create_task(self._drop(CLOSE_TRY_AGAIN, self.user_id, "channel_layer_lost"))

    async def close_for_restart(self) -> None:
        await self._drop(CLOSE_SERVICE_RESTART, self.user_id, "server_stopping")
        await self._forget()

    async def _drop(self, code: int, user_id: int | None, reason: str) -> None:
        await registry().count("drops")
        events.info(
            "event=drop process=%s user=%s code=%s reason=%s", PROCESS, user_id, code, reason
        )
        await self.close(code=code)

    async def close_idle(self) -> None:
        """The client sent nothing for ``IDLE_TIMEOUT_SECONDS`` (see liveness.py)."""
        await self._drop(CLOSE_IDLE, self.user_id, "idle")

    # --- from the client --------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user_id is None:
            return  # closing: a message that raced the close gets no answer
        self.last_heard = time.monotonic()
        size = len(bytes_data) if bytes_data is not None else len((text_data or "").encode())
        if size > app_settings.MAX_MESSAGE_BYTES:
            await self._drop(CLOSE_TOO_LARGE, self.user_id, "message_too_large")
            return
        if not self.bucket.take():
            await self._drop(CLOSE_RATE_LIMITED, self.user_id, "rate_limited")
            return
        try:
            await self._dispatch(text_data, bytes_data)
        except BadMessage as error:
            await self.send_json({"type": "error", "code": error.code, "detail": error.detail})
        except DatabaseError as error:
            # The database restarting must not kill the socket: the client may try again.
            events.warning("event=database_error process=%s error=%r", PROCESS, error)
            await self.send_json(
                {
                    "type": "error",
                    "code": "unavailable",
                    "detail": "The server cannot reach its database; try again shortly.",
                }
            )

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
        await registry().count("resumes")
        events.info(
            "event=resume process=%s user=%s after=%s sent=%s complete=%s",
            PROCESS,
            self.user_id,
            after,
            len(notifications),
            complete,
        )
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
        await self._apply("read", lambda user_id: services.mark_all_read(user_id, up_to=up_to))

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

    async def _apply(
        self, state: str, change: Callable[..., list[int] | services.Change], *args: Any
    ) -> None:
        # The answer is the `changed` event that every socket of the user receives after the
        # commit, this one included. When nothing changed there is no such event: answer here.
        changed = await database_sync_to_async(change)(self.user_id, *args)
        if not (changed.count if isinstance(changed, services.Change) else changed):
            counts = await self._counts()
            await self.send_json(
                push.changed_frame([], state, counts["unread_count"], counts["unseen_count"])
            )

    # --- from the channel layer ------------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections before every handler: a hop to the
        # database thread that cost 40 % of daphne's time per pushed event. Our channel-layer
        # events never touch the database, so they skip it; everything else keeps it.
        if message["type"].startswith(push.EVENT_PREFIX):
            handler = getattr(self, get_handler_name(message), None)
            if handler is not None:
                await handler(message)
                return
        await super().dispatch(message)

    async def notifications_created(self, event: dict[str, Any]) -> None:
        # The frames arrive encoded (push.created_event): once per user, not once per socket.
        for frame in event["frames"]:
            await self.send(text_data=frame)

    async def notifications_changed(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["frame"])

    async def notifications_revoke(self, event: dict[str, Any]) -> None:
        if event.get("session") in (None, self.session):
            await self._drop(CLOSE_UNAUTHENTICATED, self.user_id, "signed_out")

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


async def _close_all_for_restart() -> None:
    consumers = list(watchdog().watched)
    await asyncio.gather(
        *(consumer.close_for_restart() for consumer in consumers), return_exceptions=True
    )
