"""Close every socket with 4012 ("service restart") when the server is told to stop.

Daphne drops its connections at SIGTERM before cancelling the applications, so a consumer
cannot say goodbye on its own: clients would see a bare 1006. Uvicorn closes them with 1012
itself, which clients treat alike, but says nothing the app would log or count. So under either
server this wraps its SIGTERM/SIGINT handlers: close the process's sockets with 4012 first
(clients then reconnect soon, to another process or to this one restarted, and resume), give
the close frames a moment to leave, then let the server shut down as before. Only the handlers
of those two servers are wrapped: a signal that something else handles (pytest, a debugger, a
server this does not know) is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

Handler = Callable[[int, Any], Any]  # a signal handler: (signal number, frame)

_installed = False
GRACE_SECONDS = 0.3


_goodbyes: set[asyncio.Task[None]] = set()  # referenced until done


def install(close_all: Callable[[], Awaitable[None]]) -> None:
    """Install once per process, in the main thread of daphne or uvicorn.

    Python lets only the main thread set signal handlers. ``manage.py runserver`` (with its
    autoreloader) serves from another thread: there the autoreloader owns the process's end,
    and sockets simply see it go.
    """
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    servers: dict[signal.Signals, Handler] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        handler = signal.getsignal(signum)
        if callable(handler) and _a_servers(handler):
            servers[signum] = handler
    if not servers:
        return
    _installed = True
    loop = asyncio.get_running_loop()

    def start(previous: Handler, number: int) -> None:
        task = loop.create_task(_close_then(close_all, previous, number))
        _goodbyes.add(task)
        task.add_done_callback(_goodbyes.discard)

    for signum, previous in servers.items():

        def wrapper(number: int, frame: Any, previous: Handler = previous) -> None:
            loop.call_soon_threadsafe(start, previous, number)

        signal.signal(signum, wrapper)


def _a_servers(handler: Handler) -> bool:
    """Whether a signal handler is daphne's or uvicorn's: a method of Twisted's reactor (daphne
    runs the reactor with its signal handlers) or of uvicorn's ``Server``."""
    module = type(getattr(handler, "__self__", None)).__module__
    return module.startswith("twisted.internet.") or module == "uvicorn.server"


async def _close_then(
    close_all: Callable[[], Awaitable[None]], previous: Handler, number: int
) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(close_all(), 2)
        await asyncio.sleep(GRACE_SECONDS)
    previous(number, None)
