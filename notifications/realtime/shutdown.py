"""Close every socket with 4012 ("service restart") when the server is told to stop.

Daphne drops its connections at SIGTERM before cancelling the applications, so a consumer
cannot say goodbye on its own: clients would see a bare 1006. Under daphne this wraps the
reactor's SIGTERM/SIGINT handlers: close the process's sockets with 4012 first (clients then
reconnect soon, to another process or to this one restarted, and resume), give the close frames
a moment to leave, then let daphne shut down as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

_installed = False
GRACE_SECONDS = 0.3


_goodbyes: set[asyncio.Task[None]] = set()  # referenced until done


def install(close_all: Callable[[], Awaitable[None]]) -> None:
    """Install once per process, and only under daphne's Twisted reactor in the main thread.

    Python lets only the main thread set signal handlers. ``manage.py runserver`` (with its
    autoreloader) serves from another thread: there the autoreloader owns the process's end,
    and sockets simply see it go.
    """
    global _installed
    if _installed or "twisted.internet.reactor" not in sys.modules:
        return
    if threading.current_thread() is not threading.main_thread():
        return
    _installed = True
    loop = asyncio.get_running_loop()

    def start(previous: Any, number: int) -> None:
        task = loop.create_task(_close_then(close_all, previous, number))
        _goodbyes.add(task)
        task.add_done_callback(_goodbyes.discard)

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def handler(number: int, frame: Any, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(start, previous, number)

        signal.signal(signum, handler)


async def _close_then(close_all: Callable[[], Awaitable[None]], previous: Any, number: int) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(close_all(), 2)
        await asyncio.sleep(GRACE_SECONDS)
    if callable(previous):
        previous(number, None)
    elif previous == signal.SIG_DFL:
        signal.signal(number, signal.SIG_DFL)
        signal.raise_signal(number)
