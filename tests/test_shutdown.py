"""The goodbye at SIGTERM/SIGINT (notifications/realtime/shutdown.py): sockets are closed first,
then the signal does what it did before; outside daphne's main thread nothing is installed. The
whole path under a real daphne is tested in test_e2e.py and under runserver in test_runserver.py."""

import asyncio
import signal
import sys
import threading

import pytest

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


def test_without_a_previous_handler_the_default_action_is_taken(no_grace):
    """SIGWINCH's default action is to do nothing: the test process survives what for SIGTERM
    would end it, and the handler is the default again."""
    closed = []

    async def close_all():
        closed.append(True)

    signal.signal(signal.SIGWINCH, lambda n, f: None)
    try:
        asyncio.run(shutdown._close_then(close_all, signal.SIG_DFL, signal.SIGWINCH))
        assert closed == [True]
        assert signal.getsignal(signal.SIGWINCH) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGWINCH, signal.SIG_DFL)


def test_nothing_is_installed_outside_daphnes_main_thread(monkeypatch):
    """``runserver`` serves from another thread, where Python refuses signal handlers."""
    monkeypatch.setitem(sys.modules, "twisted.internet.reactor", object())
    monkeypatch.setattr(shutdown, "_installed", False)
    before = signal.getsignal(signal.SIGTERM)

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
    assert signal.getsignal(signal.SIGTERM) is before


def test_nothing_is_installed_without_twisted(monkeypatch):
    monkeypatch.delitem(sys.modules, "twisted.internet.reactor", raising=False)
    monkeypatch.setattr(shutdown, "_installed", False)

    async def close_all():
        pass

    asyncio.run(_install(close_all))
    assert shutdown._installed is False


async def _install(close_all) -> None:
    shutdown.install(close_all)
