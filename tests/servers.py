"""Real ASGI server processes for the end-to-end tests: daphne, or uvicorn with its wsproto
WebSocket implementation, started on a free port and stopped for sure (docs/deployment.md, "Which
server", gives both command lines)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
APPLICATION = "project.asgi:application"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database a connection's settings point at (the test database once
    pytest-django has set it up)."""
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    if settings_dict["ENGINE"] == "django.db.backends.postgresql":
        user = settings_dict.get("USER") or ""
        if settings_dict.get("PASSWORD"):
            user += f":{settings_dict['PASSWORD']}"
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"
    raise NotImplementedError(f"no e2e support for {settings_dict['ENGINE']}")


class Server:
    """One server process on 127.0.0.1; a subclass says how to start it (``command``)."""

    name = "server"

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        args: tuple[str, ...] = (),
        application: str = APPLICATION,
    ) -> None:
        self.port = free_port()
        self.args = args
        self.application = application
        self.log_path = log_path
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    @staticmethod
    def heartbeat(interval: int, timeout: int) -> tuple[str, ...]:
        """The options that make it ping every ``interval`` seconds and drop a connection whose
        pong is ``timeout`` seconds late."""
        raise NotImplementedError

    def start(self, timeout: float = 20) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        pytest.fail(
            f"{self.name} did not listen on port {self.port} within {timeout} s:\n{self.log()}"
        )

    def stop(self) -> None:
        """SIGTERM, as a supervisor stops it (the sockets' goodbye); SIGKILL after 5 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def log(self, limit: int = 20_000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


class DaphneServer(Server):
    name = "daphne"

    def command(self) -> list[str]:
        return [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port), *self.args,
                self.application]  # fmt: skip

    @staticmethod
    def heartbeat(interval: int, timeout: int) -> tuple[str, ...]:
        return ("--ping-interval", str(interval), "--ping-timeout", str(timeout))


class UvicornServer(Server):
    """uvicorn as docs/deployment.md runs it: wsproto, no lifespan (Channels' router has none),
    no compression, daphne's frame limit, a bounded graceful shutdown."""

    name = "uvicorn"
    OPTIONS = (
        "--ws", "wsproto", "--lifespan", "off", "--ws-per-message-deflate", "false",
        "--ws-max-size", "1048576", "--timeout-graceful-shutdown", "3",
    )  # fmt: skip

    def command(self) -> list[str]:
        return [str(BIN / "uvicorn"), "--host", "127.0.0.1", "--port", str(self.port),
                *self.OPTIONS, *self.args, self.application]  # fmt: skip

    @staticmethod
    def heartbeat(interval: int, timeout: int) -> tuple[str, ...]:
        return ("--ws-ping-interval", str(interval), "--ws-ping-timeout", str(timeout))


SERVERS: dict[str, type[Server]] = {server.name: server for server in (DaphneServer, UvicornServer)}


class ShowLogOnFailure:
    """A plugin that appends the server's output to the report of every failing test of a
    module."""

    def __init__(self, server: Server, module: str) -> None:
        self.server = server
        self.module = module

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.failed and item.module.__name__ == self.module:
            report.sections.append((f"{self.server.name} output", self.server.log()))
