"""The goodbye at SIGTERM/SIGINT (notifications/realtime/shutdown.py): sockets are closed first,
then the signal does what it did before; it is installed over daphne's and uvicorn's handlers
only, in the main thread. The whole path under a real daphne and a real uvicorn is tested in
test_faults.py (``test_a_restart_closes_with_4012_and_nothing_is_lost``) and under runserver in
test_runserver.py."""

import asyncio
import signal
import threading

import pytest
import uvicorn

from notifications.realtime import shutdown


@pytest.fixture
def no_grace(monkeypatch):
    monkeypatch.setattr(shutdown, "GRACE_SECONDS", 0)


def test_the_sockets_close_before_the_previous_handler_runs(no_grace):
    order = []

    async def close_all():
        order.append("sockets closed")

    def previous(number, frame):
        order.append(f"previous handler ({number})")

    asyncio.run(shutdown._close_then(close_all, previous, signal.SIGTERM))
    assert order == ["sockets closed", f"previous handler ({signal.SIGTERM})"]


def test_a_close_that_fails_or_hangs_still_lets_the_signal_through(no_grace):
    """(A hanging close is given up after 2 seconds.)"""
    handled = []

    async def broken():
        raise RuntimeError("cannot close")

    async def hanging():
        await asyncio.sleep(3600)

    for close_all in (broken, hanging):
        asyncio.run(shutdown._close_then(close_all, lambda n, f: handled.append(n), signal.SIGINT))
    assert handled == [signal.SIGINT, signal.SIGINT]


@pytest.fixture
def servers_handlers(monkeypatch):
    """``servers_handlers(handler)``: SIGTERM and SIGINT handled by ``handler``, as a server sets
    them before it serves; both restored afterwards, and nothing installed yet."""
    monkeypatch.setattr(shutdown, "_installed", False)
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}

    def set_(handler):
        for signum in saved:
            signal.signal(signum, handler)

    yield set_
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def uvicorns():
    return uvicorn.Server(uvicorn.Config(app=None))


def daphnes():
    from twisted.internet import reactor  # daphne's, installed when daphne.server is imported

    return reactor


@pytest.mark.parametrize(
    "server, handler",
    [(daphnes, lambda reactor: reactor.sigTerm), (uvicorns, lambda server: server.handle_exit)],
    ids=["daphne", "uvicorn"],
)
def test_installed_over_the_servers_handlers(servers_handlers, server, handler):
    original = handler(server())
    servers_handlers(original)

    async def close_all():
        pass

    asyncio.run(_install(close_all))
    assert shutdown._installed is True
    for signum in (signal.SIGTERM, signal.SIGINT):
        assert signal.getsignal(signum) is not original


def test_under_uvicorn_the_sockets_close_before_uvicorn_stops(servers_handlers, no_grace):
    server = uvicorns()
    servers_handlers(server.handle_exit)
    closed_while_serving = []

    async def close_all():
        closed_while_serving.append(not server.should_exit)

    async def serve_then_terminate():
        shutdown.install(close_all)
        signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(0)  # the handler handed the goodbye to the loop: it starts now
        await asyncio.gather(*shutdown._goodbyes)

    asyncio.run(asyncio.wait_for(serve_then_terminate(), 5))
    assert closed_while_serving == [True]
    assert server.should_exit  # and then uvicorn was told


@pytest.mark.parametrize(
    "handler",
    [signal.SIG_DFL, signal.default_int_handler, lambda number, frame: None],
    ids=["default", "KeyboardInterrupt", "a function"],
)
def test_nothing_is_installed_over_handlers_of_others(servers_handlers, handler):
    """pytest, a debugger, a server this does not know: their signals stay theirs."""
    servers_handlers(handler)

    async def close_all():
        pass

    asyncio.run(_install(close_all))
    assert shutdown._installed is False
    assert signal.getsignal(signal.SIGTERM) is handler


def test_nothing_is_installed_outside_the_main_thread(servers_handlers):
    """``runserver`` serves from another thread, where Python refuses signal handlers."""
    server = uvicorns()
    servers_handlers(server.handle_exit)

    async def close_all():
        pass

    errors = []

    def serve():
        try:
            asyncio.run(_install(close_all))
        except Exception as error:  # ValueError: signal only works in main thread
            errors.append(error)

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join()
    assert errors == []
    assert shutdown._installed is False
    assert signal.getsignal(signal.SIGTERM) == server.handle_exit


async def _install(close_all) -> None:
    shutdown.install(close_all)
