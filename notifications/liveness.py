"""Keeps every socket of the process claimed in the registry, and closes the idle ones: one sweep
per process, not a timer and a task per socket (about 1.5 KB each, and one Redis round trip per
socket and period where a sweep sends one pipeline)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .conf import app_settings
from .loops import per_loop
from .registry import registry


def period() -> float:
    """How often a socket tells the registry it is alive, and idleness is checked."""
    every = app_settings.SOCKET_STALE_SECONDS / 3
    idle = app_settings.IDLE_TIMEOUT_SECONDS
    return min(every, idle / 2) if idle else every


class Liveness:
    def __init__(self) -> None:
        self.sockets: dict[Any, None] = {}  # consumers, in the order they connected
        self.task: asyncio.Task | None = None

    def watch(self, consumer: Any) -> None:
        """``consumer`` has ``user_id``, ``channel_name``, ``last_heard`` (monotonic) and
        ``close_idle()``."""
        self.sockets[consumer] = None
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())

    def unwatch(self, consumer: Any) -> None:
        self.sockets.pop(consumer, None)

    async def _run(self) -> None:
        while self.sockets:
            await asyncio.sleep(period())
            await self.sweep()

    async def sweep(self) -> None:
        idle = app_settings.IDLE_TIMEOUT_SECONDS
        now = time.monotonic()
        alive = []
        for consumer in list(self.sockets):
            if consumer.user_id is None:
                continue
            if idle and now - consumer.last_heard > idle:
                self.unwatch(consumer)
                asyncio.create_task(consumer.close_idle())
            else:
                alive.append((consumer.user_id, consumer.channel_name))
        if alive:
            await registry().refresh(alive)


# This event loop's liveness sweep (one per process under daphne).
liveness = per_loop(Liveness)
