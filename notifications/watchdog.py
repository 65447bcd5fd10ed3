"""Notices when the channel layer may have lost pushes, so that clients resume.

A channel layer loses messages while its Redis connection is down or reconnecting, and says
nothing (the pub/sub layer logs and resubscribes; channels_redis #256). A socket that stayed
open through that would never learn what it missed. So each process sends itself numbered
heartbeats through the layer every ``LAYER_CHECK_SECONDS``. When one cannot be sent, or one
never arrives (a later one does first), pushes of that time may be lost, and every socket of
the process is closed with 4013 (try again later): its client reconnects once the layer works
again and resumes from its last id. A heartbeat that is merely late (a busy process) is not a
loss: closing every socket then would only add a reconnect storm to the load.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from . import push
from .conf import app_settings
from .loops import per_loop

logger = logging.getLogger("notifications")


class Watchdog:
    def __init__(self) -> None:
        self.watched: dict[Any, Callable[[], Any]] = {}
        self.group = push.heartbeat_group(uuid.uuid4().hex)
        self.task: asyncio.Task | None = None
        self.sent = 0  # heartbeats sent by this run
        self.expected = 1  # the next heartbeat that should arrive
        self.last_beat = time.monotonic()

    def watch(self, owner: Any, on_loss: Callable[[], Any]) -> None:
        self.watched[owner] = on_loss
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())

    def unwatch(self, owner: Any) -> None:
        self.watched.pop(owner, None)

    async def _run(self) -> None:
        channel = None
        while channel is None and self.watched:
            try:
                channel = await push.new_channel()
            except Exception as error:
                self._lost(f"the channel layer is unreachable ({error!r})")
                await asyncio.sleep(app_settings.LAYER_CHECK_SECONDS)
                continue
            if channel is None:
                return  # no channel layer: nothing to watch
        if channel is None:
            return
        self.sent, self.expected, self.last_beat = 0, 1, time.monotonic()
        listener = asyncio.create_task(self._listen(channel))
        joined = False
        period = app_settings.LAYER_CHECK_SECONDS
        try:
            while self.watched:
                try:
                    if not joined:
                        await push.subscribe(self.group, channel)
                        joined = True
                    await push.send_heartbeat(self.group, self.sent + 1)
                    self.sent += 1
                except Exception as error:
                    # Pushes sent now fail too: whoever was to get them must resume.
                    joined = False  # a restarted Redis forgot the subscription
                    self._lost(f"the heartbeat could not be sent ({error!r})")
                await asyncio.sleep(period)
                # A heartbeat that is late says the process is busy, not that anything was lost;
                # only a very long silence counts (a subscription that never came back).
                if time.monotonic() - self.last_beat > max(30, 10 * period):
                    self._lost("no heartbeat arrived for a long time")
                    self.last_beat = time.monotonic()
        finally:
            listener.cancel()
            if joined:
                await push.unsubscribe(self.group, channel)

    async def _listen(self, channel: str) -> None:
        while True:
            try:
                message = await push.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(app_settings.LAYER_CHECK_SECONDS)
                continue
            self.last_beat = time.monotonic()
            number = message.get("seq", 0)
            if number > self.expected:
                # A gap: the layer dropped heartbeats, so it dropped whatever else it carried then.
                self._lost(f"heartbeats {self.expected}..{number - 1} never arrived")
            self.expected = max(self.expected, number + 1)

    def _lost(self, why: str) -> None:
        if not self.watched:
            return
        logger.warning(
            "notifications: the channel layer may have lost pushes (%s): closing %d sockets so "
            "that their clients resume",
            why,
            len(self.watched),
        )
        for on_loss in list(self.watched.values()):
            on_loss()
        self.watched.clear()


# This event loop's watchdog (one per process under daphne).
watchdog = per_loop(Watchdog)
