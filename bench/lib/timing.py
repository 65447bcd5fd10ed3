"""Timing a Django process through public seams: SQL statements (``execute_wrapper``), the app's
signals and event log, a cache named in ``CACHES``; nothing of the app is patched."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from django.core.cache.backends.redis import RedisCache

from notifications import signals


class Statement(NamedTuple):
    sql: str
    start: float
    end: float
    rows: int

    @property
    def seconds(self) -> float:
        return self.end - self.start


class Statements(list[Statement]):
    """The SQL statements of this thread: ``with connection.execute_wrapper(statements):``."""

    def __call__(self, execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, *args)
        finally:  # args: params, many, context
            self.append(Statement(sql, start, time.perf_counter(), args[-1]["cursor"].rowcount))

    def between(self, start: float, end: float) -> list[Statement]:
        return [s for s in self if start <= s.start and s.end <= end]


class AfterCommit:
    """When the app's own work after each commit started and ended: a ``notification_sent``
    receiver connected before the app connects its own (``connect_first()`` before
    ``django.setup()``), and one connected after. Django calls a signal's receivers in the order
    they were connected: the two bracket the version bump, who is online, counts and push."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self.started = 0.0

    def connect_first(self) -> AfterCommit:
        signals.notification_sent.connect(self.begin, weak=False)
        return self

    def connect_last(self) -> None:
        signals.notification_sent.connect(self.end, weak=False)

    def begin(self, **kwargs: Any) -> None:
        self.started = time.perf_counter()

    def end(self, **kwargs: Any) -> None:
        self.spans.append((self.started, time.perf_counter()))


class EventLog(logging.Handler):
    """The app's event log (docs/deployment.md), each line with its clock: ``event=push`` says
    the channel layer took a batch."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[float, str]] = []
        logger = logging.getLogger("notifications.events")
        logger.setLevel(logging.INFO)
        logger.propagate = False  # kept here, not printed
        logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((time.perf_counter(), record.getMessage()))

    def times(self, event: str, start: float, end: float) -> list[float]:
        return [t for t, line in self.lines if f"event={event} " in line and start <= t <= end]


def _timed(name: str) -> Callable[..., Any]:
    def method(self: RedisCache, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return getattr(super(TimedRedisCache, self), name)(*args, **kwargs)
        finally:
            TimedRedisCache.calls.append((start, time.perf_counter()))

    return method


class TimedRedisCache(RedisCache):
    """Django's Redis cache, timing its calls (``bench.settings`` names it in ``CACHES`` when
    ``BENCH_TIMED_CACHE`` is set); Django makes a cache object per thread: one list for all."""

    calls: list[tuple[float, float]] = []
    get, get_many, add, set, set_many = map(_timed, ["get", "get_many", "add", "set", "set_many"])
    delete, delete_many, incr, touch = map(_timed, ["delete", "delete_many", "incr", "touch"])

    @classmethod
    def seconds_between(cls, start: float, end: float) -> float:
        return sum(e - s for s, e in cls.calls if start <= s and e <= end)
