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
from collections.abc import Awaitable, Callable
from typing import Any

_installed = False
GRACE_SECONDS = 0.3


def install(close_all: Callable[[], Awaitable[None]]) -> None:
    """Install once per process, and only under daphne's Twisted reactor."""
    global _installed
    if _installed or "twisted.internet.reactor" not in sys.modules:
        return
    _installed = True
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def handler(number: int, frame: Any, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(loop.create_task, _close_then(close_all, previous, number))

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
