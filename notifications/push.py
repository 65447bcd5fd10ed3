"""The only module that talks to the channel layer: group names, event payloads, sending.

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
import hashlib
import json
import logging
import os
import threading
import weakref
from collections import defaultdict
from collections.abc import Coroutine, Sequence
from typing import Any, cast

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from .conf import app_settings
from .registry import PROCESS, registry

logger = logging.getLogger("notifications.push")
events = logging.getLogger("notifications.events")

GROUP_PREFIX = "notifications.user."

# Event types, as consumer method names: "notifications.created" -> notifications_created().
EVENT_PREFIX = "notifications."
CREATED = "notifications.created"
CHANGED = "notifications.changed"
REVOKE = "notifications.revoke"

# How long a sync caller waits for its pushes before giving up on them (they are hints).
SEND_TIMEOUT_SECONDS = 10

Message = tuple[str, dict[str, Any]]  # (group, event)


def user_group(user_id: int) -> str:
    """The group holding every open socket of one user (ids only: group names are not secret)."""
    return f"{GROUP_PREFIX}{int(user_id)}"


def session_digest(session_key: str | None) -> str | None:
    """A stand-in for a session key in events, which travel through Redis in clear."""
    if not session_key:
        return None
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def created_event(notifications: list[dict[str, Any]], unread: int, unseen: int) -> dict[str, Any]:
    """The WebSocket frames for new notifications, encoded here, once per user: each socket of
    the user sends them as they are (docs/websocket.md has their shape)."""
    counts = {"unread_count": unread, "unseen_count": unseen}
    return {
        "type": CREATED,
        "frames": [
            _encode({"type": "notification", "notification": notification, **counts})
            for notification in notifications
        ],
    }


def changed_frame(
    ids: list[int],
    state: str,
    unread: int,
    unseen: int,
    *,
    up_to: int | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    """The ``changed`` frame (docs/websocket.md): ``up_to`` set means every notification of the
    user up to that id is now in ``state`` (``ids`` then lists them only when few)."""
    return {
        "type": "changed",
        "ids": ids,
        "state": state,
        "up_to": up_to,
        "count": len(ids) if count is None else count,
        "unread_count": unread,
        "unseen_count": unseen,
    }


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
    frame = changed_frame(ids, state, unread, unseen, up_to=up_to, count=count)
    return {"type": CHANGED, "frame": _encode(frame)}


def _encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame)  # as AsyncJsonWebsocketConsumer.send_json() would


def revoke_event(session: str | None = None) -> dict[str, Any]:
    """Close the user's sockets with 4401: those of one session (a digest), or all of them."""
    return {"type": REVOKE, "session": session}


def send(messages: Sequence[Message]) -> None:
    """Send every message (from sync code); count what the layer took."""
    if not messages:
        return
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        # Its queues belong to the server's loop, which async_to_sync reaches from the
        # server's sync threads; it serves one process only anyway.
        delivered = async_to_sync(asend)(messages)
    else:
        try:
            delivered = _push_loop().run(asend(messages), SEND_TIMEOUT_SECONDS)
        except concurrent.futures.TimeoutError:
            logger.warning(
                "notifications: %d pushes took over %d s and were given up; clients will catch "
                "up when they resume",
                len(messages),
                SEND_TIMEOUT_SECONDS,
            )
            return
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
    limit = asyncio.Semaphore(app_settings.PUSH_CONCURRENCY)

    async def one(group: str, event: dict[str, Any]) -> None:
        async with limit:
            try:
                await layer.group_send(group, event)
            except Exception as error:  # the layer being down must not reach the sender
                failures.append(error)

    await asyncio.gather(*(one(group, event) for group, event in messages))


# --- the pub/sub layer, pipelined -------------------------------------------------------------


def _is_pubsub(layer: Any) -> bool:
    from channels_redis.pubsub import RedisPubSubChannelLayer

    return isinstance(layer, RedisPubSubChannelLayer)


class _Publisher:
    """Publishes group messages exactly as channels_redis's pub/sub layer does (its
    ``group_send``: the layer's own serializer, the Redis channel ``{prefix}__group__{group}``,
    the host its consistent hash picks), but a batch at a time: one pipeline per host instead of
    one round trip per message under the layer's per-host lock. tests/test_push.py holds it to
    what the installed channels_redis receives."""

    def __init__(self, config: dict[str, Any]) -> None:
        from channels_redis.utils import create_pool, decode_hosts
        from redis import asyncio as aioredis

        self.prefix = config.get("prefix", "asgi")
        self.clients = [
            aioredis.Redis(connection_pool=create_pool(host))
            for host in decode_hosts(config.get("hosts"))
        ]

    def channel(self, group: str) -> str:
        return f"{self.prefix}__group__{group}"

    async def publish(self, layer: Any, messages: Sequence[Message], failures: list) -> None:
        from channels_redis.utils import _consistent_hash

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


class _PushLoop:
    """An event loop in a daemon thread, for the whole process, so that the channel layer's
    connections outlive each send."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        threading.Thread(
            target=self.loop.run_forever, name="notifications-push", daemon=True
        ).start()

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise


_loop_lock = threading.Lock()
_loop: _PushLoop | None = None


def _push_loop() -> _PushLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.pid != os.getpid():  # a forked child has no such thread
            _loop = _PushLoop()
        return _loop


def online(user_ids: Sequence[int]) -> set[int] | None:
    """Which of these users have an open socket in any process; None when that cannot be known
    (then push to all)."""
    return registry().online(list(user_ids))


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


async def leave(user_id: int, channel_name: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_discard(user_group(user_id), channel_name)
    except Exception as error:
        logger.warning("notifications: group_discard failed: %r", error)


# --- the channel layer's own health (see watchdog.py) ------------------------------------------

HEARTBEAT = "notifications.heartbeat"


def heartbeat_group(process_token: str) -> str:
    return f"notifications.heartbeat.{process_token}"


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


async def send_heartbeat(group: str, number: int) -> None:
    """Send heartbeat ``number`` to a group; raises if the layer is unreachable."""
    await get_channel_layer().group_send(group, {"type": HEARTBEAT, "seq": number})


async def receive(channel_name: str) -> dict[str, Any]:
    return await get_channel_layer().receive(channel_name)
