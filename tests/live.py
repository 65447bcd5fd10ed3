"""Fixtures for tests against a real server process (end-to-end and browser tests).

``server`` starts a server on the test database with Redis as the channel layer, once per module
and kind: its tests run on daphne and on uvicorn (``[daphne]``, ``[uvicorn]``). ``daphne`` is
daphne alone, for the browser tests. Tests that send from this process also use
``same_redis_as_server`` so that their pushes reach it.
"""

import json
import os
import runpy
from contextlib import contextmanager
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

from tests.conftest import REDIS_URL, redis_reachable, service_missing
from tests.redis_keys import prefixed
from tests.servers import ROOT, SERVERS, ShowLogOnFailure, database_url


@contextmanager
def serving(request, tmp_path_factory, notifications: dict | None = None, kind: str = "daphne"):
    """A server of ``kind`` (tests.servers.SERVERS) on the test database with Redis as the
    channel layer; ``notifications`` its ``NOTIFICATIONS`` (through TEST_NOTIFICATIONS). Its log
    is shown when a test fails."""
    if not redis_reachable():
        service_missing(f"Redis is not reachable at {REDIS_URL}")
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "REDIS_URL": REDIS_URL,
        # pytest-django has swapped in the test database's name by now.
        "DATABASE_URL": database_url(connection.settings_dict),
    }
    if notifications is not None:
        env["TEST_NOTIFICATIONS"] = json.dumps(notifications)
    server = SERVERS[kind](env, tmp_path_factory.mktemp(kind) / f"{kind}.log")
    plugin = ShowLogOnFailure(server, request.module.__name__)
    request.config.pluginmanager.register(plugin)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        request.config.pluginmanager.unregister(plugin)


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request, django_db_setup, tmp_path_factory):
    with serving(request, tmp_path_factory, kind=request.param) as server:
        yield server


@pytest.fixture(scope="module")
def daphne(request, django_db_setup, tmp_path_factory):
    with serving(request, tmp_path_factory) as server:
        yield server


@pytest.fixture
def same_redis_as_server(server, settings):
    use_the_servers_redis(settings)


def use_the_servers_redis(settings) -> None:
    """This process may have loaded its settings without REDIS_URL: give it the channel layer
    and cache the server derives from it, so that its pushes and sessions reach it."""
    with mock.patch.dict(os.environ, {"REDIS_URL": REDIS_URL}):
        server_settings = runpy.run_path(str(ROOT / "project" / "settings.py"))
    prefixed(server_settings["CACHES"], server_settings["CHANNEL_LAYERS"])  # as tests.settings
    settings.CHANNEL_LAYERS = server_settings["CHANNEL_LAYERS"]
    settings.CACHES = server_settings["CACHES"]


@pytest.fixture
async def close_sync_thread_connection():
    yield
    # sync_to_async runs in one long-lived thread whose connection would otherwise outlive the
    # test database (PostgreSQL then refuses to drop it).
    await sync_to_async(connections.close_all)()
