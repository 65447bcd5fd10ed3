"""One delivery per process, not per socket.

The process has one channel of the channel layer, and that channel is in the group of every
user with a socket open here, and in the group of all processes (``broker.NODES_GROUP``). One
task receives from it and writes each event's frames to the local sockets it concerns: an event
for a user is received, parsed and encoded once however many sockets the user has here, and a
send to thousands of users is one message per process, each process picking out its own users'
rows. A socket has no channel, queue or task of its own.

Everything still travels through the Channels layer (its groups, ``group_send``), so the
in-memory, core and pub/sub layers all work, and a project's own consumers are untouched.
Layers that forget a membership after ``group_expiry`` get theirs renewed (renewal.py).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ..protocol import CLOSE_INTERNAL_ERROR
from . import broker

if TYPE_CHECKING:
    from .node import Node, Socket

logger = logging.getLogger("notifications")

# Between attempts to reach the group of all processes when the layer refuses.
RETRY_SECONDS = 1.0


class Hub:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.channel: str | None = None  # this process's channel while it receives
        self.joined: set[int] = set()  # users whose group the channel is in
        self.task: asyncio.Task[None] | None = None
        # Joining and leaving one user's group, one at a time (a socket that opens while the
        # user's last one leaves must not end up outside the group).
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, user_id: int) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        return lock

    async def join(self, user_id: int) -> bool:
        """Put this process's channel in the user's group (a socket of theirs is in the node
        already); False when the layer cannot be reached."""
        if self.channel is None:
            try:
                channel = await broker.node_channel()
            except Exception as error:  # the pub/sub layer subscribes it at once
                logger.warning("notifications: the channel layer gave no channel: %r", error)
                return False
            if channel is None:
                return False  # no channel layer is configured
            if self.channel is None:  # not started by another socket meanwhile
                self.channel = channel
                self.task = self.node.spawn(self._receive(channel))
        channel = self.channel
        async with self._lock(user_id):
            # Added again for each socket, even when the user is joined already: the layer may
            # have forgotten the membership (a restarted Redis) while another socket was open.
            if not await broker.join(user_id, channel):
                return False
            if self.channel != channel:  # the layer failed meanwhile: that channel is gone
                return False
            self.joined.add(user_id)
            return True

    async def leave(self, user_id: int) -> None:
        """Take the channel out of the user's group once no socket of theirs is left here; stop
        receiving once no socket is left at all."""
        async with self._lock(user_id):
            if user_id in self.node.users or user_id not in self.joined:
                return
            self.joined.discard(user_id)
            if self.channel is not None:
                await broker.leave(user_id, self.channel)
        if not self.node.sockets and not self.joined and self.task is not None:
            self.task.cancel()
            self.task, self.channel = None, None

    async def renew(self) -> None:
        """Add the channel to every group it holds again (renewal.py)."""
        channel = self.channel
        if channel is None:
            return
        try:
            await broker.subscribe(broker.NODES_GROUP, channel)
        except Exception as error:  # still a member until the lifetime ends: the next renews
            logger.warning("notifications: the group of all processes was not renewed: %r", error)
        if self.channel != channel:  # stopped meanwhile: its last act was to leave that group
            await broker.unsubscribe(broker.NODES_GROUP, channel)
            return
        for user_id in list(self.joined):
            async with self._lock(user_id):
                if user_id not in self.joined or self.channel != channel:
                    continue
                # One attempt, and none more once the layer fails: each would hold a user's
                # lock through join()'s retries, and what was added lasts till the next renewal.
                if not await broker.join(user_id, channel, attempts=1):
                    return

    async def _receive(self, channel: str) -> None:
        try:
            await self._join_everyone(channel)
            while True:
                try:
                    event = await broker.receive(channel)
                except Exception as error:
                    self._lost(channel, error)
                    return
                try:
                    await self.deliver(event)
                except Exception:  # a bug or bad data: the next event is delivered all the same
                    logger.exception("notifications: an event was not delivered: %r", event)
        except asyncio.CancelledError:
            await broker.unsubscribe(broker.NODES_GROUP, channel)
            raise

    async def _join_everyone(self, channel: str) -> None:
        while True:
            try:
                await broker.subscribe(broker.NODES_GROUP, channel)
                return
            except Exception as error:
                # Sends to many users pass through that group: whoever they were for may miss
                # them, and must resume.
                self.node.lose_shard(
                    None, f"the group of all processes is out of reach ({error!r})"
                )
                await asyncio.sleep(RETRY_SECONDS)

    def _lost(self, channel: str, error: Exception) -> None:
        """The layer failed to give this process its messages: whatever it carried meanwhile is
        lost. Close every socket with 4013 (their clients resume), and start over with a new
        channel when the next socket opens."""
        if self.channel == channel:
            users, self.joined = self.joined, set()
            self.task, self.channel = None, None
            self.node.spawn(self._forget(channel, users))
        self.node.lose_shard(None, f"its channel failed ({error!r})")

    async def _forget(self, channel: str, users: set[int]) -> None:
        # The old channel must not stay in groups: the pub/sub layer would queue its messages
        # in this process for ever.
        for user_id in users:
            await broker.leave(user_id, channel)
        await broker.unsubscribe(broker.NODES_GROUP, channel)

    # --- delivery ----------------------------------------------------------------------------

    async def deliver(self, event: dict[str, Any]) -> None:
        """Write one event to the local sockets it concerns."""
        kind = event.get("type")
        if kind == broker.CREATED:
            for user_id, (frames, ids) in broker.created_frames(event, self.node.users).items():
                for socket in self._sockets(user_id):
                    await self._each(socket, socket.push(frames, ids))
            return
        sockets = self._sockets(event.get("user"))
        if kind == broker.CHANGED:
            for socket in sockets:
                await self._each(socket, socket.push([event["frame"]], []))
        elif kind == broker.REVOKE:
            for socket in sockets:
                await self._each(socket, socket.revoked(event.get("credential")))
        elif kind == broker.RECHECK and sockets:
            # The user changed (password, activity): does what opened each socket still hold?
            await self.node.revocations.check(sockets)

    def _sockets(self, user_id: Any) -> list[Socket]:
        return list(self.node.users.get(user_id, {}).values())

    async def _each(self, socket: Socket, delivery: Awaitable[None]) -> None:
        try:
            await delivery
        except Exception:
            # A bug or bad data must neither stop the other sockets' deliveries nor leave this
            # one open without them.
            logger.exception("notifications: a delivery to a socket failed")
            self.node.close_soon(socket, CLOSE_INTERNAL_ERROR, "internal_error")
