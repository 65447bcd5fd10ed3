"""GC_FREEZE_SECONDS: a process holding sockets keeps its long-lived objects out of the
collector's way, thaws them for one full collection now and then, and lets go when its last
socket closes."""

import asyncio
import gc
import logging

import pytest

from notifications.realtime import gcfreeze
from tests.test_consumers import signed_in

pytestmark = pytest.mark.django_db(transaction=True)


async def wait_for(condition, seconds=3.0):
    for _ in range(int(seconds / 0.02) + 1):  # the freezer works on its own clock: poll
        if condition():
            return
        await asyncio.sleep(0.02)
    assert condition(), f"not true within {seconds} s"


async def test_off_by_default(alice):
    communicator, _ = await signed_in(alice)
    await asyncio.sleep(0.2)
    assert gc.get_freeze_count() == 0
    await communicator.disconnect()


async def test_freezes_while_sockets_are_open_and_lets_go_after(alice, settings):
    settings.NOTIFICATIONS = {"GC_FREEZE_SECONDS": 0.05}
    communicator, _ = await signed_in(alice)
    await wait_for(lambda: gc.get_freeze_count() > 0)
    await communicator.disconnect()
    await wait_for(lambda: gc.get_freeze_count() == 0)


async def test_thaws_for_a_full_collection(alice, settings, caplog, monkeypatch):
    settings.NOTIFICATIONS = {"GC_FREEZE_SECONDS": 0.05}
    monkeypatch.setattr(gcfreeze, "GC_THAW_SECONDS", 0.1)
    with caplog.at_level(logging.INFO, logger="notifications.events"):
        communicator, _ = await signed_in(alice)
        await wait_for(lambda: "event=gc_thaw" in caplog.text)
        await wait_for(lambda: gc.get_freeze_count() > 0)  # frozen again after the thaw
        await communicator.disconnect()
    await wait_for(lambda: gc.get_freeze_count() == 0)
