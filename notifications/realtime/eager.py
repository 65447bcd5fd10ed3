"""Run a coroutine at once as far as it goes without waiting; only if it must wait, finish it in
a task.

The hub writes each pushed frame to each local socket. A server's ASGI ``send`` almost never
waits (daphne's never does; uvicorn's waits only while the client's TCP window is full), and a
task per send was a large share of the old per-socket cost; but one send that does wait must
not hold up every other socket of the process. So a send starts here: done at once (the usual
case) costs no task, and a send that waits continues in one of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def start(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[None] | None:
    """Run ``coroutine`` until it first waits: None if it finished (its exception, if any, is
    raised here), else the task that finishes it."""
    try:
        waiting = coroutine.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_finish(coroutine, waiting))


async def _finish(coroutine: Coroutine[Any, Any, Any], waiting: Any) -> None:
    # What a task does for a coroutine: wait for what it yielded, then resume it; the
    # coroutine reads the outcome itself (an awaited future's result or exception).
    try:
        while True:
            if waiting is None:  # a bare yield (asyncio.sleep(0))
                await asyncio.sleep(0)
            else:
                waiting._asyncio_future_blocking = False  # as a task does
                await _settled(waiting)
            waiting = coroutine.send(None)
    except StopIteration:
        return
    except asyncio.CancelledError:
        coroutine.close()
        raise


async def _settled(future: asyncio.Future[Any]) -> None:
    """Wait until ``future`` is done, whatever its outcome, without taking it."""
    if future.done():
        return
    settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done(_: asyncio.Future[Any]) -> None:
        if not settled.done():
            settled.set_result(None)

    future.add_done_callback(done)
    await settled
