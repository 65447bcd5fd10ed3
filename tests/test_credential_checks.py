"""The node's own checks of its sockets' credentials (notifications/realtime/credential_checks.py):
the periodic check survives a database that is down, the listener for replaced sessions survives
a layer that fails, and a replaced session closes only its own sockets, for good only when
another user signed in."""

import asyncio
import logging

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError

from notifications.protocol import CLOSE_REAUTHENTICATE, CLOSE_UNAUTHENTICATED
from notifications.realtime import broker, credential_checks, watchdog
from notifications.realtime.credentials import digest
from tests.test_consumers import open_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def signed_in_with_session(user):
    cookie = await sync_to_async(session_cookie)(user)
    communicator, connected, _ = await open_socket(cookie=cookie)
    assert connected
    assert (await communicator.receive_json_from(timeout=3))["type"] == "hello"
    session_key = cookie.decode().split("=", 1)[1]
    return communicator, digest("session", session_key)


async def closed_with(communicator, within: float = 3) -> int | None:
    while True:
        output = await communicator.receive_output(timeout=within)
        if output["type"] == "websocket.close":
            return output.get("code")


@pytest.fixture
def replaced_sessions_are_heard(monkeypatch):
    monkeypatch.setattr(watchdog, "LAYER_CHECK_SECONDS", 0.05)


async def test_a_session_the_same_user_replaced_asks_its_sockets_to_reauthenticate(
    replaced_sessions_are_heard, alice
):
    replaced, credential = await signed_in_with_session(alice)
    other_tab, _ = await signed_in_with_session(alice)
    await asyncio.sleep(0.1)  # the listener subscribes
    await broker.asend(
        [(broker.REPLACED_SESSIONS_GROUP, broker.replaced_event(credential, alice.pk))]
    )
    assert await closed_with(replaced) == CLOSE_REAUTHENTICATE
    assert await other_tab.receive_nothing(timeout=0.3)
    await other_tab.disconnect()


async def test_a_session_another_user_took_over_closes_its_sockets_for_good(
    replaced_sessions_are_heard, alice, bob
):
    replaced, credential = await signed_in_with_session(alice)
    await asyncio.sleep(0.1)
    await broker.asend(
        [(broker.REPLACED_SESSIONS_GROUP, broker.replaced_event(credential, bob.pk))]
    )
    assert await closed_with(replaced) == CLOSE_UNAUTHENTICATED


async def test_the_listener_survives_a_layer_that_fails_and_hears_the_next_replacement(
    replaced_sessions_are_heard, alice, monkeypatch, caplog
):
    real_subscribe = broker.subscribe
    failures = iter([OSError("layer down")])

    async def subscribe_that_fails_once(group, channel):
        if group == broker.REPLACED_SESSIONS_GROUP:
            for failure in failures:
                raise failure
        await real_subscribe(group, channel)

    monkeypatch.setattr(broker, "subscribe", subscribe_that_fails_once)
    with caplog.at_level(logging.WARNING, logger="notifications"):
        replaced, credential = await signed_in_with_session(alice)
        await asyncio.sleep(0.3)  # failed, waited, listening again on a new channel
        await broker.asend(
            [(broker.REPLACED_SESSIONS_GROUP, broker.replaced_event(credential, alice.pk))]
        )
        assert await closed_with(replaced) == CLOSE_REAUTHENTICATE
    assert "listening for replaced sessions failed" in caplog.text


async def test_a_periodic_check_the_database_refuses_is_tried_again_next_period(
    settings, alice, monkeypatch, caplog
):
    settings.NOTIFICATIONS = {"CREDENTIALS_CHECK_SECONDS": 0.1}
    answers = iter([OperationalError("database down"), RuntimeError("bug"), None])

    def verdicts_after_two_failures(pairs):
        for answer in answers:
            if answer is not None:
                raise answer
            break
        return [CLOSE_UNAUTHENTICATED for _ in pairs]

    monkeypatch.setattr(credential_checks, "verdicts", verdicts_after_two_failures)
    with caplog.at_level(logging.WARNING, logger="notifications"):
        communicator, _ = await signed_in_with_session(alice)
        assert await closed_with(communicator, within=3) == CLOSE_UNAUTHENTICATED
    assert "credentials cannot be checked now" in caplog.text
    assert "a credentials check failed" in caplog.text
