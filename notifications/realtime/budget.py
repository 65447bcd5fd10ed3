"""How long a sender may wait for Redis after its commit: ``PUSH_TIMEOUT_SECONDS``, for the
version bump, who is online and the pushes together.

Everything after commit is a hint (the database is the truth: clients resume, and catch up on
what a connected socket missed), so a Redis that accepts connections but never answers must not
hold the sender, whose ``notify()`` already committed. The sync Redis calls (the cache's version
bump, the registry's who-is-online) run on a few daemon threads of this module's own, and the
sender waits for them only as long as its budget allows; the pushes run on the push loop
(``broker.py``) under the same budget. The database work in between runs in the sender's thread
and is not charged: it is not Redis, and the budget is there to bound a hung Redis. Whatever is
given up is named in one warning per send. With the app's cache in this process (no Redis at
all) there is nothing to bound, and no thread: the calls run in the sender's.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache

from ..conf import app_settings

logger = logging.getLogger("notifications.push")

T = TypeVar("T")


class Budget:
    """The time left for one sender's Redis work after its commit.

    Use it as a context manager: on the way out it logs one warning naming whatever it gave up
    waiting for (nothing, if Redis answered in time).
    """

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = app_settings.PUSH_TIMEOUT_SECONDS if seconds is None else seconds
        self._deadline = time.monotonic() + self.seconds
        self.given_up: list[str] = []

    def remaining(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Work that is not Redis (a database query in the sender's thread): not charged."""
        started = time.monotonic()
        try:
            yield
        finally:
            self._deadline += time.monotonic() - started

    def call(
        self, what: str, function: Callable[..., T], *args: Any, share: float = 1.0
    ) -> tuple[bool, T | None]:
        """Run ``function(*args)`` on a worker thread and wait for it at most ``share`` of the
        time left. Returns ``(True, its result)``, or ``(False, None)`` when it did not finish in
        time (``what`` is then named in the warning; the call itself finishes, or fails, on its
        own, and its result is dropped). Exceptions it raises are raised here."""
        timeout = self.remaining() * share
        if timeout and _in_process():
            return True, function(*args)
        finished, result = _workers().call(timeout, function, *args) if timeout else (False, None)
        if not finished:
            self.give_up(what)
        return finished, result

    def give_up(self, what: str) -> None:
        self.given_up.append(what)

    def __enter__(self) -> Budget:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.given_up:
            logger.warning(
                "notifications: Redis did not answer within %g s after commit "
                "(PUSH_TIMEOUT_SECONDS); gave up waiting for: %s. Clients catch up from the "
                "database",
                self.seconds,
                ", ".join(self.given_up),
            )


def _in_process() -> bool:
    """Whether the app's cache lives in this process (the socket registry then does too:
    presence.py). What a budget bounds is then no Redis call and cannot hang: it runs in the
    sender's thread, without a hop to a worker (the demo without Redis, the tests)."""
    return isinstance(caches[app_settings.CACHE_ALIAS], LocMemCache | DummyCache)


def counted(number: int, noun: str) -> str:
    """``"1 push"``, ``"3 pushes"``: for the warning."""
    if number == 1:
        return f"1 {noun}"
    return f"{number} {noun}{'es' if noun.endswith(('s', 'sh', 'ch')) else 's'}"


class _Job:
    __slots__ = ("function", "args", "started", "done", "result", "error")

    def __init__(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.function = function
        self.args = args
        self.started = False  # guarded by the workers' lock
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Workers:
    """A few daemon threads for sync Redis calls that a sender may stop waiting for.

    A call stuck on a Redis that never answers holds its thread until the client's own timeout
    (for ever without one): hence daemon threads, which do not hold up the interpreter's exit as
    ``ThreadPoolExecutor``'s do, and at most ``LIMIT`` of them. A job waits for a free thread only
    as long as its sender waits, and leaves the queue with it: with every thread stuck, the queue
    does not grow.
    """

    LIMIT = 8

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._queue: deque[_Job] = deque()
        self._threads = 0
        self._idle = 0

    def call(self, timeout: float, function: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
        job = _Job(function, args)
        with self._lock:
            self._queue.append(job)
            if len(self._queue) > self._idle and self._threads < self.LIMIT:
                self._threads += 1
                threading.Thread(target=self._work, name="notifications-redis", daemon=True).start()
            self._ready.notify()
        if not job.done.wait(timeout):
            with self._lock:
                if not job.started:
                    self._queue.remove(job)
            return False, None
        if job.error is not None:
            raise job.error
        return True, job.result

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
                while not self._queue:
                    self._ready.wait()
                self._idle -= 1
                job = self._queue.popleft()
                job.started = True
            try:
                job.result = job.function(*job.args)
            except BaseException as error:  # handed to the sender, if it still waits
                job.error = error
            finally:
                job.done.set()
                del job


_workers_lock = threading.Lock()
_current: _Workers | None = None


def _workers() -> _Workers:
    global _current
    with _workers_lock:
        if _current is None or _current.pid != os.getpid():  # a forked child has no threads
            _current = _Workers()
        return _current
