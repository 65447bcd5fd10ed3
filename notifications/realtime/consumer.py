"""The WebSocket consumer at ``/ws/notifications/``: an adapter from the socket to the wire
protocol (``protocol.py``: every frame, message, error and close code) and from there to services
and QuerySets. docs/websocket.md describes the protocol."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import DatabaseError

from .. import protocol, services
from ..auth import CREDENTIAL
from ..conf import app_settings
from ..models import Counts, Notification
from ..protocol import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_RATE_LIMITED,
    CLOSE_SERVICE_RESTART,
    CLOSE_TOO_LARGE,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHENTICATED,
    serialize,
)
from . import eager
from .credentials import Credential
from .gaps import RecentIds
from .node import node
from .presence import PROCESS, registry
from .slow import SlowClient

# Processes' clocks differ: a revocation stamped this long before a socket's authentication
# still makes it check its credentials.
CLOCK_SKEW_SECONDS = 5.0

# One line per event, as key=value pairs: connect, auth_failure, resume, drop, disconnect, error.
events = logging.getLogger("notifications.events")
logger = logging.getLogger("notifications")


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
    """One socket. Its place in the registry and in its user's group belongs to the process's
    node (realtime/node.py): the consumer asks the node to add, remove and close it. Whatever a
    handler raises, the socket is closed with 4500 and everything it held is released."""

    # No layer by this alias: Channels then gives the socket no channel, queue or receiving
    # task of its own. The process's hub (hub.py) receives for all of its sockets and calls
    # push().
    channel_layer_alias = None
    user_id: int | None = None
    credential: Credential | None = None
    closed_with: int | None = None
    # (after, cursor) of the backlog page the client may ask for next without spending its
    # message budget: paging is paced by the server's answers, never a flood.
    next_page: tuple[int, int] | None = None
    # What the hub delivered before the socket was sent hello, sent right after it.
    held: list[tuple[list[str], list[int]]] | None = None
    # The pushes queued behind a send the client is slow to take (None: none is waiting).
    queued: SlowClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # A name of its own for the registry; no channel of the layer (see channel_layer_alias).
        self.channel_name = f"{PROCESS}.{uuid.uuid4().hex}"
        try:
            await self._serve(scope, receive, send)
        except Exception:
            await node().remove(self)  # whatever failed, nothing stays claimed
            raise
        except asyncio.CancelledError:
            # Daphne cancels every application when it shuts down, and disconnect() never runs:
            # tell the client to come back soon (it will resume), and clean up what we can.
            if self.user_id is not None:
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": CLOSE_SERVICE_RESTART})
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(node().remove(self), 1)
            raise

    async def _serve(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """``AsyncConsumer.__call__`` for a consumer with no channel layer. Channels waits on its
        one source of messages through a task of its own and ``asyncio.wait`` (a task, a future
        and their bookkeeping: about 3 KB per idle socket); with nothing else to wait on, the
        client's next message is simply awaited, and each is dispatched before the next is
        read, as there."""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception:
            # A bug, bad data, a library failing: never a socket that holds its place forever.
            logger.exception("notifications: a socket failed on %r", message.get("type"))
            events.info(
                "event=error process=%s user=%s type=%s", PROCESS, self.user_id, message["type"]
            )
            await node().close(self, CLOSE_INTERNAL_ERROR, "internal_error")
            if message["type"] == "websocket.disconnect":
                raise StopConsumer() from None

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
        authenticated_by = time.time()  # the middleware authenticated the socket before this
        self.user_id = user.pk
        self.credential = _credential_of(self.scope)
        self.bucket = TokenBucket(app_settings.MESSAGES_PER_SECOND, app_settings.MESSAGE_BURST)
        self.last_heard = time.monotonic()
        self.greeted_at: float | None = None
        self.delivered = RecentIds()
        if not await node().add(self):
            return
        # A revocation sent after the socket was authenticated but before it joined its group
        # never reached it: when the user's credentials changed lately, check them now.
        revoked = await registry().revoked_at(user.pk)
        recent = revoked is not None and revoked >= authenticated_by - CLOCK_SKEW_SECONDS
        if recent and await node().revocations.check([self]):
            return
        try:
            counts = await self._counts()
        except DatabaseError as error:
            events.warning("event=database_error process=%s error=%r", PROCESS, error)
            await node().close(self, CLOSE_TRY_AGAIN, "database_unavailable")
            return
        await self.send_frame(
            protocol.hello_frame(counts["unread_count"], counts["unseen_count"], counts["last_id"])
        )
        # From here on gap detection looks after it: what committed before, its resume brings.
        self.greeted_at = time.monotonic()
        held, self.held = self.held or [], None
        for frames, ids in held:
            await self.push(frames, ids)
        await registry().count("connects")
        events.info(
            "event=connect process=%s user=%s channel=%s", PROCESS, user.pk, self.channel_name
        )

    async def disconnect(self, code: int) -> None:
        if self.user_id is not None:
            events.info("event=disconnect process=%s user=%s code=%s", PROCESS, self.user_id, code)
            await node().remove(self)

    def _registered(self) -> bool:
        return self.user_id is not None and node().sockets.get(self.channel_name) is self

    # --- from the client --------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self._registered():
            return  # closing: a message that raced the close gets no answer
        self.last_heard = time.monotonic()
        text = (text_data or "").encode("utf-8", "surrogatepass")  # a lone surrogate is no crash
        size = len(bytes_data) if bytes_data is not None else len(text)
        if size > app_settings.MAX_MESSAGE_BYTES:
            await node().close(self, CLOSE_TOO_LARGE, "message_too_large")
            return
        message: protocol.ClientMessage | protocol.ProtocolError
        try:
            message = protocol.parse(text_data, bytes_data)
        except protocol.ProtocolError as error:
            message = error  # answered once the message has been counted
        if not self._is_next_page(message) and not self.bucket.take():
            await node().close(self, CLOSE_RATE_LIMITED, "rate_limited")
            return
        if isinstance(message, protocol.ProtocolError):
            await self.send_frame(message.frame())
            return
        try:
            await self.handlers[message.type](self, message)
        except DatabaseError as error:
            # The database restarting must not kill the socket: the client may try again.
            events.warning("event=database_error process=%s error=%r", PROCESS, error)
            await self.send_frame(
                protocol.error_frame(protocol.UNAVAILABLE, protocol.UNAVAILABLE_DETAIL)
            )

    def _is_next_page(self, message: object) -> bool:
        return (
            isinstance(message, protocol.Resume)
            and self.next_page is not None
            and (message.after, message.cursor) == self.next_page
        )

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(frame))

    async def on_ping(self, message: protocol.Ping) -> None:
        await self.send_frame(protocol.pong_frame(message.id))

    async def on_resume(self, message: protocol.Resume) -> None:
        after, cursor = message.after, message.cursor
        notifications, complete = await self._backlog(after, cursor)
        self.delivered.add(notification["id"] for notification in notifications)
        await registry().count("resumes")
        events.info(
            "event=resume process=%s user=%s after=%s cursor=%s sent=%s complete=%s",
            PROCESS,
            self.user_id,
            after,
            cursor,
            len(notifications),
            complete,
        )
        frame = protocol.backlog_frame(notifications, complete)
        self.next_page = None if complete else (after, frame["cursor"])
        await self.send_frame(frame)

    async def on_mark_read(self, message: protocol.MarkRead) -> None:
        await self._apply("read", services.mark_read, message.ids)

    async def on_mark_unread(self, message: protocol.MarkUnread) -> None:
        await self._apply("unread", services.mark_unread, message.ids)

    async def on_mark_all_read(self, message: protocol.MarkAllRead) -> None:
        up_to = message.up_to
        await self._apply("read", lambda user_id: services.mark_all_read(user_id, up_to=up_to))

    async def on_mark_seen(self, message: protocol.MarkSeen) -> None:
        up_to = message.up_to
        await self._apply("seen", lambda user_id: services.mark_seen(user_id, up_to=up_to))

    handlers: dict[str, Callable[[Any, Any], Awaitable[None]]] = {
        protocol.PING: on_ping,
        protocol.RESUME: on_resume,
        protocol.MARK_READ: on_mark_read,
        protocol.MARK_UNREAD: on_mark_unread,
        protocol.MARK_ALL_READ: on_mark_all_read,
        protocol.MARK_SEEN: on_mark_seen,
    }

    async def _apply(
        self, state: str, change: Callable[..., list[int] | services.Change], *args: Any
    ) -> None:
        # The answer is the `changed` event that every socket of the user receives after the
        # commit, this one included. When nothing changed there is no such event: answer here.
        changed = await database_sync_to_async(change)(self.user_id, *args)
        if not (changed.count if isinstance(changed, services.Change) else changed):
            counts = await self._counts()
            await self.send_frame(
                protocol.changed_frame([], state, counts["unread_count"], counts["unseen_count"])
            )

    # --- from the hub ----------------------------------------------------------------------

    async def push(self, frames: list[str], ids: list[int]) -> None:
        """Frames for this socket's user, encoded once per process (hub.py), and the ids of the
        notifications among them (one per frame, or none), remembered for gap detection; a
        notification the socket was already sent in a frame (pushed, or recovered by gap
        detection) is not sent again.
        Nothing may come before hello: until then they wait. Never waits on the client: a send
        the server makes wait (uvicorn, while the client's TCP window is full) goes on in a
        task, and what follows queues behind it (``slow.py``)."""
        if self.closed_with is not None:
            return
        if self.greeted_at is None:
            self.held = [*(self.held or []), (frames, ids)]
            return
        frames = self.delivered.unsent(frames, ids)
        if not frames:
            return
        if self.queued is not None:
            self.queued.add(self, frames)
            return
        for index, frame in enumerate(frames):
            # What self.send(text_data=frame) sends, without its two layers of calls: this is
            # the one path that runs per socket for every push.
            waiting = eager.start(self.base_send({"type": "websocket.send", "text": frame}))
            if waiting is not None:
                self.queued = SlowClient(self, waiting, frames[index + 1 :])
                return

    async def revoked(self, credential: str | None) -> None:
        """A credential of the user was revoked (its digest; None: all of them)."""
        if credential is None or (self.credential and credential == self.credential.digest):
            await node().close(self, CLOSE_UNAUTHENTICATED, "signed_out")

    # --- database --------------------------------------------------------------------------

    @database_sync_to_async
    def _counts(self) -> Counts:
        return Notification.objects.for_user(self.user_id).counts()

    @database_sync_to_async
    def _backlog(self, after: int, cursor: int | None) -> tuple[list[dict[str, Any]], bool]:
        rows, complete = Notification.objects.for_user(self.user_id).backlog(after, cursor=cursor)
        return [serialize(row) for row in rows], complete


def _credential_of(scope: dict[str, Any]) -> Credential | None:
    """What the socket was opened with: the ticket's credential, or the session of the cookie."""
    if CREDENTIAL in scope:
        return scope[CREDENTIAL]
    session_key = getattr(scope.get("session"), "session_key", None)
    return Credential("session", session_key) if session_key else None
