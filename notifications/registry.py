"""Which sockets are open, for the per-user limit, and the app's counters.

Both must agree across processes, so they live in Redis when the app's cache
(``NOTIFICATIONS["CACHE_ALIAS"]``) is Django's ``RedisCache``, and in this process otherwise
(one process: the demo, the tests). Redis is reached through ``redis.asyncio`` so that the
consumer's connect costs no thread hop. When Redis is unreachable the limit is not enforced and
counters are not counted: a socket is never refused for it.

Each socket is a member of a sorted set per user, scored by when it last said it was alive; a
socket whose process died without its ``disconnect()`` (daphne is killed, say) falls out after
``SOCKET_STALE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import socket
import time
import weakref
from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from .conf import app_settings

logger = logging.getLogger("notifications")

PROCESS = f"{socket.gethostname()}:{os.getpid()}"

# Claim a place among a user's sockets, atomically: forget the stale, refuse past the limit.
_CLAIM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  local limit = tonumber(ARGV[4])
  if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
return 1
"""

COUNTERS = ("connects", "auth_failures", "pushes", "resumes", "drops")


def _in_memory_layer() -> bool:
    layer = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {})
    return layer.get("BACKEND", "").endswith("InMemoryChannelLayer")


# Up to this many recipients, ask about each; above it, read every online user at once.
_LOOK_UP_EACH_UP_TO = 500


class LocalRegistry:
    """One process's sockets and counters."""

    def __init__(self) -> None:
        self.sockets: dict[int, dict[str, float]] = {}
        self.counters: Counter[str] = Counter()

    async def claim(self, user_id: int, channel: str) -> bool:
        now = time.monotonic()
        mine = self.sockets.setdefault(user_id, {})
        for name in [
            n for n, seen in mine.items() if seen < now - app_settings.SOCKET_STALE_SECONDS
        ]:
            del mine[name]
        limit = app_settings.MAX_SOCKETS_PER_USER
        if channel not in mine and limit and len(mine) >= limit:
            return False
        mine[channel] = now
        return True

    async def release(self, user_id: int, channel: str) -> None:
        self.sockets.get(user_id, {}).pop(channel, None)

    async def refresh(self, sockets: Sequence[tuple[int, str]]) -> None:
        """Say that these (user, channel) sockets are still alive."""
        for user_id, channel in sockets:
            await self.claim(user_id, channel)

    def online(self, user_ids: Sequence[int]) -> set[int] | None:
        """Which of these users have a socket here; None if this process cannot know (another
        process may hold their sockets: the channel layer is not the in-memory one)."""
        if not _in_memory_layer():
            return None
        fresh = time.monotonic() - app_settings.SOCKET_STALE_SECONDS
        return {
            user_id
            for user_id in user_ids
            if any(seen >= fresh for seen in self.sockets.get(user_id, {}).values())
        }

    async def count(self, name: str, amount: int = 1) -> None:
        self.count_now(name, amount)

    def count_now(self, name: str, amount: int = 1) -> None:
        self.counters[name] += amount

    def snapshot(self) -> dict[str, int]:
        open_sockets = sum(len(channels) for channels in self.sockets.values())
        return {**{name: self.counters[name] for name in COUNTERS}, "open_sockets": open_sockets}


class RedisRegistry:
    """Sockets and counters shared by every process, in the cache's Redis, under the cache's own
    key prefix and version (``namespace``), so that projects sharing a Redis stay apart."""

    def __init__(self, url: str, namespace: str = "notifications") -> None:
        self.url = url
        self.stats_key = f"{namespace}:stats"
        # Every user with a live socket, scored by when one of them last said so: who is online,
        # in one read whatever the size of an audience.
        self.online_key = f"{namespace}:online"
        self.sockets_prefix = f"{namespace}:sockets:"
        # The consumers' calls use an asyncio client of their (long-lived) event loop; calls from
        # sync code (the after-commit step of a send) use one thread-safe sync client. An asyncio
        # client there would be made for each async_to_sync's short-lived loop, and leak.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._sync_client: Any = None

    def _sync(self) -> Any:
        import redis

        if self._sync_client is None:
            self._sync_client = redis.Redis.from_url(
                self.url, socket_connect_timeout=1, socket_timeout=2
            )
        return self._sync_client

    def _client(self) -> Any:
        import redis.asyncio

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = redis.asyncio.Redis.from_url(
                self.url, socket_connect_timeout=1, socket_timeout=2
            )
        return client

    def sockets_key(self, user_id: int) -> str:
        return f"{self.sockets_prefix}{int(user_id)}"

    async def claim(self, user_id: int, channel: str) -> bool | None:
        """True: claimed; False: the user has too many sockets; None: Redis cannot say."""
        try:
            return bool(await self._client().eval(_CLAIM, 2, *self._claim_args(user_id, channel)))
        except Exception as error:
            logger.warning("notifications: socket registry unreachable: %r", error)
            return None

    def _claim_args(self, user_id: int, channel: str) -> tuple[Any, ...]:
        stale = app_settings.SOCKET_STALE_SECONDS
        now = time.time()
        return (
            self.sockets_key(user_id),
            self.online_key,
            now,
            now - stale,
            channel,
            app_settings.MAX_SOCKETS_PER_USER,
            math.ceil(stale * 2),  # EXPIRE takes whole seconds
            user_id,
        )

    async def release(self, user_id: int, channel: str) -> None:
        try:
            await self._client().zrem(self.sockets_key(user_id), channel)
        except Exception as error:
            logger.warning("notifications: socket registry unreachable: %r", error)

    async def refresh(self, sockets: Sequence[tuple[int, str]]) -> None:
        """Say that these (user, channel) sockets are still alive: one pipeline of claims."""
        try:
            async with self._client().pipeline(transaction=False) as pipeline:
                for user_id, channel in sockets:
                    pipeline.eval(_CLAIM, 2, *self._claim_args(user_id, channel))
                await pipeline.execute()
        except Exception as error:
            logger.warning("notifications: socket registry unreachable: %r", error)

    def online(self, user_ids: Sequence[int]) -> set[int] | None:
        """Which of these users have a live socket in any process (None if Redis cannot say).

        A small audience is looked up member by member (ZMSCORE, Redis 6.2+); a large one reads
        the sorted set of online users once, so it costs what the online users cost, not the
        audience. A user whose last socket closed stays in it until stale: at worst a push that
        nobody receives.
        """
        fresh = time.time() - app_settings.SOCKET_STALE_SECONDS
        audience = list(dict.fromkeys(user_ids))
        try:
            if len(audience) <= _LOOK_UP_EACH_UP_TO:
                scores = self._sync().zmscore(self.online_key, audience) if audience else []
                return {
                    user_id
                    for user_id, score in zip(audience, scores, strict=True)
                    if score is not None and score >= fresh
                }
            members = self._sync().zrangebyscore(self.online_key, fresh, "+inf")
        except Exception as error:
            logger.warning("notifications: socket registry unreachable: %r", error)
            return None
        return {int(member) for member in members} & set(audience)

    async def count(self, name: str, amount: int = 1) -> None:
        try:
            await self._client().hincrby(self.stats_key, name, amount)
        except Exception as error:
            logger.warning("notifications: counters unreachable: %r", error)

    def count_now(self, name: str, amount: int = 1) -> None:
        try:
            self._sync().hincrby(self.stats_key, name, amount)
        except Exception as error:
            logger.warning("notifications: counters unreachable: %r", error)

    def snapshot(self) -> dict[str, int]:
        """The counters and the open sockets of every process; raises if Redis is unreachable."""
        client = self._sync()
        raw = client.hgetall(self.stats_key)
        counters = {name: int(raw.get(name.encode(), 0)) for name in COUNTERS}
        stale_before = time.time() - app_settings.SOCKET_STALE_SECONDS
        open_sockets = 0
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.sockets_prefix) + "*"
        cursor = None
        while cursor != 0:
            cursor, keys = client.scan(cursor or 0, match=pattern, count=1000)
            pipeline = client.pipeline(transaction=False)
            for key in keys:
                pipeline.zcount(key, stale_before, "+inf")
            open_sockets += sum(pipeline.execute())
        return {**counters, "open_sockets": open_sockets}


_registries: dict[str, LocalRegistry | RedisRegistry] = {}


def registry() -> LocalRegistry | RedisRegistry:
    """The registry for the app's cache: Redis-backed if the cache is Redis."""
    cache = caches[app_settings.CACHE_ALIAS]
    if isinstance(cache, RedisCache):
        url = cache._servers[0]  # type: ignore[attr-defined]  # private, but stable since 4.0
        namespace = cache.make_key("notifications")  # KEY_PREFIX and VERSION, as cache keys
        key = f"redis:{url}:{namespace}"
        if key not in _registries:
            _registries[key] = RedisRegistry(url, namespace)
    else:
        key = f"local:{app_settings.CACHE_ALIAS}"
        _registries.setdefault(key, LocalRegistry())
    return _registries[key]
