"""Closes the node's sockets whose credentials no longer hold, whatever no signal told them.

Every ``CREDENTIALS_CHECK_SECONDS`` the node checks all its sockets' credentials at once
(credentials.py: a few queries whatever their number): a session flushed by other code or
expired, a user or token changed behind the ORM's back. And it listens, once per process, for
sessions a login replaced (revocation.py), whose user's group could not be told.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.db import DatabaseError

from ..conf import app_settings
from ..protocol import CLOSE_REAUTHENTICATE, CLOSE_UNAUTHENTICATED
from . import broker, watchdog
from .credentials import verdicts

if TYPE_CHECKING:
    from .node import Node, Socket

logger = logging.getLogger("notifications")

# How long the periodic check waits before it looks again at a session that no longer matches
# its user (see Revocations.check).
SECOND_LOOK_SECONDS = 1.0


class Revocations:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.checks: asyncio.Task[None] | None = None
        self.listener: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        if self.checks is None or self.checks.done():
            self.checks = self.node.spawn(self._check_every_period())
        if self.listener is None or self.listener.done():
            self.listener = self.node.spawn(self._listen())

    async def _check_every_period(self) -> None:
        while self.node.sockets:
            await asyncio.sleep(app_settings.CREDENTIALS_CHECK_SECONDS)
            try:
                await self.check(second_look=True)
            except DatabaseError as error:
                logger.warning("notifications: credentials cannot be checked now: %r", error)
            except Exception:
                logger.exception("notifications: a credentials check failed")

    async def check(self, sockets: list[Socket] | None = None, *, second_look: bool = False) -> int:
        """Check these sockets' credentials (default: all of the node's); close those that no
        longer hold. Returns how many were closed.

        With ``second_look`` (the periodic check), a socket whose session no longer matches its
        user (4401) is looked at again ``SECOND_LOOK_SECONDS`` later before it is closed: a
        password change saves the user a moment before Django rotates the changer's session,
        and a check that falls in between would sign the changer's own browser out (4401)
        instead of asking it to come back with its new cookie (4440). The others' sockets are
        closed by the change's own signal meanwhile (revocation.py)."""
        sockets = [s for s in (self.node if sockets is None else sockets) if s.user_id is not None]
        if not sockets:
            return 0
        pairs = [(socket.user_id, socket.credential) for socket in sockets]
        answers = await database_sync_to_async(verdicts)(pairs)
        doubtful = [i for i, code in enumerate(answers) if code == CLOSE_UNAUTHENTICATED]
        if second_look and doubtful:
            await asyncio.sleep(SECOND_LOOK_SECONDS)
            again = await database_sync_to_async(verdicts)([pairs[i] for i in doubtful])
            for i, code in zip(doubtful, again, strict=True):
                answers[i] = code
        closed = 0
        for socket, code in zip(sockets, answers, strict=True):
            if code is not None:
                reason = "signed_out" if code == CLOSE_UNAUTHENTICATED else "session_gone"
                self.node.close_soon(socket, code, reason)
                closed += 1
        return closed

    async def _listen(self) -> None:
        channel = None
        while self.node.sockets:
            try:
                if channel is None:
                    channel = await broker.new_channel()
                    if channel is None:
                        return  # no channel layer
                    await broker.subscribe(broker.REPLACED_SESSIONS_GROUP, channel)
                self.replaced(await broker.receive(channel))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Missed meanwhile: the periodic check finds those sessions gone.
                logger.warning("notifications: listening for replaced sessions failed: %r", error)
                channel = None
                await asyncio.sleep(watchdog.LAYER_CHECK_SECONDS)
        if channel is not None:
            await broker.unsubscribe(broker.REPLACED_SESSIONS_GROUP, channel)

    def replaced(self, event: dict[str, Any]) -> None:
        """A login replaced a session: its sockets close, for good if another user signed in."""
        for socket in self.node:
            credential = socket.credential
            if credential is None or credential.digest != event.get("credential"):
                continue
            if socket.user_id == event.get("user_id"):
                self.node.close_soon(socket, CLOSE_REAUTHENTICATE, "session_rotated")
            else:
                self.node.close_soon(socket, CLOSE_UNAUTHENTICATED, "signed_out")
