"""A client slow to take its frames holds up nobody else (realtime/eager.py, realtime/slow.py):
its pushes queue behind the send it waits for, in order, and a client that stays stuck or falls
too far behind is closed with 4013 and gives its place back."""

import asyncio

import pytest
from django.contrib.auth import get_user_model

from notifications.realtime import eager, slow
from notifications.realtime.node import node
from tests.test_consumers import send, signed_in

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def in_memory(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def socket_of(user):
    (socket,) = node().users[user.pk].values()
    return socket


def stall(socket) -> asyncio.Event:
    """Make the server's sends to this socket wait until the returned event is set, as uvicorn's
    do while the client's TCP window is full."""
    gate = asyncio.Event()
    real = socket.base_send

    async def waits_for_the_client(message):
        await gate.wait()
        await real(message)

    socket.base_send = waits_for_the_client
    return gate


async def titles(communicator, count):
    return [
        (await communicator.receive_json_from(timeout=3))["notification"]["title"]
        for _ in range(count)
    ]


async def test_a_stalled_client_holds_up_no_one_and_gets_everything_in_order(alice, bob):
    hers, _ = await signed_in(alice)
    his, _ = await signed_in(bob)
    gate = stall(socket_of(alice))
    both = get_user_model().objects.filter(pk__in=[alice.pk, bob.pk])
    for number in range(3):
        await send(both, f"n{number}")
    assert await titles(his, 3) == ["n0", "n1", "n2"]  # while alice's first send still waits
    assert await hers.receive_nothing(timeout=0.2)
    assert socket_of(alice).queued is not None
    gate.set()
    assert await titles(hers, 3) == ["n0", "n1", "n2"]
    await asyncio.sleep(0.05)
    assert socket_of(alice).queued is None  # caught up: the next push goes straight out again
    await send(alice, "straight")
    assert await titles(hers, 1) == ["straight"]
    for communicator in (hers, his):
        await communicator.disconnect()


async def test_a_client_too_far_behind_is_closed_4013_and_gives_its_place_back(alice, monkeypatch):
    monkeypatch.setattr(slow, "MAX_QUEUED_FRAMES", 3)
    monkeypatch.setattr("notifications.realtime.node.CLOSE_WAIT_SECONDS", 0.2)
    hers, _ = await signed_in(alice)
    socket = socket_of(alice)
    stall(socket)
    for number in range(5):
        await send(alice, f"n{number}")
    for _ in range(50):
        if socket.closed_with is not None and alice.pk not in node().users:
            break
        await asyncio.sleep(0.05)
    assert socket.closed_with == 4013
    assert alice.pk not in node().users  # its place and its user's group given back
    await hers.disconnect()


async def test_a_client_that_takes_nothing_is_let_go_after_stuck_seconds(alice, monkeypatch):
    monkeypatch.setattr(slow, "STUCK_SECONDS", 0.3)
    monkeypatch.setattr("notifications.realtime.node.CLOSE_WAIT_SECONDS", 0.2)
    hers, _ = await signed_in(alice)
    socket = socket_of(alice)
    stall(socket)
    await send(alice, "never taken")
    for _ in range(40):
        if alice.pk not in node().users:
            break
        await asyncio.sleep(0.05)
    assert socket.closed_with == 4013 and alice.pk not in node().users
    await hers.disconnect()


# --- eager.start ---------------------------------------------------------------------------


async def test_a_coroutine_that_never_waits_runs_to_its_end_at_once():
    done = []

    async def quick():
        done.append(1)

    assert eager.start(quick()) is None
    assert done == [1]


async def test_a_coroutine_that_waits_goes_on_in_a_task_with_each_outcome():
    steps = []
    future = asyncio.get_running_loop().create_future()
    failing = asyncio.get_running_loop().create_future()

    async def waits():
        steps.append("before")
        steps.append(await future)
        await asyncio.sleep(0)
        try:
            await failing
        except ValueError as error:
            steps.append(str(error))
        return "ignored"

    task = eager.start(waits())
    assert task is not None and steps == ["before"]
    future.set_result("result")
    failing.set_exception(ValueError("raised inside"))
    await task
    assert steps == ["before", "result", "raised inside"]


async def test_an_exception_before_the_first_wait_is_raised_at_once():
    async def fails():
        raise RuntimeError("at once")

    with pytest.raises(RuntimeError, match="at once"):
        eager.start(fails())


async def test_cancelling_the_task_closes_the_coroutine():
    closed = []

    async def waits_forever():
        try:
            await asyncio.Event().wait()
        finally:
            closed.append(True)

    task = eager.start(waits_forever())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed == [True]
