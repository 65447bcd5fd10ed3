"""Notices when the channel layer may have lost pushes, so that clients resume.

A channel layer loses messages while its Redis connection is down or reconnecting, and says
nothing (the pub/sub layer logs and resubscribes; channels_redis #256). A socket that stayed
open through that would never learn what it missed. So each process sends itself a heartbeat
through the layer every ``LAYER_CHECK_SECONDS``; when none has arrived for three periods, the
pushes of that time may be lost, and every socket of the process is closed with 4013 (try
again later): its client reconnects once the layer works again and resumes from its last id.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from . import push
from .conf import app_settings

logger = logging.getLogger("notifications")


class Watchdog:
    def __init__(self) -> None:
        self.watched: dict[Any, Callable[[], Any]] = {}
        self.group = push.heartbeat_group(uuid.uuid4().hex)
        self.last_beat = time.monotonic()
        self.task: asyncio.Task | None = None

    def watch(self, owner: Any, on_loss: Callable[[], Any]) -> None:
        self.watched[owner] = on_loss
        if self.task is None or self.task.done():
            self.last_beat = time.monotonic()
            self.task = asyncio.create_task(self._run())

    def unwatch(self, owner: Any) -> None:
        self.watched.pop(owner, None)

    async def _run(self) -> None:
        channel = await push.new_channel()
        if channel is None:
            return  # no channel layer: nothing to watch
        listener = asyncio.create_task(self._listen(channel))
        joined = False
        period = app_settings.LAYER_CHECK_SECONDS
        try:
            while self.watched:
                try:
                    if not joined:
                        await push.subscribe(self.group, channel)
                        joined = True
                    await push.send_heartbeat(self.group)
                except Exception as error:
                    joined = False  # a restarted Redis forgot the subscription
                    logger.warning("notifications: channel layer heartbeat failed: %r", error)
                await asyncio.sleep(period)
                if time.monotonic() - self.last_beat > 3 * period:
                    self._lost()
        finally:
            listener.cancel()
            if joined:
                await push.unsubscribe(self.group, channel)

    async def _listen(self, channel: str) -> None:
        while True:
            try:
                await push.receive(channel)
                self.last_beat = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(app_settings.LAYER_CHECK_SECONDS)

    def _lost(self) -> None:
        logger.warning(
            "notifications: no heartbeat through the channel layer for %.1f s: pushes may have "
            "been lost; closing %d sockets so that their clients resume",
            time.monotonic() - self.last_beat,
            len(self.watched),
        )
        self.last_beat = time.monotonic()  # give reconnecting sockets a full period of grace
        for on_loss in list(self.watched.values()):
            on_loss()
        self.watched.clear()


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watchdog] = (
    weakref.WeakKeyDictionary()
)


def watchdog() -> Watchdog:
    """This event loop's watchdog (one per process under daphne)."""
    loop = asyncio.get_running_loop()
    if loop not in _watchdogs:
        _watchdogs[loop] = Watchdog()
    return _watchdogs[loop]
