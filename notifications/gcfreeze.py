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
from collections.abc import Callable

from .conf import app_settings
from .loops import per_loop
from .registry import PROCESS

events = logging.getLogger("notifications.events")


class Freezer:
    def __init__(self) -> None:
        self.task: asyncio.Task | None = None
        self.thawed_at = time.monotonic()

    def ensure_running(self, needed: Callable[[], bool]) -> None:
        """Freeze periodically for as long as ``needed()`` says this process holds sockets."""
        if app_settings.GC_FREEZE_SECONDS and (self.task is None or self.task.done()):
            self.task = asyncio.create_task(self._run(needed))

    async def _run(self, needed: Callable[[], bool]) -> None:
        try:
            while needed() and app_settings.GC_FREEZE_SECONDS:
                await asyncio.sleep(app_settings.GC_FREEZE_SECONDS)
                if time.monotonic() - self.thawed_at >= app_settings.GC_THAW_SECONDS:
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


# This event loop's freezer (one per process under daphne).
freezer = per_loop(Freezer)
