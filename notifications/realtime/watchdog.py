"""Notices when the channel layer may have lost pushes, shard by shard, so that clients resume.

A channel layer loses messages while its Redis connection is down or reconnecting, and says
nothing (the pub/sub layer logs and resubscribes; channels_redis #256). A socket that stayed
open through that would never learn what it missed. So the node sends itself numbered
heartbeats through the layer every ``LAYER_CHECK_SECONDS``, to one group on each Redis host of
the layer (a group lives on the host its name hashes to). When one cannot be sent, or one never
arrives (a later one does first), pushes to the groups of that host may be lost: the node closes
the sockets whose user's group lives there with 4013 (try again later), and their clients
reconnect once the layer works again and resume from their last id. A heartbeat that is merely
late (a busy process) is not a loss: closing sockets then would only add a reconnect storm.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

from . import broker

if TYPE_CHECKING:
    from .node import Node

# How often the node sends each shard a heartbeat.
LAYER_CHECK_SECONDS = 1


class Watchdog:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.token = uuid.uuid4().hex
        self.task: asyncio.Task[None] | None = None
        self.groups: list[str] = []  # one heartbeat group per shard of the layer
        self.sent: list[int] = []  # heartbeats sent, per shard
        self.expected: list[int] = []  # the next heartbeat that should arrive, per shard
        self.last_beat: list[float] = []  # monotonic, per shard
        self.joined: set[int] = set()  # shards whose heartbeat group this node's channel is in
        self.receiving: int | None = None  # the shard every message to this process passes
        self.channel: str | None = None  # while it runs

    def ensure_running(self) -> None:
        if self.task is None or self.task.done():
            self.task = self.node.spawn(self._run())

    async def _run(self) -> None:
        channel = None
        while channel is None and self.node.sockets:
            try:
                channel = await broker.new_channel()
            except Exception as error:
                self._lose(None, f"the channel layer is unreachable ({error!r})")
                await asyncio.sleep(LAYER_CHECK_SECONDS)
                continue
            if channel is None:
                return  # no channel layer: nothing to watch
        if channel is None:
            return
        self.groups = broker.heartbeat_groups(self.token)
        self.receiving = broker.receiving_shard(channel)
        shards = range(len(self.groups))
        self.sent = [0 for _ in shards]
        self.expected = [1 for _ in shards]
        self.last_beat = [time.monotonic() for _ in shards]
        self.joined = set()
        self.channel = channel
        listener = self.node.spawn(self._listen(channel))
        period = LAYER_CHECK_SECONDS
        try:
            while self.node.sockets:
                for shard in shards:
                    await self._beat(shard, channel)
                await asyncio.sleep(period)
                # A heartbeat that is late says the process is busy, not that anything was lost;
                # only a very long silence counts (a subscription that never came back).
                for shard in shards:
                    if time.monotonic() - self.last_beat[shard] > max(30, 10 * period):
                        self._lose(shard, "no heartbeat arrived for a long time")
                        self.last_beat[shard] = time.monotonic()
        finally:
            self.channel = None
            listener.cancel()
            for shard in self.joined:
                await broker.unsubscribe(self.groups[shard], channel)

    async def renew(self) -> None:
        """Add the channel to its heartbeat groups again (renewal.py)."""
        channel = self.channel
        if channel is None:
            return
        for shard in list(self.joined):
            try:
                await broker.subscribe(self.groups[shard], channel)
            except Exception:
                self.joined.discard(shard)  # the next beat joins it again, or says it cannot
            if self.channel != channel:  # stopped meanwhile, having left its groups
                await broker.unsubscribe(self.groups[shard], channel)
                return

    async def _beat(self, shard: int, channel: str) -> None:
        try:
            if shard not in self.joined:
                await broker.subscribe(self.groups[shard], channel)
                self.joined.add(shard)
            await broker.send_heartbeat(self.groups[shard], channel, shard, self.sent[shard] + 1)
            self.sent[shard] += 1
        except Exception as error:
            # Pushes sent now fail too: whoever was to get them must resume.
            self.joined.discard(shard)  # a restarted Redis forgot the subscription
            self._lose(shard, f"a heartbeat could not be sent ({error!r})")

    def _lose(self, shard: int | None, why: str) -> None:
        # What the receiving shard lost, it lost for every socket of the process.
        self.node.lose_shard(None if shard == self.receiving else shard, why)

    async def _listen(self, channel: str) -> None:
        while True:
            try:
                message: dict[str, Any] = await broker.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(LAYER_CHECK_SECONDS)
                continue
            shard, number = message.get("shard", 0), message.get("seq", 0)
            if not 0 <= shard < len(self.groups):
                continue
            if message.get("control"):
                if number >= self.expected[shard]:
                    # Its group heartbeat, sent first into the same list, never came: the group
                    # lost its members, sockets of this shard included. Join it again.
                    self.joined.discard(shard)
                    self._lose(shard, "the layer forgot its group memberships")
                    self.node.renewal.soon()  # the hub's, for the sockets that stay open
                    self.expected[shard] = number + 1
                continue
            self.last_beat[shard] = time.monotonic()
            if number > self.expected[shard]:
                # A gap: the layer dropped heartbeats, so it dropped whatever else it carried then.
                self._lose(shard, f"heartbeats {self.expected[shard]}..{number - 1} never arrived")
            self.expected[shard] = max(self.expected[shard], number + 1)
