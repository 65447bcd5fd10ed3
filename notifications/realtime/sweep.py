"""Keeps the node's sockets claimed in the registry and closes the idle ones: one sweep per
process, not a timer and a task per socket (about 1.5 KB each, and a Redis round trip per socket
and period where a sweep sends one pipeline).

Every ``NODE_BEAT_SECONDS`` the node beats (its sockets keep counting against the per-user
limit) and learns the registry's epoch; every ``period()`` it claims all its sockets again. An
epoch it has not claimed under means the registry was wiped (``cache.clear()``, a Redis restart):
then it claims everything at once, so that pushes find its users online again within one beat.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ..conf import app_settings
from ..protocol import CLOSE_IDLE
from . import presence
from .presence import NODE_BEAT_SECONDS, registry

if TYPE_CHECKING:
    from .node import Node


def period() -> float:
    """How often a socket tells the registry it is alive, and idleness is checked."""
    every = presence.SOCKET_STALE_SECONDS / 3
    idle = app_settings.IDLE_TIMEOUT_SECONDS
    return min(every, idle / 2) if idle else every


class Sweep:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.task: asyncio.Task[None] | None = None
        self.claimed_epoch: str | None = None  # the registry epoch the last full claim was under
        self.claimed_at = 0.0  # monotonic

    def ensure_running(self) -> None:
        if self.task is None or self.task.done():
            self.claimed_epoch, self.claimed_at = None, time.monotonic()
            self.task = self.node.spawn(self._run())

    async def _run(self) -> None:
        while self.node.sockets:
            await asyncio.sleep(min(NODE_BEAT_SECONDS, period()))
            await self.tick()

    async def tick(self) -> None:
        idle = app_settings.IDLE_TIMEOUT_SECONDS
        now = time.monotonic()
        alive = []
        for socket in self.node:
            if socket.user_id is None:
                continue
            if idle and now - socket.last_heard > idle:
                self.node.close_soon(socket, CLOSE_IDLE, "idle")
            else:
                alive.append((socket.user_id, socket.channel_name))
        epoch = await registry().beat(self.node.id)
        # A first beat, or a new epoch (the registry was wiped): claim everything now.
        wiped = epoch is not None and self.claimed_epoch != epoch
        if alive and (wiped or now - self.claimed_at >= period()):
            await registry().refresh(alive, self.node.id)
            self.claimed_at = now
        if epoch is not None:
            self.claimed_epoch = epoch
