"""Keeps this process's channels in their groups on layers that forget memberships.

channels_redis' core layer and Channels' in-memory layer drop a channel from a group
``group_expiry`` seconds after adding it (a day by default), and a group send then skips it
without a word: they expect a consumer to be in a group for a single connection's life. The hub
holds a user's group for as long as any socket of theirs is open here, and the group of all
processes for as long as any socket is, and the watchdog holds its heartbeat groups: this adds
them all again four times per lifetime, so none ages out while it is needed. When the layer is
found to have forgotten memberships (a restarted Redis), it adds them again at once.

The pub/sub layer keeps a membership until it is discarded, and resubscribes after a reconnect:
nothing runs there.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from . import broker

if TYPE_CHECKING:
    from .node import Node

RENEWALS_PER_LIFETIME = 4


class Renewal:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.task: asyncio.Task[None] | None = None
        self.wanted = asyncio.Event()  # renew now, not at the next period

    def ensure_running(self) -> None:
        if (self.task is None or self.task.done()) and broker.membership_lifetime() is not None:
            self.task = self.node.spawn(self._run())

    def soon(self) -> None:
        """The layer forgot memberships: add them again now."""
        self.wanted.set()

    async def _run(self) -> None:
        while self.node.sockets:
            lifetime = broker.membership_lifetime()
            if lifetime is None:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(lifetime / RENEWALS_PER_LIFETIME):
                    await self.wanted.wait()
            self.wanted.clear()
            await self.renew()

    async def renew(self) -> None:
        await self.node.watchdog.renew()
        await self.node.hub.renew()
