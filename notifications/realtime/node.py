"""The one owner of this process's open sockets.

A consumer asks its node to add its socket (a place in the registry, the user's group), to
remove it, or to close it with a code; nothing else keeps a list of sockets. While the node has
sockets it runs what the process does for all of them: the keep-alive sweep (sweep.py), the
channel-layer watchdog (watchdog.py), the renewal of its group memberships (renewal.py), gap
detection (gaps.py), the credentials checks (credential_checks.py), the GC freezer
(gcfreeze.py), and the goodbye when the server is told to stop (shutdown.py). Every
background task it starts stays referenced until it finishes. One node per event loop: under
daphne, one per process. docs/realtime.md walks through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from ..protocol import CLOSE_SERVICE_RESTART, CLOSE_TOO_MANY_SOCKETS, CLOSE_TRY_AGAIN
from . import broker, shutdown
from .credential_checks import Revocations
from .credentials import Credential
from .gaps import GapDetector, RecentIds
from .gcfreeze import Freezer
from .hub import Hub
from .presence import PROCESS, registry
from .renewal import Renewal
from .sweep import Sweep
from .watchdog import Watchdog

if TYPE_CHECKING:
    from .slow import SlowClient

events = logging.getLogger("notifications.events")
logger = logging.getLogger("notifications")

CLOSE_WAIT_SECONDS = 2.0


class Socket(Protocol):
    """What the node needs of a socket (the consumer)."""

    user_id: int | None
    channel_name: str
    last_heard: float  # monotonic: when the client last sent something
    greeted_at: float | None  # monotonic: when it was sent hello (None: not yet)
    credential: Credential | None  # what it was opened with (None: a ticket of another kind)
    closed_with: int | None  # the code the node closed it with (None: open)
    delivered: RecentIds  # what it was sent lately, for gap detection
    queued: SlowClient | None  # pushes queued behind a send the client is slow to take

    async def close(self, code: int | None = None) -> None: ...

    async def push(self, frames: list[str], ids: list[int]) -> None: ...

    async def revoked(self, credential: str | None) -> None: ...

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None: ...


class Node:
    def __init__(self) -> None:
        # Names this process in the registry: its sockets stop counting when it stops beating.
        self.id = f"{PROCESS}:{uuid.uuid4().hex[:8]}"
        self.sockets: dict[str, Socket] = {}  # by channel name
        self.users: dict[int, dict[str, Socket]] = {}  # by user, then channel name
        self.tasks: set[asyncio.Task[Any]] = set()
        self.hub = Hub(self)
        self.sweep = Sweep(self)
        self.watchdog = Watchdog(self)
        self.renewal = Renewal(self)
        self.gaps = GapDetector(self)
        self.freezer = Freezer(self)
        self.revocations = Revocations(self)

    def __iter__(self) -> Iterator[Socket]:
        return iter(list(self.sockets.values()))

    # --- a socket's life ---------------------------------------------------------------------

    async def add(self, socket: Socket) -> bool:
        """Claim the socket's place in the registry and join its user's group; on failure close
        it with the code that tells the client why, and return False."""
        user_id, channel = socket.user_id, socket.channel_name
        assert user_id is not None
        self.sockets[channel] = socket
        self.users.setdefault(user_id, {})[channel] = socket
        try:
            claimed = await registry().claim(user_id, channel, self.id)
            if claimed is None:
                # Unregistered, the socket would not count as online, and a send would skip it.
                await self.close(socket, CLOSE_TRY_AGAIN, "registry_unreachable")
                return False
            if not claimed:
                await self.close(socket, CLOSE_TOO_MANY_SOCKETS, "too_many_sockets")
                return False
            # Join before the consumer reads counts and backlog, so nothing falls in between.
            if not await self.hub.join(user_id):
                await self.close(socket, CLOSE_TRY_AGAIN, "channel_layer_unreachable")
                return False
        except BaseException:
            self._forget(user_id, channel)
            await self._release(user_id, channel)
            raise
        if channel not in self.sockets:
            # Closed by the node meanwhile (a lost shard, a shutdown): the join came after the
            # removal, so undo it.
            await self._release(user_id, channel)
            return False
        self._start()
        return True

    async def remove(self, socket: Socket) -> None:
        """Leave the group and free the registry place; safe to call more than once."""
        user_id, channel = socket.user_id, socket.channel_name
        if user_id is None or self.sockets.get(channel) is not socket:
            return
        self._forget(user_id, channel)
        await self._release(user_id, channel)

    async def close(self, socket: Socket, code: int, reason: str) -> None:
        """Close the socket with ``code`` (documented in docs/websocket.md) and release it; a
        socket closed already (two reasons at once: a sweep and a watchdog) is left alone."""
        if socket.closed_with is not None:
            return
        socket.closed_with = code
        await registry().count("drops")
        events.info(
            "event=drop process=%s user=%s code=%s reason=%s", PROCESS, socket.user_id, code, reason
        )
        # The client may be gone already, or take nothing (under uvicorn a close waits for the
        # client's TCP window like any send): its place is given back all the same.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                await socket.close(code=code)
        await self.remove(socket)

    def close_soon(self, socket: Socket, code: int, reason: str) -> None:
        """:meth:`close`, from code that must not wait for it (a sweep, a watchdog)."""
        self.spawn(self.close(socket, code, reason))

    async def close_all(self, code: int, reason: str) -> None:
        await asyncio.gather(
            *(self.close(socket, code, reason) for socket in self), return_exceptions=True
        )

    def lose_shard(self, shard: int | None, why: str) -> None:
        """Pushes to the groups of channel-layer shard ``shard`` (None: every shard) may have
        been lost: close those sockets with 4013, so that their clients reconnect and resume."""
        if shard is not None and shard == broker.shard_of(broker.NODES_GROUP):
            shard = None  # sends to many users pass through that shard, whoever they are for
        lost = [
            socket
            for socket in self
            if socket.user_id is not None
            and (shard is None or broker.shard_of(broker.user_group(socket.user_id)) == shard)
        ]
        if not lost:
            return
        logger.warning(
            "notifications: the channel layer may have lost pushes (%s, %s): closing %d sockets "
            "so that their clients resume",
            "every shard" if shard is None else f"shard {shard}",
            why,
            len(lost),
        )
        for socket in lost:
            self.close_soon(socket, CLOSE_TRY_AGAIN, "channel_layer_lost")

    def _forget(self, user_id: int, channel: str) -> None:
        self.sockets.pop(channel, None)
        mine = self.users.get(user_id)
        if mine is not None:
            mine.pop(channel, None)
            if not mine:
                del self.users[user_id]

    async def _release(self, user_id: int, channel: str) -> None:
        await self.hub.leave(user_id)
        await registry().release(user_id, channel, self.id)

    # --- what runs for all sockets -------------------------------------------------------------

    def _start(self) -> None:
        self.sweep.ensure_running()
        self.watchdog.ensure_running()
        self.renewal.ensure_running()
        self.gaps.ensure_running()
        self.freezer.ensure_running()
        self.revocations.ensure_running()
        shutdown.install(self.say_goodbye)

    async def say_goodbye(self) -> None:
        await self.close_all(CLOSE_SERVICE_RESTART, "server_stopping")

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coroutine`` in the background, referenced until it finishes (the event loop
        keeps only weak references to tasks), its failure logged."""
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("notifications: a background task failed", exc_info=task.exception())


_nodes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Node] = weakref.WeakKeyDictionary()


def node() -> Node:
    """The running event loop's node (one per process under daphne; tests run each test in a
    loop of its own, so each gets a fresh node)."""
    loop = asyncio.get_running_loop()
    if loop not in _nodes:
        _nodes[loop] = Node()
    return _nodes[loop]
