"""Failures injected into a running system: Redis down, the server restarted, PostgreSQL
restarted, a client that stops reading. Each test runs its own servers, so nothing else is
disturbed, once on daphne and once on uvicorn (``[daphne]``, ``[uvicorn]``; PostgreSQL's restart
on daphne alone)."""

import asyncio
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from notifications import services
from notifications.models import Notification
from tests.conftest import REDIS_URL, redis_reachable, service_missing
from tests.redis_keys import layer_config, redis_cache
from tests.servers import ROOT, SERVERS, Server, database_url, free_port
from tests.sockets import close_code, open_socket, receive, session_of

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


# --- servers of the tests' own ---------------------------------------------------------------


class RedisServer:
    """A private redis-server that a test may kill and start again on the same port."""

    def __init__(self, directory: Path) -> None:
        if not shutil.which("redis-server"):
            service_missing("redis-server is not installed")
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def wait_for_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@contextmanager
def own_servers(kind: type[Server], directory: Path) -> Iterator[Callable[..., Server]]:
    """``start(env, heartbeat=None)``: a server of ``kind`` of the test's own, on the test
    database; ``heartbeat``: (ping interval, ping timeout) in seconds. All stopped at the end."""
    started: list[Server] = []

    def start(env: dict[str, str], heartbeat: tuple[int, int] | None = None) -> Server:
        server = kind(
            {
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DATABASE_URL": database_url(connection.settings_dict),
                **env,
            },
            directory / f"{kind.name}-{len(started)}.log",
            kind.heartbeat(*heartbeat) if heartbeat else (),
        )
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(params=list(SERVERS))
def server_for(request, tmp_path):
    """``server_for(env, heartbeat=None)``: own_servers' start, on daphne and then uvicorn."""
    with own_servers(SERVERS[request.param], tmp_path) as start:
        yield start


def use_redis(settings, url: str) -> None:
    """Point this process's channel layer and cache at ``url``, as the server's are (tests.settings:
    the run's key prefix)."""
    settings.CHANNEL_LAYERS = {
        "default": layer_config("channels_redis.pubsub.RedisPubSubChannelLayer", url)
    }
    settings.CACHES = {"default": redis_cache(url)}


# --- client helpers --------------------------------------------------------------------------


async def resume_until_found(server, session, after, title, attempts=40):
    """Reconnect (as the widget does, with a pause) until the resume hands over ``title``."""
    for _ in range(attempts):
        try:
            async with open_socket(server, session) as ws:
                hello = await receive(ws)
                if hello["type"] != "hello":
                    raise ConnectionError(hello)
                await ws.send(json.dumps({"type": "resume", "after": after}))
                backlog = await receive(ws)
                if backlog["type"] == "backlog":
                    return [n["title"] for n in backlog["notifications"]]
        except (ConnectionClosed, ConnectionError, TimeoutError, OSError, InvalidStatus):
            pass
        await asyncio.sleep(0.25)
    pytest.fail(f"could not resume and find {title!r}")


notify = sync_to_async(services.notify)


# --- the faults --------------------------------------------------------------------------------


async def test_redis_down_nothing_lost(private_redis, server_for, settings, alice, caplog):
    use_redis(settings, private_redis.url)
    server = await sync_to_async(server_for)({"REDIS_URL": private_redis.url})
    session = await session_of(alice)
    async with open_socket(server, session) as ws:
        hello = await receive(ws)
        after = hello["last_id"] or 0
        await sync_to_async(private_redis.stop)()

        # The send commits and returns; the failed push is a warning, not an exception.
        batch = await notify(alice, "sent while Redis is down")
        assert await sync_to_async(Notification.objects.filter(pk=batch.ids[0]).exists)()
        assert "pushes failed" in caplog.text

        # The server notices that pushes may be lost and tells the client to come back.
        assert await close_code(ws, 10) == 4013

    await sync_to_async(private_redis.start)()
    titles = await resume_until_found(server, session, after, "sent while Redis is down")
    assert "sent while Redis is down" in titles


async def test_a_restart_closes_with_4012_and_nothing_is_lost(server_for, settings, alice):
    if not redis_reachable():
        service_missing(f"Redis is not reachable at {REDIS_URL}")
    use_redis(settings, REDIS_URL)
    server = await sync_to_async(server_for)({"REDIS_URL": REDIS_URL})
    session = await session_of(alice)
    async with open_socket(server, session) as ws:
        after = (await receive(ws))["last_id"] or 0
        stopping = asyncio.create_task(asyncio.to_thread(server.stop))
        assert await close_code(ws, 10) == 4012  # "service restart": reconnect soon
        await stopping
    await notify(alice, "sent while the server is down")
    await asyncio.to_thread(server.start)
    assert "sent while the server is down" in await resume_until_found(
        server, session, after, "sent while the server is down"
    )


async def test_a_client_that_stops_reading_is_dropped(server_for, settings, alice):
    if not redis_reachable():
        service_missing(f"Redis is not reachable at {REDIS_URL}")
    use_redis(settings, REDIS_URL)
    # The server's own heartbeat bounds what a stuck client costs: no pong in time, no connection.
    server = await sync_to_async(server_for)({"REDIS_URL": REDIS_URL}, heartbeat=(1, 2))
    session = await session_of(alice)
    stuck = socket.create_connection(("127.0.0.1", server.port), 5)
    stuck.sendall(
        (
            "GET /ws/notifications/ HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1:{server.port}\r\nCookie: sessionid={session}\r\n\r\n"
        ).encode()
    )
    for i in range(50):
        await notify(alice, f"unread by a stuck client {i}", body="x" * 2000)
    await asyncio.sleep(5)  # ping interval + timeout, and some slack; the client reads nothing
    stuck.settimeout(5)
    received = b""
    try:
        while chunk := stuck.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError) as error:
        assert not isinstance(error, TimeoutError), "the stuck client was never dropped"
    finally:
        stuck.close()
    assert received.startswith(b"HTTP/1.1 101")


def run_as_postgres(command: list[str]) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    result = subprocess.run(prefix + command, capture_output=True, text=True, timeout=60)
    if result.returncode:
        raise RuntimeError(f"{command[0]} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture
def private_postgres():
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not binaries:
        service_missing("no PostgreSQL server binaries in /usr/lib/postgresql")
    bin_dir = Path(binaries[-1])
    # Not under pytest's tmp_path: the postgres user cannot enter root's 0700 folders.
    data = Path(tempfile.mkdtemp(prefix="notifications-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    port = free_port()
    run_as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"])
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"

    def pg_ctl(*args):
        # Always with a log file: otherwise the server keeps our output pipe open, and we wait.
        log = ["-l", str(data / "log")]
        run_as_postgres(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w", *log, *args]
        )

    pg_ctl("start")
    try:
        yield f"postgres://postgres@127.0.0.1:{port}/postgres", pg_ctl
    finally:
        pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(data, ignore_errors=True)


def manage(database: str, redis: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": redis, "PYTHONPATH": str(ROOT),
           "DJANGO_SETTINGS_MODULE": "tests.settings"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.strip()


SETUP_USER = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
user = get_user_model().objects.create_user("carol", password="pw")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


# How the sockets live through a PostgreSQL restart is the app's own (its pool, the consumers'
# database work in threads), whichever server carries them: daphne alone spares the suite 20 s.
@pytest.mark.parametrize("server_for", ["daphne"], indirect=True)
async def test_postgres_restart_consumers_recover(private_postgres, server_for, settings):
    if not redis_reachable():
        service_missing(f"Redis is not reachable at {REDIS_URL}")
    database, pg_ctl = private_postgres
    redis = REDIS_URL  # under the run's key prefix, as everywhere (tests/redis_keys.py)
    await asyncio.to_thread(manage, database, redis, "migrate", "--noinput")
    session = (await asyncio.to_thread(manage, database, redis, "shell", "-c", SETUP_USER)).split()[
        -1
    ]
    server = await sync_to_async(server_for)({"DATABASE_URL": database, "REDIS_URL": redis})
    send = "from notifications.services import notify; notify(1, {title!r})"
    async with open_socket(server, session) as ws:
        assert (await receive(ws))["type"] == "hello"
        await asyncio.to_thread(pg_ctl, "restart", "-m", "fast")
        # The socket survived the restart: pushes arrive, and database work succeeds again.
        await asyncio.to_thread(manage, database, redis, "shell", "-c", send.format(title="after"))
        message = await receive(ws, 10)
        assert message["type"] == "notification" and message["notification"]["title"] == "after"
        await ws.send(json.dumps({"type": "resume", "after": 0}))
        backlog = await receive(ws, 10)
        assert backlog["type"] == "backlog"
        assert [n["title"] for n in backlog["notifications"]] == ["after"]
    # And new sockets connect.
    async with open_socket(server, session) as ws:
        assert (await receive(ws))["type"] == "hello"
