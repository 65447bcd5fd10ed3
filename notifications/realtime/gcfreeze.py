"""Keeps the garbage collector's full collections off the long-lived objects of a process that
holds many sockets (``GC_FREEZE_SECONDS``; off by default).

A daphne process holding 5,000 sockets holds about a million long-lived objects: consumers,
their scopes, Twisted and autobahn protocol state. Each full collection traverses all of them;
measured there, each took about a second, several times during one burst of pushes, and every
socket of the process waited. With the setting on, each process holding sockets moves what is
alive into the permanent generation that often (``gc.freeze()``), so that collections traverse
only what is new. What was frozen and later becomes cyclic garbage (the cycles of a closed
socket) is only reclaimed at the next thaw: every ``GC_THAW_SECONDS`` the process unfreezes and
runs one full collection (one pause, at a time of its choosing), then freezes again.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import TYPE_CHECKING

from ..conf import app_settings
from .presence import PROCESS

if TYPE_CHECKING:
    from .node import Node

events = logging.getLogger("notifications.events")

# How often a freezing process thaws for one full collection.
GC_THAW_SECONDS = 900


class Freezer:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.task: asyncio.Task[None] | None = None
        self.thawed_at = time.monotonic()

    def ensure_running(self) -> None:
        """Freeze periodically for as long as the node holds sockets."""
        if app_settings.GC_FREEZE_SECONDS and (self.task is None or self.task.done()):
            self.task = self.node.spawn(self._run())

    async def _run(self) -> None:
        try:
            while self.node.sockets and app_settings.GC_FREEZE_SECONDS:
                await asyncio.sleep(app_settings.GC_FREEZE_SECONDS)
                if time.monotonic() - self.thawed_at >= GC_THAW_SECONDS:
                    self.thaw()
                gc.freeze()
        finally:
            gc.unfreeze()  # no sockets left: let the collector have everything again

    def thaw(self) -> None:
        started = time.monotonic()
        gc.unfreeze()
        collected = gc.collect()
        self.thawed_at = time.monotonic()
        events.info(
            "event=gc_thaw process=%s collected=%d seconds=%.3f",
            PROCESS,
            collected,
            self.thawed_at - started,
        )
