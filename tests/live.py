"""Fixtures for tests against a real daphne process (end-to-end and browser tests).

``server`` starts daphne on the test database with Redis as the channel layer; tests that send
from this process also use ``same_redis_as_server`` so that their pushes reach it.
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
from tests.daphne_server import ROOT, DaphneServer, ShowLogOnFailure, database_url
from tests.redis_keys import prefixed


@contextmanager
def daphne_serving(request, tmp_path_factory, notifications: dict | None = None):
    """A daphne on the test database with Redis as the channel layer; ``notifications`` its
    ``NOTIFICATIONS`` (through TEST_NOTIFICATIONS). Its log is shown when a test fails."""
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
    daphne = DaphneServer(env, tmp_path_factory.mktemp("daphne") / "daphne.log")
    plugin = ShowLogOnFailure(daphne, request.module.__name__)
    request.config.pluginmanager.register(plugin)
    try:
        daphne.start()
        yield daphne
    finally:
        daphne.stop()
        request.config.pluginmanager.unregister(plugin)


@pytest.fixture(scope="module")
def server(request, django_db_setup, tmp_path_factory):
    with daphne_serving(request, tmp_path_factory) as daphne:
        yield daphne


@pytest.fixture
def same_redis_as_server(server, settings):
    use_the_servers_redis(settings)


def use_the_servers_redis(settings) -> None:
    """This process may have loaded its settings without REDIS_URL: give it the channel layer
    and cache daphne derives from it, so that its pushes and sessions reach daphne."""
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
