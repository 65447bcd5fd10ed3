"""``manage.py runserver`` (daphne's, with Django's autoreloader) serves sockets: it runs the
application in a thread that may not set signal handlers, which used to crash the first socket of
every process."""

import os
import signal
import subprocess
import sys

import pytest
from django.db import connection

from tests.conftest import REDIS_URL, redis_reachable, service_missing
from tests.servers import ROOT, Server, database_url
from tests.sockets import open_socket, receive, session_of

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class Runserver(Server):
    """``manage.py runserver`` on a free port, autoreloader and all (its own process group, so
    that the reloader's child goes with it)."""

    name = "runserver"

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}"]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


@pytest.fixture
def runserver(tmp_path):
    if not redis_reachable():
        service_missing(f"Redis is not reachable at {REDIS_URL}")
    server = Runserver(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": REDIS_URL,
        },
        tmp_path / "runserver.log",
    )
    server.start(timeout=30)
    yield server
    server.stop()


async def test_runserver_serves_sockets_from_the_first_one_on(runserver, alice):
    session = await session_of(alice)
    for _ in range(3):
        async with open_socket(runserver, session) as ws:
            assert (await receive(ws))["type"] == "hello"
            await ws.send('{"type": "ping", "id": 1}')
            assert await receive(ws) == {"type": "pong", "id": 1}
    assert "Traceback" not in runserver.log()
    assert ROOT.joinpath("manage.py").exists()
