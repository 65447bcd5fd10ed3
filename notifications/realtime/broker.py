"""The only module that talks to the channel layer: group names, event payloads, sending.

The events are this app's own, between its processes, and never reach a client: what a socket
sends is a frame of the wire protocol (``protocol.py``), which an event may carry ready-encoded.

A push is a hint; the database is the truth. So nothing here raises to its caller when the
layer is down: it logs a warning, and clients catch up by resuming from the last id they saw.
Payloads hold JSON-native values only (msgpack, the Redis layers' format, refuses datetimes).

Pushes from sync code (the after-commit step of every send) run on one long-lived event loop of
this module's own: ``async_to_sync`` from a thread with no loop makes a new thread, loop and
Redis connection per call, which was a third to two thirds of a send's time. With the pub/sub
layer, a batch goes out as pipelined PUBLISHes, one round trip per Redis host.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Container, Sequence
from typing import Any, cast

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import _consistent_hash, create_pool, decode_hosts
from django.conf import settings
from django.utils.module_loading import import_string
from redis import asyncio as aioredis

from .. import protocol
from ..conf import app_settings
from .budget import Budget, counted
from .presence import PROCESS, LocalRegistry, registry

logger = logging.getLogger("notifications.push")  # the name docs/settings.md gives it
events = logging.getLogger("notifications.events")

GROUP_PREFIX = "notifications.user."
# Every process with sockets open has its channel in this group (hub.py).
NODES_GROUP = "notifications.nodes"
FAN_OUT_FROM_USERS = 32
ROWS_PER_EVENT = 2000
# Channel-layer sends in flight at once while a batch fans out to its recipients' sockets.
PUSH_CONCURRENCY = 100

# Event types, as consumer method names: "notifications.created" -> notifications_created().
EVENT_PREFIX = "notifications."
CREATED = "notifications.created"
CHANGED = "notifications.changed"
REVOKE = "notifications.revoke"
RECHECK = "notifications.recheck"
REPLACED = "notifications.replaced"
# Every process's revocation watch listens here for sessions a login replaced (their user is
# unknown by then, so their user's group cannot be told).
REPLACED_SESSIONS_GROUP = "notifications.replaced-sessions"

Message = tuple[str, dict[str, Any]]  # (group, event)


def in_memory() -> bool:
    """Whether the default channel layer is channels' in-memory one (or a subclass of it): its
    groups live in one process's memory, so it reaches only the sockets of the process that
    sends. Every part of the app that cares asks here, the system checks included."""
    config = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get("default") or {}
    backend = _layer_class(config.get("BACKEND", ""))
    return isinstance(backend, type) and issubclass(backend, InMemoryChannelLayer)


@functools.cache
def _layer_class(path: str) -> Any:
    """The class a ``BACKEND`` path names, imported once per path (node.lose_shard asks for every
    socket); None when it cannot be imported."""
    try:
        return import_string(path)
    except ImportError:
        return None


def user_group(user_id: int) -> str:
    """The group holding the channel of every process with a socket of this user open (ids
    only: group names are not secret)."""
    return f"{GROUP_PREFIX}{int(user_id)}"


def to_user(user_id: int, event: dict[str, Any]) -> Message:
    """``event`` for every socket of one user: to the user's group, naming the user (a process's
    channel is in many users' groups, and a message does not say which group it came through)."""
    return user_group(user_id), {**event, "user": int(user_id)}


# A new notification's row for one recipient: (user id, notification id, unread, unseen).
Row = tuple[int, int, int, int]


def created_messages(parts: Sequence[tuple[dict[str, Any], Sequence[Row]]]) -> list[Message]:
    """The ``created`` events for new notifications: each part is one shape (``serialize``
    without its id) and the rows of its recipients with a socket open.

    To a few users, one event per user, to their groups. From ``FAN_OUT_FROM_USERS`` users on,
    the same events go to every process (``NODES_GROUP``), in chunks of ``ROWS_PER_EVENT`` rows:
    each process receives a send to 5,000 users as a few messages, not 5,000, and picks out the
    rows of its own users (``created_frames``).
    """
    users = {row[0] for _, rows in parts for row in rows}
    if len(users) >= FAN_OUT_FROM_USERS:
        return [
            (
                NODES_GROUP,
                {"type": CREATED, "parts": [[shape, list(rows[start : start + ROWS_PER_EVENT])]]},
            )
            for shape, rows in parts
            for start in range(0, len(rows), ROWS_PER_EVENT)
        ]
    by_user: dict[int, list[list[Any]]] = defaultdict(list)
    for shape, rows in parts:
        for row in rows:
            by_user[row[0]].append([shape, [list(row)]])
    return [to_user(user_id, {"type": CREATED, "parts": mine}) for user_id, mine in by_user.items()]


def created_frames(
    event: dict[str, Any], users: Container[int]
) -> dict[int, tuple[list[str], list[int]]]:
    """The ``notification`` frames of a ``created`` event for those of its recipients who are
    among ``users`` (this process's), and their ids, by user; each shape is encoded once."""
    out: dict[int, tuple[list[str], list[int]]] = {}
    for shape, rows in event["parts"]:
        frames: protocol.NotificationFrames | None = None
        for user_id, nid, unread, unseen in rows:
            if user_id not in users:
                continue
            if frames is None:
                frames = protocol.NotificationFrames(shape)
            mine = out.setdefault(user_id, ([], []))
            mine[0].append(frames(nid, unread, unseen))
            mine[1].append(nid)
    return out


def changed_event(
    ids: list[int],
    state: str,
    unread: int,
    unseen: int,
    *,
    up_to: int | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    """One ``changed`` frame, encoded once for every socket of the user."""
    frame = protocol.changed_frame(ids, state, unread, unseen, up_to=up_to, count=count)
    return {"type": CHANGED, "frame": protocol.encode(frame)}


def revoke_event(credential: str | None = None) -> dict[str, Any]:
    """Close the user's sockets with 4401: those opened with one credential (its digest: a
    session, or the token behind a ticket), or all of them."""
    return {"type": REVOKE, "credential": credential}


def recheck_event() -> dict[str, Any]:
    """The user changed (password, activity): each socket checks its credentials again."""
    return {"type": RECHECK}


def replaced_event(credential: str, user_id: int) -> dict[str, Any]:
    """A login replaced the session ``credential`` (a digest) with one of ``user_id``."""
    return {"type": REPLACED, "credential": credential, "user_id": user_id}


def send(messages: Sequence[Message], budget: Budget | None = None) -> None:
    """Send every message (from sync code); count what the layer took.

    Through Redis, this waits at most what is left of ``budget`` (a sender's after-commit
    budget: ``budget.py``), or ``PUSH_TIMEOUT_SECONDS`` without one; what it gives up waiting for
    is named in the budget's warning. A layer that fails or hangs raises nothing here: the
    pushes are hints.
    """
    if not messages:
        return
    if budget is None:
        with Budget() as own:
            send(messages, own)
        return
    if in_memory():
        # Its queues belong to the server's loop, which async_to_sync reaches from the
        # server's sync threads; it serves one process only anyway.
        delivered = async_to_sync(asend)(messages)
    else:
        finished, result = _run_on_push_loop(asend, messages, timeout=budget.remaining())
        if not finished:
            budget.give_up(counted(len(messages), "push"))
            return
        delivered = result
    budget.call("the push counter", _count_pushes, delivered)


def _count_pushes(delivered: int) -> None:
    registry().count_now("pushes", delivered)


async def asend(messages: Sequence[Message]) -> int:
    """Send every message; return how many the layer took (it drops, it does not raise)."""
    layer = get_channel_layer()
    if layer is None:
        logger.warning(
            "notifications: no channel layer is configured; %d pushes dropped", len(messages)
        )
        return 0
    failures: list[BaseException] = []
    if _is_pubsub(layer):
        await _publish_pipelined(layer, messages, failures)
    else:
        await _send_each(layer, messages, failures)
    events.info("event=push process=%s groups=%d failed=%d", PROCESS, len(messages), len(failures))
    if failures:
        logger.warning(
            "notifications: %d of %d pushes failed (%r); clients will catch up when they resume",
            len(failures),
            len(messages),
            failures[0],
        )
    return len(messages) - len(failures)


async def _send_each(layer: Any, messages: Sequence[Message], failures: list) -> None:
    limit = asyncio.Semaphore(PUSH_CONCURRENCY)

    async def one(group: str, event: dict[str, Any]) -> None:
        async with limit:
            try:
                await layer.group_send(group, event)
            except Exception as error:  # the layer being down must not reach the sender
                failures.append(error)

    await asyncio.gather(*(one(group, event) for group, event in messages))


# --- the pub/sub layer, pipelined -------------------------------------------------------------


def _is_core(layer: Any) -> bool:
    return isinstance(layer, RedisChannelLayer)


def _is_pubsub(layer: Any) -> bool:
    return isinstance(layer, RedisPubSubChannelLayer)


class _Publisher:
    """Publishes group messages exactly as channels_redis's pub/sub layer does (its
    ``group_send``: the layer's own serializer, the Redis channel ``{prefix}__group__{group}``,
    the host its consistent hash picks), but a batch at a time: one pipeline per host instead of
    one round trip per message under the layer's per-host lock. tests/test_push.py holds it to
    what the installed channels_redis receives."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.prefix = config.get("prefix", "asgi")
        self.clients = [
            aioredis.Redis(connection_pool=create_pool(host))
            for host in decode_hosts(config.get("hosts"))
        ]

    def channel(self, group: str) -> str:
        return f"{self.prefix}__group__{group}"

    async def close(self) -> None:
        for client in self.clients:
            await client.connection_pool.disconnect()

    async def publish(self, layer: Any, messages: Sequence[Message], failures: list) -> None:
        by_client: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
        for group, event in messages:
            channel = self.channel(group)
            by_client[_consistent_hash(channel, len(self.clients))].append(
                (channel, layer.serialize(event))
            )
        for index, items in by_client.items():
            try:
                async with self.clients[index].pipeline(transaction=False) as pipeline:
                    for channel, payload in items:
                        pipeline.publish(channel, payload)
                    await pipeline.execute()
            except Exception as error:  # the layer being down must not reach the sender
                failures.extend([error] * len(items))


# One publisher per loop and configuration: its connections belong to the loop (the push loop,
# in practice), and settings may change (tests).
_publishers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Publisher]] = (
    weakref.WeakKeyDictionary()
)


async def _publish_pipelined(layer: Any, messages: Sequence[Message], failures: list) -> None:
    config = cast("dict[str, Any]", settings.CHANNEL_LAYERS["default"].get("CONFIG", {}))
    mine = _publishers.setdefault(asyncio.get_running_loop(), {})
    if repr(config) not in mine:
        mine[repr(config)] = _Publisher(config)
    await mine[repr(config)].publish(layer, messages, failures)


# --- the push loop ----------------------------------------------------------------------------


# A push its sender stopped waiting for (a large fan-out outlasting PUSH_TIMEOUT_SECONDS) may
# still finish in the background, within this long: a healthy Redis delivers it all, a hung one
# holds it no longer than this.
FINISH_WITHIN_SECONDS = 10.0


class _Job:
    """A coroutine function for the push loop, started at most once: by the loop it was given
    to, or by the loop that replaced that one. Its sender waits for it ``timeout`` seconds; it
    stops itself after ``FINISH_WITHIN_SECONDS`` at most (a hung Redis would hold it for ever)."""

    def __init__(self, function: Callable[..., Awaitable[Any]], args: tuple, timeout: float):
        self.function = function
        self.args = args
        self.timeout = timeout
        self.limit = max(timeout, FINISH_WITHIN_SECONDS)
        self.submitted = time.monotonic()
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.started_on: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def claim(self, loop: asyncio.AbstractEventLoop) -> bool:
        with self._lock:
            if self.started_on is not None:
                return False
            self.started_on = loop
            return True

    async def run(self) -> None:
        try:
            async with asyncio.timeout(self.limit):
                result = await self.function(*self.args)
        except asyncio.CancelledError:  # its loop is closing
            self.future.cancel()
            raise
        except Exception as error:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)


class _PushLoop:
    """An event loop in a daemon thread, for the whole process, so that the channel layer's
    connections outlive each send. ``_push_loop()`` replaces it when it is dead or stuck."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.retired = False
        self._lock = threading.Lock()
        # Jobs given to this loop that it has not reached yet, oldest first.
        self._waiting: dict[_Job, None] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        running = threading.Event()
        self.loop.call_soon(running.set)
        self.thread = threading.Thread(target=self._serve, name="notifications-push", daemon=True)
        self.thread.start()
        running.wait(5)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self._close()

    def _close(self) -> None:
        leftover = asyncio.all_tasks(self.loop)
        for task in leftover:
            task.cancel()
        closing = asyncio.gather(*leftover, _close_publishers(self.loop), return_exceptions=True)
        try:
            with contextlib.suppress(TimeoutError):  # a hung Redis may keep its connections
                self.loop.run_until_complete(asyncio.wait_for(closing, timeout=1))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def problem(self, at_least: float) -> str | None:
        """Why this loop cannot be trusted with a job, or None. Stuck: it has not started a job
        within that job's whole timeout (its sender got nothing) and ``at_least`` (a sender
        left with little time is no proof)."""
        if not self.thread.is_alive():
            return "its thread is gone"
        if not self.loop.is_running():
            return "its event loop is not running"
        now = time.monotonic()
        with self._lock:
            waited = [
                now - job.submitted
                for job in self._waiting
                if now - job.submitted >= max(job.timeout, at_least)
            ]
        if waited:
            return f"it has not started a job given to it {max(waited):.1f} s ago"
        return None

    def submit(self, job: _Job) -> None:
        with self._lock:
            self._waiting[job] = None
        # A loop closed since the last check raises: the job waits in _waiting, and the
        # sender's timeout hands it to the next loop.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._start, job)

    def _start(self, job: _Job) -> None:
        with self._lock:
            self._waiting.pop(job, None)
            if self.retired:  # the job was handed to the next loop
                return
        if job.claim(self.loop):
            self._keep(self.loop.create_task(job.run()))

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def retire(self) -> list[_Job]:
        """Take no more jobs; return those it has not reached, for the next loop. What it did
        start, it finishes (each job stops itself in time); then its thread ends."""
        with self._lock:
            self.retired = True
            orphans = list(self._waiting)
            self._waiting.clear()
        with contextlib.suppress(RuntimeError):  # closed: its thread is gone already
            self.loop.call_soon_threadsafe(lambda: self._keep(self.loop.create_task(self._stop())))
        return orphans

    async def _stop(self) -> None:
        running = self._tasks - {asyncio.current_task()}
        if running:
            await asyncio.wait(running)
        self.loop.stop()


async def _close_publishers(loop: asyncio.AbstractEventLoop) -> None:
    for publisher in _publishers.pop(loop, {}).values():
        await publisher.close()


_loop_lock = threading.Lock()
_loop: _PushLoop | None = None


def _push_loop(job: _Job | None = None) -> _PushLoop:
    """The process's push loop, given ``job`` if any. A loop whose thread is gone, whose event
    loop no longer runs, or which has not started a job while its sender waited (at least half
    of ``PUSH_TIMEOUT_SECONDS``: an idle loop starts one at once) is replaced first, and the jobs
    it never reached go to the new one."""
    global _loop
    with _loop_lock:
        orphans: list[_Job] = []
        if _loop is not None and _loop.pid != os.getpid():
            _loop = None  # a forked child has no such thread (and no use for its jobs)
        if _loop is not None:
            problem = _loop.problem(at_least=app_settings.PUSH_TIMEOUT_SECONDS / 2)
            if problem is not None:
                orphans = _loop.retire()
                logger.warning(
                    "notifications: replaced the push loop (%s); %d jobs it had not started "
                    "go to the new one",
                    problem,
                    len(orphans),
                )
                _loop = None
        if _loop is None:
            _loop = _PushLoop()
        for orphan in orphans:
            _loop.submit(orphan)
        if job is not None:
            _loop.submit(job)
        return _loop


def _run_on_push_loop(
    function: Callable[..., Awaitable[Any]], *args: Any, timeout: float
) -> tuple[bool, Any]:
    """``(True, await function(*args))`` on the push loop, or ``(False, None)`` if that did not
    finish within ``timeout``."""
    if timeout <= 0:
        return False, None
    job = _Job(function, args, timeout)
    _push_loop(job)
    try:
        return True, job.future.result(timeout)
    except (TimeoutError, concurrent.futures.CancelledError):
        if job.started_on is None:
            _push_loop()  # not even started: if the loop is stuck, the job goes to a new one
        return False, None


def online(user_ids: Sequence[int]) -> set[int] | None:
    """Which of these users have an open socket in any process; None when that cannot be known
    (then push to all)."""
    current = registry()
    if isinstance(current, LocalRegistry) and not in_memory():
        return None  # this process's registry, while other processes hold sockets too
    return current.online(list(user_ids))


async def join(user_id: int, channel_name: str, attempts: int = 3) -> bool:
    """Put a socket in its user's group; retry through a reconnecting layer. False on failure."""
    layer = get_channel_layer()
    if layer is None:
        return False
    for attempt in range(attempts):
        try:
            await layer.group_add(user_group(user_id), channel_name)
            return True
        except Exception as error:
            # After a Redis restart the pub/sub layer's first group_add raises ConnectionError
            # (channels_redis #256 et seq.); its next attempt reconnects.
            logger.warning("notifications: group_add failed (attempt %d): %r", attempt + 1, error)
            await asyncio.sleep(0.05 * 4**attempt)
    return False


def membership_lifetime() -> float | None:
    """How long the layer keeps a channel in a group after adding it, in seconds: the core and
    in-memory layers' ``group_expiry`` (a day by default), after which a group send skips the
    channel. None when a membership lasts until it is discarded (the pub/sub layer)."""
    layer = get_channel_layer()
    if layer is None or _is_pubsub(layer):
        return None
    lifetime = getattr(layer, "group_expiry", None)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        return None
    return float(lifetime)


async def leave(user_id: int, channel_name: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_discard(user_group(user_id), channel_name)
    except Exception as error:
        logger.warning("notifications: group_discard failed: %r", error)


# --- the channel layer's own health (see realtime/watchdog.py) --------------------------------

HEARTBEAT = "notifications.heartbeat"


def _shard_naming() -> tuple[int, Callable[[str], str]]:
    """How many Redis hosts the layer spreads groups over, and the name it hashes to pick a
    group's host (channels_redis: the pub/sub layer hashes the group's Redis channel, the core
    layer the group's name). Any other layer is one shard."""
    layer = get_channel_layer()
    if layer is None or in_memory():
        return 1, str
    config = cast("dict[str, Any]", settings.CHANNEL_LAYERS["default"].get("CONFIG", {}))
    if _is_pubsub(layer):
        prefix = config.get("prefix", "asgi")
        return len(decode_hosts(config.get("hosts"))), lambda group: f"{prefix}__group__{group}"
    if _is_core(layer):
        return layer.ring_size, str
    return 1, str


def shard_of(group: str) -> int:
    """The index of the Redis host that carries ``group``'s messages."""
    count, name = _shard_naming()
    return _consistent_hash(name(group), count)


def receiving_shard(channel: str) -> int | None:
    """The shard through which every message for this process's ``channel`` passes, if one does:
    with the core layer, one Redis list per process holds them all; with the pub/sub layer a
    group's messages come through the subscription on the group's own host (None)."""
    layer = get_channel_layer()
    if not _is_core(layer):
        return None
    return cast(int, layer.consistent_hash(layer.non_local_name(channel)))


def heartbeat_groups(process_token: str) -> list[str]:
    """One heartbeat group per shard of the layer, the one at index ``i`` living on host ``i``."""
    count, name = _shard_naming()
    groups: dict[int, str] = {}
    suffix = 0
    while len(groups) < count:
        group = f"notifications.heartbeat.{process_token}.{suffix}"
        groups.setdefault(_consistent_hash(name(group), count), group)
        suffix += 1
    return [groups[index] for index in range(count)]


async def node_channel() -> str | None:
    """A new channel for this process's hub (None: no channel layer is configured). It carries
    every push to the process's sockets: a layer's per-channel ``capacity`` (100 by default, past
    which it drops without a word) is per process now, not per socket."""
    layer = get_channel_layer()
    return None if layer is None else cast(str, await layer.new_channel())


async def new_channel() -> str | None:
    layer = get_channel_layer()
    return None if layer is None else await layer.new_channel()


async def subscribe(group: str, channel_name: str) -> None:
    """Add a channel to a group; raises if the layer is unreachable."""
    await get_channel_layer().group_add(group, channel_name)


async def unsubscribe(group: str, channel_name: str) -> None:
    try:
        await get_channel_layer().group_discard(group, channel_name)
    except Exception as error:
        logger.warning("notifications: group_discard failed: %r", error)


async def send_heartbeat(group: str, channel: str, shard: int, number: int) -> None:
    """Send heartbeat ``number`` of ``shard`` to its group; raises if the layer is unreachable.

    With the core layer the same number also goes straight to ``channel``, as a control: both
    land in the one Redis list that holds this process's messages, in this order, so a control
    that arrives before its group heartbeat means the group's membership was lost (a restarted
    Redis forgets memberships, and a group send to nobody fails silently).
    """
    layer = get_channel_layer()
    await layer.group_send(group, {"type": HEARTBEAT, "shard": shard, "seq": number})
    if _is_core(layer):
        control = {"type": HEARTBEAT, "shard": shard, "seq": number, "control": True}
        await layer.send(channel, control)


async def receive(channel_name: str) -> dict[str, Any]:
    return await get_channel_layer().receive(channel_name)
