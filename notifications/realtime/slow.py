"""A client slow to take what its socket sends.

Under uvicorn a send waits while the client's TCP window is full (daphne's never waits: it
buffers). The hub must not wait with it (``eager.py``): that send goes on in a task, and the
pushes that follow queue here behind it, in order. A client that takes nothing for
``STUCK_SECONDS``, or falls ``MAX_QUEUED_FRAMES`` behind, is closed with 4013: its place and its
user's group are given back at once, and when it does read again it reconnects and resumes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from ..protocol import CLOSE_TRY_AGAIN
from .node import node

if TYPE_CHECKING:
    from .node import Socket

logger = logging.getLogger("notifications")

MAX_QUEUED_FRAMES = 256
STUCK_SECONDS = 30.0


class SlowClient:
    __slots__ = ("frames", "task")

    def __init__(self, socket: Socket, waiting: asyncio.Task[None], frames: list[str]) -> None:
        self.frames: deque[str] = deque(frames)
        self.task = node().spawn(self._drain(socket, waiting))

    def add(self, socket: Socket, frames: list[str]) -> None:
        self.frames.extend(frames)
        if len(self.frames) > MAX_QUEUED_FRAMES:
            self.frames.clear()
            node().close_soon(socket, CLOSE_TRY_AGAIN, "too_slow")

    async def _drain(self, socket: Socket, waiting: asyncio.Task[None]) -> None:
        try:
            async with asyncio.timeout(STUCK_SECONDS):
                await waiting
            while self.frames and socket.closed_with is None:
                async with asyncio.timeout(STUCK_SECONDS):
                    await socket.send(text_data=self.frames.popleft())
        except TimeoutError:
            await node().close(socket, CLOSE_TRY_AGAIN, "too_slow")
        except Exception as error:  # the client went away meanwhile
            logger.debug("notifications: a push to a slow client was not sent: %r", error)
        finally:
            socket.queued = None
