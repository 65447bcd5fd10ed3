"""Which sockets are open, for the per-user limit and for who is online, and the app's counters.

Both must agree across processes, so they live in Redis when the app's cache
(``NOTIFICATIONS["CACHE_ALIAS"]``) is a Redis cache: Django's ``RedisCache`` (reached through
``redis.asyncio`` from its URL, so that a connect costs no thread hop) or django-redis (through
the cache's own client, Sentinel and replicas included, from a thread). With any other cache
they live in this process (one process: the demo, the tests; system check W006 says so when
the channel layer spans processes). When Redis is unreachable the limit is not enforced and
counters are not counted: a socket is never refused for it.

Each socket is a member of a sorted set per user, scored by when it last said it was alive, and
named after the node (the process) that holds it. Nodes beat every few seconds: the sockets of a
node that stopped beating (daphne killed) stop counting against the limit at once, and every
socket falls out after ``SOCKET_STALE_SECONDS`` without news.

The registry can vanish (``cache.clear()``, FLUSHDB, a cache Redis restarted without
persistence). Its set of online users therefore carries an *epoch* member, created with it: a
registry whose epoch is missing or young does not know who is online, and :meth:`online` says so
(``None``: push to everyone) until every node has had time to claim its sockets again. Nodes
notice a new epoch at their next beat and re-claim at once (see realtime/sweep.py).
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
from collections.abc import Callable, Sequence
from typing import Any

import redis
import redis.asyncio
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from ..cache import (
    REGISTRY_NODES,
    REGISTRY_ONLINE,
    REGISTRY_REVOKED,
    REGISTRY_SOCKETS,
    REGISTRY_STATS,
    ROOT,
)
from ..conf import app_settings

try:
    from django_redis.cache import RedisCache as DjangoRedisCache
except ImportError:  # django-redis is optional
    _DJANGO_REDIS: tuple[type, ...] = ()
else:
    _DJANGO_REDIS = (DjangoRedisCache,)

logger = logging.getLogger("notifications")

PROCESS = f"{socket.gethostname()}:{os.getpid()}"

# How often a node says it is alive, and how long after its last beat its sockets stop counting.
NODE_BEAT_SECONDS = 5.0
NODE_STALE_SECONDS = 3 * NODE_BEAT_SECONDS
# A socket not heard of this long no longer counts, whatever its node; live sockets are claimed
# again every third of it (see realtime/sweep.py).
SOCKET_STALE_SECONDS = 180
# After the registry was created anew, how long it is taken to know nothing: every node beats
# (and re-claims its sockets) within NODE_BEAT_SECONDS; the rest is slack for a busy process.
EPOCH_GRACE_SECONDS = 3 * NODE_BEAT_SECONDS
_EPOCH = "epoch:"
# How long a change of a user's credentials is remembered for sockets that are connecting.
REVOCATION_MEMORY_SECONDS = 60.0

# Claim a place among a user's sockets, atomically: forget the stale and the sockets of nodes
# that stopped beating, refuse past the limit.
# KEYS: the user's sockets, the online users, the live nodes.
# ARGV: now, stale before, member, limit, expiry (s), user id, node, node stale before.
_CLAIM = """
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local limit = tonumber(ARGV[4])
if limit > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[3])
   and redis.call('ZCARD', KEYS[1]) >= limit then
  for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local node = string.match(member, '^(.-)|')
    local beat = node and redis.call('ZSCORE', KEYS[3], node)
    if node and ((not beat) or tonumber(beat) < tonumber(ARGV[8])) then
      redis.call('ZREM', KEYS[1], member)
    end
  end
  if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
return 1
"""

# Let a socket go; the user's last one takes them out of the online users at once, so that a
# user who closed their last page gets Web Push from the next notification on (rather than after
# SOCKET_STALE_SECONDS). KEYS: the user's sockets, the online users. ARGV: member, user id.
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[2])
end
return 1
"""

# The online users' epoch (created if missing), then the scores of the given users.
# KEYS: the online users. ARGV: now, then the user ids.
_EPOCH_AND_SCORES = """
local epoch = redis.call('ZRANGEBYSCORE', KEYS[1], '+inf', '+inf', 'LIMIT', 0, 1)[1]
if not epoch then
  epoch = 'epoch:' .. ARGV[1]
  redis.call('ZADD', KEYS[1], '+inf', epoch)
end
local scores = {}
if #ARGV > 1 then
  scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV, 2))
end
return {epoch, scores}
"""

# A node's beat: it is alive; nodes silent for a day are forgotten. Returns the epoch.
# KEYS: the live nodes, the online users. ARGV: now, node, forget before.
_BEAT = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local epoch = redis.call('ZRANGEBYSCORE', KEYS[2], '+inf', '+inf', 'LIMIT', 0, 1)[1]
if not epoch then
  epoch = 'epoch:' .. ARGV[1]
  redis.call('ZADD', KEYS[2], '+inf', epoch)
end
return epoch
"""

COUNTERS = ("connects", "auth_failures", "pushes", "resumes", "drops")


# Up to this many recipients, ask about each; above it, read every online user at once.
_LOOK_UP_EACH_UP_TO = 500


class LocalRegistry:
    """One process's sockets and counters."""

    def __init__(self) -> None:
        self.sockets: dict[int, dict[str, float]] = {}
        self.counters: Counter[str] = Counter()
        self.revocations: dict[int, float] = {}

    async def claim(self, user_id: int, channel: str, node: str = "") -> bool:
        now = time.monotonic()
        mine = self.sockets.setdefault(user_id, {})
        for name in [n for n, seen in mine.items() if seen < now - SOCKET_STALE_SECONDS]:
            del mine[name]
        limit = app_settings.MAX_SOCKETS_PER_USER
        if channel not in mine and limit and len(mine) >= limit:
            return False
        mine[channel] = now
        return True

    async def release(self, user_id: int, channel: str, node: str = "") -> None:
        mine = self.sockets.get(user_id, {})
        mine.pop(channel, None)
        if not mine:
            self.sockets.pop(user_id, None)

    async def refresh(self, sockets: Sequence[tuple[int, str]], node: str = "") -> None:
        """Say that these (user, channel) sockets are still alive."""
        for user_id, channel in sockets:
            await self.claim(user_id, channel)

    async def beat(self, node: str) -> str | None:
        """This process's registry cannot be wiped from outside: one epoch forever."""
        return "local"

    def note_revocation(self, user_id: int) -> None:
        """Someone's credentials changed (revocation.py): a socket joining now checks its own."""
        self.revocations[user_id] = time.time()

    async def revoked_at(self, user_id: int) -> float | None:
        at = self.revocations.get(user_id)
        return at if at is not None and at > time.time() - REVOCATION_MEMORY_SECONDS else None

    def online(self, user_ids: Sequence[int]) -> set[int]:
        """Which of these users have a socket here (the whole answer only when no other process
        holds sockets: ``broker.online`` asks only then)."""
        fresh = time.monotonic() - SOCKET_STALE_SECONDS
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


def _member(node: str, channel: str) -> str:
    """A socket in a user's set: the node that holds it, then its channel."""
    return f"{node}|{channel}"


def _epoch_age(epoch: Any) -> float:
    """Seconds since the registry's epoch began (0 if it cannot be read: assume it is new)."""
    text = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
    try:
        return time.time() - float(text.removeprefix(_EPOCH))
    except ValueError:
        return 0.0


class RedisRegistry:
    """Sockets and counters shared by every process, in the cache's Redis, under the cache's own
    key prefix and version (``namespace``), so that projects sharing a Redis stay apart."""

    def __init__(self, url: str, namespace: str = ROOT, sync_client: Any = None) -> None:
        self.url = url
        self.stats_key = f"{namespace}{REGISTRY_STATS}"
        # Every user with a live socket, scored by when one of them last said so (who is online,
        # in one read whatever the size of an audience), and the registry's epoch, scored +inf.
        self.online_key = f"{namespace}{REGISTRY_ONLINE}"
        self.sockets_prefix = f"{namespace}{REGISTRY_SOCKETS}"
        # Every node (process) holding sockets, scored by its last beat.
        self.nodes_key = f"{namespace}{REGISTRY_NODES}"
        self.revoked_prefix = f"{namespace}{REGISTRY_REVOKED}"
        # The consumers' calls use an asyncio client of their (long-lived) event loop; calls from
        # sync code (the after-commit step of a send) use one thread-safe sync client. An asyncio
        # client there would be made for each async_to_sync's short-lived loop, and leak.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        # A cache's own client (django-redis): every call goes through it, from a thread.
        self._sync_client: Any = sync_client
        self._threaded = sync_client is not None

    def _sync(self) -> Any:
        if self._sync_client is None:
            self._sync_client = redis.Redis.from_url(
                self.url, socket_connect_timeout=1, socket_timeout=2
            )
        return self._sync_client

    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = redis.asyncio.Redis.from_url(
                self.url, socket_connect_timeout=1, socket_timeout=2
            )
        return client

    async def _call(self, call: Callable[[Any], Any]) -> Any:
        """``call(client)`` with this loop's asyncio client, or the cache's own (sync) client in a
        thread: redis-py's two clients speak the same API."""
        if self._threaded:
            return await asyncio.to_thread(call, self._sync())
        return await call(self._client())

    def sockets_key(self, user_id: int) -> str:
        return f"{self.sockets_prefix}{int(user_id)}"

    async def claim(self, user_id: int, channel: str, node: str = "") -> bool | None:
        """True: claimed; False: the user has too many sockets; None: Redis cannot say."""
        try:
            keys_and_args = self._claim_args(user_id, channel, node)
            return bool(await self._call(lambda client: client.eval(_CLAIM, 3, *keys_and_args)))
        except Exception as error:
            logger.warning("notifications: socket registry unreachable: %r", error)
            return None

    def _claim_args(self, user_id: int, channel: str, node: str) -> tuple[Any, ...]:
        stale = SOCKET_STALE_SECONDS
        now = time.time()
        return (
            self.sockets_key(user_id),
            self.online_key,
            self.nodes_key,
            now,
            now - stale,
            _member(node, channel),
            app_settings.MAX_SOCKETS_PER_USER,
            math.ceil(stale * 2),  # EXPIRE takes whole seconds
            user_id,
            node,
            now - NODE_STALE_SECONDS,
        )

    async def release(self, user_id: int, channel: str, node: str = "") -> None:
        try:
            keys, member = (self.sockets_key(user_id), self.online_key), _member(node, channel)
            await self._call(lambda client: client.eval(_RELEASE, 2, *keys, member, user_id))
        except Exception as error:
            logger.warning("notifications: socket registry unreachable: %r", error)

    async def refresh(self, sockets: Sequence[tuple[int, str]], node: str = "") -> None:
        """Say that these (user, channel) sockets are still alive: one pipeline of claims."""
        claims = [self._claim_args(user_id, channel, node) for user_id, channel in sockets]

        def claim_all(client: Any) -> Any:
            pipeline = client.pipeline(transaction=False)
            for keys_and_args in claims:
                pipeline.eval(_CLAIM, 3, *keys_and_args)
            return pipeline.execute()

        try:
            await self._call(claim_all)
        except Exception as error:
            logger.warning("notifications: socket registry unreachable: %r", error)

    async def beat(self, node: str) -> str | None:
        """Say that ``node`` is alive; return the registry's epoch (None if unreachable). A
        different epoch than before means the registry was wiped: claim everything again."""
        now = time.time()
        keys_and_args = (self.nodes_key, self.online_key, now, node, now - 86400)
        try:
            epoch = await self._call(lambda client: client.eval(_BEAT, 2, *keys_and_args))
        except Exception as error:
            logger.warning("notifications: socket registry unreachable: %r", error)
            return None
        return epoch.decode() if isinstance(epoch, bytes) else str(epoch)

    def note_revocation(self, user_id: int) -> None:
        """Someone's credentials changed (revocation.py): a socket joining now, in any process,
        checks its own. Raises if Redis is unreachable (the caller's budget bounds the wait)."""
        key = f"{self.revoked_prefix}{int(user_id)}"
        self._sync().set(key, time.time(), ex=math.ceil(REVOCATION_MEMORY_SECONDS))

    async def revoked_at(self, user_id: int) -> float | None:
        """When the user's credentials last changed, if lately (None if Redis cannot say)."""
        key = f"{self.revoked_prefix}{int(user_id)}"
        try:
            found = await self._call(lambda client: client.get(key))
        except Exception as error:
            logger.warning("notifications: socket registry unreachable: %r", error)
            return None
        return float(found) if found is not None else None

    def online(self, user_ids: Sequence[int]) -> set[int] | None:
        """Which of these users have a live socket in any process; None if that cannot be known
        (Redis unreachable, or the registry was wiped less than ``EPOCH_GRACE_SECONDS`` ago and
        nodes may not have claimed their sockets again yet): then push to all.

        A small audience is looked up member by member (ZMSCORE, Redis 6.2+); a large one reads
        the sorted set of online users once, so it costs what the online users cost, not the
        audience. A user whose last socket closed leaves it then; one whose last socket was on a
        process that died stays in it until stale: at worst a WebSocket push that nobody
        receives, and no Web Push for up to ``SOCKET_STALE_SECONDS``.
        """
        fresh = time.time() - SOCKET_STALE_SECONDS
        audience = list(dict.fromkeys(user_ids))
        client = self._sync()
        try:
            if len(audience) <= _LOOK_UP_EACH_UP_TO:
                epoch, scores = client.eval(
                    _EPOCH_AND_SCORES, 1, self.online_key, time.time(), *audience
                )
                if _epoch_age(epoch) < EPOCH_GRACE_SECONDS:
                    return None
                return {
                    user_id
                    for user_id, score in zip(audience, scores, strict=True)
                    if score is not None and float(score) >= fresh
                }
            members = client.zrangebyscore(self.online_key, fresh, "+inf")
            epochs = [m for m in members if m.startswith(_EPOCH.encode())]
            if not epochs:
                client.eval(_EPOCH_AND_SCORES, 1, self.online_key, time.time())
                return None
            if _epoch_age(min(epochs)) < EPOCH_GRACE_SECONDS:
                return None
        except Exception as error:
            logger.warning("notifications: socket registry unreachable: %r", error)
            return None
        online = {int(member) for member in members if member not in epochs}
        return online & set(audience)

    async def count(self, name: str, amount: int = 1) -> None:
        try:
            await self._call(lambda client: client.hincrby(self.stats_key, name, amount))
        except Exception as error:
            logger.warning("notifications: counters unreachable: %r", error)

    def count_now(self, name: str, amount: int = 1) -> None:
        try:
            self._sync().hincrby(self.stats_key, name, amount)
        except Exception as error:
            logger.warning("notifications: counters unreachable: %r", error)

    def snapshot(self) -> dict[str, int]:
        """The counters and the open sockets of every live process; raises if Redis is
        unreachable. Sockets of a process that stopped beating are not counted."""
        client = self._sync()
        raw = client.hgetall(self.stats_key)
        counters = {name: int(raw.get(name.encode(), 0)) for name in COUNTERS}
        now = time.time()
        live_nodes = {
            node.decode()
            for node in client.zrangebyscore(self.nodes_key, now - NODE_STALE_SECONDS, "+inf")
        }
        stale_before = now - SOCKET_STALE_SECONDS
        open_sockets = 0
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.sockets_prefix) + "*"
        cursor = None
        while cursor != 0:
            cursor, keys = client.scan(cursor or 0, match=pattern, count=1000)
            pipeline = client.pipeline(transaction=False)
            for key in keys:
                pipeline.zrangebyscore(key, stale_before, "+inf")
            for members in pipeline.execute():
                open_sockets += sum(
                    1 for member in members if member.decode().partition("|")[0] in live_nodes
                )
        return {**counters, "open_sockets": open_sockets}


_registries: dict[str, LocalRegistry | RedisRegistry] = {}


def registry() -> LocalRegistry | RedisRegistry:
    """The registry for the app's cache: Redis-backed if the cache is a Redis cache."""
    cache = caches[app_settings.CACHE_ALIAS]
    if isinstance(cache, RedisCache):
        url = cache._servers[0]  # type: ignore[attr-defined]  # private, but stable since 4.0
        namespace = cache.make_key(ROOT)  # KEY_PREFIX and VERSION, as cache keys
        key = f"redis:{url}:{namespace}"
        if key not in _registries:
            _registries[key] = RedisRegistry(url, namespace)
    elif is_django_redis(cache):
        # Django makes cache objects per thread and request; django-redis shares its pools
        # between them, so the first one's client serves every later call.
        location = cache._server  # type: ignore[attr-defined]
        namespace = cache.make_key(ROOT)
        key = f"django-redis:{location!r}:{namespace}"
        if key not in _registries:
            client = cache.client.get_client(write=True)  # type: ignore[attr-defined]
            _registries[key] = RedisRegistry(repr(location), namespace, sync_client=client)
    else:
        key = f"local:{app_settings.CACHE_ALIAS}"
        _registries.setdefault(key, LocalRegistry())
    return _registries[key]


def is_django_redis(cache: Any) -> bool:
    """Whether ``cache`` is django-redis's ``RedisCache`` (not installed: no)."""
    return isinstance(cache, _DJANGO_REDIS)


def shared(alias: str) -> bool:
    """Whether the cache ``alias`` gives the registry every process shares."""
    cache = caches[alias]
    return isinstance(cache, RedisCache) or is_django_redis(cache)
