"""The only module that talks to the channel layer: group names, event payloads, sending.

A push is a hint; the database is the truth. So nothing here raises to its caller when the
layer is down: it logs a warning, and clients catch up by resuming from the last id they saw.
Payloads hold JSON-native values only (msgpack, the Redis layers' format, refuses datetimes).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .conf import app_settings
from .registry import PROCESS, registry

logger = logging.getLogger("notifications.push")
events = logging.getLogger("notifications.events")

GROUP_PREFIX = "notifications.user."

# Event types, as consumer method names: "notifications.created" -> notifications_created().
CREATED = "notifications.created"
CHANGED = "notifications.changed"
REVOKE = "notifications.revoke"

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
    return {
        "type": CREATED,
        "notifications": notifications,
        "unread_count": unread,
        "unseen_count": unseen,
    }


def changed_event(ids: list[int], state: str, unread: int, unseen: int) -> dict[str, Any]:
    return {
        "type": CHANGED,
        "ids": ids,
        "state": state,
        "unread_count": unread,
        "unseen_count": unseen,
    }


def revoke_event(session: str | None = None) -> dict[str, Any]:
    """Close the user's sockets with 4401: those of one session (a digest), or all of them."""
    return {"type": REVOKE, "session": session}


def send(messages: Sequence[Message]) -> None:
    """Send every message in one trip through the event loop (from sync code)."""
    if messages:
        delivered = async_to_sync(asend)(messages)
        registry().count_now("pushes", delivered)


async def asend(messages: Sequence[Message]) -> int:
    """Send every message; return how many the layer took (it drops, it does not raise)."""
    layer = get_channel_layer()
    if layer is None:
        logger.warning(
            "notifications: no channel layer is configured; %d pushes dropped", len(messages)
        )
        return 0
    limit = asyncio.Semaphore(app_settings.PUSH_CONCURRENCY)
    failures: list[BaseException] = []

    async def one(group: str, event: dict[str, Any]) -> None:
        async with limit:
            try:
                await layer.group_send(group, event)
            except Exception as error:  # the layer being down must not reach the sender
                failures.append(error)

    await asyncio.gather(*(one(group, event) for group, event in messages))
    events.info("event=push process=%s groups=%d failed=%d", PROCESS, len(messages), len(failures))
    if failures:
        logger.warning(
            "notifications: %d of %d pushes failed (%r); clients will catch up when they resume",
            len(failures),
            len(messages),
            failures[0],
        )
    return len(messages) - len(failures)


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
